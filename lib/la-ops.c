/* la-ops.c — the checked wrappers of la-ops.h.
 *
 * Each wrapper checks the op's contract (la-backend-impl.h) once for every
 * backend: a mismatch is recorded in the backend's sticky error as
 *   "<backend> backend: <op>: <arg> (tensor <name> <shape> <dtype>): <why>"
 * and the op is skipped.  The checks are what the kernels index with (the
 * same element counts, the same rows and columns), no stricter: a view
 * reshaped to another shape of the same size stays valid.  Dtypes are only
 * required to be floating point; what a backend has kernels for is its own
 * check (e.g. la_cuda_dtype_ok).
 */
#include "la-backend-impl.h"
#include <stdarg.h>
#include <string.h>

typedef struct {
  LaBackend *be;
  const char *op;
  gboolean ok;
} Check;

static void G_GNUC_PRINTF (4, 5)
fail (Check *c, const char *arg, const LaTensor *t, const char *format, ...)
{
  if (!c->ok)
    return;               /* the first mismatch is the one worth reading */
  c->ok = FALSE;
  va_list ap;
  va_start (ap, format);
  char *why = g_strdup_vprintf (format, ap);
  va_end (ap);
  char *shape = la_shape_to_string (t->ndim, t->shape);
  la_backend_record_error (c->be, LA_ERROR_SHAPE, "%s backend: %s: %s (tensor %s %s %s): %s",
                           c->be->ops->name, c->op, arg, t->name ? t->name : "(unnamed)", shape,
                           la_dtype_name (t->dtype), why);
  g_free (shape);
  g_free (why);
}

