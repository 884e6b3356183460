/* random.cu — random weights generated on the GPU, for running the real 14B
 * shapes (liveavatar-bench --preset full) without a checkpoint.
 *
 * value(i) = a·(2u − 1), u = hash(seed, i) in [0, 1) (splitmix64 of the
 * element index: counter-based, so any tensor size and grid gives the same
 * values), a = std·sqrt(3) so the standard deviation is std.  For e4m3 the
 * per-tensor scale is the one quant_fp8 would pick for amax = a:
 * s = min(448/a, 448); values are stored as e4m3(value·s), scale slot = 1/s.
 */
#include "cuda-internal.h"
#include <math.h>

#define THREADS 256

__device__ __forceinline__ float
hash_uniform (uint64_t seed, uint64_t i)
{
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float) (z >> 40) * (1.0f / 16777216.0f);    /* 24 bits */
}

__global__ void
k_random (void *y, int yt, int64_t n, uint64_t seed, float a, float s)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, a * (2.0f * hash_uniform (seed, (uint64_t) i) - 1.0f) * s);
}

__global__ void
k_set_scale (float *p, float v)
{
  *p = v;
}

extern "C" LaTensor *
la_cuda_random_weight (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape, guint64 seed, float std,
                       GError **error)
{
  if (!be || be->device != LA_DEVICE_CUDA || g_strcmp0 (la_backend_get_name (be), "cuda") != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "random_weight: not a CUDA backend");
    return NULL;
  }
  LaCudaBackend *self = la_cuda_self (be);
  LaCudaOpLock lock (self);
  if (!(dtype == LA_DTYPE_F32 || dtype == LA_DTYPE_BF16 || dtype == LA_DTYPE_F16 || dtype == LA_DTYPE_F8_E4M3) ||
      !(std >= 0.0f) || ndim < 1 || ndim > LA_TENSOR_MAX_DIMS) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "random_weight: dtype %s, ndim %d, std %g (want f32/bf16/f16/e4m3, 1..5 dims, std >= 0)",
                 la_dtype_name (dtype), ndim, (double) std);
    return NULL;
  }
  LaTensor *t = la_alloc (be, dtype, ndim, shape);
  if (!t) {
    la_backend_sync (be, error);
    return NULL;
  }
  const int64_t n = la_tensor_numel (t);
  const float a = std * sqrtf (3.0f);
  float s = 1.0f;
  if (dtype == LA_DTYPE_F8_E4M3) {
    s = fminf (448.0f / fmaxf (a, 1e-12f), 448.0f);
    k_set_scale<<<1, 1, 0, self->stream>>> (la_cuda_fp8_scale_ptr (t), 1.0f / s);
  }
  if (n > 0)
    k_random<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> (t->data, dtype, n, (uint64_t) seed, a, s);
  LA_CU_CHECK (self, cudaGetLastError ());
  if (!la_backend_sync (be, error)) {
    la_tensor_unref (t);
    return NULL;
  }
  return t;
}
