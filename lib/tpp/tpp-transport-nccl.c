/* tpp-transport-nccl.c — TPP between GPUs of one process with NCCL
 * (docs/design/tpp.md §4, C/NCCL mapping).
 *
 * One rank per distinct device of the plan (ncclCommInitAll), one stage
 * thread per GPU.  Per block, the [16, F, h, w] f32 latent goes from stage
 * k−1 to stage k with ncclSend/ncclRecv on that stage's stream; the small
 * message header (block index, audio, d, refresh request) goes through the
 * in-process queues first, so the receiver knows a payload follows and posts
 * ncclRecv in the same order the sender posts ncclSend.  A link between two
 * stages on the same GPU (the VAE on a second stream of the last DiT device)
 * stays in-process.  The stream's first clean latent frame (sink refresh,
 * docs/design/streaming.md §4.3) is an ncclBroadcast over the DiT devices' own communicator, rooted
 * at the last DiT stage, that every DiT stage calls right after block 0.
 *
 * A stage hands the pipeline a host latent (the DiT session uploads it at
 * the stage's first step and downloads it after its last), so the latent is
 * staged through a device buffer around each send/recv; handing the
 * stage's device latent to NCCL directly would save those two copies.
 *
 * Never blocking forever: every wait polls cudaStreamQuery and the
 * communicator's async error, and on abort the waiting thread calls
 * ncclCommAbort on its own communicator (the NCCL-documented way out of a
 * hung peer).
 *
 * Run on the emulated CUDA device only (-Dcuda-emu=enabled: test-tpp's
 * /tpp/nccl over 1..5 devices, bit-identical to the sequential loop, with
 * NCCL emulated between threads in cuda/emu/lib-nccl.cc); never on GPUs yet.
 */
#include <string.h>
#include "tpp-internal.h"

#ifndef LA_HAVE_NCCL

TppTransport *
tpp_transport_nccl_new (const LaTppConfig *cfg, const LaTppPlan *plan, int lat_c, int lat_f, int lat_h, int lat_w,
                        GError **error)
{
  (void) cfg, (void) plan, (void) lat_c, (void) lat_f, (void) lat_h, (void) lat_w;
  g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "TPP: the NCCL transport is not built in (no CUDA toolkit)");
  return NULL;
}

#else
#include <cuda_runtime.h>
#include <nccl.h>

typedef struct {
  TppTransport parent;
  TppTransport *local;                       /* headers, the input link, same-device links */
  int n_stages, n_ranks, n_dit;
  int dev_of_stage[LA_TPP_MAX_STAGES];       /* CUDA ordinal */
  int rank_of_stage[LA_TPP_MAX_STAGES];      /* in comm[] */
  int dit_rank_of_stage[LA_TPP_MAX_STAGES];  /* in dit_comm[], -1 for the VAE stage */
  int root_dit_rank;
  ncclComm_t comm[LA_TPP_MAX_STAGES];        /* all devices: point-to-point */
  ncclComm_t dit_comm[LA_TPP_MAX_STAGES];    /* DiT devices: the sink broadcast */
  gboolean comm_ok, dit_comm_ok;
  gboolean comm_dead[LA_TPP_MAX_STAGES], dit_comm_dead[LA_TPP_MAX_STAGES];
  cudaStream_t stream[LA_TPP_MAX_STAGES];    /* per stage */
  float *buf[LA_TPP_MAX_STAGES];             /* per stage: one latent */
  int64_t count, ref_count;                  /* floats */
  int64_t shape[4];
  gint aborted;
} NcclTransport;

static gboolean
cuda_ok (cudaError_t e, const char *what, int dev, GError **error)
{
  if (e == cudaSuccess)
    return TRUE;
  g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "TPP NCCL transport: %s on cuda:%d: %s", what, dev,
               cudaGetErrorString (e));
  return FALSE;
}

static gboolean
nccl_ok (ncclResult_t r, const char *what, int dev, GError **error)
{
  if (r == ncclSuccess)
    return TRUE;
  g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "TPP NCCL transport: %s on cuda:%d: %s", what, dev,
               ncclGetErrorString (r));
  return FALSE;
}

/* Waits for the stage's stream without ever blocking for good.  Any failure
 * aborts this rank's communicator: an operation left pending on it would
 * otherwise hang ncclCommDestroy, and the peers (told by the pipeline's
 * abort) abort theirs in turn. */
