/* la-backend-dryrun.c — the recording backend of la-dryrun.h.
 *
 * Every op appends one LaDryOp (what a kernel launch would be) and, in
 * tracing mode, then runs on the inner backend.  Device tensors of the dry
 * backend view one PROT_NONE reservation: views and offsets work (model code
 * slices rows, the KV ring), a stray host read faults.  Their storage's free
 * function gives the bytes back to the allocation counters, which live in a
 * refcounted pool so tensors may outlive the backend.
 */
#include "la-dryrun.h"
#include "la-backend-impl.h"
#include "liveavatar/la-cuda.h"
#include "la-synth.h"
#include <string.h>
#include <sys/mman.h>

#define RESERVE_BYTES ((gsize) 16 << 30)    /* larger than any one tensor of the 14B model (KV: 313 MB) */

typedef struct {
  GMutex lock;
  LaDryMem mem;
} Pool;

typedef struct {
  LaBackend base;
  LaBackend *inner;       /* tracing: runs the ops; NULL: execute nothing */
  Pool *pool;
  GMutex lock;
  GArray *ops;            /* LaDryOp */
  /* The last host->device copies (destination storage and address, bytes,
   * host source; device tensors all start at the one reservation, so the
   * storage tells them apart): a device scalar an op reads at execution
   * (attention_n's key count) is priced from the host bytes it came up from. */
  struct { const GBytes *storage; const char *dst; gsize bytes; const char *src; } up[8];
  guint n_up;
} DryBackend;

typedef struct {
  Pool *pool;
  guint64 bytes, f32;
} Held;

static const LaBackendOps dry_ops;

