/* backend-cpu.c — the reference backend: f32 on the host, OpenBLAS for matrix
 * products, la-parallel.c's sleeping threads for the rest.  Every op mirrors the PyTorch fp32
 * formula it stands for (see la-backend.h); accumulations are in float
 * unless a double is needed to match PyTorch's own rounding.  Weights of
 * `linear` (and either `matmul` operand) may also be bf16, the checkpoint's
 * precision (ops-bf16.c); everything else is f32.
 */
#include "backend-cpu.h"
#include "la-parallel.h"
#include "liveavatar/la-error.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

/* Nothing beyond the common part: every op runs to completion on the
 * calling thread, so there is no queue to sync and no device state. */
typedef struct {
  LaBackend parent;
} LaCpuBackend;

/* The storages this backend allocated or adopted, keyed by their data
 * address (with a count: a weight may be adopted twice), so that copies
 * between them and host tensors count as the uploads and downloads a GPU
 * would make (the statistics of la-backend.h); views share their parent's
 * storage, and a storage leaves the set in its free function.  Global: a
 * tensor may outlive its backend. */
static GMutex resident_lock;
static GHashTable *resident_set;

static void
resident_add (gconstpointer data)
{
  g_mutex_lock (&resident_lock);
  if (!resident_set)
    resident_set = g_hash_table_new (g_direct_hash, g_direct_equal);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (resident_set, data));
  g_hash_table_insert (resident_set, (gpointer) data, GUINT_TO_POINTER (n + 1));
  g_mutex_unlock (&resident_lock);
}

static void
resident_remove (gconstpointer data)
{
  g_mutex_lock (&resident_lock);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (resident_set, data));
  if (n > 1)
    g_hash_table_insert (resident_set, (gpointer) data, GUINT_TO_POINTER (n - 1));
  else
    g_hash_table_remove (resident_set, data);
  g_mutex_unlock (&resident_lock);
}

static void *
aligned_data (void *raw)
{
  return (void *) (((uintptr_t) raw + 64) & ~(uintptr_t) 63);
}

static void
resident_free (gpointer raw)
{
  resident_remove (aligned_data (raw));
  free (raw);
}

static void
adopted_free (gpointer host)
{
  resident_remove (((LaTensor *) host)->data);
  la_tensor_unref (host);
}

LaTensor *
la_cpu_adopt (LaTensor *host)
{
  resident_add (host->data);
  GBytes *st = g_bytes_new_with_free_func (host->data, la_tensor_nbytes (host), adopted_free, host);
  LaTensor *t = la_tensor_new_view (host->dtype, host->ndim, host->shape, st, host->data, LA_DEVICE_CPU, 0);
  g_bytes_unref (st);
  if (la_tensor_get_name (host))
    la_tensor_set_name (t, la_tensor_get_name (host));
  return t;
}

static LaTensor *
cpu_alloc (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape)
{
  size_t n = la_dtype_size (dtype);
  for (int i = 0; i < ndim; i++)
    n *= (size_t) shape[i];
  /* zeroed and 64-byte aligned, as la_tensor_new */
  void *raw = calloc (1, (n ? n : 64) + 64);
  if (!raw)
    g_error ("CPU backend: out of memory (%zu bytes)", n);
  void *data = aligned_data (raw);
  resident_add (data);
  GBytes *st = g_bytes_new_with_free_func (data, n, resident_free, raw);
  LaTensor *t = la_tensor_new_view (dtype, ndim, shape, st, data, LA_DEVICE_CPU, 0);
  g_bytes_unref (st);
  return t;
}

static gboolean
cpu_resident (LaBackend *be, const LaTensor *t)
{
  if (!t->storage)
    return FALSE;
  gsize size;
  gconstpointer data = g_bytes_get_data (t->storage, &size);
  g_mutex_lock (&resident_lock);
  gboolean found = resident_set && data && g_hash_table_contains (resident_set, data);
  g_mutex_unlock (&resident_lock);
  return found;
}

