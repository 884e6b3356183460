/* backend-cuda.cu — the CUDA backend's device, memory, copies, ops table and
 * the la-cuda.h extras (weight precision, allocator figures, CUDA graphs).
 *
 * Memory plan.  Tensors are GBytes whose free function hands the block back
 * to a caching allocator (LaCudaPool): per-size free lists, sizes rounded up
 * (512 B below 1 MiB, 2 MiB above) so a steady-state loop that allocates the
 * same shapes every block is served entirely from the cache (zero cudaMalloc
 * after warm-up; la_cuda_mem_stats() proves it).  Everything runs on one
 * stream, so a block freed after its last use was enqueued can be reused by
 * the next op without events (the PyTorch caching-allocator argument).
 * Op temporaries (type casts, im2col, FP8 activations) come from the same
 * pool through la_cuda_scratch_get/put.
 *
 * Graphs.  A block that a capture allocates or frees is used by the graph on
 * every replay, so it must never reach an eager allocation while a graph
 * lives.  It joins the pool's graph domain: freed, it goes to a second set
 * of free lists that only captures draw from.  Every graph of a pool replays
 * on the backend's one stream, one after the other, so graphs may share
 * those blocks as they share temporaries in eager order: capturing N
 * identical steps costs one step's temporaries, not N (the pool test in
 * tests/check/dit/test-dit-graph.c).  When the last graph goes, the domain
 * returns to the eager lists.
 *
 * Errors.  Ops never return errors; the first failure is kept (sticky, in
 * lib/la-backend.c) and reported by la_backend_sync(), like cudaGetLastError.
 */
#include "cuda-internal.h"
#include "frames.h"
#include <string.h>

/* ---------------------------------------------------------------- errors */

void
la_cuda_record_error (LaCudaBackend *self, const char *what, const char *detail)
{
  la_backend_record_error (&self->parent, LA_ERROR_DEVICE, "CUDA device %d: %s: %s",
                           self->parent.device_index, what, detail);
}

gboolean
la_cuda_dtype_ok (LaCudaBackend *self, const char *op, const LaTensor *t)
{
  if (t->device != LA_DEVICE_CUDA) {
    /* A host pointer in a kernel would be an illegal address that poisons
     * the CUDA context; name the tensor instead. */
    char *msg = g_strdup_printf ("tensor %s is a host tensor (allocate it with la_alloc on this backend)",
                                 t->name ? t->name : "(unnamed)");
    la_cuda_record_error (self, op, msg);
    g_free (msg);
    return FALSE;
  }
  if (t->dtype == LA_DTYPE_F32 || t->dtype == LA_DTYPE_BF16 || t->dtype == LA_DTYPE_F16)
    return TRUE;
  char *msg = g_strdup_printf ("dtype %s of tensor %s not supported (f32, bf16, f16)",
                               la_dtype_name (t->dtype), t->name ? t->name : "(unnamed)");
  la_cuda_record_error (self, op, msg);
  g_free (msg);
  return FALSE;
}

/* ------------------------------------------------------- caching allocator */

struct LaCudaPool {
  gint ref;
  GMutex lock;
  int device;
  GHashTable *bins;        /* rounded size -> GSList of free pointers */
  GHashTable *sizes;       /* pointer -> rounded size, for every live block */
  GHashTable *graph_bins;  /* rounded size -> GSList of free graph-domain blocks (captures only) */
  GHashTable *graph_set;   /* pointer -> itself: the graph domain (free or live) */
  int n_graphs;            /* graphs alive, the one being captured included */
  gboolean capturing;      /* a capture is open */
  LaCudaGraph *open;       /* the graph being captured */
  LaCudaMemStats st;
};