static void *
reservation (void)
{
  static gsize once = 0;
  static void *base;
  if (g_once_init_enter (&once)) {
    base = mmap (NULL, RESERVE_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
      g_error ("dry-run backend: cannot reserve %zu bytes of address space", RESERVE_BYTES);
    g_once_init_leave (&once, 1);
  }
  return base;
}

static void
pool_clear (gpointer p)
{
  g_mutex_clear (&((Pool *) p)->lock);
}

static void
pool_unref (Pool *p)
{
  g_rc_box_release_full (p, pool_clear);
}

static void
held_free (gpointer data)
{
  Held *h = data;
  g_mutex_lock (&h->pool->lock);
  h->pool->mem.live -= h->bytes;
  h->pool->mem.live_f32 -= h->f32;
  g_mutex_unlock (&h->pool->lock);
  pool_unref (h->pool);
  g_free (h);
}

static DryBackend *dry (LaBackend *be) { return (DryBackend *) be; }

static LaTensor *
dry_alloc (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape)
{
  DryBackend *d = dry (be);
  if (d->inner)
    return d->inner->ops->alloc (d->inner, dtype, ndim, shape);
  guint64 n = la_dtype_size (dtype);
  for (int i = 0; i < ndim; i++)
    n *= (guint64) shape[i];
  if (n > RESERVE_BYTES) {
    la_backend_record_error (be, LA_ERROR_DEVICE, "dry-run backend: a tensor of %" G_GUINT64_FORMAT
                             " bytes exceeds the %zu-byte reservation", n, RESERVE_BYTES);
    n = 0;
  }
  Held *h = g_new0 (Held, 1);
  h->pool = g_rc_box_acquire (d->pool);
  h->bytes = n;
  h->f32 = dtype == LA_DTYPE_F32 ? n / 4 : 0;
  g_mutex_lock (&d->pool->lock);
  LaDryMem *m = &d->pool->mem;
  m->live += h->bytes;
  m->live_f32 += h->f32;
  m->n_alloc++;
  if (m->live > m->peak) {
    m->peak = m->live;
    m->peak_f32 = m->live_f32;
  }
  g_mutex_unlock (&d->pool->lock);
  GBytes *storage = g_bytes_new_with_free_func (reservation (), n, held_free, h);
  LaTensor *t = la_tensor_new_view (dtype, ndim, shape, storage, reservation (), LA_DEVICE_CUDA, 0);
  g_bytes_unref (storage);
  return t;
}

/* ---- recording ---- */

static double nb (const LaTensor *t) { return t ? (double) la_tensor_nbytes (t) : 0; }
static double ne (const LaTensor *t) { return t ? (double) la_tensor_numel (t) : 0; }
static gint64 cols (const LaTensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static gint64 rows (const LaTensor *t) { return la_tensor_numel (t) / MAX (cols (t), 1); }

static LaDryOp
rec (const char *name, LaDryClass cls, const LaTensor *y)
{
  LaDryOp o = { 0 };
  o.op = name;
  o.cls = cls;
  o.dt_x = o.dt_w = o.dt_y = y ? y->dtype : LA_DTYPE_F32;
  o.dims[0] = y ? la_tensor_numel (y) : 0;
  return o;
}

static void
act (LaDryOp *o, const LaTensor *t)
{
  o->act_bytes += nb (t);
  o->act_elems += ne (t);
  if (t && t->dtype == LA_DTYPE_F32)
    o->act_f32 += ne (t);
}
static void wgt (LaDryOp *o, const LaTensor *t) { o->w_bytes += nb (t); o->w_elems += ne (t); }

static void
push (LaBackend *be, const LaDryOp *o)
{
  DryBackend *d = dry (be);
  g_mutex_lock (&d->lock);
  g_array_append_val (d->ops, *o);
  g_mutex_unlock (&d->lock);
}

/* An op reading x (and b), writing y, `per` FLOPs per output element. */
static void
simple (LaBackend *be, const char *name, LaDryClass cls, const LaTensor *y, const LaTensor *x,
        const LaTensor *b, double per)
{
  LaDryOp o = rec (name, cls, y);
  if (x)
    o.dt_x = x->dtype;
  act (&o, x);
  act (&o, b);
  act (&o, y);
  o.flops = per * ne (y);
  push (be, &o);
}

#define INNER dry (be)->inner
#define FORWARD(op_, ...) do { if (INNER) INNER->ops->op_ (INNER, __VA_ARGS__); } while (0)

static void
dry_copy (LaBackend *be, LaTensor *dst, const LaTensor *src)
{
  gboolean sh = src->device == LA_DEVICE_CPU, dh = dst->device == LA_DEVICE_CPU;
  LaDryClass c = sh && dh ? LA_DRY_COPY_H2H : sh ? LA_DRY_COPY_H2D : dh ? LA_DRY_COPY_D2H : LA_DRY_COPY_D2D;
  LaDryOp o = rec ("copy", c, dst);
  o.dt_x = src->dtype;
  act (&o, src);
  act (&o, dst);
  push (be, &o);
  /* A weight upload that the FP8 mode would quantise (la_weight_bind names the host tensor). */
  if (c == LA_DRY_COPY_H2D && dst->dtype == LA_DTYPE_BF16 && src->name &&
      la_cuda_fp8_eligible (src->name, src->ndim)) {
    g_mutex_lock (&dry (be)->pool->lock);
    dry (be)->pool->mem.uploaded_fp8_elems += la_tensor_numel (src);
    g_mutex_unlock (&dry (be)->pool->lock);
  }
  if (c == LA_DRY_COPY_H2D && dst->dtype == src->dtype) {
    DryBackend *d = dry (be);
    g_mutex_lock (&d->lock);
    guint i = d->n_up++ % G_N_ELEMENTS (d->up);
    d->up[i].storage = dst->storage;
    d->up[i].dst = dst->data;
    d->up[i].bytes = la_tensor_nbytes (dst);
    d->up[i].src = src->data;
    g_mutex_unlock (&d->lock);
  }
  if (INNER)
    INNER->ops->copy (INNER, dst, src);
  else if (c == LA_DRY_COPY_H2H)        /* host data is real: the model code reads it */
    la_convert (dst->data, dst->dtype, src->data, src->dtype, (size_t) la_tensor_numel (src));
}

static void
dry_fill (LaBackend *be, LaTensor *y, float value)
{
  simple (be, "fill", LA_DRY_ELEMENTWISE, y, NULL, NULL, 0);
  FORWARD (fill, y, value);
}

static void
dry_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias)
{
  LaDryOp o = rec ("linear", LA_DRY_GEMM, y);
  o.dt_x = x->dtype;
  o.dt_w = w->dtype;
  o.dims[0] = rows (x);
  o.dims[1] = w->shape[0];
  o.dims[2] = cols (x);
  o.dims[3] = 1;
  o.flops = 2.0 * o.dims[0] * o.dims[1] * o.dims[2];
  act (&o, x);
  act (&o, y);
  wgt (&o, w);
  wgt (&o, bias);
  o.fp8_eligible = w->dtype == LA_DTYPE_BF16 && w->name && la_cuda_fp8_eligible (w->name, 2);
  push (be, &o);
  FORWARD (linear, y, x, w, bias);
}

static void
dry_matmul (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b, gboolean ta, gboolean tb,
            float alpha, float beta)
{
  LaDryOp o = rec ("matmul", LA_DRY_GEMM, c);
  const gint64 ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  const gint64 br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  o.dt_x = a->dtype;
  o.dt_w = b->dtype;
  o.dims[0] = ta ? ac : ar;
  o.dims[1] = tb ? br : bc;
  o.dims[2] = ta ? ar : ac;
  o.dims[3] = ar * ac != 0 ? la_tensor_numel (a) / (ar * ac) : 0;
  o.flops = 2.0 * o.dims[3] * o.dims[0] * o.dims[1] * o.dims[2];
  act (&o, a);
  act (&o, b);
  act (&o, c);
  if (beta != 0)
    act (&o, c);
  push (be, &o);
  FORWARD (matmul, c, a, b, ta, tb, alpha, beta);
}

static void
dry_layer_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, float eps)
{
  LaDryOp o = rec ("layer_norm", LA_DRY_NORM, y);
  act (&o, x);
  act (&o, y);
  wgt (&o, w);
  wgt (&o, b);
  o.flops = 7 * ne (y);
  push (be, &o);
  FORWARD (layer_norm, y, x, w, b, eps);
}

