/* rope.cu — DiT RoPE on interleaved pairs, the same table for all heads:
 *   x, y [L, H·HD]; freqs [L, HD/2, 2] = (cos, sin) (already fp16-rounded by
 *   the caller, docs/design/model.md §2.2); (a, b) -> (a·cos − b·sin, a·sin + b·cos)
 * evaluated in double and rounded once, as the CPU op and the official
 * rope_apply (fp64 complex product, then .float()).  One thread per pair;
 * y may alias x (each pair is read, then written, by one thread).
 */
#include "cuda-internal.h"

#define THREADS 256

__global__ void
k_rope (void *y, int yt, const void *x, int xt, const void *f, int ft, int64_t L, int64_t W, int64_t hd)
{
  const int64_t pairs = L * W / 2, c = hd / 2;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < pairs; i += (int64_t) gridDim.x * blockDim.x) {
    const int64_t r = (2 * i) / W, k = ((2 * i) % W) % hd / 2;
    const double re = la_ld (x, xt, 2 * i), im = la_ld (x, xt, 2 * i + 1);
    const double cs = la_ld (f, ft, (r * c + k) * 2), sn = la_ld (f, ft, (r * c + k) * 2 + 1);
    la_st (y, yt, 2 * i, (float) (re * cs - im * sn));
    la_st (y, yt, 2 * i + 1, (float) (re * sn + im * cs));
  }
}

extern "C" void
la_cuda_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t W = x->shape[x->ndim - 1], L = W ? la_tensor_numel (x) / W : 0;
  if (L == 0)
    return;
  if (n_heads <= 0 || W % n_heads || (W / n_heads) % 2) {
    la_cuda_record_error (self, "rope", "width is not n_heads times an even head dim");
    return;
  }
  if (!la_cuda_dtype_ok (self, "rope", y) || !la_cuda_dtype_ok (self, "rope", x) || !la_cuda_dtype_ok (self, "rope", freqs))
    return;
  k_rope<<<la_cuda_blocks (L * W / 2, THREADS), THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype,
                                                                           freqs->data, freqs->dtype, L, W, W / n_heads);
  LA_CU_CHECK (self, cudaGetLastError ());
}
