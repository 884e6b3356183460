/* la-backend.h — the one small ops interface that all model code is written
 * against (ggml style).  A backend owns memory on one device and implements
 * each op; the CPU backend (f32 with bf16 linear weights, OpenBLAS GEMMs,
 * threads) is the reference,
 * the CUDA backend implements the same table for bf16/FP8.
 *
 * Conventions
 *  - Tensors are contiguous and row-major; "rows" means all leading dims
 *    flattened, "N" the last dim.
 *  - Ops do not allocate their outputs: the caller passes `y` (so a memory
 *    plan can be made once per session).  In-place use (y == x) is allowed
 *    for elementwise ops and norms.
 *  - Ops do not return errors: a device failure is recorded in the backend
 *    and reported by la_backend_sync() (like cudaGetLastError), so model
 *    code stays linear.  Shape checking is the model code's job.
 */
#pragma once
#include <glib.h>
#include "la-tensor.h"

G_BEGIN_DECLS

typedef struct _LaBackend LaBackend;
typedef struct _LaBackendOps LaBackendOps;

typedef enum {
  LA_UNARY_GELU_TANH,   /* 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) */
  LA_UNARY_GELU_ERF,    /* 0.5x(1+erf(x/sqrt 2)) */
  LA_UNARY_SILU,        /* x*sigmoid(x) */
  LA_UNARY_RELU,
  LA_UNARY_TANH,
  LA_UNARY_SIGMOID,
} LaUnaryOp;

typedef enum {
  LA_BINARY_ADD,
  LA_BINARY_SUB,
  LA_BINARY_MUL,
} LaBinaryOp;

struct _LaBackendOps {
  const char *name;

  /* memory */
  LaTensor *(*alloc)   (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape);
  /* dst <- src, any dtype pair; src or dst may be a host tensor (upload/download). */
  void      (*copy)    (LaBackend *be, LaTensor *dst, const LaTensor *src);
  void      (*fill)    (LaBackend *be, LaTensor *y, float value);

  /* y[rows, N] = x[rows, K] · w[N, K]^T (+ bias[N]) — PyTorch nn.Linear layout.
   * w may be f32 or bf16 (resident in the checkpoint's precision; fp32 accumulation)
   * on every backend, and e4m3 on CUDA. */
  void (*linear)     (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *bias);
  /* c = alpha · op(a) · op(b) + beta · c, batched over leading dims of equal count
   * (a [B, M, K] or [B, K, M] when trans_a, likewise b). */
  void (*matmul)     (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b,
                      gboolean trans_a, gboolean trans_b, float alpha, float beta);

  /* Over the last dim; w and b may be NULL (no affine). */
  void (*layer_norm) (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *b, float eps);
  /* y = x · rsqrt(mean(x^2) + eps) · w over the last dim; w may be NULL. */
  void (*rms_norm)   (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps);

  void (*unary)      (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x);
  /* y = a (op) b where b is a or repeats over a's leading dims
   * (numel(a) % numel(b) == 0 and b is a suffix-shape of a). */
  void (*binary)     (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b);
  /* y = a + alpha · b (same broadcast rule as binary). */
  void (*axpy)       (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b);
  /* y = x · (1 + scale) + shift; scale/shift repeat over leading dims as in binary. */
  void (*modulate)   (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift,
                      const LaTensor *scale);
  /* Softmax over the last dim. */
  void (*softmax)    (LaBackend *be, LaTensor *y, const LaTensor *x);

  /* Multi-head softmax attention, non-causal:
   * q [Lq, H·D], k and v [Lk, H·D] -> out [Lq, H·D]; logits = scale · q·k^T (+ bias [H, Lq, Lk]). */
  void (*attention)  (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                      const LaTensor *v, int n_heads, float scale, const LaTensor *bias);

