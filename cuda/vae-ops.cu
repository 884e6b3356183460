/* vae-ops.cu — the VAE's data-movement ops (see lib/cpu/ops-vae.c):
 *  copy4d      y[yo + i] = x[xo + i] for i < count, 4-D boxes (causal padding,
 *              cache windows, frame interleave); the rest of y is untouched;
 *  upsample2x  nearest ×2 in the last two dims (duplication);
 *  latent_norm encode y = (x − mean[c])·inv_std[c]; decode y = x / inv_std[c] + mean[c]
 *              on channel-first x [C, ...].
 * One thread per output element; dtype casts on the fly.
 */
#include "cuda-internal.h"

#define THREADS 256

__global__ void
k_copy4d (void *y, int yt, const void *x, int xt, int64_t y1, int64_t y2, int64_t y3, int64_t x1, int64_t x2,
          int64_t x3, int64_t yo0, int64_t yo1, int64_t yo2, int64_t yo3, int64_t xo0, int64_t xo1, int64_t xo2,
          int64_t xo3, int64_t n1, int64_t n2, int64_t n3, int64_t total)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    int64_t w = i % n3, h = (i / n3) % n2, t = (i / (n3 * n2)) % n1, c = i / (n3 * n2 * n1);
    int64_t src = (((xo0 + c) * x1 + xo1 + t) * x2 + xo2 + h) * x3 + xo3 + w;
    int64_t dst = (((yo0 + c) * y1 + yo1 + t) * y2 + yo2 + h) * y3 + yo3 + w;
    la_st (y, yt, dst, la_ld (x, xt, src));
  }
}

extern "C" void
la_cuda_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x, const int64_t xoff[4],
                const int64_t count[4])
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t total = count[0] * count[1] * count[2] * count[3];
  if (total <= 0)
    return;
  if (x->ndim != 4 || y->ndim != 4) {
    la_cuda_record_error (self, "copy4d", "x and y must be 4-D");
    return;
  }
  if (!la_cuda_dtype_ok (self, "copy4d", y) || !la_cuda_dtype_ok (self, "copy4d", x))
    return;
  const int64_t *ys = y->shape, *xs = x->shape;
  k_copy4d<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
      y->data, y->dtype, x->data, x->dtype, ys[1], ys[2], ys[3], xs[1], xs[2], xs[3],
      yoff[0], yoff[1], yoff[2], yoff[3], xoff[0], xoff[1], xoff[2], xoff[3], count[1], count[2], count[3], total);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_upsample2x (void *y, int yt, const void *x, int xt, int64_t H, int64_t W, int64_t total)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    int64_t ow = i % (2 * W), oh = (i / (2 * W)) % (2 * H), p = i / (4 * H * W);
    la_st (y, yt, i, la_ld (x, xt, (p * H + oh / 2) * W + ow / 2));
  }
}

extern "C" void
la_cuda_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  LaCudaBackend *self = la_cuda_self (be);
  if (x->ndim < 2) {
    la_cuda_record_error (self, "upsample2x", "x needs at least 2 dims");
    return;
  }
  const int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1], total = 4 * la_tensor_numel (x);
  if (total == 0 || !la_cuda_dtype_ok (self, "upsample2x", y) || !la_cuda_dtype_ok (self, "upsample2x", x))
    return;
  k_upsample2x<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype,
                                                                             H, W, total);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_latent_norm (void *y, int yt, const void *x, int xt, const void *m, int mt, const void *s, int st, int64_t P,
               int64_t total, int encode)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    int64_t c = i / P;
    float v = la_ld (x, xt, i), mc = la_ld (m, mt, c), sc = la_ld (s, st, c);
    la_st (y, yt, i, encode ? (v - mc) * sc : v / sc + mc);
  }
}

extern "C" void
la_cuda_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean, const LaTensor *inv_std,
                     gboolean encode)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t total = la_tensor_numel (x), C = x->shape[0];
  if (total == 0 || C == 0 || !la_cuda_dtype_ok (self, "latent_norm", y) || !la_cuda_dtype_ok (self, "latent_norm", x) ||
      !la_cuda_dtype_ok (self, "latent_norm", mean) || !la_cuda_dtype_ok (self, "latent_norm", inv_std))
    return;
  k_latent_norm<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
      y->data, y->dtype, x->data, x->dtype, mean->data, mean->dtype, inv_std->data, inv_std->dtype,
      total / C, total, encode ? 1 : 0);
  LA_CU_CHECK (self, cudaGetLastError ());
}
