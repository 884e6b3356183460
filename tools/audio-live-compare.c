/* liveavatar-audio-live-compare — how close the live (windowed) audio features
 * come to the offline ones (docs/design/audio-path.md §7), as cosine similarity per wav2vec2
 * hidden state, over a grid of past context × look-ahead × normalisation.
 *
 *   liveavatar-audio-live-compare [--model HF_FOLDER] [--wav FILE | --text TEXT]
 *       [--past 0,250,...] [--ahead 0,80,...] [--norm window,running]
 *       [--seconds S] [--markdown FILE] [--threads N]
 *
 * Offline reference (what lib/session/la-session.c does in offline mode):
 *   whole-buffer normalisation + wav2vec2 over the whole stream
 *   (la_wav2vec2_encode_pcm) -> 50->30 fps align-corners interpolation
 *   (la_audio_interp_linear) -> 25 fps video-frame bucket (la_audio_bucket,
 *   48 frames per clip, m = 0) -> audio_emb [L, C, N] (la_audio_bucket_to_emb).
 * Live: la_audio_live_* fed block by block (push 12 frames' samples, pop every
 *   block whose window is complete), so running statistics only see what a
 *   live element would have received; finish() pads the last block.
 * Metric: for every video frame i that lies inside the audio and has a
 *   non-zero offline vector, cos(live[l, :, i], offline[l, :, i]) for each of
 *   the L+1 hidden states l; the table gives the mean over frames.
 *
 * Speech: --wav reads a 16-bit PCM WAV (any rate, channels averaged); else
 * espeak-ng synthesises --text (22050 Hz) into a temporary file.  Rates other
 * than 16 kHz go through a tiny linear-interpolation resampler (no low-pass:
 * espeak-ng has little energy above 8 kHz; good enough for a windowing study,
 * not for listening).
 *
 * Without --model the full-size wav2vec2-large-xlsr-53 architecture is used
 * with random weights (la_wav2vec2_random_weights): the numbers then
 * characterise the windowing only and must be re-measured with the real
 * checkpoint (pass its HF folder with --model).
 */
#include <liveavatar/liveavatar.h>
#include "la-audio.h"
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define DEFAULT_TEXT                                                              \
  "The quick brown fox jumps over the lazy dog. "                                 \
  "Live avatars need their audio features before the sentence is over, "          \
  "so every block looks a little into the past and a little into the future. "   \
  "How much context is enough? We measure it, one window at a time."

static double now_ms (void) { return g_get_monotonic_time () / 1000.0; }

static guint16 rd16 (const guint8 *p) { return (guint16) (p[0] | p[1] << 8); }
static guint32 rd32 (const guint8 *p) { return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24; }

/* 16-bit PCM WAV -> mono float at its own rate. */
static float *
read_wav (const char *path, size_t *n_out, int *rate_out, GError **error)
{
  g_autofree guint8 *d = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, (char **) &d, &len, error))
    return NULL;
  if (len < 12 || memcmp (d, "RIFF", 4) || memcmp (d + 8, "WAVE", 4)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: not a RIFF/WAVE file", path);
    return NULL;
  }
  int fmt = 0, ch = 0, rate = 0, bits = 0;
  const guint8 *data = NULL;
  gsize data_len = 0;
  for (gsize off = 12; off + 8 <= len;) {
    guint32 sz = rd32 (d + off + 4);
    gsize body = off + 8, avail = MIN ((gsize) sz, len - body);
    if (!memcmp (d + off, "fmt ", 4) && avail >= 16) {
      fmt = rd16 (d + body);
      ch = rd16 (d + body + 2);
      rate = (int) rd32 (d + body + 4);
      bits = rd16 (d + body + 14);
    } else if (!memcmp (d + off, "data", 4)) {
      data = d + body;
      data_len = avail;   /* espeak-ng writing to a pipe leaves sizes unset: take what is there */
    }
    off = body + sz + (sz & 1);
    if (sz == 0xffffffffu)
      break;
  }
  if (fmt != 1 || bits != 16 || ch < 1 || rate < 1 || !data) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "%s: need 16-bit PCM WAV (format %d, %d bits, %d channels, %d Hz)", path, fmt, bits, ch, rate);
    return NULL;
  }
  size_t n = data_len / (2 * (gsize) ch);
  float *x = g_new (float, MAX (n, 1));
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (int c = 0; c < ch; c++)
      s += (gint16) rd16 (data + 2 * (i * ch + c));
    x[i] = (float) (s / ch / 32768.0);
  }
  *n_out = n;
  *rate_out = rate;
  return x;
}

