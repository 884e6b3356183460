/* liveavatar-render end to end: N clips of audio give 48N-3 frames at
 * 25 fps in the MP4, with the original audio's duration; the tiny preset
 * renders at the demo's 128x128 unless --max-area says otherwise; bad inputs
 * give a one-line error and a non-zero exit, never a crash. */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static char *tmp, *render_bin, *model_dir;

static void
write_wav (const char *path, int rate, double seconds)
{
  int n = (int) (rate * seconds);
  GByteArray *b = g_byte_array_new ();
  guint32 data = (guint32) n * 2, riff = 36 + data, fmt = 16, br = (guint32) rate * 2, r = (guint32) rate;
  guint16 pcm = 1, ch = 1, align = 2, bits = 16;
#define PUT(p, s) g_byte_array_append (b, (const guint8 *) (p), s)
  PUT ("RIFF", 4); PUT (&riff, 4); PUT ("WAVEfmt ", 8); PUT (&fmt, 4); PUT (&pcm, 2); PUT (&ch, 2);
  PUT (&r, 4); PUT (&br, 4); PUT (&align, 2); PUT (&bits, 2); PUT ("data", 4); PUT (&data, 4);
  for (int i = 0; i < n; i++) {
    gint16 v = (gint16) (8000 * sin (i * 0.03) * sin (i * 0.0005));
    PUT (&v, 2);
  }
#undef PUT
  g_assert_true (g_file_set_contents (path, (char *) b->data, b->len, NULL));
  g_byte_array_unref (b);
}

