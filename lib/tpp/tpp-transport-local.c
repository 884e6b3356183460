/* tpp-transport-local.c — the in-process TPP transport: one bounded FIFO per
 * link, one mutex and condition variable for all of them (stages are few and
 * messages rare: one per block), and a latch for the first clean latent frame.
 *
 * Used for CPU stages and for several stages on one GPU (each with its own
 * backend, i.e. CUDA stream): the latent is handed over by pointer.
 * abort() wakes every waiter so that shutdown never deadlocks.
 */
#include "tpp-internal.h"

typedef struct {
  TppTransport parent;
  GMutex lock;
  GCond cond;
  int n_links, depth;
  GQueue *q;            /* [n_links] of TppMsg* */
  gboolean aborted;
  LaTensor *ref;        /* latch: set once by the root */
} LocalTransport;

void
tpp_msg_free (TppMsg *m)
{
  if (!m)
    return;
  g_clear_pointer (&m->x, la_tensor_unref);
  g_clear_pointer (&m->audio, la_tensor_unref);
  g_clear_pointer (&m->refresh_ref, la_tensor_unref);
  g_clear_pointer (&m->refresh_motion, la_tensor_unref);
  g_free (m);
}

static void
set_aborted (GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "TPP transport: pipeline stopped");
}

static gboolean
local_send (TppTransport *tr, int link, TppMsg *m, GError **error)
{
  LocalTransport *t = (LocalTransport *) tr;
  g_mutex_lock (&t->lock);
  while (!t->aborted && (int) t->q[link].length >= t->depth)
    g_cond_wait (&t->cond, &t->lock);
  gboolean ok = !t->aborted;
  if (ok) {
    g_queue_push_tail (&t->q[link], m);
    g_cond_broadcast (&t->cond);
  }
  g_mutex_unlock (&t->lock);
  if (!ok) {
    tpp_msg_free (m);
    set_aborted (error);
  }
  return ok;
}

static TppMsg *
local_recv (TppTransport *tr, int link, GError **error)
{
  LocalTransport *t = (LocalTransport *) tr;
  TppMsg *m = NULL;
  g_mutex_lock (&t->lock);
  while (!t->aborted && g_queue_is_empty (&t->q[link]))
    g_cond_wait (&t->cond, &t->lock);
  if (!t->aborted) {
    m = g_queue_pop_head (&t->q[link]);
    g_cond_broadcast (&t->cond);
  }
  g_mutex_unlock (&t->lock);
  if (!m)
    set_aborted (error);
  return m;
}

static gboolean
local_ref_share (TppTransport *tr, int stage, int root, LaTensor **ref, GError **error)
{
  LocalTransport *t = (LocalTransport *) tr;
  g_mutex_lock (&t->lock);
  if (stage == root) {
    if (!t->ref)
      t->ref = la_tensor_ref (*ref);
    g_cond_broadcast (&t->cond);
  } else {
    while (!t->aborted && !t->ref)
      g_cond_wait (&t->cond, &t->lock);
    if (t->ref)
      *ref = la_tensor_ref (t->ref);
  }
  gboolean ok = stage == root || *ref;
  g_mutex_unlock (&t->lock);
  if (!ok)
    set_aborted (error);
  return ok;
}

static void
local_abort (TppTransport *tr)
{
  LocalTransport *t = (LocalTransport *) tr;
  g_mutex_lock (&t->lock);
  t->aborted = TRUE;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
}

static void
local_free (TppTransport *tr)
{
  LocalTransport *t = (LocalTransport *) tr;
  for (int i = 0; i < t->n_links; i++) {
    TppMsg *m;
    while ((m = g_queue_pop_head (&t->q[i])))
      tpp_msg_free (m);
  }
  g_free (t->q);
  g_clear_pointer (&t->ref, la_tensor_unref);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->cond);
  g_free (t);
}

static const TppTransportVt local_vt = {
  .send = local_send, .recv = local_recv, .ref_share = local_ref_share, .abort = local_abort, .free = local_free,
};

TppTransport *
tpp_transport_local_new (int n_links, int depth)
{
  LocalTransport *t = g_new0 (LocalTransport, 1);
  t->parent.vt = &local_vt;
  t->n_links = n_links;
  t->depth = depth > 0 ? depth : 2;
  t->q = g_new0 (GQueue, n_links);
  g_mutex_init (&t->lock);
  g_cond_init (&t->cond);
  return &t->parent;
}