/* An RMS norm: x read, y written, the gain read, 4 flops per element. */
static void
norm_rec (LaBackend *be, const char *name, LaTensor *y, const LaTensor *x, const LaTensor *w)
{
  LaDryOp o = rec (name, LA_DRY_NORM, y);
  act (&o, x);
  act (&o, y);
  wgt (&o, w);
  o.flops = 4 * ne (y);
  push (be, &o);
}

static void
dry_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps)
{
  norm_rec (be, "rms_norm", y, x, w);
  FORWARD (rms_norm, y, x, w, eps);
}

static void
dry_unary (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x)
{
  simple (be, "unary", LA_DRY_ELEMENTWISE, y, x, NULL, op == LA_UNARY_RELU ? 1 : 8);
  FORWARD (unary, op, y, x);
}

static void
dry_binary (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b)
{
  simple (be, "binary", LA_DRY_ELEMENTWISE, y, a, b, 1);
  FORWARD (binary, op, y, a, b);
}

static void
dry_axpy (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b)
{
  simple (be, "axpy", LA_DRY_ELEMENTWISE, y, a, b, 2);
  FORWARD (axpy, y, a, alpha, b);
}

static void
dry_modulate (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift, const LaTensor *scale)
{
  LaDryOp o = rec ("modulate", LA_DRY_ELEMENTWISE, y);
  act (&o, x);
  act (&o, shift);
  act (&o, scale);
  act (&o, y);
  o.flops = 2 * ne (y);
  push (be, &o);
  FORWARD (modulate, y, x, shift, scale);
}

static void
dry_softmax (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  simple (be, "softmax", LA_DRY_NORM, y, x, NULL, 5);
  FORWARD (softmax, y, x);
}

static void
dry_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
               int n_heads, float scale, const LaTensor *bias)
{
  LaDryOp o = rec ("attention", LA_DRY_ATTENTION, out);
  o.dt_x = q->dtype;
  o.dt_w = k->dtype;
  o.dims[0] = rows (q);
  o.dims[1] = rows (k);
  o.dims[2] = cols (q) / MAX (n_heads, 1);
  o.dims[3] = n_heads;
  o.flops = 4.0 * o.dims[0] * o.dims[1] * cols (q);
  act (&o, q);
  act (&o, k);
  act (&o, v);
  act (&o, bias);
  act (&o, out);
  push (be, &o);
  FORWARD (attention, out, q, k, v, n_heads, scale, bias);
}

/* The value of the I32 device scalar t as last uploaded (the host bytes
 * the copy read, still in place: the DiT session's staging buffer), or -1
 * when it did not come up by a recorded copy. */
