/* la-audio-align.c — offline parity mode of the audio path (docs/design/audio-path.md §2, §4,
 * §4.3): whole-buffer normalisation with numpy's float32 rules, the 50 -> 30
 * fps align-corners interpolation, and the per-video-frame bucket
 * (get_sample_indices / get_audio_embed_bucket_fps), all plain host code.
 */
#include "la-audio.h"
#include "liveavatar/la-error.h"
#include <math.h>
#include <string.h>

/* numpy's float32 pairwise summation (8 accumulators, blocks of 128). */
static float
pairwise_sum_f32 (const float *a, int64_t n)
{
  if (n < 8) {
    float res = 0.f;
    for (int64_t i = 0; i < n; i++)
      res += a[i];
    return res;
  }
  if (n <= 128) {
    float r[8];
    for (int j = 0; j < 8; j++)
      r[j] = a[j];
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++)
        r[j] += a[i + j];
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++)
      res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum_f32 (a, n2) + pairwise_sum_f32 (a + n2, n - n2);
}

/* np.add.reduce over a contiguous float32 vector: the ufunc inner loop runs on
 * buffer-sized chunks (8192), each pairwise, accumulated into a float. */
static float
numpy_sum_f32 (const float *a, int64_t n)
{
  float acc = 0.f;
  for (int64_t i = 0; i < n; i += 8192)
    acc += pairwise_sum_f32 (a + i, MIN (8192, n - i));
  return acc;
}

void
la_audio_normalize (const float *x, size_t n, float *out, float stats[3])
{
  if (n == 0) {
    if (stats)
      stats[0] = stats[1] = 0.f, stats[2] = (float) sqrt (1e-7);
    return;
  }
  const float fn = (float) n;
  float mean = numpy_sum_f32 (x, (int64_t) n) / fn;
  float *d = g_new (float, n);
  for (size_t i = 0; i < n; i++) {
    float c = x[i] - mean;
    d[i] = c * c;
  }
  float var = numpy_sum_f32 (d, (int64_t) n) / fn;
  g_free (d);
  /* numpy < 2: float32 scalar + Python float is float64; the array division
   * then casts the float64 scalar to float32. */
  float denom = (float) sqrt ((double) var + 1e-7);
  for (size_t i = 0; i < n; i++)
    out[i] = (x[i] - mean) / denom;
  if (stats) {
    stats[0] = mean;
    stats[1] = var;
    stats[2] = denom;
  }
}

int64_t
la_audio_resampled_len (int64_t t_in, int in_fps, int out_fps)
{
  return (int64_t) ((double) t_in / (double) in_fps * (double) out_fps);
}

LaTensor *
la_audio_interp_linear (const LaTensor *hs, int in_fps, int out_fps, gboolean gpu_form, GError **error)
{
  if (!hs || hs->dtype != LA_DTYPE_F32 || hs->ndim != 3 || hs->device != LA_DEVICE_CPU) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "audio interpolation: hidden states must be host f32 [L, T, C]");
    return NULL;
  }
  if (in_fps <= 0 || out_fps <= 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "audio interpolation: fps %d -> %d", in_fps, out_fps);
    return NULL;
  }
  const int64_t L = hs->shape[0], T = hs->shape[1], C = hs->shape[2];
  const int64_t To = la_audio_resampled_len (T, in_fps, out_fps);
  int64_t shp[3] = { L, To, C };
  LaTensor *y = la_tensor_new (LA_DTYPE_F32, 3, shp);
  if (To <= 0 || T <= 0)
    return y;
  /* align_corners: scale = (T-1)/(To-1) as a float (0 when To == 1). */
  const float s = To > 1 ? (float) (T - 1) / (float) (To - 1) : 0.f;
  const float *x = la_tensor_f32 (hs);
  float *yd = la_tensor_f32 (y);
  for (int64_t j = 0; j < To; j++) {
    int64_t i0, i1;
    float w0, w1;
    if (gpu_form) {
      float p = (float) j * s;
      i0 = (int64_t) floorf (p);
      w1 = p - (float) i0;
      w0 = 1.f - w1;
    } else {
      double p = (double) j * (double) s;
      i0 = (int64_t) floor (p);
      double l = p - (double) i0;
      w1 = (float) l;
      w0 = (float) (1.0 - l);
    }
    if (i0 > T - 1)
      i0 = T - 1;
    i1 = MIN (i0 + 1, T - 1);
    for (int64_t l = 0; l < L; l++) {
      const float *a = x + (l * T + i0) * C, *b = x + (l * T + i1) * C;
      float *o = yd + (l * To + j) * C;
      if (gpu_form)
        for (int64_t c = 0; c < C; c++)
          o[c] = w0 * a[c] + w1 * b[c];
      else
        for (int64_t c = 0; c < C; c++)
          o[c] = fmaf (a[c], w0, w1 * b[c]);
    }
  }
  return y;
}

