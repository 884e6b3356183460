/* test-audio-align.c — offline alignment formulas (docs/design/audio-path.md §4):
 * T_a / T_30 / n_clips for the spec's durations, bucket index (6i+2)//5,
 * zero vectors past the end, interpolation of a ramp (exact) and the GPU
 * all-fp32 form against the CPU form, normalisation of sine + DC. */
#include <liveavatar/liveavatar.h>
#include "la-audio.h"
#include <math.h>

static void
test_lengths (void)
{
  LaWav2Vec2Config cfg;
  la_wav2vec2_config_init_large (&cfg);
  g_assert_cmpint (la_wav2vec2_receptive_field (&cfg), ==, 400);
  g_assert_cmpint (la_wav2vec2_hop (&cfg), ==, 320);
  for (int64_t n = 400; n < 40000; n += 37)
    g_assert_cmpint (la_wav2vec2_num_frames (&cfg, n), ==, (n - 400) / 320 + 1);
  g_assert_cmpint (la_wav2vec2_num_frames (&cfg, 399), ==, 0);
  /* docs/design/audio-path.md §4 examples: duration -> T_a, T_30, clips */
  struct { double s; int ta, t30, clips; } ex[] = {
    { 1.00, 49, 29, 1 }, { 1.92, 95, 57, 1 }, { 3.84, 191, 114, 2 }, { 5.0, 249, 149, 3 },
    { 17.7, 884, 530, 10 }, { 60.0, 2999, 1799, 32 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ex); i++) {
    int64_t n = (int64_t) llround (ex[i].s * 16000);
    int64_t ta = la_wav2vec2_num_frames (&cfg, n);
    g_assert_cmpint (ta, ==, ex[i].ta);
    int64_t t30 = la_audio_resampled_len (ta, 50, 30);
    g_assert_cmpint (t30, ==, ex[i].t30);
    /* bucket on a tiny [1, T30, 1] tensor: clip count and zero rows past the end */
    g_autoptr (LaTensor) f = la_tensor_new_v (LA_DTYPE_F32, 1, (int) t30, 1, -1);
    for (int64_t j = 0; j < t30; j++)
      la_tensor_f32 (f)[j] = (float) (j + 1);
    int clips = 0;
    g_autoptr (LaTensor) b = la_audio_bucket (f, 30, 25, 48, 0, &clips, NULL);
    g_assert_nonnull (b);
    g_assert_cmpint (clips, ==, ex[i].clips);
    g_assert_cmpint (b->shape[0], ==, 48 * clips);
    for (int64_t v = 0; v < b->shape[0]; v++) {
      int64_t j = (6 * v + 2) / 5;
      float want = j < t30 ? (float) (j + 1) : 0.f;
      g_assert_cmpfloat (la_tensor_f32 (b)[v], ==, want);
    }
  }
}

static void
test_interp (void)
{
  /* a ramp is reproduced exactly (up to fp32 rounding of the position) */
  const int T = 100;
  g_autoptr (LaTensor) x = la_tensor_new_v (LA_DTYPE_F32, 2, T, 3, -1);   /* [L=2, T, C=3] */
  for (int l = 0; l < 2; l++)
    for (int t = 0; t < T; t++)
      for (int c = 0; c < 3; c++)
        la_tensor_f32 (x)[(l * T + t) * 3 + c] = (float) (t * (c + 1));
  g_autoptr (LaTensor) y = la_audio_interp_linear (x, 50, 30, FALSE, NULL);
  g_autoptr (LaTensor) yg = la_audio_interp_linear (x, 50, 30, TRUE, NULL);
  g_assert_cmpint (y->shape[1], ==, 60);
  const double s = (double) (float) (99.0 / 59.0);
  for (int l = 0; l < 2; l++)
    for (int j = 0; j < 60; j++)
      for (int c = 0; c < 3; c++) {
        double want = j * s * (c + 1);
        g_assert_cmpfloat (fabs (la_tensor_f32 (y)[(l * 60 + j) * 3 + c] - want), <=, 1e-4 * (c + 1) * 99);
        g_assert_cmpfloat (fabs (la_tensor_f32 (yg)[(l * 60 + j) * 3 + c] - la_tensor_f32 (y)[(l * 60 + j) * 3 + c]), <=, 1e-3);
      }
  /* endpoints are exact (align_corners) */
  g_assert_cmpfloat (la_tensor_f32 (y)[0], ==, 0.f);
  g_assert_cmpfloat (la_tensor_f32 (y)[(59) * 3], ==, 99.f);
  /* a bad input is an error, not a crash */
  g_autoptr (GError) e = NULL;
  g_assert_null (la_audio_interp_linear (x, 0, 30, FALSE, &e));
  g_assert_nonnull (e);
}

static void
test_normalize (void)
{
  const int n = 16000;
  float *x = g_new (float, n), st[3];
  for (int i = 0; i < n; i++)
    x[i] = 0.3f + 0.5f * sinf (2 * G_PI * 220 * i / 16000.0f);
  la_audio_normalize (x, n, x, st);
  double m = 0, v = 0;
  for (int i = 0; i < n; i++)
    m += x[i];
  m /= n;
  for (int i = 0; i < n; i++)
    v += (x[i] - m) * (x[i] - m);
  v /= n;
  g_assert_cmpfloat (fabs (m), <, 1e-5);
  g_assert_cmpfloat (fabs (v - 1), <, 1e-3);
  g_assert_cmpfloat (fabs (st[0] - 0.3), <, 1e-4);
  g_assert_cmpfloat (fabs (st[1] - 0.125), <, 1e-4);
  /* silence: finite (the 1e-7 keeps the denominator away from 0) */
  for (int i = 0; i < n; i++)
    x[i] = 0.f;
  la_audio_normalize (x, n, x, NULL);
  for (int i = 0; i < n; i++)
    g_assert_true (isfinite (x[i]));
  g_free (x);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/audio/align/lengths", test_lengths);
  g_test_add_func ("/audio/align/interp", test_interp);
  g_test_add_func ("/audio/align/normalize", test_normalize);
  return g_test_run ();
}
