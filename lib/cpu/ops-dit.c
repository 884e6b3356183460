/* ops-dit.c — CPU ops added for the DiT.
 *
 * rope: rotary embedding on interleaved pairs, shared by all heads:
 *   x [L, H·HD], freqs [L, HD/2, 2] = (cos, sin) per pair;
 *   (a, b) -> (a·cos − b·sin, a·sin + b·cos)
 * evaluated in double and rounded to f32 once, as the official rope_apply
 * does (x.to(float64) * complex table, then .float()).  y may alias x.
 */
#include "backend-cpu.h"
#include "la-parallel.h"

typedef struct {
  float *ys;
  const float *xs, *fs;
  int64_t W, hd;
  int n_heads;
} RopeArgs;

static void
rope_rows (int64_t begin, int64_t end, gpointer data)
{
  const RopeArgs *ra = data;
  const float *xs = ra->xs, *fs = ra->fs;
  float *ys = ra->ys;
  const int64_t W = ra->W, hd = ra->hd, c = hd / 2;
  const int n_heads = ra->n_heads;
  for (int64_t r = begin; r < end; r++) {
    const float *f = fs + r * hd;
    for (int64_t h = 0; h < n_heads; h++) {
      const float *a = xs + r * W + h * hd;
      float *o = ys + r * W + h * hd;
      for (int64_t k = 0; k < c; k++) {
        double re = a[2 * k], im = a[2 * k + 1], cs = f[2 * k], sn = f[2 * k + 1];
        o[2 * k] = (float) (re * cs - im * sn);
        o[2 * k + 1] = (float) (re * sn + im * cs);
      }
    }
  }
}

void
la_cpu_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads)
{
  int64_t L = 1;
  for (int i = 0; i < x->ndim - 1; i++)
    L *= x->shape[i];
  int64_t W = x->shape[x->ndim - 1];
  RopeArgs a = { y->data, x->data, freqs->data, W, W / n_heads, n_heads };
  la_parallel_for (L, L * W, rope_rows, &a);
}