gboolean
la_audio_sample_indices (int original_fps, int64_t total_frames, int target_fps, int64_t num_sample,
                         int64_t fixed_start, int64_t *out, GError **error)
{
  if (original_fps <= 0 || target_fps <= 0 || num_sample < 0 || total_frames <= 0 || fixed_start < 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "get_sample_indices: bad arguments");
    return FALSE;
  }
  const double required = (double) num_sample / target_fps;
  if (required > (double) total_frames / original_fps) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "get_sample_indices: required duration %.3f s exceeds %" G_GINT64_FORMAT " frames at %d fps",
                 required, total_frames, original_fps);
    return FALSE;
  }
  const double start = (double) fixed_start / original_fps;
  const double end = start + required;
  /* np.linspace(start, end, num, endpoint=False): step = (end - start) / num; y = i·step + start. */
  const double step = num_sample ? (end - start) / (double) num_sample : 0.0;
  for (int64_t i = 0; i < num_sample; i++) {
    double tp = (double) i * step + start;
    int64_t idx = (int64_t) nearbyint (tp * original_fps);   /* np.round: half to even */
    if (idx < 0)
      idx = 0;
    if (idx > total_frames - 1)
      idx = total_frames - 1;
    out[i] = idx;
  }
  return TRUE;
}

LaTensor *
la_audio_bucket (const LaTensor *f30, int video_rate, int fps, int batch_frames, int m,
                 int *n_clips, GError **error)
{
  if (!f30 || f30->dtype != LA_DTYPE_F32 || f30->ndim != 3 || f30->device != LA_DEVICE_CPU) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "audio bucket: features must be host f32 [L, T30, C]");
    return NULL;
  }
  if (video_rate <= 0 || fps <= 0 || batch_frames <= 0 || m < 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "audio bucket: bad fps/batch_frames/m");
    return NULL;
  }
  const int64_t L = f30->shape[0], T = f30->shape[1], C = f30->shape[2];
  const double scale = (double) video_rate / fps;
  const int64_t clips = (int64_t) ((double) T / (batch_frames * scale)) + 1;
  const int64_t nb = clips * batch_frames;
  const int64_t pad = (int64_t) ceil ((double) (clips * batch_frames) / fps * video_rate) - T;
  g_autofree int64_t *idx = g_new (int64_t, nb);
  if (!la_audio_sample_indices (video_rate, T + pad, fps, nb, 0, idx, error))
    return NULL;
  const int stride = (int) ((double) video_rate / fps);
  const int64_t W = 2 * m + 1;
  int64_t shp[3] = { nb, L, C * W };
  LaTensor *y = la_tensor_new (LA_DTYPE_F32, 3, shp);
  const float *x = la_tensor_f32 (f30);
  float *yd = la_tensor_f32 (y);
  for (int64_t i = 0; i < nb; i++) {
    if (idx[i] >= T)
      continue;   /* past the end: zero vector */
    for (int64_t w = 0; w < W; w++) {
      int64_t c = idx[i] + (w - m) * stride;
      c = CLAMP (c, 0, T - 1);
      for (int64_t l = 0; l < L; l++)
        memcpy (yd + ((i * L + l) * W + w) * C, x + (l * T + c) * C, sizeof (float) * C);
    }
  }
  if (n_clips)
    *n_clips = (int) clips;
  return y;
}

LaTensor *
la_audio_bucket_to_emb (const LaTensor *bucket)
{
  const int64_t N = bucket->shape[0], L = bucket->shape[1], C = bucket->shape[2];
  int64_t shp[3] = { L, C, N };
  LaTensor *y = la_tensor_new (LA_DTYPE_F32, 3, shp);
  const float *x = la_tensor_f32 (bucket);
  float *yd = la_tensor_f32 (y);
  for (int64_t n = 0; n < N; n++)
    for (int64_t l = 0; l < L; l++)
      for (int64_t c = 0; c < C; c++)
        yd[(l * C + c) * N + n] = x[(n * L + l) * C + c];
  return y;
}

LaTensor *
la_audio_emb_slice (const LaTensor *emb, int64_t start, int64_t count)
{
  const int64_t L = emb->shape[0], C = emb->shape[1], N = emb->shape[2];
  int64_t shp[3] = { L, C, count };
  LaTensor *y = la_tensor_new (LA_DTYPE_F32, 3, shp);
  const float *x = la_tensor_f32 (emb);
  float *yd = la_tensor_f32 (y);
  for (int64_t r = 0; r < L * C; r++)
    for (int64_t i = 0; i < count; i++) {
      int64_t s = start + i;
      yd[r * count + i] = (s >= 0 && s < N) ? x[r * N + s] : 0.f;
    }
  return y;
}
