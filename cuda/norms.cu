/* norms.cu — row reductions, one thread block per row (rows = leading dims):
 *
 *  layer_norm  y = (x − mean)·rstd·w + b, rstd = 1/sqrt(var + eps), mean and
 *              (biased) var two-pass in double as the CPU reference does;
 *  rms_norm    y = x·rs·w, rs = 1/sqrtf(mean(x²) + eps), sum of squares in double;
 *  softmax     y = exp(x − max)/Σ, the sum in double;
 *  channel_rms_norm (Wan VAE RMS_norm, channel-first [C, P]): one thread per
 *              position p, y = x / max(‖x[:, p]‖₂, eps) · sqrt(C) · γ[c].
 * Every pass re-reads x from global memory (rows are ≤ 5120 wide, L2-resident),
 * so y may alias x: each element is read and written by the same thread.
 */
#include "cuda-internal.h"
#include <math.h>

#define THREADS 256

template <typename T, typename Op>
__device__ T
block_reduce (T v, Op op, T *shared, T identity)
{
  for (int o = 16; o > 0; o >>= 1)
    v = op (v, __shfl_xor_sync (0xffffffffu, v, o));
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads ();                 /* shared may still be read from a previous reduction */
  if (lane == 0)
    shared[warp] = v;
  __syncthreads ();
  int nw = blockDim.x / 32;
  v = threadIdx.x < nw ? shared[threadIdx.x] : identity;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1)
      v = op (v, __shfl_xor_sync (0xffffffffu, v, o));
  if (threadIdx.x == 0)
    shared[0] = v;
  __syncthreads ();
  return shared[0];
}

struct AddD { __device__ double operator() (double a, double b) const { return a + b; } };
struct MaxF { __device__ float operator() (float a, float b) const { return fmaxf (a, b); } };

__global__ void
k_layer_norm (void *y, int yt, const void *x, int xt, const void *w, int wt, const void *b, int bt,
              int64_t N, float eps)
{
  __shared__ double sh[32];
  const int64_t base = blockIdx.x * N;
  double s = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    s += la_ld (x, xt, base + i);
  double mean = block_reduce (s, AddD (), sh, 0.0) / (double) N;
  double v = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    double d = la_ld (x, xt, base + i) - mean;
    v += d * d;
  }
  double var = block_reduce (v, AddD (), sh, 0.0) / (double) N;
  float rstd = (float) (1.0 / sqrt (var + eps)), fmean = (float) mean;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    float r = (la_ld (x, xt, base + i) - fmean) * rstd;
    if (w)
      r *= la_ld (w, wt, i);
    if (b)
      r += la_ld (b, bt, i);
    la_st (y, yt, base + i, r);
  }
}

static gboolean
rows_ok (LaCudaBackend *self, const char *op, const LaTensor *x, int64_t *R, int64_t *N)
{
  *N = x->ndim ? x->shape[x->ndim - 1] : 1;
  *R = *N ? la_tensor_numel (x) / *N : 0;
  if (*R > 2147483647) {
    la_cuda_record_error (self, op, "more than 2^31 rows");
    return FALSE;
  }
  return *R > 0;
}

extern "C" void
la_cuda_layer_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *b, float eps)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t R, N;
  if (!rows_ok (self, "layer_norm", x, &R, &N) || !la_cuda_dtype_ok (self, "layer_norm", x) ||
      !la_cuda_dtype_ok (self, "layer_norm", y) || (w && !la_cuda_dtype_ok (self, "layer_norm", w)) ||
      (b && !la_cuda_dtype_ok (self, "layer_norm", b)))
    return;
  k_layer_norm<<<(unsigned) R, THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype,
                                                           w ? w->data : NULL, w ? w->dtype : 0,
                                                           b ? b->data : NULL, b ? b->dtype : 0, N, eps);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_rms_norm (void *y, int yt, const void *x, int xt, const void *w, int wt, int64_t N, float eps)
{
  __shared__ double sh[32];
  const int64_t base = blockIdx.x * N;
  double s = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    double v = la_ld (x, xt, base + i);
    s += v * v;
  }
  double ss = block_reduce (s, AddD (), sh, 0.0);
  float rs = 1.0f / sqrtf ((float) (ss / (double) N) + eps);
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    float r = la_ld (x, xt, base + i) * rs;
    la_st (y, yt, base + i, w ? r * la_ld (w, wt, i) : r);
  }
}

extern "C" void
la_cuda_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t R, N;
  if (!rows_ok (self, "rms_norm", x, &R, &N) || !la_cuda_dtype_ok (self, "rms_norm", x) ||
      !la_cuda_dtype_ok (self, "rms_norm", y) || (w && !la_cuda_dtype_ok (self, "rms_norm", w)))
    return;
  k_rms_norm<<<(unsigned) R, THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype,
                                                         w ? w->data : NULL, w ? w->dtype : 0, N, eps);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_softmax (void *y, int yt, const void *x, int xt, int64_t N)
{
  __shared__ float shf[32];
  __shared__ double shd[32];
  const int64_t base = blockIdx.x * N;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    mx = fmaxf (mx, la_ld (x, xt, base + i));
  mx = block_reduce (mx, MaxF (), shf, -INFINITY);
  double s = 0;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    s += expf (la_ld (x, xt, base + i) - mx);
  float inv = (float) (1.0 / block_reduce (s, AddD (), shd, 0.0));
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    la_st (y, yt, base + i, expf (la_ld (x, xt, base + i) - mx) * inv);
}

extern "C" void
la_cuda_softmax (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t R, N;
  if (!rows_ok (self, "softmax", x, &R, &N) || !la_cuda_dtype_ok (self, "softmax", x) ||
      !la_cuda_dtype_ok (self, "softmax", y))
    return;
  k_softmax<<<(unsigned) R, THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype, N);
  LA_CU_CHECK (self, cudaGetLastError ());
}

/* Adjacent threads take adjacent positions, so every channel row is read coalesced. */
__global__ void
k_channel_rms_norm (void *y, int yt, const void *x, int xt, const void *g, int gt, int64_t C, int64_t P,
                    float eps, float scale)
{
  for (int64_t p = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; p < P; p += (int64_t) gridDim.x * blockDim.x) {
    double acc = 0;
    for (int64_t c = 0; c < C; c++) {
      double v = la_ld (x, xt, c * P + p);
      acc += v * v;
    }
    float nrm = (float) sqrt (acc);
    float inv = nrm > eps ? nrm : eps;
    for (int64_t c = 0; c < C; c++)
      la_st (y, yt, c * P + p, la_ld (x, xt, c * P + p) / inv * scale * la_ld (g, gt, c));
  }
}

extern "C" void
la_cuda_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma, float eps)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t C = x->shape[0], P = C ? la_tensor_numel (x) / C : 0;
  if (P == 0 || !la_cuda_dtype_ok (self, "channel_rms_norm", x) || !la_cuda_dtype_ok (self, "channel_rms_norm", y) ||
      !la_cuda_dtype_ok (self, "channel_rms_norm", gamma))
    return;
  k_channel_rms_norm<<<la_cuda_blocks (P, THREADS), THREADS, 0, self->stream>>> (
      y->data, y->dtype, x->data, x->dtype, gamma->data, gamma->dtype, C, P, eps, sqrtf ((float) C));
  LA_CU_CHECK (self, cudaGetLastError ());
}
