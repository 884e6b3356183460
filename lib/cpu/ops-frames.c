/* ops-frames.c — the CPU frames_to_rgba8 op (la-backend-impl.h), the
 * reference of cuda/frames.cu: VAE frames [3, F, H, W] f32 -> RGBA8
 * [F, H, W, 4] with la_vae_frames_to_rgb8's f32 arithmetic and truncation
 * ((uint8) ((clamp (x, -1, 1) + 1) / 2 · 255)), alpha 255. */
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
