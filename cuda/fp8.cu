/* fp8.cu — quant_fp8 of docs/design/model.md §2.3 on the device, no host sync:
 *
 *   amax = max|x| over the whole tensor        (k_amax: atomicMax on the bits,
 *                                                valid because |x| >= 0)
 *   s    = min(448 / max(amax, 1e-12), 448)    (k_scale, one thread)
 *   q    = e4m3(clamp(x·s, −448, 448))         (k_quant: x·s in fp32, one RNE
 *                                                rounding, saturating — the
 *                                                torch.compile'd Inductor kernel)
 *
 * NaN stays NaN (e4m3's 0x7f): torch.clamp propagates NaN, and so does the
 * satfinite cast, which saturates only non-NaN values (±inf -> ±448).  A
 * clamp by fminf/fmaxf would not (fmaxf(NaN, -448) = -448, a NaN hidden as
 * a valid weight).  k_amax skips NaN (fmaxf), so one NaN does not poison the
 * scale of the whole tensor, only its own products.
 *   dequantisation scale 1/s -> *scale_out (what cuBLASLt's A/B_SCALE_POINTER wants).
 *
 * s is capped at 448, so tensors with amax < 1 are not stretched to the full
 * e4m3 range (docs/design/model.md §2.3).  Used for weights once (la_cuda_quantize_fp8) and
 * for activations on every FP8 linear call (gemm-cublaslt.cu).
 */
#include "cuda-internal.h"

#define THREADS 256

__global__ void
k_amax (const void *x, int xt, int64_t n, unsigned int *amax_bits)
{
  float m = 0.0f;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    m = fmaxf (m, fabsf (la_ld (x, xt, i)));
  for (int o = 16; o > 0; o >>= 1)
    m = fmaxf (m, __shfl_xor_sync (0xffffffffu, m, o));
  if (threadIdx.x % 32 == 0)
    atomicMax (amax_bits, __float_as_uint (m));
}

__global__ void
k_scale (unsigned int *state, float *scale_out)
{
  float amax = __uint_as_float (state[0]);
  float s = fminf (448.0f / fmaxf (amax, 1e-12f), 448.0f);
  ((float *) state)[1] = s;
  *scale_out = 1.0f / s;
}

__global__ void
k_quant (__nv_fp8_storage_t *q, const void *x, int xt, int64_t n, const unsigned int *state)
{
  const float s = __uint_as_float (state[1]);
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x) {
    q[i] = __nv_cvt_float_to_fp8 (la_ld (x, xt, i) * s, __NV_SATFINITE, __NV_E4M3);   /* the clamp (see above) */
  }
}

void
la_cuda_fp8_quantize_raw (LaCudaBackend *self, void *dst, const void *src, LaDType st, int64_t n, float *scale_out)
{
  unsigned int *state = (unsigned int *) la_cuda_scratch_get (self, 2 * sizeof (unsigned int));
  if (!state)
    return;
  LA_CU_CHECK (self, cudaMemsetAsync (state, 0, 2 * sizeof (unsigned int), self->stream));
  const unsigned blocks = la_cuda_blocks (n, THREADS) < 4096 ? la_cuda_blocks (n, THREADS) : 4096;
  if (n > 0)
    k_amax<<<blocks, THREADS, 0, self->stream>>> (src, st, n, state);
  k_scale<<<1, 1, 0, self->stream>>> (state, scale_out);
  if (n > 0)
    k_quant<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> ((__nv_fp8_storage_t *) dst, src, st, n, state);
  LA_CU_CHECK (self, cudaGetLastError ());
  la_cuda_scratch_put (self, state);
}
