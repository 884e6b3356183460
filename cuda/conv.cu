/* conv.cu — conv3d (VAE) and grouped conv1d (wav2vec2, audio encoder) as
 * im2col + cuBLAS GEMM with fp32 accumulation, same layouts as the CPU ops.
 *
 * conv3d  x [Ci, T, H, W], w [Co, Ci, kt, kh, kw] -> y [Co, T', H', W'] (no padding):
 *   y[co, t', p] = b[co] + Σ_K w[co, K] · col_t'[K, p],  K = Ci·kt·kh·kw.
 *   The column buffer holds as many whole output frames as fit in ~64 M
 *   elements (one strided-batched GEMM over frames, C stride H'W'); a frame
 *   too big for that is tiled over output rows.  1×1×1 convs with unit
 *   spatial stride read x directly (batched over frames, no im2col).
 * conv1d  y[t, b, o] = b[o] + Σ_{i∈group(o), k} w[o, i, k] · xp[t·stride + k, b, i]
 *   (xp zero- or edge-padded); the columns of every group for a chunk of
 *   output steps, then one GEMM batched over groups.
 * Columns are built in the weight's dtype (bf16 weights → bf16 GEMM); y not
 * writable by cuBLAS in that type (f32 GEMM into bf16 y) goes through an f32
 * scratch.  16-bit convs go to cuDNN first (conv-cudnn.cu) and come back
 * here only if cuDNN declines; implicit GEMM of our own remains a plan
 * (docs/cuda.md).
 */
#include "cuda-internal.h"

#define THREADS 256
static const int64_t COL_BUDGET = (int64_t) 64 << 20;   /* elements */

__global__ void
k_im2col3d (void *col, int ct, const void *x, int xt, int64_t T, int64_t H, int64_t W, int64_t kt, int64_t kh,
            int64_t kw, int s0, int s1, int s2, int64_t t0, int64_t h0, int64_t rows, int64_t Wo, int64_t K,
            int64_t total)
{
  const int64_t N = rows * Wo;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    int64_t n = i % N, kk = (i / N) % K, f = i / (N * K);
    int64_t ho = h0 + n / Wo, wo = n % Wo;
    int64_t c = kk / (kt * kh * kw), r = kk % (kt * kh * kw);
    int64_t dt = r / (kh * kw), dh = (r / kw) % kh, dw = r % kw;
    int64_t src = ((c * T + (t0 + f) * s0 + dt) * H + ho * s1 + dh) * W + wo * s2 + dw;
    la_st (col, ct, i, la_ld (x, xt, src));
  }
}

static gboolean
gemm_dtypes_ok (LaCudaBackend *self, const char *op, const LaTensor *y, const LaTensor *x, const LaTensor *w,
                const LaTensor *b)
{
  return la_cuda_dtype_ok (self, op, y) && la_cuda_dtype_ok (self, op, x) && la_cuda_dtype_ok (self, op, w) &&
         (!b || la_cuda_dtype_ok (self, op, b));
}

/* Output buffer cuBLAS can write for input type in_t: y itself or an f32 scratch. */
static void *
gemm_out (LaCudaBackend *self, LaTensor *y, LaDType in_t, LaDType *ot, void **tmp)
{
  *tmp = NULL;
  *ot = y->dtype;
  if (y->dtype == in_t || (y->dtype == LA_DTYPE_F32 && in_t != LA_DTYPE_F32))
    return y->data;
  *ot = LA_DTYPE_F32;
  *tmp = la_cuda_scratch_get (self, (size_t) la_tensor_numel (y) * sizeof (float) + 16);
  return *tmp;
}