  /* 3-D convolution without padding (callers pad, e.g. causally):
   * x [Cin, T, H, W], w [Cout, Cin, kt, kh, kw], b [Cout] or NULL -> y [Cout, T', H', W']. */
  void (*conv3d)     (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *b, const int stride[3]);
  /* Grouped 1-D convolution, time-major (wav2vec2, audio encoder):
   * x [T, B, Cin] (or [T, Cin]: B = 1; or, when x_cf, PyTorch's [B, Cin, T] / [Cin, T]),
   * w [Cout, Cin/groups, K], b [Cout] or NULL -> y [T', B, Cout] (or [T', Cout]),
   * y[t, b, o] = b[o] + sum_{i in group(o), k} w[o, i, k] · xp[t·stride + k, b, i], where xp is x
   * padded by pad_l / pad_r steps of zeros, or of copies of the edge step when replicate;
   * T' = (T + pad_l + pad_r − K) / stride + 1. */
  void (*conv1d)     (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *b, int stride, int pad_l, int pad_r, gboolean replicate,
                      int groups, gboolean x_cf);

  /* VAE ops (lib/cpu/ops-vae.c).  Channel-first x [C, ...]:
   * y[c,p] = x[c,p] / max(sqrt(sum_c x[c,p]^2), eps) · sqrt(C) · gamma[c] (Wan RMS_norm). */
  void (*channel_rms_norm) (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma,
                            float eps);
  /* Box copy between 4-D tensors: y[yo + i] = x[xo + i] for i < count (per dim); rest of y untouched. */
  void (*copy4d)     (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
                      const int64_t xoff[4], const int64_t count[4]);
  /* Nearest x2 in the last two dims: x [C, T, H, W] -> y [C, T, 2H, 2W]. */
  void (*upsample2x) (LaBackend *be, LaTensor *y, const LaTensor *x);
  /* Per-channel latent (de)normalisation on x [C, ...]:
   * encode y = (x − mean[c]) · inv_std[c]; decode (!encode) y = x / inv_std[c] + mean[c]. */
  void (*latent_norm) (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                       const LaTensor *inv_std, gboolean encode);
  /* y = min(max(x, lo), hi). */
  void (*clamp)      (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi);

  /* DiT RoPE on interleaved pairs, all heads share the table: x, y [L, H·HD],
   * freqs [L, HD/2, 2] = (cos, sin); (a, b) -> (a·cos − b·sin, a·sin + b·cos),
   * computed in double, rounded once (y may be x). */
  void (*rope)       (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads);

  /* Returns FALSE with the first recorded device error since the last call. */
  gboolean (*sync)   (LaBackend *be, GError **error);
  void     (*destroy)(LaBackend *be);
};

struct _LaBackend {
  const LaBackendOps *ops;
  LaDeviceType device;
  int device_index;
  gint ref_count;
  int n_threads;
};

LaBackend *la_backend_cpu_new (int n_threads);   /* n_threads <= 0: all cores */
/* NULL with LA_ERROR_DEVICE when the CUDA backend is not built or no device exists. */
LaBackend *la_backend_cuda_new (int device_index, GError **error);

LaBackend *la_backend_ref (LaBackend *be);
void       la_backend_unref (LaBackend *be);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaBackend, la_backend_unref)

static inline gboolean la_backend_sync (LaBackend *be, GError **error) { return be->ops->sync (be, error); }
static inline LaTensor *la_alloc (LaBackend *be, LaDType t, int ndim, const int64_t *shape)
{ return be->ops->alloc (be, t, ndim, shape); }

/* Sizes of the conv1d op's input x (time T, batch B, channels Cin) in
 * either layout, so every backend reads the contract the same way. */
static inline void
la_conv1d_dims (const LaTensor *x, gboolean x_cf, int64_t *T, int64_t *B, int64_t *Cin)
{
  if (x_cf) {
    *T = x->shape[x->ndim - 1];
    *Cin = x->shape[x->ndim - 2];
    *B = x->ndim == 3 ? x->shape[0] : 1;
  } else {
    *T = x->shape[0];
    *Cin = x->shape[x->ndim - 1];
    *B = x->ndim == 3 ? x->shape[1] : 1;
  }
}

G_END_DECLS