/* Linear-interpolation resampler (see the header comment for its limits). */
static float *
resample_linear (const float *x, size_t n, int in_rate, int out_rate, size_t *n_out)
{
  size_t m = (size_t) ((double) n * out_rate / in_rate);
  float *y = g_new (float, MAX (m, 1));
  for (size_t j = 0; j < m; j++) {
    double p = (double) j * in_rate / out_rate;
    size_t i0 = (size_t) p;
    double w = p - (double) i0;
    float a = x[MIN (i0, n - 1)], b = x[MIN (i0 + 1, n - 1)];
    y[j] = (float) ((1.0 - w) * a + w * b);
  }
  *n_out = m;
  return y;
}

static float *
speak (const char *text, size_t *n, int *rate, GError **error)
{
  g_autofree char *tmp = NULL;
  int fd = g_file_open_tmp ("la-audio-live-XXXXXX.wav", &tmp, error);
  if (fd < 0)
    return NULL;
  g_close (fd, NULL);
  const char *argv[] = { "espeak-ng", "-w", tmp, text, NULL };
  int status = 0;
  g_autofree char *err = NULL;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, &err, &status, error) ||
      !g_spawn_check_wait_status (status, error)) {
    g_prefix_error (error, "espeak-ng (%s): ", err ? g_strstrip (err) : "");
    g_unlink (tmp);
    return NULL;
  }
  float *x = read_wav (tmp, n, rate, error);
  g_unlink (tmp);
  return x;
}

static int *
parse_list (const char *s, int *count, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (s, ",", -1);
  int k = (int) g_strv_length (parts);
  int *v = g_new (int, MAX (k, 1));
  for (int i = 0; i < k; i++) {
    char *end = NULL;
    long x = strtol (parts[i], &end, 10);
    if (!*parts[i] || *end || x < 0 || x > 600000) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "bad millisecond list entry '%s' in '%s'", parts[i], s);
      g_free (v);
      return NULL;
    }
    v[i] = (int) x;
  }
  *count = k;
  return v;
}

/* Offline audio_emb [L, C, N] exactly as the session's offline mode builds it. */
static LaTensor *
offline_features (LaWav2Vec2 *m, const float *pcm, size_t n, LaTensor **hs_out, GError **error)
{
  g_autoptr (LaTensor) hs_dev = la_wav2vec2_encode_pcm (m, pcm, n, LA_AUDIO_SAMPLE_RATE, 1, error);
  if (!hs_dev)
    return NULL;
  g_autoptr (LaTensor) hs = la_tensor_as_f32 (hs_dev);
  *hs_out = la_tensor_ref (hs);
  g_autoptr (LaTensor) f30 = la_audio_interp_linear (hs, 50, 30, FALSE, error);
  if (!f30)
    return NULL;
  /* 25 fps, 48 frames per clip (infer_frames), m = 0: la-session.c's call. */
  g_autoptr (LaTensor) bucket = la_audio_bucket (f30, 30, 25, 48, 0, NULL, error);
  if (!bucket)
    return NULL;
  return la_audio_bucket_to_emb (bucket);
}

/* Adds cos(a[l, :, f], off[l, :, first + f]) to cos_sum[l] for every frame f
 * inside the audio (< n_frames) with a non-zero offline vector; a [L, C, F]. */
static void
accumulate (const float *ad, int64_t F, int64_t first, const LaTensor *off, int64_t n_frames,
            double *cos_sum, int64_t *n_cmp)
{
  const int64_t L = off->shape[0], C = off->shape[1], N = off->shape[2];
  const float *od = la_tensor_f32 (off);
  for (int64_t f = 0; f < F; f++) {
    int64_t i = first + f;
    if (i >= n_frames || i >= N)
      continue;
    double on0 = 0;
    for (int64_t c = 0; c < C; c++)
      on0 += fabs (od[(0 * C + c) * N + i]);
    if (on0 == 0)
      continue;   /* offline zero row (past the end of the bucketed audio) */
    for (int64_t l = 0; l < L; l++) {
      double dot = 0, na = 0, nb = 0;
      for (int64_t c = 0; c < C; c++) {
        double x = ad[(l * C + c) * F + f], y = od[(l * C + c) * N + i];
        dot += x * y;
        na += x * x;
        nb += y * y;
      }
      cos_sum[l] += dot / (sqrt (na * nb) + 1e-30);
    }
    (*n_cmp)++;
  }
}