extern "C" void
la_cuda_conv3d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b,
                const int stride[3])
{
  LaCudaBackend *self = la_cuda_self (be);
  if (!gemm_dtypes_ok (self, "conv3d", y, x, w, b))
    return;
  if (x->ndim != 4 || w->ndim != 5 || y->ndim != 4 || w->shape[1] != x->shape[0] || stride[0] < 1 ||
      stride[1] < 1 || stride[2] < 1) {
    la_cuda_record_error (self, "conv3d", "expects x [Ci,T,H,W], w [Co,Ci,kt,kh,kw], y 4-D, strides >= 1");
    return;
  }
  const int64_t Ci = x->shape[0], T = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t Co = w->shape[0], kt = w->shape[2], kh = w->shape[3], kw = w->shape[4];
  if (T < kt || H < kh || W < kw)
    return;
  const int64_t To = (T - kt) / stride[0] + 1, Ho = (H - kh) / stride[1] + 1, Wo = (W - kw) / stride[2] + 1;
  const int64_t K = Ci * kt * kh * kw, P = Ho * Wo;
  if (la_cuda_conv3d_cudnn (self, y, x, w, stride)) {
    if (b)
      la_cuda_add_bias_channels (self, y->data, y->dtype, b->data, b->dtype, Co, To * P);
    return;
  }
  const LaDType in_t = w->dtype;
  const size_t esz = la_dtype_size (in_t);
  LaDType ot;
  void *otmp, *xtmp = NULL, *col = NULL;
  void *yd = gemm_out (self, y, in_t, &ot, &otmp);
  if (!yd)
    return;
  const gboolean pointwise = kt == 1 && kh == 1 && kw == 1 && stride[1] == 1 && stride[2] == 1;
  if (pointwise) {
    /* y[:, t', :] = W[Co, Ci] · x[:, t'·s0, :] for every t': one batched GEMM. */
    const void *xd = x->data;
    if (x->dtype != in_t) {
      xd = xtmp = la_cuda_scratch_get (self, (size_t) la_tensor_numel (x) * esz + 16);
      if (xtmp)
        la_cuda_convert (self, xtmp, in_t, x->data, x->dtype, la_tensor_numel (x));
    }
    if (xd)
      la_cuda_gemm (self, CUBLAS_OP_N, CUBLAS_OP_N, P, Co, Ci, 1.0f, xd, T * H * W, stride[0] * H * W,
                    w->data, Ci, 0, in_t, 0.0f, yd, ot, To * P, P, To);
  } else {
    int64_t F = 1, R = Ho;
    if (K * P <= COL_BUDGET)
      F = MIN (To, COL_BUDGET / (K * P));
    else
      R = MAX (1, MIN (Ho, COL_BUDGET / MAX (1, K * Wo)));
    col = la_cuda_scratch_get (self, (size_t) (F * K * R * Wo) * esz + 16);
    if (col)
      for (int64_t t0 = 0; t0 < To; t0 += F) {
        const int64_t nf = MIN (F, To - t0);
        for (int64_t h0 = 0; h0 < Ho; h0 += R) {
          const int64_t rows = MIN (R, Ho - h0), N = rows * Wo, total = nf * K * N;
          k_im2col3d<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
              col, in_t, x->data, x->dtype, T, H, W, kt, kh, kw, stride[0], stride[1], stride[2], t0, h0, rows, Wo,
              K, total);
          LA_CU_CHECK (self, cudaGetLastError ());
          /* yᵀ tile (col-major [N, Co], ld To·P) = colᵀ (col-major [N, K]) · Wᵀ (col-major [K, Co]) */
          la_cuda_gemm (self, CUBLAS_OP_N, CUBLAS_OP_N, N, Co, K, 1.0f, col, N, K * N, w->data, K, 0, in_t, 0.0f,
                        (char *) yd + (size_t) (t0 * P + h0 * Wo) * la_dtype_size (ot), ot, To * P, P, nf);
        }
      }
  }
  if (b)
    la_cuda_add_bias_channels (self, yd, ot, b->data, b->dtype, Co, To * P);
  if (otmp)
    la_cuda_convert (self, y->data, y->dtype, otmp, LA_DTYPE_F32, la_tensor_numel (y));
  la_cuda_scratch_put (self, col);
  la_cuda_scratch_put (self, xtmp);
  la_cuda_scratch_put (self, otmp);
}