static void
cpu_copy (LaBackend *be, LaTensor *dst, const LaTensor *src)
{
  g_return_if_fail (la_tensor_numel (dst) == la_tensor_numel (src));
  la_convert (dst->data, dst->dtype, src->data, src->dtype, (size_t) la_tensor_numel (src));
}

static void
cpu_fill (LaBackend *be, LaTensor *y, float value)
{
  float *p = y->data;
  int64_t n = la_tensor_numel (y);
  if (value == 0.0f) {
    memset (p, 0, la_tensor_nbytes (y));
    return;
  }
  for (int64_t i = 0; i < n; i++)
    p[i] = value;
}

typedef struct {
  float *y;
  int64_t ldy, N;
  const float *bias;
} BiasArgs;

static void
add_bias_rows (int64_t begin, int64_t end, gpointer data)
{
  const BiasArgs *a = data;
  for (int64_t i = begin; i < end; i++)
    for (int64_t j = 0; j < a->N; j++)
      a->y[i * a->ldy + j] += a->bias[j];
}

void
la_cpu_gemm_nt (int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                const float *w, int64_t ldw, float *y, int64_t ldy, const float *bias)
{
  if (M == 0 || N == 0)
    return;
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) M, (int) N, (int) K,
               1.0f, x, (int) ldx, w, (int) ldw, 0.0f, y, (int) ldy);
  if (bias) {
    BiasArgs a = { y, ldy, N, bias };
    la_parallel_for (M, M * N, add_bias_rows, &a);
  }
}

static void
cpu_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias)
{
  int64_t K = la_cpu_cols (x), M = la_cpu_rows (x), N = w->shape[0];
  if (w->dtype == LA_DTYPE_BF16) {
    la_cpu_linear_bf16w (M, N, K, x->data, w->data, y->data, bias ? bias->data : NULL);
    return;
  }
  la_cpu_gemm_nt (M, N, K, x->data, K, w->data, K, y->data, N, bias ? bias->data : NULL);
}

static void
cpu_matmul (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b,
            gboolean trans_a, gboolean trans_b, float alpha, float beta)
{
  g_autoptr (LaTensor) a32 = NULL;
  g_autoptr (LaTensor) b32 = NULL;
  a = la_cpu_as_f32_operand (a, &a32);
  b = la_cpu_as_f32_operand (b, &b32);
  int nd = a->ndim;
  int64_t ar = a->shape[nd - 2], ac = a->shape[nd - 1];
  int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  int64_t M = trans_a ? ac : ar, K = trans_a ? ar : ac, N = trans_b ? br : bc;
  int64_t batch = la_tensor_numel (a) / (ar * ac);
  int64_t bbatch = la_tensor_numel (b) / (br * bc);
  for (int64_t i = 0; i < batch; i++)
    cblas_sgemm (CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                 (int) M, (int) N, (int) K, alpha,
                 (const float *) a->data + i * ar * ac, (int) ac,
                 (const float *) b->data + (bbatch == 1 ? 0 : i) * br * bc, (int) bc,
                 beta, (float *) c->data + i * M * N, (int) N);
}

/* The row-wise ops (layer norm, RMS norm, softmax over the last dimension):
 * one loop driver, one function per row. */
typedef enum { ROW_LAYER_NORM, ROW_RMS_NORM, ROW_SOFTMAX } RowOp;

typedef struct {
  float *ys;
  const float *xs, *ws, *bs;
  int64_t N;
  float eps;
  RowOp op;
} RowArgs;