static void
write_png (const char *path)
{
  g_autofree char *d = g_strdup_printf ("videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=160,height=240 ! "
                                        "pngenc ! filesink location=\"%s\"", path);
  GstElement *p = gst_parse_launch (d, NULL);
  g_assert_nonnull (p);
  gst_element_set_state (p, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus (p);
  gst_message_unref (gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
}

static int
run (const char *args, char **err)
{
  g_autofree char *cmd = g_strdup_printf ("%s %s", render_bin, args);
  int status = 0;
  g_autofree char *out = NULL;
  g_assert_true (g_spawn_command_line_sync (cmd, &out, err, &status, NULL));
  return g_spawn_check_wait_status (status, NULL) ? 0 : 1;
}

/* Video frame count and the audio duration (ns) of an MP4. */
static void
probe (const char *mp4, int *frames, gint64 *audio_ns, gint64 *first_pts, gint64 *last_pts)
{
  g_autofree char *d = g_strdup_printf (
      "filesrc location=\"%s\" ! qtdemux name=d  d.video_0 ! queue ! h264parse ! appsink name=v sync=false "
      "d.audio_0 ! queue ! aacparse ! appsink name=a sync=false", mp4);
  GstElement *p = gst_parse_launch (d, NULL);
  g_assert_nonnull (p);
  GstElement *v = gst_bin_get_by_name (GST_BIN (p), "v"), *a = gst_bin_get_by_name (GST_BIN (p), "a");
  gst_element_set_state (p, GST_STATE_PLAYING);
  *frames = 0;
  *audio_ns = 0;
  *last_pts = 0;
  *first_pts = G_MAXINT64;
  GstSample *s;
  while ((s = gst_app_sink_pull_sample (GST_APP_SINK (v)))) {
    gint64 pts = (gint64) GST_BUFFER_PTS (gst_sample_get_buffer (s));
    (*frames)++;
    *last_pts = MAX (*last_pts, pts);
    *first_pts = MIN (*first_pts, pts);
    gst_sample_unref (s);
  }
  while ((s = gst_app_sink_pull_sample (GST_APP_SINK (a)))) {
    GstBuffer *b = gst_sample_get_buffer (s);
    *audio_ns = MAX (*audio_ns, (gint64) (GST_BUFFER_PTS (b) + GST_BUFFER_DURATION (b)));
    gst_sample_unref (s);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (v);
  gst_object_unref (a);
  gst_object_unref (p);
}

static void
test_render_frames (void)
{
  const int N = 1;
  g_autofree char *wav = g_build_filename (tmp, "a.wav", NULL);
  g_autofree char *png = g_build_filename (tmp, "face.png", NULL);
  g_autofree char *mp4 = g_build_filename (tmp, "out.mp4", NULL);
  write_wav (wav, 22050, N * 1.92);
  write_png (png);
  g_autofree char *args = g_strdup_printf ("--model '%s' --lora '%s' --image '%s' --audio '%s' -o '%s' --max-area 16384 "
                                           "--sink-offset 9 --prompt 'a person talking'", model_dir, model_dir, png, wav, mp4);
  g_autofree char *err = NULL;
  g_assert_cmpint (run (args, &err), ==, 0);
  int frames;
  gint64 audio_ns, first_pts, last_pts;
  probe (mp4, &frames, &audio_ns, &first_pts, &last_pts);
  g_assert_cmpint (frames, ==, 48 * N - 3);
  /* 25 fps: the frames span (frames - 1) x 40 ms. */
  g_assert_cmpint (last_pts - first_pts, ==, (gint64) (frames - 1) * 40 * GST_MSECOND);
  g_assert_cmpint (llabs (audio_ns - (gint64) (N * 1.92 * GST_SECOND)), <, 50 * GST_MSECOND);
}

/* Width and height of an MP4's video stream. */
static void
probe_size (const char *mp4, int *width, int *height)
{
  g_autofree char *d = g_strdup_printf (
      "filesrc location=\"%s\" ! qtdemux ! h264parse ! appsink name=v sync=false", mp4);
  GstElement *p = gst_parse_launch (d, NULL);
  g_assert_nonnull (p);
  GstElement *v = gst_bin_get_by_name (GST_BIN (p), "v");
  gst_element_set_state (p, GST_STATE_PLAYING);
  GstSample *s = gst_app_sink_pull_sample (GST_APP_SINK (v));
  g_assert_nonnull (s);
  GstStructure *st = gst_caps_get_structure (gst_sample_get_caps (s), 0);
  g_assert_true (gst_structure_get_int (st, "width", width));
  g_assert_true (gst_structure_get_int (st, "height", height));
  gst_sample_unref (s);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (v);
  gst_object_unref (p);
}

/* --preset tiny without --max-area: the demo's small area, not 704x384
 * (minutes of VAE for a random-weight picture); --max-area still rules. */
static void
test_tiny_preset_area (void)
{
  g_autofree char *wav = g_build_filename (tmp, "a.wav", NULL);
  g_autofree char *png = g_build_filename (tmp, "tall.png", NULL);
  g_autofree char *mp4 = g_build_filename (tmp, "tiny.mp4", NULL);
  g_autofree char *cache = g_build_filename (tmp, "cache", NULL);
  write_wav (wav, 16000, 0.5);
  write_png (png);
  /* the generated model goes to the user cache: keep it in tmp */
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  g_autofree char *args = g_strdup_printf ("--preset tiny --image '%s' --audio '%s' -o '%s' --sink-offset 9",
                                           png, wav, mp4);
  g_autofree char *err = NULL;
  g_assert_cmpint (run (args, &err), ==, 0);
  int w, h;
  probe_size (mp4, &w, &h);
  g_assert_cmpint (w * h, <=, 128 * 128);
  g_assert_cmpint (w * h, >=, 128 * 128 / 2);
  g_autofree char *args2 = g_strdup_printf ("--preset tiny --image '%s' --audio '%s' -o '%s' --sink-offset 9 "
                                            "--max-area 4096", png, wav, mp4);
  g_autofree char *err2 = NULL;
  g_assert_cmpint (run (args2, &err2), ==, 0);
  probe_size (mp4, &w, &h);
  g_assert_cmpint (w * h, <=, 4096);
  g_autofree char *err3 = NULL;
  g_autofree char *args3 = g_strdup_printf ("--preset huge --image '%s' --audio '%s' -o /dev/null", png, wav);
  g_assert_cmpint (run (args3, &err3), !=, 0);
  g_assert_nonnull (strstr (err3, "huge"));
  g_unsetenv ("XDG_CACHE_HOME");
}

static void
test_bad_inputs (void)
{
  g_autofree char *wav = g_build_filename (tmp, "a.wav", NULL);
  g_autofree char *png = g_build_filename (tmp, "face.png", NULL);
  g_autofree char *junk = g_build_filename (tmp, "junk.png", NULL);
  g_assert_true (g_file_set_contents (junk, "not an image", -1, NULL));
  struct { const char *args_fmt; const char *needle; } cases[] = {
    { "--model '%s' --image '/nonexistent.png' --audio '%s' -o /dev/null", "/nonexistent.png" },
    { "--model '%s' --image '%s' --audio '/nonexistent.wav' -o /dev/null", "/nonexistent.wav" },
    { "--model '/nonexistent-model' --image '%s' --audio '%s' -o /dev/null", "/nonexistent-model" },
    { "--model '%s' --image '%s' --audio '%s' -o /dev/null", "junk.png" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *args = NULL;
    if (i == 0)
      args = g_strdup_printf (cases[i].args_fmt, model_dir, wav);
    else if (i == 1)
      args = g_strdup_printf (cases[i].args_fmt, model_dir, png);
    else if (i == 2)
      args = g_strdup_printf (cases[i].args_fmt, png, wav);
    else
      args = g_strdup_printf (cases[i].args_fmt, model_dir, junk, wav);
    g_autofree char *err = NULL;
    g_assert_cmpint (run (args, &err), !=, 0);
    g_assert_nonnull (strstr (err, cases[i].needle));
    g_assert_nonnull (strstr (err, "liveavatar-render: "));
  }
  /* A corrupt audio file. */
  g_autofree char *bad = g_build_filename (tmp, "bad.wav", NULL);
  g_assert_true (g_file_set_contents (bad, "RIFF\x10\0\0\0WAVEjunkjunk", 20, NULL));
  g_autofree char *args = g_strdup_printf ("--model '%s' --image '%s' --audio '%s' -o /dev/null", model_dir, png, bad);
  g_autofree char *err = NULL;
  g_assert_cmpint (run (args, &err), !=, 0);
  g_assert_nonnull (strstr (err, "bad.wav"));
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  render_bin = g_strdup (g_getenv ("LA_RENDER"));
  const char *mk = g_getenv ("LA_MKMODEL");
  if (!render_bin || !mk)
    g_error ("LA_RENDER and LA_MKMODEL must be set");
  tmp = g_dir_make_tmp ("la-render-XXXXXX", NULL);
  model_dir = g_build_filename (tmp, "tiny", NULL);
  g_autofree char *cmd = g_strdup_printf ("'%s' --preset tiny --seed 5 --out '%s' >/dev/null 2>&1", mk, model_dir);
  if (system (cmd) != 0)
    g_error ("could not generate the tiny model");
  g_test_add_func ("/render/frames-and-audio", test_render_frames);
  g_test_add_func ("/render/tiny-preset-area", test_tiny_preset_area);
  g_test_add_func ("/render/bad-inputs", test_bad_inputs);
  int r = g_test_run ();
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  (void) !system (rm);
  return r;
}
