/* frames.cu — video output on the GPU (docs/cuda.md "GStreamer CUDA memory"):
 *  frames_to_rgba8  the VAE's frames [3, F, H, W] -> packed RGBA8 [F, H, W, 4],
 *                   RGB = (uint8) ((clamp (x, -1, 1) + 1) / 2 · 255) in f32
 *                   (truncation, the reference's ((x+1)/2*255).to(uint8)), A = 255
 *                   — the same f32 operations as la_vae_frames_to_rgb8 and
 *                   lib/cpu/ops-frames.c, so the bytes are identical;
 * One thread per pixel.  The frames then stay on the GPU (LaFrame.device_rgba);
 * liveavatarsrc copies them device-to-device into GstCudaMemory.
 */
#include "cuda-internal.h"
#include "liveavatar/la-cuda.h"

#define THREADS 256

__global__ void
k_frames_to_rgba8 (unsigned char *y, const void *x, int xt, int64_t F, int64_t P)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < F * P; i += (int64_t) gridDim.x * blockDim.x) {
    const int64_t f = i / P, p = i % P;
    for (int c = 0; c < 3; c++) {
      float v = la_ld (x, xt, (c * F + f) * P + p);
      v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
      y[i * 4 + c] = (unsigned char) ((v + 1.0f) / 2.0f * 255.0f);
    }
    y[i * 4 + 3] = 255;
  }
}

extern "C" void
la_cuda_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  LaCudaOpLock lock ((LaCudaBackend *) be);
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t F = x->shape[1], P = x->shape[2] * x->shape[3];
  if (F * P == 0 || !la_cuda_dtype_ok (self, "frames_to_rgba8", x))
    return;
  k_frames_to_rgba8<<<la_cuda_blocks (F * P, THREADS), THREADS, 0, self->stream>>> ((unsigned char *) y->data,
                                                                                     x->data, x->dtype, F, P);
  LA_CU_CHECK (self, cudaGetLastError ());
}
