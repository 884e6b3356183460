/* ops-vae.c — CPU implementations of the VAE ops (see la-backend.h):
 *
 *  channel_rms_norm  Wan RMS_norm, channel-first: F.normalize(x, dim=C)·sqrt(C)·γ,
 *                    i.e. x / max(‖x‖₂, eps) · sqrt(C) · γ[c] at each position;
 *  copy4d            box copy between [C, T, H, W] tensors (causal padding,
 *                    cache windows, up3d frame interleave);
 *  upsample2x        nearest ×2 ("nearest-exact" at factor 2 = duplication);
 *  latent_norm       (x − mean)·inv_std and x / inv_std + mean per channel;
 *  clamp.
 * All f32, channel is the slowest dim.
 */
#include "backend-cpu.h"
#include "la-parallel.h"
#include <math.h>
#include <string.h>

typedef struct {
  float *ys;
  const float *xs, *g;
  int64_t C, P;
  float eps;
} ChannelNormArgs;

/* Positions in blocks of 256 so the channel loop runs over contiguous rows. */
#define CRN_BLK 256

static void
channel_rms_norm_blocks (int64_t begin, int64_t end, gpointer data)
{
  const ChannelNormArgs *a = data;
  const int64_t C = a->C, P = a->P;
  const float *xs = a->xs, *g = a->g;
  float *ys = a->ys;
  const float eps = a->eps, scale = sqrtf ((float) C);
  for (int64_t blk = begin; blk < end; blk++) {
    int64_t p0 = blk * CRN_BLK, n = MIN (CRN_BLK, P - p0);
    double acc[256];
    float inv[256];
    for (int64_t i = 0; i < n; i++)
      acc[i] = 0.0;
    for (int64_t c = 0; c < C; c++) {
      const float *r = xs + c * P + p0;
      for (int64_t i = 0; i < n; i++)
        acc[i] += (double) r[i] * r[i];
    }
    for (int64_t i = 0; i < n; i++) {
      float nrm = (float) sqrt (acc[i]);
      inv[i] = nrm > eps ? nrm : eps;
    }
    for (int64_t c = 0; c < C; c++) {
      const float *r = xs + c * P + p0;
      float *o = ys + c * P + p0;
      for (int64_t i = 0; i < n; i++)
        o[i] = r[i] / inv[i] * scale * g[c];   /* PyTorch order: (x/n)·scale·γ */
    }
  }
}

void
la_cpu_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma,
                         float eps)
{
  const int64_t C = x->shape[0], P = la_tensor_numel (x) / C;
  ChannelNormArgs a = { y->data, x->data, gamma->data, C, P, eps };
  la_parallel_for ((P + CRN_BLK - 1) / CRN_BLK, C * P, channel_rms_norm_blocks, &a);
}

void
la_cpu_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
               const int64_t xoff[4], const int64_t count[4])
{
  const int64_t *ys = y->shape, *xs = x->shape;
  const float *xd = x->data;
  float *yd = y->data;
  for (int64_t c = 0; c < count[0]; c++)
    for (int64_t t = 0; t < count[1]; t++)
      for (int64_t h = 0; h < count[2]; h++) {
        const float *src = xd + (((xoff[0] + c) * xs[1] + xoff[1] + t) * xs[2] + xoff[2] + h) * xs[3] + xoff[3];
        float *dst = yd + (((yoff[0] + c) * ys[1] + yoff[1] + t) * ys[2] + yoff[2] + h) * ys[3] + yoff[3];
        memcpy (dst, src, (size_t) count[3] * sizeof (float));
      }
}

typedef struct {
  float *ys;
  const float *xs;
  int64_t H, W;
} UpsampleArgs;

static void
upsample2x_planes (int64_t begin, int64_t end, gpointer data)
{
  const UpsampleArgs *a = data;
  const int64_t H = a->H, W = a->W;
  const float *xs = a->xs;
  float *ys = a->ys;
  for (int64_t p = begin; p < end; p++)
    for (int64_t h = 0; h < H; h++) {
      const float *r = xs + (p * H + h) * W;
      float *o = ys + (p * 2 * H + 2 * h) * 2 * W;
      for (int64_t w = 0; w < W; w++)
        o[2 * w] = o[2 * w + 1] = r[w];
      memcpy (o + 2 * W, o, (size_t) (2 * W) * sizeof (float));
    }
}

void
la_cpu_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x)
{
  const int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
  const int64_t planes = la_tensor_numel (x) / (H * W);
  UpsampleArgs a = { y->data, x->data, H, W };
  la_parallel_for (planes, planes * H * W, upsample2x_planes, &a);
}

void
la_cpu_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                    const LaTensor *inv_std, gboolean encode)
{
  const int64_t C = x->shape[0], P = la_tensor_numel (x) / C;
  const float *xs = x->data, *m = mean->data, *s = inv_std->data;
  float *ys = y->data;
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < P; i++)
      ys[c * P + i] = encode ? (xs[c * P + i] - m[c]) * s[c] : xs[c * P + i] / s[c] + m[c];
}

void
la_cpu_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi)
{
  const int64_t n = la_tensor_numel (x);
  const float *xs = x->data;
  float *ys = y->data;
  for (int64_t i = 0; i < n; i++)
    ys[i] = xs[i] < lo ? lo : (xs[i] > hi ? hi : xs[i]);
}