static int64_t rows_of (const LaTensor *t) { return t->ndim ? la_tensor_numel (t) / MAX (t->shape[t->ndim - 1], 1) : 1; }
static int64_t cols_of (const LaTensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

/* A tensor an op reads or writes: not NULL, on this backend's device. */
static gboolean
placed (Check *c, const char *name, const LaTensor *t)
{
  if (!t) {
    if (c->ok)
      la_backend_record_error (c->be, LA_ERROR_INVALID_ARG, "%s backend: %s: %s is NULL",
                               c->be->ops->name, c->op, name);
    c->ok = FALSE;
    return FALSE;
  }
  if (t->device != c->be->device)
    fail (c, name, t, "lives on the %s, not on this backend's device",
          t->device == LA_DEVICE_CPU ? "host" : "CUDA device");
  return c->ok;
}

/* ... and of a float type (every op but the position and 8-bit frame ones). */
static gboolean
arg (Check *c, const char *name, const LaTensor *t)
{
  if (placed (c, name, t) && !la_dtype_is_float (t->dtype))
    fail (c, name, t, "not a floating-point tensor");
  return c->ok;
}

/* An optional argument (bias, affine weights). */
static gboolean
opt_arg (Check *c, const char *name, const LaTensor *t)
{
  return t ? arg (c, name, t) : c->ok;
}

static void
numel_is (Check *c, const char *name, const LaTensor *t, int64_t n, const char *what)
{
  if (c->ok && la_tensor_numel (t) != n)
    fail (c, name, t, "has %" G_GINT64_FORMAT " elements, %s needs %" G_GINT64_FORMAT,
          la_tensor_numel (t), what, n);
}

/* b repeats over a (the binary/axpy/modulate broadcast). */
static void
repeats_over (Check *c, const char *name, const LaTensor *b, const LaTensor *a)
{
  int64_t m = la_tensor_numel (b), n = la_tensor_numel (a);
  if (c->ok && (m == 0 ? n != 0 : n % m != 0))
    fail (c, name, b, "does not repeat over %" G_GINT64_FORMAT " elements", n);
}

#define CHECK(be_, op_) Check c = { (be_), (op_), TRUE }
/* Runs the op if the checks passed and the backend has it. */
#define RUN(op_, ...) do { \
    if (!c.ok) \
      break; \
    if (!c.be->ops->op_) \
      la_backend_record_error (c.be, LA_ERROR_UNSUPPORTED, "%s backend: does not implement the '%s' op", \
                               c.be->ops->name, #op_); \
    else \
      c.be->ops->op_ (c.be, __VA_ARGS__); \
  } while (0)

/* Op names in table order, for la_backend_supports(). */
static const struct { const char *name; size_t offset; } op_slots[] = {
#define SLOT(op_) { #op_, G_STRUCT_OFFSET (LaBackendOps, op_) }
  SLOT (copy), SLOT (fill), SLOT (linear), SLOT (matmul), SLOT (layer_norm), SLOT (rms_norm),
  SLOT (unary), SLOT (binary), SLOT (axpy), SLOT (modulate), SLOT (softmax), SLOT (attention),
  SLOT (conv3d), SLOT (conv1d), SLOT (channel_rms_norm), SLOT (copy4d), SLOT (upsample2x),
  SLOT (latent_norm), SLOT (clamp), SLOT (rope), SLOT (patchify), SLOT (unpatchify), SLOT (rope_table),
  SLOT (frames_to_rgba8), SLOT (rgba8_to_nv12),
  SLOT (copy_rows_at), SLOT (attention_n),
#undef SLOT
};

gboolean
la_backend_supports (LaBackend *be, const char *op)
{
  for (guint i = 0; i < G_N_ELEMENTS (op_slots); i++)
    if (strcmp (op_slots[i].name, op) == 0)
      return G_STRUCT_MEMBER (gpointer, be->ops, op_slots[i].offset) != NULL;
  return FALSE;
}

void
la_copy (LaBackend *be, LaTensor *dst, const LaTensor *src)
{
  CHECK (be, "copy");
  /* Either side may be on the host (upload, download) and of any dtype. */
  if (!dst || !src) {
    la_backend_record_error (be, LA_ERROR_INVALID_ARG, "%s backend: copy: %s is NULL", be->ops->name,
                             dst ? "src" : "dst");
    return;
  }
  numel_is (&c, "dst", dst, la_tensor_numel (src), "the source");
  if (c.ok)
    la_backend_count_copy (be, dst, src);
  RUN (copy, dst, src);
}

LaTensor *
la_to_backend (LaBackend *be, const LaTensor *t)
{
  if (t->device == be->device && (t->device == LA_DEVICE_CPU || t->device_index == la_backend_get_device_index (be)))
    return la_tensor_ref ((LaTensor *) t);
  LaTensor *d = la_alloc (be, t->dtype, t->ndim, t->shape);
  la_copy (be, d, t);
  return d;
}

void
la_fill (LaBackend *be, LaTensor *y, float value)
{
  CHECK (be, "fill");
  if (arg (&c, "y", y))
    RUN (fill, y, value);
}

void
la_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias)
{
  CHECK (be, "linear");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "w", w) || !opt_arg (&c, "bias", bias))
    return;
  const int64_t K = cols_of (x), N = w->ndim ? w->shape[0] : 1;
  /* w [N, K]; a conv weight [N, K', 1, ...] read as a matrix is fine too. */
  numel_is (&c, "w", w, N * K, "[N, K] with K the last dim of x");
  numel_is (&c, "y", y, rows_of (x) * N, "[rows of x, N]");
  if (bias)
    numel_is (&c, "bias", bias, N, "one per output");
  RUN (linear, y, x, w, bias);
}

void
la_matmul (LaBackend *be, LaTensor *cm, const LaTensor *a, const LaTensor *b,
           gboolean trans_a, gboolean trans_b, float alpha, float beta)
{
  CHECK (be, "matmul");
  if (!arg (&c, "c", cm) || !arg (&c, "a", a) || !arg (&c, "b", b))
    return;
  if (a->ndim < 2 || b->ndim < 2) {
    fail (&c, a->ndim < 2 ? "a" : "b", a->ndim < 2 ? a : b, "needs at least 2 dims");
    return;
  }
  const int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  const int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  const int64_t M = trans_a ? ac : ar, K = trans_a ? ar : ac;
  const int64_t Kb = trans_b ? bc : br, N = trans_b ? br : bc;
  const int64_t batch = ar * ac != 0 ? la_tensor_numel (a) / (ar * ac) : 0;
  const int64_t bbatch = br * bc != 0 ? la_tensor_numel (b) / (br * bc) : 0;
  if (Kb != K)
    fail (&c, "b", b, "inner dim %" G_GINT64_FORMAT " differs from a's %" G_GINT64_FORMAT, Kb, K);
  else if (bbatch != 1 && bbatch != batch)
    fail (&c, "b", b, "batch %" G_GINT64_FORMAT " is neither 1 nor a's %" G_GINT64_FORMAT, bbatch, batch);
  numel_is (&c, "c", cm, batch * M * N, "[batch, M, N]");
  RUN (matmul, cm, a, b, trans_a, trans_b, alpha, beta);
}