static gint64
uploaded_i32 (LaBackend *be, const LaTensor *t)
{
  DryBackend *d = dry (be);
  gint64 v = -1;
  const char *a = t->data;
  g_mutex_lock (&d->lock);
  for (guint j = 0; j < MIN (d->n_up, G_N_ELEMENTS (d->up)); j++) {
    guint i = (d->n_up - 1 - j) % G_N_ELEMENTS (d->up);      /* newest first */
    if (t->storage == d->up[i].storage && a >= d->up[i].dst && a + sizeof (gint32) <= d->up[i].dst + d->up[i].bytes) {
      gint32 x;
      memcpy (&x, d->up[i].src + (a - d->up[i].dst), sizeof x);
      v = x;
      break;
    }
  }
  g_mutex_unlock (&d->lock);
  return v;
}

/* The key count is a device value: priced from the host bytes it was
 * uploaded from (the DiT session's inbox), else over all rows of k (the
 * whole [Nc + C) KV buffer: exact once the ring is full).  Tracing a CPU
 * backend, it is in host memory already. */
static void
dry_attention_n (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                 int n_heads, float scale, const LaTensor *n_keys)
{
  LaDryOp o = rec ("attention_n", LA_DRY_ATTENTION, out);
  /* host memory (tracing a CPU backend) holds the real count */
  gint64 n = n_keys->device == LA_DEVICE_CPU ? *(const gint32 *) n_keys->data : uploaded_i32 (be, n_keys);
  o.dt_x = q->dtype;
  o.dt_w = k->dtype;
  o.dims[0] = rows (q);
  o.dims[1] = n >= 0 && n <= rows (k) ? n : rows (k);
  o.dims[2] = cols (q) / MAX (n_heads, 1);
  o.dims[3] = n_heads;
  o.flops = 4.0 * o.dims[0] * o.dims[1] * cols (q);
  /* K and V are read for the n keys only */
  LaTensor *kn = la_tensor_new_view (k->dtype, 2, (int64_t[]) { o.dims[1], cols (k) }, k->storage, k->data,
                                     k->device, k->device_index);
  LaTensor *vn = la_tensor_new_view (v->dtype, 2, (int64_t[]) { o.dims[1], cols (v) }, v->storage, v->data,
                                     v->device, v->device_index);
  act (&o, q);
  act (&o, kn);
  act (&o, vn);
  act (&o, out);
  la_tensor_unref (kn);
  la_tensor_unref (vn);
  push (be, &o);
  FORWARD (attention_n, out, q, k, v, n_heads, scale, n_keys);
}

static void
conv_rec (LaBackend *be, const char *name, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b,
          gint64 per_out)
{
  LaDryOp o = rec (name, LA_DRY_CONV, y);
  o.dt_x = x->dtype;
  o.dt_w = w->dtype;
  o.dims[1] = w->shape[0];
  o.dims[2] = per_out;
  o.flops = 2.0 * ne (y) * per_out;
  act (&o, x);
  act (&o, y);
  wgt (&o, w);
  wgt (&o, b);
  push (be, &o);
}

static void
dry_conv3d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b,
            const int stride[3])
{
  conv_rec (be, "conv3d", y, x, w, b, la_tensor_numel (w) / MAX (w->shape[0], 1));
  FORWARD (conv3d, y, x, w, b, stride);
}

static void
dry_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, int stride,
            int pad_l, int pad_r, gboolean replicate, int groups, gboolean x_cf)
{
  conv_rec (be, "conv1d", y, x, w, b, w->shape[1] * w->shape[2]);
  FORWARD (conv1d, y, x, w, b, stride, pad_l, pad_r, replicate, groups, x_cf);
}

static void
dry_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma, float eps)
{
  norm_rec (be, "channel_rms_norm", y, x, gamma);
  FORWARD (channel_rms_norm, y, x, gamma, eps);
}

/* n elements moved from x to y, each read once and written once (copy4d and
 * the DiT's layout ops, patchify and unpatchify). */
static void
move_rec (LaBackend *be, const char *name, LaTensor *y, const LaTensor *x, double n)
{
  LaDryOp o = rec (name, LA_DRY_ELEMENTWISE, y);
  o.dt_x = x->dtype;
  o.dims[0] = (gint64) n;
  o.act_elems = 2 * n;
  o.act_bytes = n * (la_dtype_size (x->dtype) + la_dtype_size (y->dtype));
  o.act_f32 = n * ((x->dtype == LA_DTYPE_F32) + (y->dtype == LA_DTYPE_F32));
  push (be, &o);
}

static void
dry_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x, const int64_t xoff[4],
            const int64_t count[4])
{
  move_rec (be, "copy4d", y, x, (double) count[0] * count[1] * count[2] * count[3]);
  FORWARD (copy4d, y, yoff, x, xoff, count);
}


