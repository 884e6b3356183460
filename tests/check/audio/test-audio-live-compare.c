/* test-audio-live-compare.c — liveavatar-audio-live-compare end to end on a
 * tiny random wav2vec2 (written as an HF folder, as --model takes a real
 * checkpoint) and a synthetic 22050 Hz stereo WAV (exercises the WAV reader,
 * the down-mix and the linear resampler; no espeak-ng needed):
 *  - the markdown table has the ceiling row (offline features at the live
 *    time mapping) then one row per norm × past × look-ahead, cosines in
 *    [-1, 1], a positive frame count ≤ the video frames inside the audio;
 *  - every configuration compares the same frames: all video frames inside
 *    the audio (the live blocks and the offline bucket both cover them),
 *    on two different tiny configs and lengths (the tool reads every size
 *    from the model folder);
 *  - bad arguments / files end with status 1 and a message naming them.
 * The tool path comes from LA_AUDIO_LIVE_COMPARE (set by meson). */
#include <liveavatar/liveavatar.h>
#include "la-audio.h"
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
wr16 (GByteArray *b, guint16 v)
{
  guint8 p[2] = { v & 0xff, v >> 8 };
  g_byte_array_append (b, p, 2);
}

static void
wr32 (GByteArray *b, guint32 v)
{
  guint8 p[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };
  g_byte_array_append (b, p, 4);
}

/* Stereo 16-bit WAV of a speech-like signal (pitch + syllable envelope + noise). */
static void
write_wav (const char *path, double seconds, int rate, guint32 seed)
{
  int n = (int) (seconds * rate);
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *) "RIFF", 4);
  wr32 (b, 36 + 4 * n);
  g_byte_array_append (b, (const guint8 *) "WAVEfmt ", 8);
  wr32 (b, 16); wr16 (b, 1); wr16 (b, 2); wr32 (b, rate); wr32 (b, rate * 4); wr16 (b, 4); wr16 (b, 16);
  g_byte_array_append (b, (const guint8 *) "data", 4);
  wr32 (b, 4 * n);
  GRand *r = g_rand_new_with_seed (seed);
  for (int i = 0; i < n; i++) {
    double t = (double) i / rate;
    double env = MAX (0.0, sin (2 * G_PI * 3.1 * t));
    double v = 0.4 * env * sin (2 * G_PI * (140 + 30 * sin (t)) * t) + 0.02 * g_rand_double_range (r, -1, 1);
    wr16 (b, (guint16) (gint16) (v * 32767));
    wr16 (b, (guint16) (gint16) (0.5 * v * 32767));
  }
  g_rand_free (r);
  g_assert_true (g_file_set_contents (path, (const char *) b->data, b->len, NULL));
  g_byte_array_unref (b);
}

static char *
model_folder (const char *dir, int hidden, int layers, int heads)
{
  LaWav2Vec2Config c;
  la_wav2vec2_config_init_large (&c);   /* real kernels / strides: hop 320 */
  for (int i = 0; i < c.n_conv; i++)
    c.conv_dim[i] = 8;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.num_heads = heads;
  c.intermediate_size = 2 * hidden;
  c.pos_kernel = 8;
  c.pos_groups = 2;
  char *f = g_build_filename (dir, "w2v", NULL);
  g_autoptr (GError) e = NULL;
  g_assert_true (la_wav2vec2_write_random_folder (f, &c, 5, &e));
  g_assert_no_error (e);
  return f;
}

static int
run_tool (const char *const *args, char **out, char **err)
{
  const char *tool = g_getenv ("LA_AUDIO_LIVE_COMPARE");
  g_assert_nonnull (tool);
  GPtrArray *a = g_ptr_array_new ();
  g_ptr_array_add (a, (gpointer) tool);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (a, (gpointer) args[i]);
  g_ptr_array_add (a, NULL);
  int status = 0;
  g_autoptr (GError) e = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) a->pdata, NULL, 0, NULL, NULL, out, err, &status, &e));
  g_ptr_array_free (a, TRUE);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

typedef struct { char norm[16]; int past, ahead, frames; double cos[5], mean; } Row;

