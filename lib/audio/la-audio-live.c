/* la-audio-live.c — live (streaming) audio features (docs/design/audio-path.md §7).
 *
 * Exact incremental wav2vec2 is impossible (global normalisation, a positional
 * conv that looks 63 frames ahead, bidirectional attention), so block n of
 * `block_frames` video frames runs wav2vec2 on the window
 *     [blk0 − past, blk0 + B + lookahead),   blk0 = n·B, B = 16000·block_frames/fps
 * (start rounded down to the hop so wav2vec2 frames stay on the global grid),
 * normalised with the window's or the running mean/variance.  Video frame i
 * maps to wav2vec2 position p = i·16000/(fps·hop) — exactly 2i at 25 fps —
 * instead of the offline, length-dependent stretch; a fractional p is linearly
 * interpolated.  The look-ahead adds directly to the end-to-end latency.
 */
#include "la-audio.h"
#include "liveavatar/la-error.h"
#include "la-ops.h"
#include <math.h>
#include <string.h>

struct _LaAudioLive {
  LaWav2Vec2 *m;
  LaAudioLiveConfig cfg;
  GArray *buf;            /* float samples from absolute index buf_start */
  int64_t buf_start, n_total, next_block;
  gboolean finished;
  double sum, sumsq;      /* running statistics (double: many samples) */
};

void
la_audio_live_config_init (LaAudioLiveConfig *cfg)
{
  cfg->past_ms = 4000;
  cfg->lookahead_ms = 400;
  cfg->block_frames = 12;
  cfg->video_fps = 25;
  cfg->norm = LA_AUDIO_NORM_WINDOW;
}

LaAudioLive *
la_audio_live_new (LaWav2Vec2 *m, const LaAudioLiveConfig *cfg, GError **error)
{
  if (!m || !cfg || cfg->past_ms < 0 || cfg->lookahead_ms < 0 || cfg->block_frames < 1 ||
      cfg->video_fps < 1 || (int64_t) LA_AUDIO_SAMPLE_RATE * cfg->block_frames % cfg->video_fps) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "audio live: bad configuration (past/lookahead >= 0 ms, block_frames >= 1, "
                 "16000·block_frames divisible by video_fps)");
    return NULL;
  }
  LaAudioLive *l = g_new0 (LaAudioLive, 1);
  l->m = m;
  l->cfg = *cfg;
  l->buf = g_array_new (FALSE, FALSE, sizeof (float));
  return l;
}

void
la_audio_live_free (LaAudioLive *l)
{
  if (!l)
    return;
  g_array_unref (l->buf);
  g_free (l);
}

int64_t
la_audio_live_block_samples (LaAudioLive *l)
{
  return (int64_t) LA_AUDIO_SAMPLE_RATE * l->cfg.block_frames / l->cfg.video_fps;
}

guint64
la_audio_live_latency_ns (LaAudioLive *l)
{
  return (guint64) l->cfg.lookahead_ms * G_GUINT64_CONSTANT (1000000);
}

gboolean
la_audio_live_push (LaAudioLive *l, const float *pcm, size_t n, int sample_rate, int channels, GError **error)
{
  if (sample_rate != LA_AUDIO_SAMPLE_RATE || channels != 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "audio live: %d Hz, %d channels (must be 16000 Hz mono; convert upstream)", sample_rate, channels);
    return FALSE;
  }
  if (l->finished) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "audio live: push after finish");
    return FALSE;
  }
  g_array_append_vals (l->buf, pcm, (guint) n);
  for (size_t i = 0; i < n; i++) {
    l->sum += pcm[i];
    l->sumsq += (double) pcm[i] * pcm[i];
  }
  l->n_total += (int64_t) n;
  return TRUE;
}

void
la_audio_live_finish (LaAudioLive *l)
{
  l->finished = TRUE;
}

LaTensor *
la_audio_live_pop_block (LaAudioLive *l, GError **error)
{
  const LaWav2Vec2Config *c = la_wav2vec2_get_config (l->m);
  const int64_t B = la_audio_live_block_samples (l);
  const int64_t hop = la_wav2vec2_hop (c);
  const int64_t past = (int64_t) l->cfg.past_ms * LA_AUDIO_SAMPLE_RATE / 1000;
  const int64_t ahead = (int64_t) l->cfg.lookahead_ms * LA_AUDIO_SAMPLE_RATE / 1000;
  const int64_t blk0 = l->next_block * B;
  const int64_t win_end = blk0 + B + ahead;
  if (l->finished ? blk0 >= l->n_total : l->n_total < win_end)
    return NULL;
  int64_t win0 = MAX (0, blk0 - past);
  win0 -= win0 % hop;
  if (win0 < l->buf_start)
    win0 = l->buf_start + (hop - l->buf_start % hop) % hop;

  /* Window samples (zeros past the end of a finished stream). */
  const int64_t n = win_end - win0;
  g_autoptr (LaTensor) iv = la_tensor_new (LA_DTYPE_F32, 1, &n);
  float *x = la_tensor_f32 (iv);
  for (int64_t i = 0; i < n; i++) {
    int64_t s = win0 + i;
    x[i] = s < l->n_total ? g_array_index (l->buf, float, s - l->buf_start) : 0.f;
  }
  if (l->cfg.norm == LA_AUDIO_NORM_WINDOW)
    la_audio_normalize (x, (size_t) n, x, NULL);
  else {
    double mean = l->sum / MAX (l->n_total, 1);
    double var = l->sumsq / MAX (l->n_total, 1) - mean * mean;
    float denom = (float) sqrt (MAX (var, 0.0) + 1e-7);
    for (int64_t i = 0; i < n; i++)
      x[i] = (float) (x[i] - mean) / denom;
  }
  g_autoptr (LaTensor) hs = la_wav2vec2_forward (l->m, iv, NULL, error);
  if (!hs)
    return NULL;
  g_autoptr (LaTensor) h = la_tensor_new (LA_DTYPE_F32, 3, hs->shape);
  /* hs lives on the model's backend: download through it. */
  LaBackend *be = la_wav2vec2_get_backend (l->m);
  la_copy (be, h, hs);
  const int64_t L = hs->shape[0], T = hs->shape[1], H = hs->shape[2], F = l->cfg.block_frames;
  int64_t shp[3] = { L, H, F };
  LaTensor *out = la_tensor_new (LA_DTYPE_F32, 3, shp);
  const double per_frame = (double) LA_AUDIO_SAMPLE_RATE / ((double) l->cfg.video_fps * hop);
  for (int64_t f = 0; f < F; f++) {
    int64_t vi = l->next_block * F + f;
    double p = vi * per_frame - (double) (win0 / hop);
    int64_t i0 = (int64_t) floor (p);
    double w1 = p - i0;
    i0 = CLAMP (i0, 0, T - 1);
    int64_t i1 = MIN (i0 + 1, T - 1);
    for (int64_t ll = 0; ll < L; ll++)
      for (int64_t ch = 0; ch < H; ch++) {
        const float *hd = la_tensor_f32 (h);
        float a = hd[(ll * T + i0) * H + ch], b = hd[(ll * T + i1) * H + ch];
        la_tensor_f32 (out)[(ll * H + ch) * F + f] = (float) ((1.0 - w1) * a + w1 * b);
      }
  }
  l->next_block++;
  /* Drop samples no later window needs. */
  int64_t keep = MAX (0, l->next_block * B - past - hop);
  if (keep > l->buf_start) {
    int64_t drop = MIN (keep - l->buf_start, (int64_t) l->buf->len);
    g_array_remove_range (l->buf, 0, (guint) drop);
    l->buf_start += drop;
  }
  return out;
}