void
la_layer_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, float eps)
{
  CHECK (be, "layer_norm");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !opt_arg (&c, "w", w) || !opt_arg (&c, "b", b))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  if (w)
    numel_is (&c, "w", w, cols_of (x), "one per element of x's last dim");
  if (b)
    numel_is (&c, "b", b, cols_of (x), "one per element of x's last dim");
  RUN (layer_norm, y, x, w, b, eps);
}

void
la_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps)
{
  CHECK (be, "rms_norm");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !opt_arg (&c, "w", w))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  if (w)
    numel_is (&c, "w", w, cols_of (x), "one per element of x's last dim");
  RUN (rms_norm, y, x, w, eps);
}

void
la_unary (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x)
{
  CHECK (be, "unary");
  if (!arg (&c, "y", y) || !arg (&c, "x", x))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  RUN (unary, op, y, x);
}

void
la_binary (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b)
{
  CHECK (be, "binary");
  if (!arg (&c, "y", y) || !arg (&c, "a", a) || !arg (&c, "b", b))
    return;
  numel_is (&c, "y", y, la_tensor_numel (a), "the size of a");
  repeats_over (&c, "b", b, a);
  RUN (binary, op, y, a, b);
}

void
la_axpy (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b)
{
  CHECK (be, "axpy");
  if (!arg (&c, "y", y) || !arg (&c, "a", a) || !arg (&c, "b", b))
    return;
  numel_is (&c, "y", y, la_tensor_numel (a), "the size of a");
  repeats_over (&c, "b", b, a);
  RUN (axpy, y, a, alpha, b);
}

void
la_modulate (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift, const LaTensor *scale)
{
  CHECK (be, "modulate");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "shift", shift) || !arg (&c, "scale", scale))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  repeats_over (&c, "shift", shift, x);
  repeats_over (&c, "scale", scale, x);
  RUN (modulate, y, x, shift, scale);
}

void
la_softmax (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  CHECK (be, "softmax");
  if (!arg (&c, "y", y) || !arg (&c, "x", x))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  RUN (softmax, y, x);
}

/* The shapes both attention ops share: q [Lq, H·D], k and v [Lk, H·D], out like q. */
static void
attention_shapes (Check *c, const LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                  int n_heads)
{
  const int64_t HD = cols_of (q), Lq = rows_of (q), Lk = rows_of (k);
  if (n_heads <= 0 || HD % n_heads != 0)
    fail (c, "q", q, "last dim does not split into %d heads", n_heads);
  if (c->ok && cols_of (k) != HD)
    fail (c, "k", k, "last dim differs from q's %" G_GINT64_FORMAT, HD);
  numel_is (c, "v", v, Lk * HD, "[Lk, H·D] like k");
  numel_is (c, "out", out, Lq * HD, "[Lq, H·D] like q");
}

void
la_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
              int n_heads, float scale, const LaTensor *bias)
{
  CHECK (be, "attention");
  if (!arg (&c, "out", out) || !arg (&c, "q", q) || !arg (&c, "k", k) || !arg (&c, "v", v) ||
      !opt_arg (&c, "bias", bias))
    return;
  attention_shapes (&c, out, q, k, v, n_heads);
  const int64_t Lq = rows_of (q), Lk = rows_of (k);
  if (bias)
    numel_is (&c, "bias", bias, n_heads * Lq * Lk, "[H, Lq, Lk]");
  RUN (attention, out, q, k, v, n_heads, scale, bias);
}

void
la_conv3d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b,
           const int stride[3])
{
  CHECK (be, "conv3d");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "w", w) || !opt_arg (&c, "b", b))
    return;
  if (x->ndim != 4) {
    fail (&c, "x", x, "is not [Cin, T, H, W]");
    return;
  }
  if (w->ndim != 5 || w->shape[1] != x->shape[0]) {
    fail (&c, "w", w, "is not [Cout, Cin, kt, kh, kw] with Cin = %" G_GINT64_FORMAT, x->shape[0]);
    return;
  }
  int64_t out = w->shape[0];
  for (int i = 0; i < 3; i++) {
    if (stride[i] <= 0 || x->shape[1 + i] < w->shape[2 + i]) {
      fail (&c, "x", x, "dim %d is smaller than the kernel (%" G_GINT64_FORMAT ") or stride %d is not positive",
            1 + i, w->shape[2 + i], stride[i]);
      return;
    }
    out *= (x->shape[1 + i] - w->shape[2 + i]) / stride[i] + 1;
  }
  numel_is (&c, "y", y, out, "[Cout, T', H', W']");
  if (b)
    numel_is (&c, "b", b, w->shape[0], "one per output channel");
  RUN (conv3d, y, x, w, b, stride);
}

