/* la-gst-test.h — helpers shared by the liveavatarsrc GstHarness tests:
 * make a configured element, feed timestamped mono audio, collect output
 * frames until EOS.
 */
#pragma once
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <string.h>
#include <math.h>

#define SR 16000
#define SPF 640                 /* samples per video frame at 25 fps */
#define FRAME_NS (GST_SECOND / 25)
#define AUDIO_CAPS "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved"

static const gchar *la_model_dir;       /* set by each test's main */
static gchar *la_tmpdir;                /* la_gst_test_main_tiny's folder */

/* A small RGB reference image as a GstSample (a horizontal gradient). */
G_GNUC_UNUSED static GstSample *
make_ref_sample (gint w, gint h)
{
  GstVideoInfo info;
  GstBuffer *buf;
  GstMapInfo map;
  GstCaps *caps;
  GstSample *s;
  gint x, y;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, w, h);
  buf = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&info), NULL);
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (y = 0; y < h; y++)
    for (x = 0; x < w; x++) {
      guint8 *p = map.data + y * GST_VIDEO_INFO_PLANE_STRIDE (&info, 0) + 3 * x;
      p[0] = x * 255 / w;
      p[1] = y * 255 / h;
      p[2] = 128;
    }
  gst_buffer_unmap (buf, &map);
  caps = gst_video_info_to_caps (&info);
  s = gst_sample_new (buf, caps, NULL, NULL);
  gst_buffer_unref (buf);
  gst_caps_unref (caps);
  return s;
}

G_GNUC_UNUSED static GstElement *
make_element (void)
{
  GstElement *e = gst_element_factory_make ("liveavatarsrc", NULL);
  GstSample *ref = make_ref_sample (48, 48);

  fail_unless (e != NULL, "liveavatarsrc not registered");
  g_object_set (e, "model-path", la_model_dir, "reference-sample", ref,
      "max-area", 64 * 64, "latency", 0, NULL);
  gst_sample_unref (ref);
  return e;
}

/* Waits until the element's model is loaded (on its loader thread: the
 * state change returns before), so caps carry the model's size. */
G_GNUC_UNUSED static void
wait_loaded (GstElement * e)
{
  gint64 end = g_get_monotonic_time () + 120 * G_TIME_SPAN_SECOND;
  gint state;

  do {
    g_object_get (e, "state", &state, NULL);
    if (state != 1)             /* loading */
      break;
    g_usleep (1000);
  } while (g_get_monotonic_time () < end);
  fail_unless (state != 1, "the model did not load");
}

/* Harness around a configured element, PLAYING, model loaded; @live picks
 * the upstream latency answer.  A bus is attached for QoS/error messages. */
G_GNUC_UNUSED static GstHarness *
make_harness (gboolean live, GstBus ** bus)
{
  GstElement *e = make_element ();
  GstHarness *h = gst_harness_new_with_element (e, "sink", "src");

  gst_object_unref (e);
  if (bus) {
    *bus = gst_bus_new ();
    gst_element_set_bus (h->element, *bus);
  }
  gst_harness_set_live (h, live);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  wait_loaded (h->element);
  return h;
}

/* Pushes @n samples of a 220 Hz tone from @pts in buffers of @per samples. */
G_GNUC_UNUSED static GstFlowReturn
push_audio (GstHarness * h, GstClockTime pts, gsize n, gsize per,
    gboolean discont)
{
  gsize done = 0;
  GstFlowReturn ret = GST_FLOW_OK;

  while (done < n && ret == GST_FLOW_OK) {
    gsize k = MIN (per, n - done), i;
    GstBuffer *buf = gst_harness_create_buffer (h, k * 2);
    GstMapInfo map;

    gst_buffer_map (buf, &map, GST_MAP_WRITE);
    for (i = 0; i < k; i++)
      ((gint16 *) map.data)[i] =
          (gint16) (8000 * sin (2 * G_PI * 220 * (done + i) / SR));
    gst_buffer_unmap (buf, &map);
    GST_BUFFER_PTS (buf) = pts + gst_util_uint64_scale (done, GST_SECOND, SR);
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (k, GST_SECOND, SR);
    if (discont && done == 0)
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    ret = gst_harness_push (h, buf);
    done += k;
  }
  return ret;
}

G_GNUC_UNUSED static gboolean
eos_received (GstHarness * h)
{
  GstEvent *ev = gst_pad_get_sticky_event (h->sinkpad, GST_EVENT_EOS, 0);
  if (ev)
    gst_event_unref (ev);
  return ev != NULL;
}

/* Pulls every buffer until EOS (gst_harness_pull_until_eos can miss the
 * last buffer when EOS is already queued); returns them (caller frees with
 * g_ptr_array_unref).  EOS is sticky on the harness pad once it went by, and
 * every buffer before it is queued by then. */
G_GNUC_UNUSED static GPtrArray *
pull_all (GstHarness * h)
{
  GPtrArray *a = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_buffer_unref);
  gint64 end = g_get_monotonic_time () + 120 * G_TIME_SPAN_SECOND;
  GstBuffer *buf;
  gboolean done;

  do {
    done = eos_received (h);
    while ((buf = gst_harness_try_pull (h)))
      g_ptr_array_add (a, buf);
    if (!done)
      g_usleep (1000);
  } while (!done && g_get_monotonic_time () < end);
  fail_unless (done, "no EOS");
  return a;
}

/* Frames expected for S samples after EOS: the last partial block is padded,
 * blocks of 12 frames, the first block of a stream yields 9 (docs/design/streaming.md §5.1). */
G_GNUC_UNUSED static guint
expected_frames (gsize samples)
{
  gsize block = 12 * SPF;
  return (guint) (12 * ((samples + block - 1) / block) - 3);
}