static void
layer_norm_row (float *yr, const float *xr, const RowArgs *a)
{
  const float *ws = a->ws, *bs = a->bs;
  const int64_t N = a->N;
  /* Two-pass in double: PyTorch's CPU kernel is compensated enough that a
   * one-pass float mean/var would differ by more than its own rounding. */
  double mean = 0, var = 0;
  for (int64_t i = 0; i < N; i++)
    mean += xr[i];
  mean /= (double) N;
  for (int64_t i = 0; i < N; i++) {
    double d = xr[i] - mean;
    var += d * d;
  }
  var /= (double) N;
  float rstd = (float) (1.0 / sqrt (var + a->eps));
  float fmean = (float) mean;
  for (int64_t i = 0; i < N; i++) {
    float v = (xr[i] - fmean) * rstd;
    if (ws)
      v *= ws[i];
    if (bs)
      v += bs[i];
    yr[i] = v;
  }
}

static void
rms_norm_row (float *yr, const float *xr, const RowArgs *a)
{
  const float *ws = a->ws;
  const int64_t N = a->N;
  double ss = 0;
  for (int64_t i = 0; i < N; i++)
    ss += (double) xr[i] * xr[i];
  float rs = 1.0f / sqrtf ((float) (ss / (double) N) + a->eps);
  for (int64_t i = 0; i < N; i++)
    yr[i] = ws ? (xr[i] * rs) * ws[i] : xr[i] * rs;
}

static void
softmax_row (float *yr, const float *xr, int64_t N)
{
  float mx = -INFINITY;
  for (int64_t i = 0; i < N; i++)
    mx = xr[i] > mx ? xr[i] : mx;
  double sum = 0;
  for (int64_t i = 0; i < N; i++) {
    yr[i] = expf (xr[i] - mx);
    sum += yr[i];
  }
  float inv = (float) (1.0 / sum);
  for (int64_t i = 0; i < N; i++)
    yr[i] *= inv;
}

static void
rows_range (int64_t begin, int64_t end, gpointer data)
{
  const RowArgs *a = data;
  for (int64_t r = begin; r < end; r++) {
    float *yr = a->ys + r * a->N;
    const float *xr = a->xs + r * a->N;
    switch (a->op) {
      case ROW_LAYER_NORM: layer_norm_row (yr, xr, a); break;
      case ROW_RMS_NORM: rms_norm_row (yr, xr, a); break;
      case ROW_SOFTMAX: softmax_row (yr, xr, a->N); break;
    }
  }
}

static void
rows_for (RowOp op, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, float eps)
{
  int64_t R = la_cpu_rows (x), N = la_cpu_cols (x);
  RowArgs a = { y->data, x->data, w ? w->data : NULL, b ? b->data : NULL, N, eps, op };
  la_parallel_for (R, R * N, rows_range, &a);
}

static void
cpu_layer_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, float eps)
{
  rows_for (ROW_LAYER_NORM, y, x, w, b, eps);
}

static void
cpu_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps)
{
  rows_for (ROW_RMS_NORM, y, x, w, NULL, eps);
}

static void
cpu_softmax (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  rows_for (ROW_SOFTMAX, y, x, NULL, NULL, 0.f);
}

static inline float
unary1 (LaUnaryOp op, float v)
{
  switch (op) {
    case LA_UNARY_GELU_TANH: {
      const float k = 0.7978845608028654f;        /* sqrt(2/pi) */
      return 0.5f * v * (1.0f + tanhf (k * (v + 0.044715f * v * v * v)));
    }
    case LA_UNARY_GELU_ERF: return 0.5f * v * (1.0f + erff (v * 0.7071067811865476f));
    case LA_UNARY_SILU: return v / (1.0f + expf (-v));
    case LA_UNARY_RELU: return v > 0 ? v : 0;
    case LA_UNARY_TANH: return tanhf (v);
    case LA_UNARY_SIGMOID: return 1.0f / (1.0f + expf (-v));
  }
  return v;
}

/* Arguments of the element-wise ops: y = f(a, b, c), b and c broadcast by
 * repetition (index i % m). */
typedef struct {
  float *ys;
  const float *as, *bs, *cs;
  int64_t n, m, mc;
  int op;
  float alpha;
} EltArgs;