void
la_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b,
           int stride, int pad_l, int pad_r, gboolean replicate, int groups, gboolean x_cf)
{
  CHECK (be, "conv1d");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "w", w) || !opt_arg (&c, "b", b))
    return;
  if (x->ndim < 2 || x->ndim > 3) {
    fail (&c, "x", x, "is not [T, B, Cin] / [T, Cin] (or channel-first)");
    return;
  }
  int64_t T, B, Cin;
  la_conv1d_dims (x, x_cf, &T, &B, &Cin);
  if (groups <= 0 || Cin % groups != 0 || w->ndim != 3 || w->shape[1] != Cin / MAX (groups, 1) ||
      w->shape[0] % MAX (groups, 1) != 0) {
    fail (&c, "w", w, "is not [Cout, Cin/groups, K] for Cin = %" G_GINT64_FORMAT " in %d groups", Cin, groups);
    return;
  }
  const int64_t Cout = w->shape[0], K = w->shape[2], Tp = T + pad_l + pad_r;
  if (stride <= 0 || pad_l < 0 || pad_r < 0 || Tp < K) {
    fail (&c, "x", x, "%" G_GINT64_FORMAT " padded steps are fewer than the kernel's %" G_GINT64_FORMAT
          " (stride %d)", Tp, K, stride);
    return;
  }
  numel_is (&c, "y", y, ((Tp - K) / stride + 1) * B * Cout, "[T', B, Cout]");
  if (b)
    numel_is (&c, "b", b, Cout, "one per output channel");
  RUN (conv1d, y, x, w, b, stride, pad_l, pad_r, replicate, groups, x_cf);
}

void
la_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma, float eps)
{
  CHECK (be, "channel_rms_norm");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "gamma", gamma))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  numel_is (&c, "gamma", gamma, x->ndim ? x->shape[0] : 1, "one per channel of x");
  RUN (channel_rms_norm, y, x, gamma, eps);
}

void
la_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
           const int64_t xoff[4], const int64_t count[4])
{
  CHECK (be, "copy4d");
  if (!arg (&c, "y", y) || !arg (&c, "x", x))
    return;
  if (y->ndim != 4 || x->ndim != 4) {
    fail (&c, y->ndim != 4 ? "y" : "x", y->ndim != 4 ? y : x, "is not 4-D");
    return;
  }
  for (int i = 0; i < 4 && c.ok; i++) {
    if (count[i] < 0 || xoff[i] < 0 || xoff[i] + count[i] > x->shape[i])
      fail (&c, "x", x, "box [%" G_GINT64_FORMAT ", +%" G_GINT64_FORMAT ") in dim %d is out of bounds",
            xoff[i], count[i], i);
    else if (yoff[i] < 0 || yoff[i] + count[i] > y->shape[i])
      fail (&c, "y", y, "box [%" G_GINT64_FORMAT ", +%" G_GINT64_FORMAT ") in dim %d is out of bounds",
            yoff[i], count[i], i);
  }
  RUN (copy4d, y, yoff, x, xoff, count);
}

void
la_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  CHECK (be, "upsample2x");
  if (!arg (&c, "y", y) || !arg (&c, "x", x))
    return;
  if (x->ndim < 2)
    fail (&c, "x", x, "has fewer than 2 dims");
  numel_is (&c, "y", y, 4 * la_tensor_numel (x), "x doubled in its last two dims");
  if (c.ok && (y->shape[y->ndim - 1] != 2 * x->shape[x->ndim - 1] ||
               y->shape[y->ndim - 2] != 2 * x->shape[x->ndim - 2]))
    fail (&c, "y", y, "last two dims are not twice x's");
  RUN (upsample2x, y, x);
}