/* PTS strictly on the grid t0 + k*40 ms, each k once, contiguous. */
G_GNUC_UNUSED static void
check_grid (GPtrArray * a, GstClockTime t0, gint64 first_k)
{
  guint i;
  for (i = 0; i < a->len; i++) {
    GstBuffer *b = g_ptr_array_index (a, i);
    GstClockTime want = t0 + gst_util_uint64_scale (first_k + i, GST_SECOND,
        25);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), want);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (b),
        t0 + gst_util_uint64_scale (first_k + i + 1, GST_SECOND, 25) - want);
  }
}

/* Two clips of audio in @per-sample buffers; after the first block (+ its
 * 400 ms look-ahead) the first block's 9 frames are pulled and, with
 * @swap, the avatar is swapped (a new reference-sample) while PLAYING.
 * Returns every frame; *stats (may be NULL) gets the final stats. */
G_GNUC_UNUSED static GPtrArray *
run_with_swap (gboolean swap, gsize per, GstStructure ** stats)
{
  GstHarness *h = make_harness (FALSE, NULL);
  const gsize head = 12 * SPF + 400 * SR / 1000;
  GPtrArray *a = g_ptr_array_new_with_free_func ((GDestroyNotify)
      gst_buffer_unref), *rest;
  guint i;

  fail_unless_equals_int (push_audio (h, 0, head, per, FALSE), GST_FLOW_OK);
  for (i = 0; i < 9; i++)
    g_ptr_array_add (a, gst_harness_pull (h));
  if (swap) {
    GstSample *ref = make_ref_sample (64, 40);
    g_object_set (h->element, "reference-sample", ref, NULL);
    gst_sample_unref (ref);
    /* The swap is prepared on the element's swap worker: wait until it
     * handed the image to the session before the next blocks' audio goes
     * in (the engine then applies it at its next block). */
    {
      gint64 end = g_get_monotonic_time () + 120 * G_TIME_SPAN_SECOND;
      guint64 prepared = 0;
      do {
        GstStructure *st;
        g_usleep (1000);
        g_object_get (h->element, "stats", &st, NULL);
        gst_structure_get_uint64 (st, "reference-swaps-prepared", &prepared);
        gst_structure_free (st);
      } while (prepared < 1 && g_get_monotonic_time () < end);
      fail_unless (prepared == 1, "the swap was not prepared");
    }
  }
  fail_unless_equals_int (push_audio (h, gst_util_uint64_scale (head,
              GST_SECOND, SR), 2 * 48 * SPF - head, per, FALSE), GST_FLOW_OK);
  gst_harness_push_event (h, gst_event_new_eos ());
  rest = pull_all (h);
  for (i = 0; i < rest->len; i++)
    g_ptr_array_add (a, gst_buffer_ref (g_ptr_array_index (rest, i)));
  g_ptr_array_unref (rest);
  if (stats)
    g_object_get (h->element, "stats", stats, NULL);
  gst_harness_teardown (h);
  return a;
}

/* How many frames of @b differ from @a's (same PTS); the first @keep must not. */
G_GNUC_UNUSED static guint
count_changed_frames (GPtrArray * a, GPtrArray * b, guint keep)
{
  guint i, changed = 0;

  fail_unless_equals_int (b->len, a->len);
  for (i = 0; i < a->len; i++) {
    GstBuffer *x = g_ptr_array_index (a, i), *y = g_ptr_array_index (b, i);
    GstMapInfo mx;
    gboolean same;

    fail_unless_equals_uint64 (GST_BUFFER_PTS (x), GST_BUFFER_PTS (y));
    gst_buffer_map (x, &mx, GST_MAP_READ);
    same = gst_buffer_memcmp (y, 0, mx.data, mx.size) == 0;
    gst_buffer_unmap (x, &mx);
    if (i < keep)
      fail_unless (same, "frame %u before the swap changed", i);
    changed += !same;
  }
  return changed;
}

/* main() of the tests that drive the real engine: generates the tiny model
 * ($LA_MKMODEL, the path of liveavatar-mkmodel; exit 77 without it) in a
 * temporary folder (la_tmpdir), runs the suite, removes the folder. */
G_GNUC_UNUSED static int
la_gst_test_main_tiny (int argc, char **argv, Suite * (*make_suite) (void),
    const gchar * name)
{
  const gchar *mk = g_getenv ("LA_MKMODEL");
  gchar *out = NULL, *errout = NULL, *dir;
  gint status = 0, ret;

  if (!mk) {
    g_printerr ("LA_MKMODEL (path of liveavatar-mkmodel) is not set\n");
    return 77;
  }
  la_tmpdir = g_dir_make_tmp ("liveavatarsrc-XXXXXX", NULL);
  dir = g_build_filename (la_tmpdir, "tiny", NULL);
  {
    gchar *argv_mk[] = { (gchar *) mk, (gchar *) "--preset", (gchar *) "tiny",
      (gchar *) "--out", dir, NULL
    };
    if (!g_spawn_sync (NULL, argv_mk, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
            &errout, &status, NULL)
        || !g_spawn_check_wait_status (status, NULL)) {
      g_printerr ("liveavatar-mkmodel failed: %s\n", errout ? errout : "");
      return 1;
    }
  }
  g_free (out);
  g_free (errout);
  la_model_dir = dir;

  gst_check_init (&argc, &argv);
  ret = gst_check_run_suite (make_suite (), name, __FILE__);

  {
    gchar *rm[] = { (gchar *) "rm", (gchar *) "-rf", la_tmpdir, NULL };
    g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH |
        G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  g_free (dir);
  g_free (la_tmpdir);
  return ret;
}