static void
unary_range (int64_t begin, int64_t end, gpointer data)
{
  const EltArgs *e = data;
  for (int64_t i = begin; i < end; i++)
    e->ys[i] = unary1 ((LaUnaryOp) e->op, e->as[i]);
}

static void
cpu_unary (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x)
{
  int64_t n = la_tensor_numel (x);
  EltArgs e = { .ys = y->data, .as = x->data, .op = op };
  la_parallel_for (n, n, unary_range, &e);
}

/* y = a·b, or y = a + alpha·b (b broadcast): a + b and a − b are alpha = ±1,
 * exactly (1·b and −1·b are exact, and a − b is a + (−b) in IEEE arithmetic). */
static void
binary_range (int64_t begin, int64_t end, gpointer data)
{
  const EltArgs *e = data;
  const int64_t n = e->n, m = e->m;
  for (int64_t i = begin; i < end; i++) {
    float u = e->as[i], v = e->bs[m == n ? i : i % m];
    e->ys[i] = e->op == LA_BINARY_MUL ? u * v : u + e->alpha * v;
  }
}

static void
binary_for (LaTensor *y, const LaTensor *a, const LaTensor *b, LaBinaryOp op, float alpha)
{
  int64_t n = la_tensor_numel (a), m = la_tensor_numel (b);
  EltArgs e = { .ys = y->data, .as = a->data, .bs = b->data, .n = n, .m = m, .op = op, .alpha = alpha };
  la_parallel_for (n, n, binary_range, &e);
}

static void
cpu_binary (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b)
{
  binary_for (y, a, b, op, op == LA_BINARY_SUB ? -1.f : 1.f);
}

static void
cpu_axpy (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b)
{
  binary_for (y, a, b, LA_BINARY_ADD, alpha);
}

static void
modulate_range (int64_t begin, int64_t end, gpointer data)
{
  const EltArgs *e = data;
  for (int64_t i = begin; i < end; i++)
    e->ys[i] = e->as[i] * (1.0f + e->cs[i % e->mc]) + e->bs[i % e->m];
}

static void
cpu_modulate (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift, const LaTensor *scale)
{
  int64_t n = la_tensor_numel (x);
  EltArgs e = { .ys = y->data, .as = x->data, .bs = shift->data, .cs = scale->data, .n = n,
                .m = la_tensor_numel (shift), .mc = la_tensor_numel (scale) };
  la_parallel_for (n, n, modulate_range, &e);
}

/* Per head, in blocks of query rows so the logits stay small. */
static void
cpu_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
               int n_heads, float scale, const LaTensor *bias)
{
  const int64_t Lq = la_cpu_rows (q), Lk = la_cpu_rows (k), HD = la_cpu_cols (q), D = HD / n_heads;
  const int64_t BQ = 256;
  float *s = g_malloc ((size_t) (BQ * (Lk ? Lk : 1)) * sizeof (float));
  for (int h = 0; h < n_heads; h++) {
    for (int64_t q0 = 0; q0 < Lq; q0 += BQ) {
      int64_t nq = MIN (BQ, Lq - q0);
      const float *qh = (const float *) q->data + q0 * HD + h * D;
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nq, (int) Lk, (int) D, scale,
                   qh, (int) HD, (const float *) k->data + h * D, (int) HD, 0.0f, s, (int) Lk);
      if (bias) {
        const float *bh = (const float *) bias->data + ((int64_t) h * Lq + q0) * Lk;
        for (int64_t i = 0; i < nq * Lk; i++)
          s[i] += bh[i];
      }
      RowArgs sa = { .ys = s, .xs = s, .N = Lk, .op = ROW_SOFTMAX };
      la_parallel_for (nq, nq * Lk, rows_range, &sa);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) nq, (int) D, (int) Lk, 1.0f,
                   s, (int) Lk, (const float *) v->data + h * D, (int) HD, 0.0f,
                   (float *) out->data + q0 * HD + h * D, (int) HD);
    }
  }
  g_free (s);
}