void
la_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                const LaTensor *inv_std, gboolean encode)
{
  CHECK (be, "latent_norm");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "mean", mean) || !arg (&c, "inv_std", inv_std))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  numel_is (&c, "mean", mean, x->ndim ? x->shape[0] : 1, "one per channel of x");
  numel_is (&c, "inv_std", inv_std, x->ndim ? x->shape[0] : 1, "one per channel of x");
  RUN (latent_norm, y, x, mean, inv_std, encode);
}

void
la_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi)
{
  CHECK (be, "clamp");
  if (!arg (&c, "y", y) || !arg (&c, "x", x))
    return;
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  RUN (clamp, y, x, lo, hi);
}

void
la_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads)
{
  CHECK (be, "rope");
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !arg (&c, "freqs", freqs))
    return;
  const int64_t W = cols_of (x);
  if (n_heads <= 0 || W % n_heads != 0 || (W / n_heads) % 2 != 0)
    fail (&c, "x", x, "last dim does not split into %d heads of pairs", n_heads);
  numel_is (&c, "y", y, la_tensor_numel (x), "the size of x");
  /* The table may cover more positions than x has (a prefix is read). */
  if (c.ok && la_tensor_numel (freqs) < rows_of (x) * (W / n_heads))
    fail (&c, "freqs", freqs, "covers fewer than the %" G_GINT64_FORMAT " positions of x", rows_of (x));
  RUN (rope, y, x, freqs, n_heads);
}

/* The patch grid of a 4-D x [C, T, H, W] for kernel k; FALSE (recorded) when k does not tile it. */
static gboolean
patch_grid (Check *c, const char *name, const LaTensor *x, const int k[3], int64_t *ntok, int64_t *K)
{
  if (!c->ok)
    return FALSE;
  if (x->ndim != 4)
    fail (c, name, x, "is not 4-D [C, T, H, W]");
  else if (k[0] < 1 || k[1] < 1 || k[2] < 1 || x->shape[1] % k[0] || x->shape[2] % k[1] || x->shape[3] % k[2])
    fail (c, name, x, "is not tiled by the kernel (%d, %d, %d)", k[0], k[1], k[2]);
  if (!c->ok)
    return FALSE;
  *ntok = x->shape[1] / k[0] * (x->shape[2] / k[1]) * (x->shape[3] / k[2]);
  *K = x->shape[0] * k[0] * k[1] * k[2];
  return TRUE;
}

void
la_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  CHECK (be, "patchify");
  int64_t ntok, K;
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !patch_grid (&c, "x", x, k, &ntok, &K))
    return;
  if (rows_of (y) != ntok || cols_of (y) != K)
    fail (&c, "y", y, "is not [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (tokens, C·kt·kh·kw)", ntok, K);
  RUN (patchify, y, x, k);
}

void
la_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  CHECK (be, "unpatchify");
  int64_t ntok, K;
  if (!arg (&c, "y", y) || !arg (&c, "x", x) || !patch_grid (&c, "y", y, k, &ntok, &K))
    return;
  if (rows_of (x) != ntok || cols_of (x) != K)
    fail (&c, "x", x, "is not [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (tokens, kt·kh·kw·C)", ntok, K);
  RUN (unpatchify, y, x, k);
}

void
la_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs)
{
  CHECK (be, "rope_table");
  if (!arg (&c, "freqs", freqs))
    return;
  if (freqs->ndim != 3 || freqs->shape[2] != 2)
    fail (&c, "freqs", freqs, "is not [rows, pairs, 2]");
  else if (n_pairs < 1 || n_pairs > freqs->shape[1])
    fail (&c, "freqs", freqs, "has no %d temporal pairs", n_pairs);
  else if (pos0 < 0 || rows_per_pos < 1)
    fail (&c, "freqs", freqs, "position %" G_GINT64_FORMAT " (>= 0) or %" G_GINT64_FORMAT
          " rows per position (>= 1) out of range", pos0, rows_per_pos);
  RUN (rope_table, freqs, pos0, rows_per_pos, n_pairs);
}

/* A device-side position: a 1-element I32 tensor on this backend. */
static gboolean
pos_arg (Check *c, const char *name, const LaTensor *t)
{
  if (placed (c, name, t) && (t->dtype != LA_DTYPE_I32 || la_tensor_numel (t) != 1))
    fail (c, name, t, "is not a 1-element i32 tensor");
  return c->ok;
}

