/* la-ops.h — the ops model code is written against: one small wrapper per
 * entry of the backend table (lib/la-backend-impl.h has the full contract of
 * each).  Every wrapper first checks what the op will read and write — the
 * shapes agree, every tensor lives on the backend's device, every tensor
 * holds floats — and on a mismatch records an error naming the op and the
 * tensor in the backend's sticky error (reported by la_backend_sync()) and
 * skips the op, so a wrong shape never reaches a kernel as an out-of-bounds
 * access.  The wrappers are out of line (ggml_backend_* style): the table
 * stays private and the checks live in one place, lib/la-ops.c.
 */
#pragma once
#include <math.h>
#include "liveavatar/la-backend.h"

G_BEGIN_DECLS

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

/* TRUE if the backend implements the op named as in the table ("conv3d");
 * a wrapper of a missing op records LA_ERROR_UNSUPPORTED instead of running. */
gboolean la_backend_supports (LaBackend *be, const char *op);

/* dst <- src with conversion; either side may be a host tensor. */
/* t itself (a new reference) when it already lives on be's device, else a
 * copy of it there (same dtype): model entry points take host inputs this way. */
LaTensor *la_to_backend (LaBackend *be, const LaTensor *t);
void la_copy (LaBackend *be, LaTensor *dst, const LaTensor *src);
void la_fill (LaBackend *be, LaTensor *y, float value);
void la_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias);
void la_matmul (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b,
                gboolean trans_a, gboolean trans_b, float alpha, float beta);
void la_layer_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                    const LaTensor *b, float eps);
void la_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps);
void la_unary (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x);
void la_binary (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b);
void la_axpy (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b);
void la_modulate (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift,
                  const LaTensor *scale);
void la_softmax (LaBackend *be, LaTensor *y, const LaTensor *x);
void la_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                   const LaTensor *v, int n_heads, float scale, const LaTensor *bias);
void la_conv3d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                const LaTensor *b, const int stride[3]);
void la_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                const LaTensor *b, int stride, int pad_l, int pad_r, gboolean replicate,
                int groups, gboolean x_cf);
void la_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma,
                          float eps);
void la_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
                const int64_t xoff[4], const int64_t count[4]);
void la_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x);
void la_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                     const LaTensor *inv_std, gboolean encode);
void la_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi);
void la_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads);
void la_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
void la_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
void la_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs);
/* Positions read on the backend when the op runs (la-backend-impl.h): pos
 * and n_keys are 1-element I32 backend tensors, so a captured graph stays
 * right while their value changes between launches. */
void la_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos);
void la_attention_n (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                     const LaTensor *v, int n_heads, float scale, const LaTensor *n_keys);

/* Op capture and replay (CUDA graphs on the CUDA backend; la-backend-impl.h).
 * A backend without graphs (CPU, dry run) answers FALSE to la_graph_supported
 * and its callers run the ops eagerly.  Between la_graph_begin and
 * la_graph_end (same thread) ops are recorded, not run: no host copy, no
 * sync, and every tensor the ops touch must keep its storage while the graph
 * lives.  la_graph_launch replays the recorded ops after what is queued
 * (counted in LaBackendStats.graph_launches; captures in graph_captures). */
typedef struct _LaGraph LaGraph;
gboolean la_graph_supported (LaBackend *be);
gboolean la_graph_begin (LaBackend *be, GError **error);
LaGraph *la_graph_end (LaBackend *be, GError **error);
gboolean la_graph_launch (LaBackend *be, LaGraph *g, GError **error);
void     la_graph_free (LaBackend *be, LaGraph *g);

/* The RoPE table entry, shared by the host tables (lib/dit/dit-rope.c), the
 * CPU op and the CUDA kernel so that all three round alike: an axis with n
 * pairs has θ_k = 1 / 10000^(2k / 2n) (fp64, as the official rope_params);
 * cos and sin of pos·θ_k are rounded straight from fp64 to fp16 (nearest,
 * ties to even: the official complex32 table, no fp32 detour). */
#ifdef __CUDACC__
#define LA_HOST_DEVICE __host__ __device__
#else
#define LA_HOST_DEVICE
#endif

static inline LA_HOST_DEVICE double
la_round_f16_f64 (double x)
{
  double a = fabs (x);
  if (a == 0 || x != x || a == INFINITY)
    return x;
  if (a >= 65520.0)
    return copysign (INFINITY, x);
  if (a < 6.103515625e-05)                         /* subnormal: spacing 2^-24 */
    return nearbyint (x * 16777216.0) / 16777216.0;
  int e;
  frexp (a, &e);                                   /* a = m·2^e, m in [0.5, 1) */
  return ldexp (nearbyint (ldexp (x, 11 - e)), e - 11);
}

static inline LA_HOST_DEVICE void
la_rope_f16_pair (int64_t pos, int k, int n, float *cs, float *sn)
{
  double theta = 1.0 / pow (10000.0, (double) (2 * k) / (double) (2 * n));
  double ang = (double) pos * theta;
  *cs = (float) la_round_f16_f64 (cos (ang));
  *sn = (float) la_round_f16_f64 (sin (ang));
}

/* Sizes of the conv1d op's input x (time T, batch B, channels Cin) in
 * either layout, so the check and every backend read the contract the same way. */
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

/* 8-bit RGB -> limited-range 8-bit Y'CbCr, BT.601 (matrix 0) or BT.709 (1): the
 * usual fixed-point coefficients (x256), rounded by +128 >> 8; shared by the
 * CPU rgba8_to_nv12 op and its CUDA kernel so both give the same bytes. */
static inline LA_HOST_DEVICE void
la_rgb_to_ycbcr8 (int r, int g, int b, int matrix, int *y, int *cb, int *cr)
{
  /* +128·256 keeps the sums non-negative (the shift is then a floor). */
  if (matrix == 1) {
    *y = ((47 * r + 157 * g + 16 * b + 128) >> 8) + 16;
    *cb = (-26 * r - 87 * g + 112 * b + 128 + 128 * 256) >> 8;
    *cr = (112 * r - 102 * g - 10 * b + 128 + 128 * 256) >> 8;
  } else {
    *y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    *cb = (-38 * r - 74 * g + 112 * b + 128 + 128 * 256) >> 8;
    *cr = (112 * r - 94 * g - 18 * b + 128 + 128 * 256) >> 8;
  }
}

/* Video output: VAE frames x [3, F, H, W] (float, on be) -> y u8 [F, H, W, 4] (on be),
 * packed RGBA with the rounding of la_vae_frames_to_rgb8 and alpha 255
 * (la-backend-impl.h).  On CUDA this keeps a block's frames on the GPU. */
void la_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x);

/* Video output: packed RGBA8 frames x u8 [F, H, W, 4] -> NV12 y u8 [F, 3H/2, W]
 * (per frame H rows of Y, then H/2 rows of interleaved Cb, Cr), H and W even;
 * la_rgb_to_ycbcr8 per pixel for Y, of the 2x2 block's mean RGB ((sum + 2) >> 2)
 * for the chroma pair; matrix 0 = BT.601, 1 = BT.709. */
void la_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix);

G_END_DECLS