struct _LaCudaGraph {
  LaCudaBackend *be;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

static size_t
round_size (size_t n)
{
  if (n == 0)
    n = 1;
#ifdef LA_CUDA_EMU
  /* The emulator's redzone then starts at the tensor's exact end: a kernel
   * writing one element too far is reported, not hidden in rounding slack. */
  return n;
#endif
  if (n < ((size_t) 1 << 20))
    return (n + 511) & ~(size_t) 511;
  return (n + ((size_t) 2 << 20) - 1) & ~(((size_t) 2 << 20) - 1);
}

/* Takes a block of `key` bytes from free lists `bins`, NULL if none. */
static void *
bins_take (GHashTable *bins, gint64 key)
{
  gpointer okey = NULL, oval = NULL;
  if (!g_hash_table_steal_extended (bins, &key, &okey, &oval))
    return NULL;
  GSList *l = (GSList *) oval;
  void *p = l->data;
  GSList *rest = g_slist_delete_link (l, l);
  if (rest)
    g_hash_table_insert (bins, okey, rest);
  else
    g_free (okey);
  return p;
}

static void
bins_put (GHashTable *bins, gint64 key, void *p)
{
  gpointer okey = NULL, oval = NULL;
  if (!g_hash_table_steal_extended (bins, &key, &okey, &oval))
    okey = g_memdup2 (&key, sizeof key);
  g_hash_table_insert (bins, okey, g_slist_prepend ((GSList *) oval, p));
}

static void
bins_free_all (GHashTable *bins)
{
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, bins);
  while (g_hash_table_iter_next (&it, &k, &v))
    for (GSList *l = (GSList *) v; l; l = l->next)
      cudaFree (l->data);
}

static void
pool_unref (LaCudaPool *pool)
{
  if (!g_atomic_int_dec_and_test (&pool->ref))
    return;
  cudaSetDevice (pool->device);
  bins_free_all (pool->bins);
  bins_free_all (pool->graph_bins);
  g_hash_table_destroy (pool->bins);
  g_hash_table_destroy (pool->graph_bins);
  g_hash_table_destroy (pool->sizes);
  g_hash_table_destroy (pool->graph_set);
  g_mutex_clear (&pool->lock);
  g_free (pool);
}

static void
free_bin (gpointer list)
{
  g_slist_free ((GSList *) list);
}

static LaCudaPool *
pool_new (int device)
{
  LaCudaPool *pool = g_new0 (LaCudaPool, 1);
  pool->ref = 1;
  pool->device = device;
  g_mutex_init (&pool->lock);
  pool->bins = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, free_bin);
  pool->graph_bins = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, free_bin);
  pool->sizes = g_hash_table_new (g_direct_hash, g_direct_equal);
  pool->graph_set = g_hash_table_new (g_direct_hash, g_direct_equal);
  return pool;
}

static void *
pool_get (LaCudaBackend *self, size_t bytes)
{
  LaCudaPool *pool = self->pool;
  gint64 key = (gint64) round_size (bytes);
  void *p = NULL;
  g_mutex_lock (&pool->lock);
  /* A capture first takes the blocks earlier captures left to the graphs. */
  if ((pool->capturing && (p = bins_take (pool->graph_bins, key))) || (p = bins_take (pool->bins, key))) {
    pool->st.cached -= (guint64) key;
    pool->st.n_reuse++;
  } else {
    cudaSetDevice (pool->device);
    cudaError_t e = cudaMalloc (&p, (size_t) key);
    if (e != cudaSuccess && !pool->capturing) {
      /* Out of memory: give the cache back to the driver and try once more
       * (not inside a graph capture, where cudaFree is not allowed). */
      (void) cudaGetLastError ();
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, pool->bins);
      while (g_hash_table_iter_next (&it, &k, &v))
        for (GSList *b = (GSList *) v; b; b = b->next) {
          g_hash_table_remove (pool->sizes, b->data);
          cudaFree (b->data);
        }
      g_hash_table_remove_all (pool->bins);
      pool->st.cached = 0;
      e = cudaMalloc (&p, (size_t) key);
    }
    if (e != cudaSuccess) {
      g_mutex_unlock (&pool->lock);
      char *msg = g_strdup_printf ("%" G_GINT64_FORMAT " bytes: %s", key, cudaGetErrorString (e));
      la_cuda_record_error (self, "cudaMalloc", msg);
      g_free (msg);
      return NULL;
    }
    pool->st.n_malloc++;
  }
  g_hash_table_insert (pool->sizes, p, GSIZE_TO_POINTER ((gsize) key));
  pool->st.in_use += (guint64) key;
  if (pool->st.in_use + pool->st.cached > pool->st.peak)
    pool->st.peak = pool->st.in_use + pool->st.cached;
  if (pool->capturing)
    g_hash_table_add (pool->graph_set, p);     /* the graph writes it on every replay */
  g_mutex_unlock (&pool->lock);
  return p;
}