/* The ceiling of any live configuration: the offline (whole-stream) hidden
 * states read at the live time mapping p = i·16000/(fps·hop) (2i at 25 fps,
 * linear between floor(p) and floor(p)+1) instead of the offline 50->30 fps
 * interpolation + bucket, which lands up to 2/3 of a wav2vec2 frame (13 ms)
 * away.  hs [L, T, C]; returns [L, C, n_frames]. */
static LaTensor *
offline_at_live_mapping (const LaTensor *hs, int64_t n_frames, int64_t hop)
{
  const int64_t L = hs->shape[0], T = hs->shape[1], C = hs->shape[2];
  int64_t shp[3] = { L, C, MAX (n_frames, 1) };
  LaTensor *y = la_tensor_new (LA_DTYPE_F32, 3, shp);
  const float *h = la_tensor_f32 (hs);
  float *yd = la_tensor_f32 (y);
  const double per_frame = (double) LA_AUDIO_SAMPLE_RATE / (25.0 * hop);
  for (int64_t i = 0; i < n_frames; i++) {
    double p = i * per_frame;
    int64_t i0 = (int64_t) floor (p);
    double w1 = p - i0;
    i0 = CLAMP (i0, 0, T - 1);
    int64_t i1 = MIN (i0 + 1, T - 1);
    for (int64_t l = 0; l < L; l++)
      for (int64_t c = 0; c < C; c++)
        yd[(l * C + c) * shp[2] + i] = (float) ((1.0 - w1) * h[(l * T + i0) * C + c] + w1 * h[(l * T + i1) * C + c]);
  }
  return y;
}

/* Runs the live path over pcm; fills cos_sum[l] with the sum over compared frames. */
static gboolean
live_compare (LaWav2Vec2 *m, const LaAudioLiveConfig *cfg, const float *pcm, size_t n,
              const LaTensor *off, int64_t n_frames, double *cos_sum, int64_t *n_cmp, GError **error)
{
  LaAudioLive *live = la_audio_live_new (m, cfg, error);
  if (!live)
    return FALSE;
  const int64_t L = off->shape[0], C = off->shape[1];
  const int64_t B = la_audio_live_block_samples (live);
  int64_t block = 0;
  size_t pushed = 0;
  gboolean ok = TRUE, done = FALSE;
  *n_cmp = 0;
  for (int64_t l = 0; l < L; l++)
    cos_sum[l] = 0;
  while (ok && !done) {
    if (pushed < n) {
      size_t k = MIN ((size_t) B, n - pushed);
      ok = la_audio_live_push (live, pcm + pushed, k, LA_AUDIO_SAMPLE_RATE, 1, error);
      pushed += k;
      if (pushed == n)
        la_audio_live_finish (live);
    }
    for (;;) {
      if (!ok)
        break;
      GError *e = NULL;
      g_autoptr (LaTensor) a = la_audio_live_pop_block (live, &e);
      if (!a) {
        if (e) {
          g_propagate_error (error, e);
          ok = FALSE;
        } else if (pushed == n)
          done = TRUE;
        break;
      }
      if (a->shape[0] != L || a->shape[1] != C) {
        g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "live block [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                     ", F] does not match the offline features [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", N]",
                     a->shape[0], a->shape[1], L, C);
        ok = FALSE;
        break;
      }
      accumulate (la_tensor_f32 (a), a->shape[2], block * a->shape[2], off, n_frames, cos_sum, n_cmp);
      block++;
    }
  }
  la_audio_live_free (live);
  return ok;
}