/* attention over the first *n_keys rows: the attention above on n-row views
 * of k and v, so bit-identical to it by construction. */
static void
cpu_attention_n (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                 int n_heads, float scale, const LaTensor *n_keys)
{
  const int64_t n = *(const int32_t *) n_keys->data, Lk = la_cpu_rows (k), HD = la_cpu_cols (k);
  if (n < 0 || n > Lk) {
    la_backend_record_error (be, LA_ERROR_INVALID_ARG, "cpu backend: attention_n: %" G_GINT64_FORMAT
                             " keys out of k (tensor %s) of %" G_GINT64_FORMAT " rows", n,
                             k->name ? k->name : "(unnamed)", Lk);
    return;
  }
  int64_t shape[2] = { n, HD };
  LaTensor *kn = la_tensor_new_view (k->dtype, 2, shape, k->storage, k->data, k->device, k->device_index);
  LaTensor *vn = la_tensor_new_view (v->dtype, 2, shape, v->storage, v->data, v->device, v->device_index);
  cpu_attention (be, out, q, kn, vn, n_heads, scale, NULL);
  la_tensor_unref (kn);
  la_tensor_unref (vn);
}

/* im2col per output frame, then one GEMM: y[co, t', :] = W[co, K] . col[K, H'W'].
 * The column buffer is tiled over output rows (at most ~4 M floats, 16 MB:
 * under glibc's 32 MB mmap ceiling, so after the first conv the buffer is
 * reused from the heap instead of being mapped and page-faulted afresh on
 * every call), so a full-resolution VAE conv (K = 96·27, H'W' = 270 k)
 * does not need gigabytes;
 * a 1x1x1 stride-1 conv reads x directly (row stride T·H·W), no im2col. */
typedef struct {
  float *col;
  const float *xs;
  int64_t T, H, W, kt, kh, kw, to, h0, rows, Wo, N;
  const int *stride;
} Im2colArgs;

/* Rows kk of the column buffer: input channel c, kernel tap (dt, dh, dw). */
static void
im2col_rows (int64_t begin, int64_t end, gpointer data)
{
  const Im2colArgs *a = data;
  const int64_t T = a->T, H = a->H, W = a->W, kt = a->kt, kh = a->kh, kw = a->kw;
  const int64_t to = a->to, h0 = a->h0, rows = a->rows, Wo = a->Wo, N = a->N;
  const int *stride = a->stride;
  for (int64_t kk = begin; kk < end; kk++) {
    int64_t c = kk / (kt * kh * kw), r = kk % (kt * kh * kw);
    int64_t dt = r / (kh * kw), dh = (r / kw) % kh, dw = r % kw;
    const float *src = a->xs + ((c * T + to * stride[0] + dt) * H) * W;
    float *dst = a->col + kk * N;
    if (stride[2] == 1)          /* rows are contiguous: the common 3x3x3 case */
      for (int64_t ho = 0; ho < rows; ho++)
        memcpy (dst + ho * Wo, src + ((h0 + ho) * stride[1] + dh) * W + dw, (size_t) Wo * sizeof (float));
    else
      for (int64_t ho = 0; ho < rows; ho++)
        for (int64_t wo = 0; wo < Wo; wo++)
          dst[ho * Wo + wo] = src[((h0 + ho) * stride[1] + dh) * W + wo * stride[2] + dw];
  }
}