static void
pool_put_locked (LaCudaPool *pool, void *p)
{
  gint64 key = (gint64) GPOINTER_TO_SIZE (g_hash_table_lookup (pool->sizes, p));
  /* Freed during a capture (the graph may read it, whoever allocated it) or
   * allocated during one: reserved to captures while a graph lives. */
  if (pool->capturing)
    g_hash_table_add (pool->graph_set, p);
  gboolean graph = pool->n_graphs > 0 && g_hash_table_contains (pool->graph_set, p);
  bins_put (graph ? pool->graph_bins : pool->bins, key, p);
  pool->st.in_use -= (guint64) key;
  pool->st.cached += (guint64) key;
}

/* The last graph is gone: its blocks may serve eager allocations again. */
static void
pool_graphs_gone_locked (LaCudaPool *pool)
{
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, pool->graph_bins);
  while (g_hash_table_iter_next (&it, &k, &v))
    for (GSList *l = (GSList *) v; l; l = l->next)
      bins_put (pool->bins, *(gint64 *) k, l->data);
  g_hash_table_remove_all (pool->graph_bins);
  g_hash_table_remove_all (pool->graph_set);
}

typedef struct {
  LaCudaPool *pool;
  void *p;
} PoolBlock;

static void
pool_block_free (gpointer data)
{
  PoolBlock *b = (PoolBlock *) data;
  g_mutex_lock (&b->pool->lock);
  pool_put_locked (b->pool, b->p);
  g_mutex_unlock (&b->pool->lock);
  pool_unref (b->pool);
  g_free (b);
}

void *
la_cuda_scratch_get (LaCudaBackend *self, size_t bytes)
{
  return pool_get (self, bytes);
}

void
la_cuda_scratch_put (LaCudaBackend *self, void *p)
{
  if (!p)
    return;
  g_mutex_lock (&self->pool->lock);
  pool_put_locked (self->pool, p);
  g_mutex_unlock (&self->pool->lock);
}

/* ------------------------------------------------------------ memory ops */

__global__ void
set_scalar (float *p, float v)
{
  *p = v;
}

static LaTensor *
cuda_alloc (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape)
{
  LaCudaBackend *self = la_cuda_self (be);
  LaTensor probe;
  memset (&probe, 0, sizeof probe);
  probe.dtype = dtype;
  probe.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    probe.shape[i] = shape[i];
  size_t n = la_tensor_nbytes (&probe);
  /* e4m3 tensors carry their fp32 dequantisation scale after the data. */
  size_t total = dtype == LA_DTYPE_F8_E4M3 ? la_cuda_scale_offset (n) + 256 : n;
  void *p = pool_get (self, total);
  if (!p)
    return NULL;
  LA_CU_CHECK (self, cudaMemsetAsync (p, 0, n, self->stream));   /* la_alloc zero-fills, as on the CPU */
  if (dtype == LA_DTYPE_F8_E4M3) {
    /* a kernel, not a host copy, so that allocation works inside a graph capture */
    set_scalar<<<1, 1, 0, self->stream>>> ((float *) ((char *) p + la_cuda_scale_offset (n)), 1.0f);
    LA_CU_CHECK (self, cudaGetLastError ());
  }
  PoolBlock *blk = g_new (PoolBlock, 1);
  blk->pool = self->pool;
  blk->p = p;
  g_atomic_int_inc (&self->pool->ref);
  GBytes *b = g_bytes_new_with_free_func (p, n, pool_block_free, blk);
  LaTensor *t = la_tensor_new_view (dtype, ndim, shape, b, p, LA_DEVICE_CUDA, be->device_index);
  g_bytes_unref (b);
  return t;
}

static gboolean
device_float (LaDType t)
{
  return t == LA_DTYPE_F32 || t == LA_DTYPE_BF16 || t == LA_DTYPE_F16 || t == LA_DTYPE_F8_E4M3;
}

/* dst <- src for any pair of host/device tensors and dtypes.  Float casts run
 * on the device; copies that touch host memory synchronise (the host buffer
 * may be pageable or freed right after).  Casting into e4m3 is the raw
 * saturating cast of la_convert (scale slot untouched); la_cuda_quantize_fp8
 * is the scaled quantiser. */