static gboolean
run (int argc, char **argv, GError **error)
{
  char *model = NULL, *wav = NULL, *text = NULL, *past_s = NULL, *ahead_s = NULL, *norm_s = NULL, *md = NULL;
  int threads = 0, seed = 1;
  double seconds = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "HF wav2vec2 folder (default: full-size architecture, random weights)", "DIR" },
    { "wav", 'w', 0, G_OPTION_ARG_FILENAME, &wav, "16-bit PCM WAV to use instead of espeak-ng", "FILE" },
    { "text", 0, 0, G_OPTION_ARG_STRING, &text, "Text for espeak-ng (default: four sentences, ~14 s)", "TEXT" },
    { "past", 'p', 0, G_OPTION_ARG_STRING, &past_s, "Past context grid in ms (default 0,250,500,1000,2000,4000)", "LIST" },
    { "ahead", 'a', 0, G_OPTION_ARG_STRING, &ahead_s, "Look-ahead grid in ms (default 0,80,160,400,800)", "LIST" },
    { "norm", 'n', 0, G_OPTION_ARG_STRING, &norm_s, "window,running (default both)", "LIST" },
    { "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "Use only the first S seconds of the speech", "S" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random-weight seed (default 1)", "N" },
    { "markdown", 'o', 0, G_OPTION_ARG_FILENAME, &md, "Also write the table as markdown to FILE", "FILE" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads (default all)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— live vs offline audio features (cosine per wav2vec2 layer)");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, error))
    return FALSE;

  int n_past = 0, n_ahead = 0, n_norm = 0;
  g_autofree int *past = parse_list (past_s ? past_s : "0,250,500,1000,2000,4000", &n_past, error);
  if (!past)
    return FALSE;
  g_autofree int *ahead = parse_list (ahead_s ? ahead_s : "0,80,160,400,800", &n_ahead, error);
  if (!ahead)
    return FALSE;
  g_auto (GStrv) norms = g_strsplit (norm_s ? norm_s : "window,running", ",", -1);
  n_norm = (int) g_strv_length (norms);
  for (int i = 0; i < n_norm; i++)
    if (strcmp (norms[i], "window") && strcmp (norms[i], "running")) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "--norm: '%s' is neither window nor running", norms[i]);
      return FALSE;
    }

  /* Speech at 16 kHz. */
  size_t n_raw = 0, n = 0;
  int rate = 0;
  g_autofree float *raw = wav ? read_wav (wav, &n_raw, &rate, error) : speak (text ? text : DEFAULT_TEXT, &n_raw, &rate, error);
  if (!raw)
    return FALSE;
  if (n_raw == 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: no samples", wav ? wav : "espeak-ng output");
    return FALSE;
  }
  g_autofree float *pcm = rate == LA_AUDIO_SAMPLE_RATE ? g_memdup2 (raw, n_raw * sizeof (float))
                                                      : resample_linear (raw, n_raw, rate, LA_AUDIO_SAMPLE_RATE, &n);
  if (rate == LA_AUDIO_SAMPLE_RATE)
    n = n_raw;
  if (seconds > 0 && (size_t) (seconds * LA_AUDIO_SAMPLE_RATE) < n)
    n = (size_t) (seconds * LA_AUDIO_SAMPLE_RATE);
  const int64_t n_frames = (int64_t) n * 25 / LA_AUDIO_SAMPLE_RATE;   /* video frames inside the audio */
  printf ("speech: %s, %d Hz -> %.2f s at 16 kHz (%" G_GINT64_FORMAT " video frames at 25 fps)\n",
          wav ? wav : "espeak-ng", rate, (double) n / LA_AUDIO_SAMPLE_RATE, n_frames);

  g_autoptr (LaBackend) be = la_backend_cpu_new (threads);
  LaWav2Vec2 *m = NULL;
  double t0 = now_ms ();
  if (model)
    m = la_wav2vec2_open (be, model, error);
  else {
    LaWav2Vec2Config c;
    la_wav2vec2_config_init_large (&c);
    g_autoptr (LaCheckpoint) w = la_wav2vec2_random_weights (&c, (guint64) seed);
    m = la_wav2vec2_new (be, &c, w, error);
  }
  if (!m)
    return FALSE;
  const LaWav2Vec2Config *cfg = la_wav2vec2_get_config (m);
  printf ("wav2vec2: %s, %d layers, width %d (%.0f ms to load)\n", model ? model : "random weights (large architecture)",
          cfg->num_layers, cfg->hidden_size, now_ms () - t0);

  t0 = now_ms ();
  g_autoptr (LaTensor) hs = NULL;
  g_autoptr (LaTensor) off = offline_features (m, pcm, n, &hs, error);
  if (!off) {
    la_wav2vec2_free (m);
    return FALSE;
  }
  double t_off = now_ms () - t0;
  printf ("offline features [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] in %.0f ms (real-time factor %.2f)\n",
          off->shape[0], off->shape[1], off->shape[2], t_off, t_off / 1000.0 / ((double) n / LA_AUDIO_SAMPLE_RATE));

  const int64_t L = off->shape[0];
  /* Shown layers: 0, L/4, L/2, 3L/4, L-1 (0, 6, 12, 18, 24 for the real 25). */
  int64_t show[5] = { 0, (L - 1) / 4, (L - 1) / 2, 3 * (L - 1) / 4, L - 1 };
  GString *tab = g_string_new (NULL);
  g_string_append (tab, "| norm | past ms | ahead ms |");
  for (int k = 0; k < 5; k++)
    g_string_append_printf (tab, " layer %" G_GINT64_FORMAT " |", show[k]);
  g_string_append (tab, " mean (all layers) | frames | ms/run |\n|---|---:|---:|");
  for (int k = 0; k < 8; k++)   /* 5 layers, mean, frames, ms */
    g_string_append (tab, "---:|");
  g_string_append (tab, "\n");
  g_autofree double *cs = g_new (double, L);
  {
    g_autoptr (LaTensor) ceil_t = offline_at_live_mapping (hs, n_frames, la_wav2vec2_hop (cfg));
    int64_t nc = 0;
    for (int64_t l = 0; l < L; l++)
      cs[l] = 0;
    accumulate (la_tensor_f32 (ceil_t), ceil_t->shape[2], 0, off, n_frames, cs, &nc);
    double mean = 0;
    for (int64_t l = 0; l < L; l++)
      mean += cs[l] / MAX (nc, 1);
    g_string_append (tab, "| whole stream (ceiling) | all | all |");
    for (int k = 0; k < 5; k++)
      g_string_append_printf (tab, " %.3f |", cs[show[k]] / MAX (nc, 1));
    g_string_append_printf (tab, " %.3f | %" G_GINT64_FORMAT " | 0 |\n", mean / L, nc);
  }
  printf ("\n%s", tab->str);
  fflush (stdout);

  gboolean ok = TRUE;
  for (int in = 0; ok && in < n_norm; in++)
    for (int ip = 0; ok && ip < n_past; ip++)
      for (int ia = 0; ok && ia < n_ahead; ia++) {
        LaAudioLiveConfig lc;
        la_audio_live_config_init (&lc);
        lc.past_ms = past[ip];
        lc.lookahead_ms = ahead[ia];
        lc.norm = strcmp (norms[in], "window") ? LA_AUDIO_NORM_RUNNING : LA_AUDIO_NORM_WINDOW;
        int64_t nc = 0;
        t0 = now_ms ();
        if (!live_compare (m, &lc, pcm, n, off, n_frames, cs, &nc, error)) {
          ok = FALSE;
          break;
        }
        double mean = 0;
        for (int64_t l = 0; l < L; l++)
          mean += cs[l] / MAX (nc, 1);
        GString *row = g_string_new (NULL);
        g_string_append_printf (row, "| %s | %d | %d |", norms[in], past[ip], ahead[ia]);
        for (int k = 0; k < 5; k++)
          g_string_append_printf (row, " %.3f |", cs[show[k]] / MAX (nc, 1));
        g_string_append_printf (row, " %.3f | %" G_GINT64_FORMAT " | %.0f |\n", mean / L, nc, now_ms () - t0);
        printf ("%s", row->str);
        fflush (stdout);
        g_string_append (tab, row->str);
        g_string_free (row, TRUE);
      }
  la_wav2vec2_free (m);
  if (!ok) {
    g_string_free (tab, TRUE);
    return FALSE;
  }
  if (md && !g_file_set_contents (md, tab->str, -1, error)) {
    g_string_free (tab, TRUE);
    return FALSE;
  }
  g_string_free (tab, TRUE);
  return TRUE;
}

int
main (int argc, char **argv)
{
  GError *e = NULL;
  if (run (argc, argv, &e))
    return 0;
  fprintf (stderr, "liveavatar-audio-live-compare: %s\n", e->message);
  g_error_free (e);
  return 1;
}