void
la_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos)
{
  CHECK (be, "copy_rows_at");
  if (!arg (&c, "dst", dst) || !arg (&c, "src", src) || !pos_arg (&c, "pos", pos))
    return;
  if (cols_of (src) != cols_of (dst))
    fail (&c, "src", src, "rows of %" G_GINT64_FORMAT " columns, dst has %" G_GINT64_FORMAT,
          cols_of (src), cols_of (dst));
  else if (rows_of (src) > rows_of (dst))
    fail (&c, "src", src, "has more rows than dst's %" G_GINT64_FORMAT, rows_of (dst));
  RUN (copy_rows_at, dst, src, pos);
}

void
la_attention_n (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                int n_heads, float scale, const LaTensor *n_keys)
{
  CHECK (be, "attention_n");
  if (!arg (&c, "out", out) || !arg (&c, "q", q) || !arg (&c, "k", k) || !arg (&c, "v", v) ||
      !pos_arg (&c, "n_keys", n_keys))
    return;
  attention_shapes (&c, out, q, k, v, n_heads);
  RUN (attention_n, out, q, k, v, n_heads, scale, n_keys);
}

/* ---- graphs: no checks to make, only the optional entries and the counts ---- */

gboolean
la_graph_supported (LaBackend *be)
{
  return be->ops->graph_begin && be->ops->graph_end && be->ops->graph_launch && be->ops->graph_free;
}

static gboolean
graph_check (LaBackend *be, GError **error)
{
  if (la_graph_supported (be))
    return TRUE;
  g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "%s backend: has no graph capture", be->ops->name);
  return FALSE;
}

gboolean
la_graph_begin (LaBackend *be, GError **error)
{
  return graph_check (be, error) && be->ops->graph_begin (be, error);
}

LaGraph *
la_graph_end (LaBackend *be, GError **error)
{
  if (!graph_check (be, error))
    return NULL;
  LaGraph *g = (LaGraph *) be->ops->graph_end (be, error);
  if (g)
    la_backend_count_graph (be, TRUE);
  return g;
}

gboolean
la_graph_launch (LaBackend *be, LaGraph *g, GError **error)
{
  if (!graph_check (be, error))
    return FALSE;
  if (!g) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s backend: graph launch: graph is NULL", be->ops->name);
    return FALSE;
  }
  if (!be->ops->graph_launch (be, g, error))
    return FALSE;
  la_backend_count_graph (be, FALSE);
  return TRUE;
}

void
la_graph_free (LaBackend *be, LaGraph *g)
{
  if (g && la_graph_supported (be))
    be->ops->graph_free (be, g);
}

void
la_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  CHECK (be, "frames_to_rgba8");
  if (!arg (&c, "x", x) || !placed (&c, "y", y))
    return;
  if (x->ndim != 4 || x->shape[0] != 3)
    fail (&c, "x", x, "is not [3, F, H, W] (VAE frames)");
  else if (y->dtype != LA_DTYPE_U8 || y->ndim != 4 || y->shape[0] != x->shape[1] ||
           y->shape[1] != x->shape[2] || y->shape[2] != x->shape[3] || y->shape[3] != 4)
    fail (&c, "y", y, "is not u8 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", 4] (RGBA)",
          x->shape[1], x->shape[2], x->shape[3]);
  RUN (frames_to_rgba8, y, x);
}

void
la_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix)
{
  CHECK (be, "rgba8_to_nv12");
  if (!placed (&c, "x", x) || !placed (&c, "y", y))
    return;
  if (x->dtype != LA_DTYPE_U8 || x->ndim != 4 || x->shape[3] != 4 || x->shape[1] % 2 || x->shape[2] % 2)
    fail (&c, "x", x, "is not u8 [F, H, W, 4] (RGBA, H and W even)");
  else if (y->dtype != LA_DTYPE_U8 || y->ndim != 3 || y->shape[0] != x->shape[0] ||
           y->shape[1] != x->shape[1] * 3 / 2 || y->shape[2] != x->shape[2])
    fail (&c, "y", y, "is not u8 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (NV12 frames)",
          x->shape[0], x->shape[1] * 3 / 2, x->shape[2]);
  else if (matrix != 0 && matrix != 1)
    fail (&c, "x", x, "matrix %d is neither BT.601 (0) nor BT.709 (1)", matrix);
  RUN (rgba8_to_nv12, y, x, matrix);
}