static void
cuda_copy (LaBackend *be, LaTensor *dst, const LaTensor *src)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t n = la_tensor_numel (src);
  if (la_tensor_numel (dst) != n) {
    la_cuda_record_error (self, "copy", "element counts differ");
    return;
  }
  gboolean dh = dst->device != LA_DEVICE_CUDA, sh = src->device != LA_DEVICE_CUDA;
  if (dh && sh) {
    la_convert (dst->data, dst->dtype, src->data, src->dtype, (size_t) n);
    return;
  }
  if ((dh || sh) && self->capturing) {
    la_cuda_record_error (self, "copy", "host<->device copy inside a CUDA graph capture");
    return;
  }
  if (dst->dtype == src->dtype) {
    if (dst->data == src->data)
      return;
    LA_CU_CHECK (self, cudaMemcpyAsync (dst->data, src->data, la_tensor_nbytes (src), cudaMemcpyDefault,
                                        self->stream));
    if (dh || sh)
      LA_CU_CHECK (self, cudaStreamSynchronize (self->stream));
    return;
  }
  if (device_float (dst->dtype) && device_float (src->dtype)) {
    if (!dh && !sh) {
      la_cuda_convert (self, dst->data, dst->dtype, src->data, src->dtype, n);
    } else if (sh) {          /* upload raw, cast on the device */
      void *tmp = la_cuda_scratch_get (self, la_tensor_nbytes (src));
      if (!tmp)
        return;
      LA_CU_CHECK (self, cudaMemcpyAsync (tmp, src->data, la_tensor_nbytes (src), cudaMemcpyHostToDevice,
                                          self->stream));
      la_cuda_convert (self, dst->data, dst->dtype, tmp, src->dtype, n);
      LA_CU_CHECK (self, cudaStreamSynchronize (self->stream));
      la_cuda_scratch_put (self, tmp);
    } else {                  /* cast on the device, download */
      void *tmp = la_cuda_scratch_get (self, la_tensor_nbytes (dst));
      if (!tmp)
        return;
      la_cuda_convert (self, tmp, dst->dtype, src->data, src->dtype, n);
      LA_CU_CHECK (self, cudaMemcpyAsync (dst->data, tmp, la_tensor_nbytes (dst), cudaMemcpyDeviceToHost,
                                          self->stream));
      LA_CU_CHECK (self, cudaStreamSynchronize (self->stream));
      la_cuda_scratch_put (self, tmp);
    }
    return;
  }
  /* Integer or f64 conversions: rare (indices, tables), done on the host. */
  if (self->capturing) {
    la_cuda_record_error (self, "copy", "non-float cast inside a CUDA graph capture");
    return;
  }
  void *hs = g_malloc (la_tensor_nbytes (src)), *hd = g_malloc (la_tensor_nbytes (dst));
  LA_CU_CHECK (self, cudaMemcpyAsync (hs, src->data, la_tensor_nbytes (src), cudaMemcpyDefault, self->stream));
  LA_CU_CHECK (self, cudaStreamSynchronize (self->stream));
  la_convert (hd, dst->dtype, hs, src->dtype, (size_t) n);
  LA_CU_CHECK (self, cudaMemcpyAsync (dst->data, hd, la_tensor_nbytes (dst), cudaMemcpyDefault, self->stream));
  LA_CU_CHECK (self, cudaStreamSynchronize (self->stream));
  g_free (hs);
  g_free (hd);
}

/* For the copy statistics: device memory of any CUDA device is not the host's. */
static gboolean
cuda_resident (LaBackend *be, const LaTensor *t)
{
  return t->device == LA_DEVICE_CUDA;
}

static void
cuda_sync (LaBackend *be)
{
  LaCudaBackend *self = la_cuda_self (be);
  if (self->capturing)
    la_cuda_record_error (self, "sync", "called inside a CUDA graph capture");
  else
    LA_CU_CHECK (self, cudaStreamSynchronize (self->stream));
}

static void
cuda_destroy (LaBackend *be)
{
  LaCudaBackend *self = la_cuda_self (be);
  cudaSetDevice (be->device_index);
  cudaStreamSynchronize (self->stream);
  cublasDestroy (self->blas);
  cublasLtDestroy (self->lt);
  la_cuda_cudnn_destroy (self);
  cudaFree (self->lt_workspace);
  cudaStreamDestroy (self->stream);
  g_hash_table_destroy (self->lt_algos);
  pool_unref (self->pool);
  g_mutex_clear (&self->lock);
  g_rec_mutex_clear (&self->op_lock);
  g_free (self);
}