static gboolean
wait_stream (NcclTransport *t, int stage, ncclComm_t comm, gboolean *dead, GError **error)
{
  int dev = t->dev_of_stage[stage];
  gboolean ok = TRUE;
  for (;;) {
    cudaError_t e = cudaStreamQuery (t->stream[stage]);
    if (e == cudaSuccess)
      return TRUE;
    if (e != cudaErrorNotReady) {
      ok = cuda_ok (e, "stream", dev, error);
      break;
    }
    ncclResult_t ae = ncclSuccess;
    if (ncclCommGetAsyncError (comm, &ae) == ncclSuccess && ae != ncclSuccess && ae != ncclInProgress) {
      ok = nccl_ok (ae, "communicator", dev, error);
      break;
    }
    if (g_atomic_int_get (&t->aborted)) {
      g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "TPP NCCL transport: pipeline stopped (cuda:%d)", dev);
      ok = FALSE;
      break;
    }
    g_usleep (20);
  }
  if (!*dead)
    ncclCommAbort (comm);
  *dead = TRUE;
  return ok;
}

static gboolean
cross (NcclTransport *t, int link)
{
  return link > 0 && t->dev_of_stage[link - 1] != t->dev_of_stage[link];
}

static gboolean
nccl_send (TppTransport *tr, int link, TppMsg *m, GError **error)
{
  NcclTransport *t = (NcclTransport *) tr;
  if (!cross (t, link) || m->kind != TPP_MSG_BLOCK)
    return t->local->vt->send (t->local, link, m, error);
  int from = link - 1, dev = t->dev_of_stage[from], rank = t->rank_of_stage[from];
  LaTensor *x = g_steal_pointer (&m->x);
  /* header first: the receiver then posts its ncclRecv in the same order */
  if (!t->local->vt->send (t->local, link, m, error)) {
    la_tensor_unref (x);
    return FALSE;
  }
  gboolean ok = cuda_ok (cudaSetDevice (dev), "cudaSetDevice", dev, error) &&
                cuda_ok (cudaMemcpyAsync (t->buf[from], x->data, t->count * sizeof (float), cudaMemcpyHostToDevice,
                                          t->stream[from]), "latent upload", dev, error) &&
                nccl_ok (ncclSend (t->buf[from], (size_t) t->count, ncclFloat, t->rank_of_stage[link], t->comm[rank],
                                   t->stream[from]), "ncclSend", dev, error) &&
                wait_stream (t, from, t->comm[rank], &t->comm_dead[rank], error);
  la_tensor_unref (x);
  return ok;
}

static TppMsg *
nccl_recv (TppTransport *tr, int link, GError **error)
{
  NcclTransport *t = (NcclTransport *) tr;
  TppMsg *m = t->local->vt->recv (t->local, link, error);
  if (!m || !cross (t, link) || m->kind != TPP_MSG_BLOCK)
    return m;
  int dev = t->dev_of_stage[link], rank = t->rank_of_stage[link];
  m->x = la_tensor_new (LA_DTYPE_F32, 4, t->shape);
  gboolean ok = cuda_ok (cudaSetDevice (dev), "cudaSetDevice", dev, error) &&
                nccl_ok (ncclRecv (t->buf[link], (size_t) t->count, ncclFloat, t->rank_of_stage[link - 1],
                                   t->comm[rank], t->stream[link]), "ncclRecv", dev, error) &&
                cuda_ok (cudaMemcpyAsync (m->x->data, t->buf[link], t->count * sizeof (float), cudaMemcpyDeviceToHost,
                                          t->stream[link]), "latent download", dev, error) &&
                wait_stream (t, link, t->comm[rank], &t->comm_dead[rank], error);
  if (!ok) {
    tpp_msg_free (m);
    return NULL;
  }
  return m;
}

static gboolean
nccl_ref_share (TppTransport *tr, int stage, int root, LaTensor **ref, GError **error)
{
  NcclTransport *t = (NcclTransport *) tr;
  (void) root;
  int dev = t->dev_of_stage[stage], r = t->dit_rank_of_stage[stage];
  if (r < 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "TPP NCCL transport: stage %d is not a DiT stage", stage);
    return FALSE;
  }
  gboolean is_root = r == t->root_dit_rank;
  if (is_root && !*ref) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "TPP NCCL transport: the root has no latent to broadcast");
    return FALSE;
  }
  LaTensor *h = is_root ? la_tensor_ref (*ref)
                        : la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { t->shape[0], 1, t->shape[2], t->shape[3] });
  gboolean ok = cuda_ok (cudaSetDevice (dev), "cudaSetDevice", dev, error) &&
                (!is_root || cuda_ok (cudaMemcpyAsync (t->buf[stage], h->data, t->ref_count * sizeof (float),
                                                       cudaMemcpyHostToDevice, t->stream[stage]), "ref upload", dev, error)) &&
                nccl_ok (ncclBroadcast (t->buf[stage], t->buf[stage], (size_t) t->ref_count, ncclFloat, t->root_dit_rank,
                                        t->dit_comm[r], t->stream[stage]), "ncclBroadcast", dev, error) &&
                (is_root || cuda_ok (cudaMemcpyAsync (h->data, t->buf[stage], t->ref_count * sizeof (float),
                                                      cudaMemcpyDeviceToHost, t->stream[stage]), "ref download", dev, error)) &&
                wait_stream (t, stage, t->dit_comm[r], &t->dit_comm_dead[r], error);
  if (ok && !is_root)
    *ref = la_tensor_ref (h);
  la_tensor_unref (h);
  return ok;
}

