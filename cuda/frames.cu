/* frames.cu — video output on the GPU (docs/cuda.md "GStreamer CUDA memory"):
 *  frames_to_rgba8  the VAE's frames [3, F, H, W] -> packed RGBA8 [F, H, W, 4],
 *                   RGB = (uint8) ((clamp (x, -1, 1) + 1) / 2 · 255) in f32
 *                   (truncation, the reference's ((x+1)/2*255).to(uint8)), A = 255
 *                   — the same f32 operations as la_vae_frames_to_rgb8 and
 *                   lib/cpu/ops-frames.c, so the bytes are identical;
 *  rgba8_to_nv12    RGBA8 [F, H, W, 4] -> NV12 [F, 3H/2, W] through
 *                   la_rgb_to_ycbcr8 (la-ops.h), the CPU op's arithmetic.
 * One thread per pixel (RGBA) or per 2x2 block (NV12); the ops table
 * (backend-cuda.cu) runs them under the op lock.  The frames then stay
 * on the GPU (LaFrame.device_data); liveavatarsrc copies them device-to-device
 * into GstCudaMemory.
 */
#include "frames.h"

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
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t F = x->shape[1], P = x->shape[2] * x->shape[3];
  if (F * P == 0 || !la_cuda_dtype_ok (self, "frames_to_rgba8", x))
    return;
  k_frames_to_rgba8<<<la_cuda_blocks (F * P, THREADS), THREADS, 0, self->stream>>> ((unsigned char *) y->data,
                                                                                     x->data, x->dtype, F, P);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_rgba8_to_nv12 (unsigned char *out, const unsigned char *in, int64_t F, int64_t H, int64_t W, int matrix)
{
  const int64_t bw = W / 2, per = (H / 2) * bw;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < F * per; i += (int64_t) gridDim.x * blockDim.x) {
    const int64_t f = i / per, r = (i % per) / bw * 2, c = (i % bw) * 2;
    const unsigned char *px = in + f * H * W * 4;
    unsigned char *luma = out + f * H * W * 3 / 2, *uv = luma + H * W;
    int sr = 0, sg = 0, sb = 0, yy, cb, cr;
    for (int k = 0; k < 4; k++) {
      const unsigned char *p = px + ((r + k / 2) * W + c + k % 2) * 4;
      la_rgb_to_ycbcr8 (p[0], p[1], p[2], matrix, &yy, &cb, &cr);
      luma[(r + k / 2) * W + c + k % 2] = (unsigned char) yy;
      sr += p[0];
      sg += p[1];
      sb += p[2];
    }
    la_rgb_to_ycbcr8 ((sr + 2) >> 2, (sg + 2) >> 2, (sb + 2) >> 2, matrix, &yy, &cb, &cr);
    uv[r / 2 * W + c] = (unsigned char) cb;
    uv[r / 2 * W + c + 1] = (unsigned char) cr;
  }
}

extern "C" void
la_cuda_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t F = x->shape[0], H = x->shape[1], W = x->shape[2], n = F * (H / 2) * (W / 2);
  if (n == 0)
    return;
  k_rgba8_to_nv12<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> ((unsigned char *) y->data,
                                                                               (const unsigned char *) x->data, F, H,
                                                                               W, matrix);
  LA_CU_CHECK (self, cudaGetLastError ());
}