/* The table's graph entries over la-cuda.h's (which take the lock themselves). */
static gboolean cuda_graph_begin (LaBackend *be, GError **error) { return la_cuda_graph_begin (be, error); }
static gpointer cuda_graph_end (LaBackend *be, GError **error) { return la_cuda_graph_end (be, error); }
static gboolean cuda_graph_launch (LaBackend *be, gpointer g, GError **error)
{
  return la_cuda_graph_launch ((LaCudaGraph *) g, error);
}
static void cuda_graph_free (LaBackend *be, gpointer g) { la_cuda_graph_free ((LaCudaGraph *) g); }

/* Every table entry runs under the backend's op_lock (cuda-internal.h):
 * Locked<f>::call is f with the lock held for the call. */
template <auto F> struct Locked;
template <typename R, typename... A, R (*F) (LaBackend *, A...)>
struct Locked<F> {
  static R call (LaBackend *be, A... a)
  {
    LaCudaOpLock l ((LaCudaBackend *) be);
    return F (be, a...);
  }
};

static LaBackendOps
make_ops (void)
{
  LaBackendOps o;
  memset (&o, 0, sizeof o);
  o.name = "cuda";
  o.alloc = Locked<cuda_alloc>::call;
  o.copy = Locked<cuda_copy>::call;
  o.fill = Locked<la_cuda_fill>::call;
  o.linear = Locked<la_cuda_linear>::call;
  o.matmul = Locked<la_cuda_matmul>::call;
  o.layer_norm = Locked<la_cuda_layer_norm>::call;
  o.rms_norm = Locked<la_cuda_rms_norm>::call;
  o.unary = Locked<la_cuda_unary>::call;
  o.binary = Locked<la_cuda_binary>::call;
  o.axpy = Locked<la_cuda_axpy>::call;
  o.modulate = Locked<la_cuda_modulate>::call;
  o.softmax = Locked<la_cuda_softmax>::call;
  o.attention = Locked<la_cuda_attention>::call;
  o.conv3d = Locked<la_cuda_conv3d>::call;
  o.conv1d = Locked<la_cuda_conv1d>::call;
  o.channel_rms_norm = Locked<la_cuda_channel_rms_norm>::call;
  o.copy4d = Locked<la_cuda_copy4d>::call;
  o.upsample2x = Locked<la_cuda_upsample2x>::call;
  o.latent_norm = Locked<la_cuda_latent_norm>::call;
  o.clamp = Locked<la_cuda_clamp>::call;
  o.rope = Locked<la_cuda_rope>::call;
  o.patchify = Locked<la_cuda_patchify>::call;
  o.unpatchify = Locked<la_cuda_unpatchify>::call;
  o.rope_table = Locked<la_cuda_rope_table>::call;
  o.graph_begin = cuda_graph_begin;
  o.graph_end = cuda_graph_end;
  o.graph_launch = cuda_graph_launch;
  o.graph_free = cuda_graph_free;
  o.frames_to_rgba8 = Locked<la_cuda_frames_to_rgba8>::call;   /* frames.cu */
  o.rgba8_to_nv12 = Locked<la_cuda_rgba8_to_nv12>::call;
  o.resident = cuda_resident;
  o.sync = Locked<cuda_sync>::call;
  o.destroy = cuda_destroy;      /* the last reference: no other user left */
  o.copy_rows_at = Locked<la_cuda_copy_rows_at>::call;
  o.attention_n = Locked<la_cuda_attention_n>::call;
  return o;
}

static const LaBackendOps cuda_ops = make_ops ();

extern "C" const LaBackendOps *
la_cuda_ops_table (void)
{
  return &cuda_ops;
}

extern "C" int
la_cuda_device_count (void)
{
  int count = 0;
  if (cudaGetDeviceCount (&count) != cudaSuccess) {
    (void) cudaGetLastError ();
    return 0;
  }
  return count;
}