__global__ void
k_im2col1d (void *col, int ct, const void *x, int xt, int64_t T, int64_t B, int64_t Cin, int64_t bi, int64_t Cg,
            int64_t K, int64_t nt, int64_t t0, int stride, int pad_l, int replicate, int x_cf, int64_t total)
{
  const int64_t CgK = Cg * K;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    int64_t r = i % CgK, t = (i / CgK) % nt, g = i / (CgK * nt);
    int64_t c = g * Cg + r / K, ti = (t0 + t) * stride - pad_l + r % K;
    float v = 0.0f;
    if (ti < 0 || ti >= T) {
      if (replicate)
        ti = ti < 0 ? 0 : T - 1;
      else
        ti = -1;
    }
    if (ti >= 0)
      v = la_ld (x, xt, x_cf ? (bi * Cin + c) * T + ti : (ti * B + bi) * Cin + c);
    la_st (col, ct, i, v);
  }
}

extern "C" void
la_cuda_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, int stride,
                int pad_l, int pad_r, gboolean replicate, int groups, gboolean x_cf)
{
  LaCudaBackend *self = la_cuda_self (be);
  if (!gemm_dtypes_ok (self, "conv1d", y, x, w, b))
    return;
  int64_t T, B, Cin;
  la_conv1d_dims (x, x_cf, &T, &B, &Cin);
  if (w->ndim != 3 || groups < 1 || stride < 1 || w->shape[0] % groups || w->shape[1] * groups != Cin) {
    la_cuda_record_error (self, "conv1d", "w must be [Cout, Cin/groups, K] with Cout divisible by groups");
    return;
  }
  const int64_t Cout = w->shape[0], Cg = w->shape[1], K = w->shape[2], Og = Cout / groups;
  const int64_t Tout = (T + pad_l + pad_r - K) / stride + 1, CgK = Cg * K;
  if (Tout <= 0 || T <= 0)
    return;
  const LaDType in_t = w->dtype;
  const size_t esz = la_dtype_size (in_t);
  LaDType ot;
  void *otmp;
  void *yd = gemm_out (self, y, in_t, &ot, &otmp);
  if (!yd)
    return;
  const int64_t chunk = MAX (1, MIN (Tout, COL_BUDGET / MAX (1, groups * CgK)));
  void *col = la_cuda_scratch_get (self, (size_t) (groups * chunk * CgK) * esz + 16);
  if (col)
    for (int64_t bi = 0; bi < B; bi++)
      for (int64_t t0 = 0; t0 < Tout; t0 += chunk) {
        const int64_t nt = MIN (chunk, Tout - t0), total = groups * nt * CgK;
        k_im2col1d<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
            col, in_t, x->data, x->dtype, T, B, Cin, bi, Cg, K, nt, t0, stride, pad_l, replicate ? 1 : 0,
            x_cf ? 1 : 0, total);
        LA_CU_CHECK (self, cudaGetLastError ());
        /* per group g: yᵀ (col-major [Og, nt], ld B·Cout) = W_g (col-major [CgK, Og], T) · colᵀ (col-major [CgK, nt]) */
        la_cuda_gemm (self, CUBLAS_OP_T, CUBLAS_OP_N, Og, nt, CgK, 1.0f, w->data, CgK, Og * CgK, col, CgK, nt * CgK,
                      in_t, 0.0f, (char *) yd + (size_t) ((t0 * B + bi) * Cout) * la_dtype_size (ot), ot, B * Cout,
                      Og, groups);
      }
  if (b)
    la_cuda_add_bias_rows (self, yd, ot, b->data, b->dtype, Tout * B, Cout);
  if (otmp)
    la_cuda_convert (self, y->data, y->dtype, otmp, LA_DTYPE_F32, la_tensor_numel (y));
  la_cuda_scratch_put (self, col);
  la_cuda_scratch_put (self, otmp);
}