static void
cpu_conv3d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b,
            const int stride[3])
{
  const int64_t Ci = x->shape[0], T = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t Co = w->shape[0], kt = w->shape[2], kh = w->shape[3], kw = w->shape[4];
  const int64_t To = (T - kt) / stride[0] + 1, Ho = (H - kh) / stride[1] + 1, Wo = (W - kw) / stride[2] + 1;
  const int64_t K = Ci * kt * kh * kw, P = Ho * Wo;
  const float *xs = x->data, *bs = b ? b->data : NULL;
  const gboolean pointwise = kt == 1 && kh == 1 && kw == 1 && stride[1] == 1 && stride[2] == 1;
  const int64_t budget = (int64_t) 4 << 20;
  const int64_t R = pointwise ? Ho : MAX (1, MIN (Ho, budget / MAX (1, K * Wo)));
  float *col = pointwise ? NULL : g_malloc ((size_t) (K * R * Wo) * sizeof (float));
  for (int64_t to = 0; to < To; to++) {
    for (int64_t h0 = 0; h0 < Ho; h0 += R) {
      const int64_t rows = MIN (R, Ho - h0), N = rows * Wo;
      const float *B = NULL;
      int64_t ldb = N;
      if (pointwise) {
        B = xs + (to * stride[0]) * H * W;
        ldb = T * H * W;
      } else {
        Im2colArgs a = { col, xs, T, H, W, kt, kh, kw, to, h0, rows, Wo, N, stride };
        la_parallel_for (K, K * N, im2col_rows, &a);
        B = col;
      }
      /* y is [Co, To, Ho, Wo]: row co of this tile starts at (co*To + to)*P + h0*Wo. */
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) Co, (int) N, (int) K, 1.0f,
                   w->data, (int) K, B, (int) ldb, 0.0f, (float *) y->data + to * P + h0 * Wo,
                   (int) (To * P));
    }
    if (bs)
      for (int64_t co = 0; co < Co; co++) {
        float *yr = (float *) y->data + (co * To + to) * P;
        for (int64_t i = 0; i < P; i++)
          yr[i] += bs[co];
      }
  }
  g_free (col);
}

static void
cpu_destroy (LaBackend *be)
{
  g_free ((LaCpuBackend *) be);
}

static const LaBackendOps cpu_ops = {
  .name = "cpu",
  .alloc = cpu_alloc,
  .copy = cpu_copy,
  .fill = cpu_fill,
  .linear = cpu_linear,
  .matmul = cpu_matmul,
  .layer_norm = cpu_layer_norm,
  .rms_norm = cpu_rms_norm,
  .unary = cpu_unary,
  .binary = cpu_binary,
  .axpy = cpu_axpy,
  .modulate = cpu_modulate,
  .softmax = cpu_softmax,
  .attention = cpu_attention,
  .conv3d = cpu_conv3d,
  .conv1d = la_cpu_conv1d,
  .channel_rms_norm = la_cpu_channel_rms_norm, .copy4d = la_cpu_copy4d, .upsample2x = la_cpu_upsample2x, .latent_norm = la_cpu_latent_norm, .clamp = la_cpu_clamp,
  .rope = la_cpu_rope,
  .patchify = la_cpu_patchify,
  .unpatchify = la_cpu_unpatchify,
  .rope_table = la_cpu_rope_table,
  .resident = cpu_resident,
  .destroy = cpu_destroy,
  .frames_to_rgba8 = la_cpu_frames_to_rgba8,
  .rgba8_to_nv12 = la_cpu_rgba8_to_nv12,
  .copy_rows_at = la_cpu_copy_rows_at,
  .attention_n = cpu_attention_n,
};

LaBackend *
la_backend_cpu_new (int n_threads)
{
  LaCpuBackend *self = g_new0 (LaCpuBackend, 1);
  la_backend_init (&self->parent, &cpu_ops, LA_DEVICE_CPU, 0,
                   n_threads > 0 ? n_threads : (int) g_get_num_processors ());
  /* The loop threads' and OpenBLAS' counts are per process: the last CPU
   * backend created with an explicit count sets them. */
  if (n_threads > 0) {
    la_parallel_set_threads (n_threads);
    openblas_set_num_threads (n_threads);
  }
  return &self->parent;
}
