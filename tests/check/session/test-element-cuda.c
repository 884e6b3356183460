/* liveavatarsrc devices=cuda:0 against devices=cpu: the same pipeline (a
 * tone, the tiny model, a fixed sink offset) gives the same number of RGB
 * frames with the same timestamps, and pixels within the bounds the session
 * test states for bf16 weights (test-session-cuda.c).  Runs where a CUDA
 * device exists (a GPU or the emulated device); skipped (77) elsewhere. */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <liveavatar/la-cuda.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  GPtrArray *frames;     /* GBytes of RGB */
  GArray *pts;
} Run;

static void
run_clear (Run *r)
{
  g_ptr_array_unref (r->frames);
  g_array_unref (r->pts);
}

static Run
run_pipeline (const char *model, const char *png, const char *devices)
{
  Run r = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref), g_array_new (FALSE, FALSE, sizeof (GstClockTime)) };
  g_autofree char *desc = g_strdup_printf (
      "audiotestsrc num-buffers=8 samplesperbuffer=1600 wave=sine freq=220 "
      "! audio/x-raw,rate=16000,channels=1,format=S16LE "
      "! liveavatarsrc model-path=%s lora-path=%s reference-image=%s max-area=4096 sink-offset=10 "
      "audio-mode=offline weights=bf16 devices=%s ! video/x-raw,format=RGB ! appsink name=s sync=false",
      model, model, png, devices);
  GError *e = NULL;
  GstElement *p = gst_parse_launch (desc, &e);
  g_assert_no_error (e);
  GstAppSink *sink = GST_APP_SINK (gst_bin_get_by_name (GST_BIN (p), "s"));
  g_assert_cmpint (gst_element_set_state (p, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  GstSample *s;
  while ((s = gst_app_sink_pull_sample (sink))) {
    GstBuffer *b = gst_sample_get_buffer (s);
    GstMapInfo m;
    g_assert_true (gst_buffer_map (b, &m, GST_MAP_READ));
    g_ptr_array_add (r.frames, g_bytes_new (m.data, m.size));
    GstClockTime t = GST_BUFFER_PTS (b);
    g_array_append_val (r.pts, t);
    gst_buffer_unmap (b, &m);
    gst_sample_unref (s);
  }
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_error ("devices=%s: %s", devices, err->message);
  }
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (p);
  return r;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  if (la_cuda_device_count () < 1) {
    g_print ("no CUDA device (a GPU or the emulated device): skipped\n");
    return 77;
  }
  g_autofree char *tmp = g_dir_make_tmp ("la-element-cuda-XXXXXX", NULL);
  g_autofree char *model = g_build_filename (tmp, "tiny", NULL);
  g_autofree char *png = g_build_filename (tmp, "ref.png", NULL);
  const char *mk = g_getenv ("LA_MKMODEL");
  g_autofree char *cmd = g_strdup_printf ("'%s' --preset tiny --seed 3 --out '%s' >/dev/null 2>&1", mk ? mk : "liveavatar-mkmodel", model);
  if (system (cmd) != 0)
    g_error ("could not generate the tiny model (%s)", cmd);
  g_autofree char *mkpng = g_strdup_printf ("videotestsrc num-buffers=1 pattern=pinwheel ! video/x-raw,width=96,height=96 "
                                            "! videoconvert ! pngenc ! filesink location=%s", png);
  GError *e = NULL;
  GstElement *pp = gst_parse_launch (mkpng, &e);
  g_assert_no_error (e);
  gst_element_set_state (pp, GST_STATE_PLAYING);
  GstMessage *done = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pp), GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_cmpint (GST_MESSAGE_TYPE (done), ==, GST_MESSAGE_EOS);
  gst_message_unref (done);
  gst_element_set_state (pp, GST_STATE_NULL);
  gst_object_unref (pp);

  Run cpu = run_pipeline (model, png, "cpu"), gpu = run_pipeline (model, png, "cuda:0");
  g_assert_cmpuint (cpu.frames->len, >, 0);
  g_assert_cmpuint (cpu.frames->len, ==, gpu.frames->len);
  double sum = 0;
  gsize n = 0;
  int mx = 0;
  for (guint i = 0; i < cpu.frames->len; i++) {
    g_assert_cmpuint (g_array_index (cpu.pts, GstClockTime, i), ==, g_array_index (gpu.pts, GstClockTime, i));
    gsize la, lb;
    const guint8 *a = g_bytes_get_data (cpu.frames->pdata[i], &la), *b = g_bytes_get_data (gpu.frames->pdata[i], &lb);
    g_assert_cmpuint (la, ==, lb);
    for (gsize k = 0; k < la; k++) {
      int d = abs ((int) a[k] - (int) b[k]);
      mx = MAX (mx, d);
      sum += d;
    }
    n += la;
  }
  g_print ("liveavatarsrc devices=cuda:0 vs cpu (bf16 weights): %u frames, same timestamps, max %d, mean %.4f levels\n",
           cpu.frames->len, mx, sum / n);
  g_assert_cmpint (mx, <=, 8);
  g_assert_cmpfloat (sum / n, <, 0.5);
  run_clear (&cpu);
  run_clear (&gpu);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  (void) !system (rm);
  return 0;
}