static void
nccl_abort (TppTransport *tr)
{
  NcclTransport *t = (NcclTransport *) tr;
  g_atomic_int_set (&t->aborted, 1);   /* waiters abort their own communicator */
  t->local->vt->abort (t->local);
}

static void
nccl_free (TppTransport *tr)
{
  NcclTransport *t = (NcclTransport *) tr;
  for (int k = 0; k < t->n_stages; k++) {
    cudaSetDevice (t->dev_of_stage[k]);
    if (t->buf[k])
      cudaFree (t->buf[k]);
    if (t->stream[k])
      cudaStreamDestroy (t->stream[k]);
  }
  for (int r = 0; t->comm_ok && r < t->n_ranks; r++)
    t->comm_dead[r] ? (void) 0 : (void) ncclCommDestroy (t->comm[r]);
  for (int r = 0; t->dit_comm_ok && r < t->n_dit; r++)
    t->dit_comm_dead[r] ? (void) 0 : (void) ncclCommDestroy (t->dit_comm[r]);
  if (t->local)
    t->local->vt->free (t->local);
  g_free (t);
}

static const TppTransportVt nccl_vt = {
  .send = nccl_send, .recv = nccl_recv, .ref_share = nccl_ref_share, .abort = nccl_abort, .free = nccl_free,
};

TppTransport *
tpp_transport_nccl_new (const LaTppConfig *cfg, const LaTppPlan *plan, int lat_c, int lat_f, int lat_h, int lat_w,
                        GError **error)
{
  NcclTransport *t = g_new0 (NcclTransport, 1);
  t->parent.vt = &nccl_vt;
  t->parent.collective_ref = TRUE;
  t->n_stages = plan->n_stages;
  t->local = tpp_transport_local_new (plan->n_stages, cfg->queue_depth);
  int64_t s[4] = { lat_c, lat_f, lat_h, lat_w };
  memcpy (t->shape, s, sizeof s);
  t->count = (int64_t) lat_c * lat_f * lat_h * lat_w;
  t->ref_count = (int64_t) lat_c * lat_h * lat_w;
  int devs[LA_TPP_MAX_STAGES], dit_devs[LA_TPP_MAX_STAGES];
  for (int k = 0; k < plan->n_stages; k++) {
    int dev = t->dev_of_stage[k] = cfg->devices[plan->stage[k].device].cuda_device;
    int r = 0;
    while (r < t->n_ranks && devs[r] != dev)
      r++;
    if (r == t->n_ranks)
      devs[t->n_ranks++] = dev;
    t->rank_of_stage[k] = r;
    t->dit_rank_of_stage[k] = -1;
    if (plan->stage[k].n_steps > 0) {
      for (int j = 0; j < t->n_dit; j++)
        if (dit_devs[j] == dev) {
          g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "TPP NCCL transport: two DiT stages on cuda:%d "
                       "(use the in-process transport for stages sharing a GPU)", dev);
          nccl_free (&t->parent);
          return NULL;
        }
      t->dit_rank_of_stage[k] = t->n_dit;
      t->root_dit_rank = t->n_dit;     /* the last DiT stage */
      dit_devs[t->n_dit++] = dev;
    }
  }
  gboolean ok = nccl_ok (ncclCommInitAll (t->comm, t->n_ranks, devs), "ncclCommInitAll", devs[0], error);
  t->comm_ok = ok;
  if (ok) {
    ok = nccl_ok (ncclCommInitAll (t->dit_comm, t->n_dit, dit_devs), "ncclCommInitAll (DiT)", dit_devs[0], error);
    t->dit_comm_ok = ok;
  }
  for (int k = 0; ok && k < plan->n_stages; k++) {
    int dev = t->dev_of_stage[k];
    ok = cuda_ok (cudaSetDevice (dev), "cudaSetDevice", dev, error) &&
         cuda_ok (cudaStreamCreateWithFlags (&t->stream[k], cudaStreamNonBlocking), "cudaStreamCreate", dev, error) &&
         cuda_ok (cudaMalloc ((void **) &t->buf[k], t->count * sizeof (float)), "cudaMalloc", dev, error);
  }
  if (!ok) {
    nccl_free (&t->parent);
    return NULL;
  }
  return &t->parent;
}
#endif