static int
parse_rows (const char *md_path, Row *rows, int max)
{
  g_autofree char *s = NULL;
  g_assert_true (g_file_get_contents (md_path, &s, NULL, NULL));
  g_auto (GStrv) lines = g_strsplit (s, "\n", -1);
  int k = 0;
  for (int i = 2; lines[i] && *lines[i]; i++) {
    g_assert_cmpint (k, <, max);
    Row *r = &rows[k++];
    if (g_str_has_prefix (lines[i], "| whole stream (ceiling) | all | all |")) {
      /* offline features at the live time mapping: past/ahead reported as -1 */
      g_strlcpy (r->norm, "ceiling", sizeof r->norm);
      r->past = r->ahead = -1;
      int n = sscanf (lines[i] + strlen ("| whole stream (ceiling) | all | all |"),
                      " %lf | %lf | %lf | %lf | %lf | %lf | %d |", &r->cos[0], &r->cos[1], &r->cos[2],
                      &r->cos[3], &r->cos[4], &r->mean, &r->frames);
      g_assert_cmpint (n, ==, 7);
      continue;
    }
    int n = sscanf (lines[i], "| %15s | %d | %d | %lf | %lf | %lf | %lf | %lf | %lf | %d |", r->norm, &r->past,
                    &r->ahead, &r->cos[0], &r->cos[1], &r->cos[2], &r->cos[3], &r->cos[4], &r->mean, &r->frames);
    g_assert_cmpint (n, ==, 10);
  }
  return k;
}

static void
check_config (int hidden, int layers, int heads, double seconds, guint32 seed)
{
  g_autofree char *dir = g_dir_make_tmp ("la-alc-XXXXXX", NULL);
  g_autofree char *model = model_folder (dir, hidden, layers, heads);
  g_autofree char *wav = g_build_filename (dir, "s.wav", NULL);
  g_autofree char *md = g_build_filename (dir, "t.md", NULL);
  write_wav (wav, seconds, 22050, seed);
  const char *args[] = { "--model", model, "--wav", wav, "--past", "0,1000", "--ahead", "0,400",
                         "--norm", "window,running", "--threads", "1", "--markdown", md, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int rc = run_tool (args, &out, &err);
  if (rc != 0)
    g_printerr ("%s\n%s\n", out, err);
  g_assert_cmpint (rc, ==, 0);
  Row rows[32];
  int n = parse_rows (md, rows, 32);
  g_assert_cmpint (n, ==, 1 + 2 * 2 * 2);
  g_assert_cmpstr (rows[0].norm, ==, "ceiling");
  const int n_frames = (int) (seconds * 25);
  for (int i = 0; i < n; i++) {
    g_assert_cmpint (rows[i].frames, ==, rows[0].frames);
    g_assert_cmpint (rows[i].frames, >=, n_frames - 2);
    g_assert_cmpint (rows[i].frames, <=, n_frames);
    for (int j = 0; j < 5; j++)
      g_assert_cmpfloat (fabs (rows[i].cos[j]), <=, 1.0005);
    g_assert_cmpfloat (fabs (rows[i].mean), <=, 1.0005);
    g_test_message ("hidden %d layers %d: %s past %d ahead %d: mean cos %.4f", hidden, layers, rows[i].norm,
                    rows[i].past, rows[i].ahead, rows[i].mean);
  }
  g_unlink (md);
  g_unlink (wav);
  g_autofree char *cj = g_build_filename (model, "config.json", NULL);
  g_autofree char *st = g_build_filename (model, "model.safetensors", NULL);
  g_unlink (cj);
  g_unlink (st);
  g_rmdir (model);
  g_rmdir (dir);
}

static void
test_grid_small (void)
{
  check_config (16, 2, 2, 3.0, 1);
}

static void
test_grid_other (void)
{
  check_config (24, 3, 3, 4.3, 2);
}

static void
test_errors (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-alc-XXXXXX", NULL);
  g_autofree char *junk = g_build_filename (dir, "junk.wav", NULL);
  g_assert_true (g_file_set_contents (junk, "not a wav file at all", -1, NULL));
  struct { const char *args[8]; const char *needle; } cases[] = {
    { { "--wav", junk, "--past", "0,x", NULL }, "'x'" },
    { { "--wav", junk, "--norm", "median", NULL }, "median" },
    { { "--wav", junk, NULL }, "junk.wav" },
    { { "--wav", junk, "--model", dir, NULL }, "junk.wav" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *out = NULL, *err = NULL;
    g_assert_cmpint (run_tool (cases[i].args, &out, &err), ==, 1);
    g_assert_nonnull (strstr (err, cases[i].needle));
  }
  g_unlink (junk);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/audio-live-compare/grid-small", test_grid_small);
  g_test_add_func ("/audio-live-compare/grid-other-config", test_grid_other);
  g_test_add_func ("/audio-live-compare/errors", test_errors);
  return g_test_run ();
}