extern "C" LaBackend *
la_backend_cuda_new (int device_index, GError **error)
{
  int count = 0;
  cudaError_t e = cudaGetDeviceCount (&count);
  if (e != cudaSuccess || device_index < 0 || device_index >= count) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: not available (%d devices%s%s)",
                 device_index, e == cudaSuccess ? count : 0,
                 e == cudaSuccess ? "" : ": ", e == cudaSuccess ? "" : cudaGetErrorString (e));
    return NULL;
  }
  cudaSetDevice (device_index);
  LaCudaBackend *self = g_new0 (LaCudaBackend, 1);
  self->weights = LA_CUDA_WEIGHTS_F32;
  g_mutex_init (&self->lock);
  g_rec_mutex_init (&self->op_lock);
  self->lt_workspace_size = (size_t) 32 << 20;
  if (cudaStreamCreateWithFlags (&self->stream, cudaStreamNonBlocking) != cudaSuccess ||
      cublasCreate (&self->blas) != CUBLAS_STATUS_SUCCESS ||
      cublasLtCreate (&self->lt) != CUBLAS_STATUS_SUCCESS ||
      cudaMalloc (&self->lt_workspace, self->lt_workspace_size) != cudaSuccess) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE,
                 "CUDA device %d: cannot create a stream, cuBLAS(Lt) handle or workspace", device_index);
    g_mutex_clear (&self->lock);
    g_rec_mutex_clear (&self->op_lock);
    g_free (self);
    return NULL;
  }
  la_backend_init (&self->parent, &cuda_ops, LA_DEVICE_CUDA, device_index, 1);
  cublasSetStream (self->blas, self->stream);
  /* cuBLAS and cuBLASLt share one workspace: both run in order on the one
   * stream, and a user workspace keeps cuBLAS from allocating inside a graph
   * capture. */
  cublasSetWorkspace (self->blas, self->lt_workspace, self->lt_workspace_size);
  /* Pure fp32 GEMMs for f32 tensors (no TF32): the golden cases compare at fp32 tolerance. */
  cublasSetMathMode (self->blas, CUBLAS_DEFAULT_MATH);
  self->pool = pool_new (device_index);
  self->lt_algos = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return &self->parent;
}

/* ------------------------------------------------------------- la-cuda.h */

static LaCudaBackend *
as_cuda (LaBackend *be, GError **error)
{
  if (!be || be->ops != &cuda_ops) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "not a CUDA backend");
    return NULL;
  }
  return la_cuda_self (be);
}

extern "C" gboolean
la_cuda_set_weights (LaBackend *be, LaCudaWeights weights, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return FALSE;
  LaCudaOpLock lock (self);
  if (weights < LA_CUDA_WEIGHTS_F32 || weights > LA_CUDA_WEIGHTS_FP8) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "weight precision %d unknown", (int) weights);
    return FALSE;
  }
  if (weights == LA_CUDA_WEIGHTS_FP8) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties (&prop, be->device_index) == cudaSuccess &&
        prop.major * 10 + prop.minor < 89) {
      g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d (sm_%d%d): FP8 GEMMs need sm_89 or newer",
                   be->device_index, prop.major, prop.minor);
      return FALSE;
    }
  }
  self->weights = weights;
  return TRUE;
}

extern "C" LaCudaWeights
la_cuda_get_weights (LaBackend *be)
{
  LaCudaBackend *self = as_cuda (be, NULL);
  return self ? self->weights : LA_CUDA_WEIGHTS_F32;
}

extern "C" float *
la_cuda_fp8_scale_ptr (const LaTensor *t)
{
  if (!t || t->dtype != LA_DTYPE_F8_E4M3 || t->device != LA_DEVICE_CUDA)
    return NULL;
  return (float *) ((char *) t->data + la_cuda_scale_offset (la_tensor_nbytes (t)));
}

extern "C" gboolean
la_cuda_quantize_fp8 (LaBackend *be, LaTensor *dst, const LaTensor *src, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return FALSE;
  LaCudaOpLock lock (self);
  if (dst->dtype != LA_DTYPE_F8_E4M3 || dst->device != LA_DEVICE_CUDA || src->device != LA_DEVICE_CUDA ||
      la_tensor_numel (dst) != la_tensor_numel (src) ||
      !(src->dtype == LA_DTYPE_F32 || src->dtype == LA_DTYPE_BF16 || src->dtype == LA_DTYPE_F16)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "quantize_fp8: dst must be a device e4m3 tensor and src a device f32/bf16/f16 tensor "
                 "of the same size (%s)", src->name ? src->name : "unnamed");
    return FALSE;
  }
  la_cuda_fp8_quantize_raw (self, dst->data, src->data, src->dtype, la_tensor_numel (src),
                            la_cuda_fp8_scale_ptr (dst));
  return TRUE;
}

