/* ops-audio.c — CPU conv1d (the backend's `conv1d` op, see la-backend.h).
 *
 * Grouped, strided 1-D convolution written as im2col + GEMM per group and
 * time chunk:  y[t, b, g·Og + o] = bias[o] + col_g[t, :] · W_g[o, :], where
 * col_g[t, i·K + k] = xp[t·stride + k, b, g·Cg + i] (xp = x padded with zeros
 * or replicated edge steps).  Time chunks keep the im2col buffer small for
 * long waveforms (wav2vec2's first layer has ~16 k output steps per second
 * of audio at full size... 3.2 k per second, K = 10).
 */
#include "backend-cpu.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

void
la_cpu_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
               const LaTensor *b, int stride, int pad_l, int pad_r, gboolean replicate,
               int groups, gboolean x_cf)
{
  int64_t T, B, Cin;
  la_conv1d_dims (x, x_cf, &T, &B, &Cin);
  const int64_t Cout = w->shape[0], Cg = w->shape[1], K = w->shape[2];
  const int64_t Og = Cout / groups;
  const int64_t Tout = (T + pad_l + pad_r - K) / stride + 1;
  const int64_t CgK = Cg * K;
  const float *xd = la_tensor_f32 (x), *wd = la_tensor_f32 (w);
  const float *bd = b ? la_tensor_f32 (b) : NULL;
  float *yd = la_tensor_f32 (y);
  if (Tout <= 0 || T <= 0)
    return;

  /* Chunk of output steps per GEMM: about 4 MiB of im2col. */
  int64_t chunk = (1 << 20) / (CgK > 0 ? CgK : 1);
  if (chunk < 16)
    chunk = 16;
  if (chunk > Tout)
    chunk = Tout;
  float *col = malloc (sizeof (float) * chunk * CgK);
  if (!col)
    return;

  for (int64_t bi = 0; bi < B; bi++)
    for (int g = 0; g < groups; g++)
      for (int64_t t0 = 0; t0 < Tout; t0 += chunk) {
        int64_t nt = MIN (chunk, Tout - t0);
        for (int64_t t = 0; t < nt; t++) {
          float *row = col + t * CgK;
          int64_t base = (t0 + t) * stride - pad_l;
          for (int64_t i = 0; i < Cg; i++) {
            int64_t c = g * Cg + i;
            for (int64_t k = 0; k < K; k++) {
              int64_t ti = base + k;
              if (ti < 0 || ti >= T) {
                if (!replicate) {
                  row[i * K + k] = 0.f;
                  continue;
                }
                ti = ti < 0 ? 0 : T - 1;
              }
              row[i * K + k] = x_cf ? xd[(bi * Cin + c) * T + ti] : xd[(ti * B + bi) * Cin + c];
            }
          }
        }
        float *yo = yd + (t0 * B + bi) * Cout + g * Og;
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nt, (int) Og, (int) CgK,
                     1.f, col, (int) CgK, wd + g * Og * CgK, (int) CgK, 0.f, yo, (int) (B * Cout));
        if (bd)
          for (int64_t t = 0; t < nt; t++)
            for (int64_t o = 0; o < Og; o++)
              yo[t * B * Cout + o] += bd[g * Og + o];
      }
  free (col);
}