static void
dry_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  move_rec (be, "patchify", y, x, (double) la_tensor_numel (x));
  FORWARD (patchify, y, x, k);
}

static void
dry_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  move_rec (be, "unpatchify", y, x, (double) la_tensor_numel (x));
  FORWARD (unpatchify, y, x, k);
}

/* src's rows into dst at a device row: a move of numel(src). */
static void
dry_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos)
{
  move_rec (be, "copy_rows_at", dst, src, (double) la_tensor_numel (src));
  FORWARD (copy_rows_at, dst, src, pos);
}

/* Rewrites the temporal pairs of every row: a write of rows x n_pairs x 2. */
static void
dry_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs)
{
  LaDryOp o = rec ("rope_table", LA_DRY_ELEMENTWISE, freqs);
  double n = (double) freqs->shape[0] * n_pairs * 2;
  o.dims[0] = (gint64) n;
  o.act_elems = n;
  o.act_bytes = n * la_dtype_size (freqs->dtype);
  o.act_f32 = freqs->dtype == LA_DTYPE_F32 ? n : 0;
  o.flops = 2 * n;
  push (be, &o);
  FORWARD (rope_table, freqs, pos0, rows_per_pos, n_pairs);
}

/* Tracing: residency is the inner backend's (its copy statistics). */
static gboolean
dry_resident (LaBackend *be, const LaTensor *t)
{
  LaBackend *in = dry (be)->inner;
  if (in && in->ops->resident)
    return in->ops->resident (in, t);
  return t->device == (in ? la_backend_get_device (in) : LA_DEVICE_CUDA);
}

static void
dry_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  simple (be, "upsample2x", LA_DRY_ELEMENTWISE, y, x, NULL, 0);
  FORWARD (upsample2x, y, x);
}

static void
dry_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean, const LaTensor *inv_std,
                 gboolean encode)
{
  LaDryOp o = rec ("latent_norm", LA_DRY_ELEMENTWISE, y);
  act (&o, x);
  act (&o, y);
  wgt (&o, mean);
  wgt (&o, inv_std);
  o.flops = 2 * ne (y);
  push (be, &o);
  FORWARD (latent_norm, y, x, mean, inv_std, encode);
}

static void
dry_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi)
{
  simple (be, "clamp", LA_DRY_ELEMENTWISE, y, x, NULL, 2);
  FORWARD (clamp, y, x, lo, hi);
}

static void
dry_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads)
{
  LaDryOp o = rec ("rope", LA_DRY_ELEMENTWISE, y);
  act (&o, x);
  act (&o, y);
  /* the table is shared by the heads: one row of HD values per position */
  o.act_elems += ne (x) / MAX (n_heads, 1);
  o.act_bytes += ne (x) / MAX (n_heads, 1) * la_dtype_size (freqs->dtype);
  if (freqs->dtype == LA_DTYPE_F32)
    o.act_f32 += ne (x) / MAX (n_heads, 1);
  o.flops = 3 * ne (y);
  push (be, &o);
  FORWARD (rope, y, x, freqs, n_heads);
}

static void
dry_sync (LaBackend *be)
{
  LaDryOp o = rec ("sync", LA_DRY_SYNC, NULL);
  push (be, &o);
  if (INNER) {
    GError *e = NULL;
    if (!la_backend_sync (INNER, &e)) {
      la_backend_record_error (be, e->code, "%s", e->message);
      g_error_free (e);
    }
  }
}

static void
dry_destroy (LaBackend *be)
{
  DryBackend *d = dry (be);
  if (d->inner)
    la_backend_unref (d->inner);
  pool_unref (d->pool);
  g_array_unref (d->ops);
  g_mutex_clear (&d->lock);
  g_free (d);
}

/* Reads the 3 channels, writes 4 bytes per pixel (the video output). */
static void
dry_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  simple (be, "frames_to_rgba8", LA_DRY_ELEMENTWISE, y, x, NULL, 4);
  FORWARD (frames_to_rgba8, y, x);
}

static void
dry_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix)
{
  simple (be, "rgba8_to_nv12", LA_DRY_ELEMENTWISE, y, x, NULL, 6);
  FORWARD (rgba8_to_nv12, y, x, matrix);
}