extern "C" LaTensor *
la_cuda_upload_weight (LaBackend *be, const LaTensor *host, gboolean fp8_eligible, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return NULL;
  LaCudaOpLock lock (self);
  if (!la_dtype_is_float (host->dtype)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "weight %s: dtype %s is not a float type",
                 host->name ? host->name : "unnamed", la_dtype_name (host->dtype));
    return NULL;
  }
  LaDType dt = self->weights == LA_CUDA_WEIGHTS_F32 ? LA_DTYPE_F32 : LA_DTYPE_BF16;
  gboolean fp8 = self->weights == LA_CUDA_WEIGHTS_FP8 && fp8_eligible;
  if (fp8 && (host->ndim != 2 || host->shape[0] % 16 || host->shape[1] % 16)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "weight %s: FP8 linears need a 2-D weight with both sizes multiples of 16", 
                 host->name ? host->name : "unnamed");
    return NULL;
  }
  /* Quantise from the bf16-rounded value when the source is wider: the
   * reference quantises the bf16 checkpoint weight (docs/design/model.md §2.3). */
  LaTensor *stage = la_alloc (be, fp8 ? LA_DTYPE_BF16 : dt, host->ndim, host->shape);
  if (!stage) {
    la_backend_sync (be, error);
    return NULL;
  }
  la_copy (be, stage, host);
  if (!fp8) {
    if (host->name)
      la_tensor_set_name (stage, host->name);
    if (!la_backend_sync (be, error)) {
      la_tensor_unref (stage);
      return NULL;
    }
    return stage;
  }
  LaTensor *q = la_alloc (be, LA_DTYPE_F8_E4M3, host->ndim, host->shape);
  if (q)
    la_cuda_quantize_fp8 (be, q, stage, NULL);
  la_tensor_unref (stage);
  if (!q || !la_backend_sync (be, error)) {
    if (q)
      la_tensor_unref (q);
    return NULL;
  }
  if (host->name)
    la_tensor_set_name (q, host->name);
  return q;
}

extern "C" void
la_cuda_mem_stats (LaBackend *be, LaCudaMemStats *out)
{
  LaCudaBackend *self = as_cuda (be, NULL);
  memset (out, 0, sizeof *out);
  if (!self)
    return;
  g_mutex_lock (&self->pool->lock);
  *out = self->pool->st;
  g_mutex_unlock (&self->pool->lock);
}

extern "C" void
la_cuda_mem_trim (LaBackend *be)
{
  LaCudaBackend *self = as_cuda (be, NULL);
  if (!self)
    return;
  LaCudaOpLock lock (self);
  LaCudaPool *pool = self->pool;
  cudaStreamSynchronize (self->stream);
  g_mutex_lock (&pool->lock);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, pool->bins);
  while (g_hash_table_iter_next (&it, &k, &v))
    for (GSList *l = (GSList *) v; l; l = l->next) {
      g_hash_table_remove (pool->sizes, l->data);
      cudaFree (l->data);
    }
  g_hash_table_remove_all (pool->bins);
  pool->st.cached = 0;
  g_mutex_unlock (&pool->lock);
}

/* ------------------------------------------------------------ CUDA graphs */

extern "C" gboolean
la_cuda_graph_begin (LaBackend *be, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return FALSE;
  LaCudaGraph *g;
  cudaError_t e;
  /* Held until la_cuda_graph_end: no other thread's work enters the capture. */
  g_rec_mutex_lock (&self->op_lock);
  if (self->capturing) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "a CUDA graph capture is already open");
    goto fail;
  }
  if (!la_backend_sync (be, error))
    goto fail;
  g = g_new0 (LaCudaGraph, 1);
  g->be = self;
  la_backend_ref (be);
  g_mutex_lock (&self->pool->lock);
  self->pool->capturing = TRUE;
  self->pool->open = g;
  self->pool->n_graphs++;
  g_mutex_unlock (&self->pool->lock);
  e = cudaStreamBeginCapture (self->stream, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    g_mutex_lock (&self->pool->lock);
    self->pool->capturing = FALSE;
    self->pool->open = NULL;
    g_mutex_unlock (&self->pool->lock);
    la_cuda_graph_free (g);
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "cudaStreamBeginCapture: %s", cudaGetErrorString (e));
    goto fail;
  }
  self->capturing = TRUE;
  return TRUE;
