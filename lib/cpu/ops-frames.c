/* ops-frames.c — the CPU video-output ops (la-backend-impl.h), the
 * references of cuda/frames.cu:
 *  frames_to_rgba8  VAE frames [3, F, H, W] f32 -> RGBA8 [F, H, W, 4] with
 *                   la_vae_frames_to_rgb8's f32 arithmetic and truncation
 *                   ((uint8) ((clamp (x, -1, 1) + 1) / 2 · 255)), alpha 255;
 *  rgba8_to_nv12    RGBA8 -> NV12 [F, 3H/2, W] through la_rgb_to_ycbcr8
 *                   (la-ops.h), chroma of the 2x2 block's mean RGB. */
#include "backend-cpu.h"

void
la_cpu_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  const int64_t F = x->shape[1], P = x->shape[2] * x->shape[3];
  g_autoptr (LaTensor) xf = la_tensor_as_f32 ((LaTensor *) x);
  const float *d = la_tensor_f32 (xf);
  guint8 *out = y->data;
  for (int64_t f = 0; f < F; f++)
    for (int64_t p = 0; p < P; p++) {
      for (int c = 0; c < 3; c++) {
        float v = d[(c * F + f) * P + p];
        v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
        out[(f * P + p) * 4 + c] = (guint8) ((v + 1.0f) / 2.0f * 255.0f);
      }
      out[(f * P + p) * 4 + 3] = 255;
    }
}

void
la_cpu_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix)
{
  const int64_t F = x->shape[0], H = x->shape[1], W = x->shape[2];
  const guint8 *in = x->data;
  guint8 *out = y->data;
  for (int64_t f = 0; f < F; f++) {
    const guint8 *px = in + f * H * W * 4;
    guint8 *luma = out + f * H * W * 3 / 2, *uv = luma + H * W;
    for (int64_t i = 0; i < H; i += 2)
      for (int64_t j = 0; j < W; j += 2) {
        int sr = 0, sg = 0, sb = 0, yy, cb, cr;
        for (int k = 0; k < 4; k++) {
          const guint8 *p = px + ((i + k / 2) * W + j + k % 2) * 4;
          la_rgb_to_ycbcr8 (p[0], p[1], p[2], matrix, &yy, &cb, &cr);
          luma[(i + k / 2) * W + j + k % 2] = (guint8) yy;
          sr += p[0];
          sg += p[1];
          sb += p[2];
        }
        la_rgb_to_ycbcr8 ((sr + 2) >> 2, (sg + 2) >> 2, (sb + 2) >> 2, matrix, &yy, &cb, &cr);
        uv[i / 2 * W + j] = (guint8) cb;
        uv[i / 2 * W + j + 1] = (guint8) cr;
      }
  }
}