static const LaBackendOps dry_ops = {
  .name = "dryrun",
  .alloc = dry_alloc,
  .copy = dry_copy,
  .fill = dry_fill,
  .linear = dry_linear,
  .matmul = dry_matmul,
  .layer_norm = dry_layer_norm,
  .rms_norm = dry_rms_norm,
  .unary = dry_unary,
  .binary = dry_binary,
  .axpy = dry_axpy,
  .modulate = dry_modulate,
  .softmax = dry_softmax,
  .attention = dry_attention,
  .conv3d = dry_conv3d,
  .conv1d = dry_conv1d,
  .channel_rms_norm = dry_channel_rms_norm,
  .copy4d = dry_copy4d,
  .upsample2x = dry_upsample2x,
  .latent_norm = dry_latent_norm,
  .clamp = dry_clamp,
  .rope = dry_rope,
  .patchify = dry_patchify,
  .unpatchify = dry_unpatchify,
  .rope_table = dry_rope_table,
  .resident = dry_resident,
  .sync = dry_sync,
  .destroy = dry_destroy,
  .frames_to_rgba8 = dry_frames_to_rgba8,
  .rgba8_to_nv12 = dry_rgba8_to_nv12,
  .copy_rows_at = dry_copy_rows_at,
  .attention_n = dry_attention_n,
};

static LaBackend *
dry_new (LaBackend *inner)
{
  DryBackend *d = g_new0 (DryBackend, 1);
  d->inner = inner ? la_backend_ref (inner) : NULL;
  d->pool = g_rc_box_new0 (Pool);
  g_mutex_init (&d->pool->lock);
  g_mutex_init (&d->lock);
  d->ops = g_array_new (FALSE, FALSE, sizeof (LaDryOp));
  if (inner)
    la_backend_init (&d->base, &dry_ops, la_backend_get_device (inner), la_backend_get_device_index (inner),
                     la_backend_get_n_threads (inner));
  else
    la_backend_init (&d->base, &dry_ops, LA_DEVICE_CUDA, 0, 1);
  return &d->base;
}

LaBackend *la_backend_dryrun_new (void) { return dry_new (NULL); }
LaBackend *la_backend_dryrun_new_tracing (LaBackend *inner) { return dry_new (inner); }
gboolean   la_backend_is_dryrun (LaBackend *be) { return be && be->ops == &dry_ops; }

guint
la_dryrun_n_ops (LaBackend *be)
{
  g_return_val_if_fail (la_backend_is_dryrun (be), 0);
  return dry (be)->ops->len;
}

const LaDryOp *
la_dryrun_op (LaBackend *be, guint i)
{
  g_return_val_if_fail (la_backend_is_dryrun (be) && i < dry (be)->ops->len, NULL);
  return &g_array_index (dry (be)->ops, LaDryOp, i);
}

const char *
la_dryrun_class_name (LaDryClass c)
{
  static const char *names[LA_DRY_N_CLASSES] = {
    "gemm", "attention", "conv", "norm", "elementwise", "copy h2d", "copy d2h", "copy d2d", "copy h2h", "sync",
  };
  return (unsigned) c < LA_DRY_N_CLASSES ? names[c] : "?";
}

void
la_dryrun_mem (LaBackend *be, LaDryMem *out)
{
  g_return_if_fail (la_backend_is_dryrun (be));
  Pool *p = dry (be)->pool;
  g_mutex_lock (&p->lock);
  *out = p->mem;
  g_mutex_unlock (&p->lock);
}

void
la_dryrun_reset_peak (LaBackend *be)
{
  g_return_if_fail (la_backend_is_dryrun (be));
  Pool *p = dry (be)->pool;
  g_mutex_lock (&p->lock);
  p->mem.peak = p->mem.live;
  p->mem.peak_f32 = p->mem.live_f32;
  g_mutex_unlock (&p->lock);
}

void
la_dryrun_zero_weights (LaCheckpoint *ck, LaDType dtype)
{
  /* names are copied first: la_checkpoint_add changes the sorted list */
  g_auto (GStrv) names = g_strdupv ((char **) la_checkpoint_names (ck));
  for (int i = 0; names[i]; i++) {
    const LaTensor *t = la_checkpoint_get (ck, names[i]);
    g_autoptr (LaTensor) z = la_synth_zeros (dtype, t->ndim, t->shape);
    la_checkpoint_add (ck, names[i], z);
  }
}