fail:
  g_rec_mutex_unlock (&self->op_lock);
  return FALSE;
}

extern "C" LaCudaGraph *
la_cuda_graph_end (LaBackend *be, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return NULL;
  LaCudaOpLock lock (self);
  if (!self->capturing) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "no CUDA graph capture is open");
    return NULL;
  }
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture (self->stream, &graph);
  self->capturing = FALSE;
  g_rec_mutex_unlock (&self->op_lock);     /* the hold taken by la_cuda_graph_begin */
  g_mutex_lock (&self->pool->lock);
  LaCudaGraph *g = self->pool->open;
  self->pool->capturing = FALSE;
  self->pool->open = NULL;
  g_mutex_unlock (&self->pool->lock);
  GError *op_error = NULL;
  if (e == cudaSuccess)
    e = cudaGraphInstantiate (&g->exec, graph, 0);
  g->graph = graph;
  if (e != cudaSuccess || !la_backend_sync (be, &op_error)) {
    if (op_error)
      g_propagate_error (error, op_error);
    else
      g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA graph capture: %s", cudaGetErrorString (e));
    la_cuda_graph_free (g);
    return NULL;
  }
  return g;
}

extern "C" gboolean
la_cuda_graph_launch (LaCudaGraph *g, GError **error)
{
  LaCudaOpLock lock (g->be);
  cudaSetDevice (g->be->parent.device_index);
  cudaError_t e = cudaGraphLaunch (g->exec, g->be->stream);
  if (e != cudaSuccess) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "cudaGraphLaunch: %s", cudaGetErrorString (e));
    return FALSE;
  }
  return TRUE;
}

extern "C" void
la_cuda_graph_free (LaCudaGraph *g)
{
  if (!g)
    return;
  LaCudaBackend *self = g->be;
  {
    LaCudaOpLock lock (self);      /* released before the unref below, which may destroy the backend */
    cudaSetDevice (self->parent.device_index);
    cudaStreamSynchronize (self->stream);
    if (g->exec)
      cudaGraphExecDestroy (g->exec);
    if (g->graph)
      cudaGraphDestroy (g->graph);
    g_mutex_lock (&self->pool->lock);
    if (--self->pool->n_graphs == 0 && !self->pool->capturing)
      pool_graphs_gone_locked (self->pool);
    g_mutex_unlock (&self->pool->lock);
  }
  la_backend_unref (&self->parent);
  g_free (g);
}

/* ------------------------------------------------------- cross-stream events */

struct _LaCudaEvent {
  cudaEvent_t ev;
  int device;
};

extern "C" LaCudaEvent *
la_cuda_event_record (LaBackend *be, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return NULL;
  LaCudaOpLock lock (self);
  LaCudaEvent *e = g_new0 (LaCudaEvent, 1);
  e->device = be->device_index;
  cudaError_t st = cudaEventCreateWithFlags (&e->ev, cudaEventDisableTiming);
  if (st == cudaSuccess)
    st = cudaEventRecord (e->ev, self->stream);
  if (st != cudaSuccess) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: event record: %s", be->device_index,
                 cudaGetErrorString (st));
    if (e->ev)
      cudaEventDestroy (e->ev);
    g_free (e);
    return NULL;
  }
  return e;
}

extern "C" gboolean
la_cuda_event_wait (LaBackend *be, LaCudaEvent *ev, GError **error)
{
  LaCudaBackend *self = as_cuda (be, error);
  if (!self)
    return FALSE;
  LaCudaOpLock lock (self);
  cudaError_t st = cudaStreamWaitEvent (self->stream, ev->ev, 0);
  if (st != cudaSuccess) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: event wait: %s", be->device_index,
                 cudaGetErrorString (st));
    return FALSE;
  }
  return TRUE;
}

extern "C" gboolean
la_cuda_event_query (LaCudaEvent *ev)
{
  cudaSetDevice (ev->device);
  return cudaEventQuery (ev->ev) != cudaErrorNotReady;
}

extern "C" void
la_cuda_event_free (LaCudaEvent *ev)
{
  if (!ev)
    return;
  cudaSetDevice (ev->device);
  cudaEventDestroy (ev->ev);
  g_free (ev);
}
