/* test-liveavatarsrc.c — liveavatarsrc streaming logic with GstHarness.
 *
 * The element code is the real one; the session behind it is
 * mock-session.c (la-session.h contract, synthetic frames, optional
 * LA_MOCK_BLOCK_MS per block), so these tests are fast and deterministic on
 * a 2-core CI machine.  test-liveavatarsrc-engine.c covers the CPU engine.
 */
#include "la-gst-test.h"
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <gmodule.h>

/* ---- caps ---- */

GST_START_TEST (test_caps_accept_refuse)
{
  GstElement *e = make_element ();
  GstPad *sink = gst_element_get_static_pad (e, "sink");
  const gchar *ok[] = {
    "audio/x-raw,format=S16LE,rate=16000,channels=1,layout=interleaved",
    "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved",
  };
  const gchar *bad[] = {
    "audio/x-raw,format=S16LE,rate=44100,channels=1,layout=interleaved",
    "audio/x-raw,format=S16LE,rate=16000,channels=2,layout=interleaved",
    "audio/x-raw,format=S32LE,rate=16000,channels=1,layout=interleaved",
    "video/x-raw,format=RGB,width=64,height=64",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (ok); i++) {
    GstCaps *c = gst_caps_from_string (ok[i]);
    fail_unless (gst_pad_query_accept_caps (sink, c), "refused %s", ok[i]);
    gst_caps_unref (c);
  }
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    GstCaps *c = gst_caps_from_string (bad[i]);
    fail_if (gst_pad_query_accept_caps (sink, c), "accepted %s", bad[i]);
    gst_caps_unref (c);
  }
  gst_object_unref (sink);
  gst_object_unref (e);
}

GST_END_TEST;

/* Output caps are fixated to the model size (mock: 64x64 for max-area
 * 64*64), 25/1, square pixels, in the format downstream picks. */
GST_START_TEST (test_caps_fixation)
{
  const gchar *formats[] = { "I420", "NV12", "RGBA", "RGB" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstHarness *h = make_harness (FALSE, NULL);
    gchar *want = g_strdup_printf ("video/x-raw,format=%s", formats[i]);
    GstCaps *caps;
    GstVideoInfo info;
    GstBuffer *b;

    gst_harness_set_sink_caps_str (h, want);
    fail_unless_equals_int (push_audio (h, 0, SR, 1600, FALSE), GST_FLOW_OK);
    b = gst_harness_pull (h);
    fail_unless (b != NULL);
    caps = gst_pad_get_current_caps (h->sinkpad);
    fail_unless (gst_video_info_from_caps (&info, caps));
    fail_unless_equals_string (gst_video_format_to_string (info.finfo->format),
        formats[i]);
    fail_unless_equals_int (info.width, 64);
    fail_unless_equals_int (info.height, 64);
    fail_unless_equals_int (info.fps_n, 25);
    fail_unless_equals_int (info.fps_d, 1);
    fail_unless_equals_int (info.par_n, 1);
    fail_unless (gst_buffer_get_size (b) >= info.size);
    gst_caps_unref (caps);
    gst_buffer_unref (b);
    g_free (want);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

GST_START_TEST (test_caps_not_negotiated)
{
  GstBus *bus;
  GstHarness *h = make_harness (FALSE, &bus);
  GstMessage *msg;
  GError *err = NULL;

  /* A size the model does not make: the element never rescales. */
  gst_harness_set_sink_caps_str (h, "video/x-raw,width=320,height=240");
  push_audio (h, 0, SR, 1600, FALSE);
  msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_CORE_ERROR,
          GST_CORE_ERROR_NEGOTIATION), "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- CUDA memory output, as seen without a CUDA driver ----
 * (test-liveavatarsrc-cuda covers a machine with one.) */

#define CUDA_FEATURE "memory:CUDAMemory"

/* TRUE when this element can have CUDA at all: built with gstreamer-cuda
 * and a driver with a device is present.  Probed independently of the
 * element (libcuda.so.1, cuInit, cuDeviceGetCount), so a wrong "CUDA
 * available" answer from the element fails the tests below. */
static gboolean
cuda_usable_here (void)
{
#if LA_TEST_GST_CUDA
  GModule *m = g_module_open ("libcuda.so.1", G_MODULE_BIND_LAZY);
  gint (*cu_init) (guint) = NULL;
  gint (*cu_count) (gint *) = NULL;
  gint n = 0;
  gboolean ok;

  if (!m)
    return FALSE;
  ok = g_module_symbol (m, "cuInit", (gpointer *) & cu_init) &&
      g_module_symbol (m, "cuDeviceGetCount", (gpointer *) & cu_count) &&
      cu_init (0) == 0 && cu_count (&n) == 0 && n > 0;
  g_module_close (m);
  return ok;
#else
  return FALSE;
#endif
}

static gboolean
structure_is_cuda (const GstCaps * caps, guint i)
{
  GstCapsFeatures *f = gst_caps_get_features (caps, i);
  return f && gst_caps_features_contains (f, CUDA_FEATURE);
}

/* Template: CUDA memory first (preferred), then system memory, same
 * formats. */
GST_START_TEST (test_cuda_template_first)
{
  GstElement *e = make_element ();
  GstPadTemplate *t = gst_element_get_pad_template (e, "src");
  GstCaps *caps = gst_pad_template_get_caps (t);
  const GValue *f0, *f1;

  fail_unless_equals_int (gst_caps_get_size (caps), 2);
  fail_unless (structure_is_cuda (caps, 0), "first is not CUDA memory");
  fail_if (structure_is_cuda (caps, 1));
  f0 = gst_structure_get_value (gst_caps_get_structure (caps, 0), "format");
  f1 = gst_structure_get_value (gst_caps_get_structure (caps, 1), "format");
  fail_unless (gst_value_compare (f0, f1) == GST_VALUE_EQUAL);
  gst_caps_unref (caps);
  gst_object_unref (e);
}

GST_END_TEST;

/* Without a driver the src CAPS query offers system memory only, in NULL
 * (no context yet) and once loaded. */
GST_START_TEST (test_cuda_caps_query_sysmem)
{
  GstElement *e;
  GstPad *src;
  guint round, i;

  if (cuda_usable_here ()) {
    GST_INFO ("CUDA usable here: covered by test-liveavatarsrc-cuda");
    return;
  }
  e = make_element ();
  src = gst_element_get_static_pad (e, "src");
  for (round = 0; round < 2; round++) {
    GstCaps *caps = gst_pad_query_caps (src, NULL);
    fail_if (gst_caps_is_empty (caps));
    for (i = 0; i < gst_caps_get_size (caps); i++)
      fail_if (structure_is_cuda (caps, i), "CUDA offered: %" GST_PTR_FORMAT,
          caps);
    gst_caps_unref (caps);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (e);
}

GST_END_TEST;

/* A downstream that only takes CUDA memory: a clear not-negotiated error
 * (no crash, no hang), then the same element is reused with a
 * system-memory downstream. */
GST_START_TEST (test_cuda_only_downstream)
{
  GstElement *e;
  GstHarness *h;
  GstBus *bus;
  GstMessage *msg;
  GError *err = NULL;
  gchar *dbg = NULL;
  GstBuffer *b;

  if (cuda_usable_here ()) {
    GST_INFO ("CUDA usable here: covered by test-liveavatarsrc-cuda");
    return;
  }
  e = make_element ();
  bus = gst_bus_new ();
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_element_set_bus (e, bus);
  gst_harness_set_live (h, FALSE);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  gst_harness_set_sink_caps_str (h, "video/x-raw(" CUDA_FEATURE ")");
  push_audio (h, 0, SR, 1600, FALSE);
  msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, &err, &dbg);
  fail_unless (g_error_matches (err, GST_CORE_ERROR,
          GST_CORE_ERROR_NEGOTIATION), "%s", err->message);
  fail_unless (strstr (err->message, "CUDA is not available") != NULL,
      "unclear message: %s", err->message);
  fail_unless (strstr (err->message, CUDA_FEATURE) != NULL, "%s",
      err->message);
  g_error_free (err);
  g_free (dbg);
  gst_message_unref (msg);
  /* Nothing came out but EOS. */
  fail_unless (gst_harness_try_pull (h) == NULL);
  gst_element_set_bus (e, NULL);
  gst_harness_teardown (h);     /* to NULL */

  /* Reuse: system memory downstream, frames flow. */
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_harness_set_live (h, FALSE);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  gst_harness_set_sink_caps_str (h, "video/x-raw,format=RGBA");
  fail_unless_equals_int (push_audio (h, 0, SR, 1600, FALSE), GST_FLOW_OK);
  b = gst_harness_pull (h);
  fail_unless (b != NULL);
  gst_buffer_unref (b);
  gst_harness_teardown (h);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

/* cuda-device-id >= 0 requires that device: LIBRARY/INIT when there is no
 * CUDA, and the element works again with -1 (auto, optional). */
GST_START_TEST (test_cuda_device_required)
{
  GstElement *e;
  GstBus *bus;
  GstMessage *msg;
  GError *err = NULL;
  gint dev;

  if (cuda_usable_here ()) {
    GST_INFO ("CUDA usable here: covered by test-liveavatarsrc-cuda");
    return;
  }
  e = make_element ();
  bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  g_object_get (e, "cuda-device-id", &dev, NULL);
  fail_unless_equals_int (dev, -1);
  g_object_set (e, "cuda-device-id", 0, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_LIBRARY_ERROR,
          GST_LIBRARY_ERROR_INIT), "%s", err->message);
  fail_unless (strstr (err->message, "CUDA") != NULL, "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  g_object_set (e, "cuda-device-id", -1, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

/* ---- frame grid ---- */

/* 2 clips of audio (3.84 s) in 10/20/40/100 ms buffers: 48*2-3 frames, PTS
 * strictly on the 25 fps grid from t0 (frame k at t0 + (k+3)*40 ms, the
 * first block's 3-frame lead dropped), exactly 10 frames in every 400 ms
 * window, no duplicate PTS. */
GST_START_TEST (test_frame_grid)
{
  const guint ms[] = { 10, 20, 40, 100 };
  const GstClockTime t0 = 2 * GST_SECOND;
  guint i, j;

  for (i = 0; i < G_N_ELEMENTS (ms); i++) {
    GstHarness *h = make_harness (FALSE, NULL);
    GPtrArray *a;
    gsize n = 2 * 48 * SPF;

    fail_unless_equals_int (push_audio (h, t0, n, ms[i] * SR / 1000, FALSE),
        GST_FLOW_OK);
    gst_harness_push_event (h, gst_event_new_eos ());
    a = pull_all (h);
    fail_unless_equals_int (a->len, 48 * 2 - 3);
    check_grid (a, t0, 3);
    for (j = 1; j < 9; j++) {
      GstClockTime lo = t0 + j * 400 * GST_MSECOND, hi = lo + 400 * GST_MSECOND;
      guint k, count = 0;
      for (k = 0; k < a->len; k++) {
        GstClockTime p = GST_BUFFER_PTS (g_ptr_array_index (a, k));
        count += p >= lo && p < hi;
      }
      fail_unless_equals_int (count, 10);
    }
    g_ptr_array_unref (a);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* N clips of audio give 48N-3 frames. */
GST_START_TEST (test_frame_count_clips)
{
  guint n;

  for (n = 1; n <= 3; n++) {
    GstHarness *h = make_harness (FALSE, NULL);
    GPtrArray *a;

    push_audio (h, 0, n * 48 * SPF, 1600, FALSE);
    gst_harness_push_event (h, gst_event_new_eos ());
    a = pull_all (h);
    fail_unless_equals_int (a->len, 48 * n - 3);
    g_ptr_array_unref (a);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* The input segment is forwarded unchanged, so the running time of a frame
 * equals the running time of the audio it was made from. */
GST_START_TEST (test_segment_running_time)
{
  GstHarness *h = make_harness (FALSE, NULL);
  GstSegment seg, *out = NULL;
  GstEvent *ev;
  GPtrArray *a;
  guint i;

  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.base = 7 * GST_SECOND;
  seg.start = GST_SECOND;
  seg.time = 100 * GST_SECOND;
  gst_harness_push_event (h, gst_event_new_segment (&seg));
  push_audio (h, GST_SECOND, 48 * SPF, 320, FALSE);
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_all (h);
  fail_unless_equals_int (a->len, 45);

  while ((ev = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_SEGMENT) {
      const GstSegment *s;
      gst_event_parse_segment (ev, &s);
      if (out)
        gst_segment_free (out);
      out = gst_segment_copy (s);
    }
    gst_event_unref (ev);
  }
  fail_unless (out != NULL);
  fail_unless (gst_segment_is_equal (out, &seg));
  for (i = 0; i < a->len; i++) {
    GstClockTime pts = GST_BUFFER_PTS (g_ptr_array_index (a, i));
    /* Frame i shows audio at 1 s + (i+3)*40 ms: running time 7 s + (i+3)*40 ms. */
    fail_unless_equals_uint64 (gst_segment_to_running_time (out,
            GST_FORMAT_TIME, pts), 7 * GST_SECOND + (i + 3) * FRAME_NS);
  }
  gst_segment_free (out);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- GAP / DISCONT / EOS / flush ---- */

/* 1 s audio, a 1 s GAP, 1 s audio: the gap becomes silence, the grid has no
 * hole and the frame count is that of 3 s. */
GST_START_TEST (test_gap)
{
  GstHarness *h = make_harness (FALSE, NULL);
  GPtrArray *a;

  push_audio (h, 0, SR, 1600, FALSE);
  gst_harness_push_event (h, gst_event_new_gap (GST_SECOND, GST_SECOND));
  push_audio (h, 2 * GST_SECOND, SR, 1600, FALSE);
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_all (h);
  fail_unless_equals_int (a->len, expected_frames (3 * SR));
  check_grid (a, 0, 3);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A DISCONT buffer 500 ms late resyncs with silence (grid kept); a
 * 200 ms overlap is cut. */
GST_START_TEST (test_discont)
{
  GstHarness *h = make_harness (FALSE, NULL);
  GPtrArray *a;

  push_audio (h, 0, SR, 1600, FALSE);
  push_audio (h, 1500 * GST_MSECOND, SR, 1600, TRUE);
  push_audio (h, 2300 * GST_MSECOND, SR, 1600, TRUE);  /* overlaps by 200 ms */
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_all (h);
  fail_unless_equals_int (a->len, expected_frames (SR * 33 / 10));
  check_grid (a, 0, 3);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* EOS drains the last partial block (0.5 s -> 2 blocks -> 21 frames) and
 * EOS follows the last frame. */
GST_START_TEST (test_eos_drain)
{
  GstHarness *h = make_harness (FALSE, NULL);
  GPtrArray *a;
  GstEvent *ev;
  gboolean saw_eos = FALSE;

  push_audio (h, 0, SR / 2, 800, FALSE);
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_all (h);
  fail_unless_equals_int (a->len, expected_frames (SR / 2));
  while ((ev = gst_harness_try_pull_event (h))) {
    saw_eos |= GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (saw_eos);
  /* After EOS the chain refuses data. */
  fail_unless_equals_int (push_audio (h, GST_SECOND, 160, 160, FALSE),
      GST_FLOW_EOS);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Flush mid-generation (slow engine): no deadlock, the stream restarts
 * from frame 0 of a fresh session state. */
GST_START_TEST (test_flush)
{
  GstHarness *h;
  GstSegment seg;
  GPtrArray *a;
  GstBuffer *b;

  g_setenv ("LA_MOCK_BLOCK_MS", "30", TRUE);
  h = make_harness (FALSE, NULL);
  push_audio (h, 0, 3 * SR, 1600, FALSE);
  b = gst_harness_pull (h);
  gst_buffer_unref (b);
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  while ((b = gst_harness_try_pull (h)))
    gst_buffer_unref (b);
  gst_segment_init (&seg, GST_FORMAT_TIME);
  gst_harness_push_event (h, gst_event_new_segment (&seg));
  push_audio (h, 0, 48 * SPF, 1600, FALSE);
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_all (h);
  fail_unless_equals_int (a->len, 45);
  check_grid (a, 0, 3);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
  g_unsetenv ("LA_MOCK_BLOCK_MS");
}

GST_END_TEST;

/* ---- latency ---- */

GST_START_TEST (test_latency_query)
{
  gboolean live_mode;

  for (live_mode = FALSE; live_mode <= TRUE; live_mode++) {
    GstHarness *h = make_harness (live_mode, NULL);
    GstPad *src = gst_element_get_static_pad (h->element, "src");
    GstQuery *q = gst_query_new_latency ();
    gboolean live;
    GstClockTime min, max;

    g_object_set (h->element, "latency", 300, NULL);
    gst_harness_set_upstream_latency (h, 20 * GST_MSECOND);
    fail_unless (gst_pad_query (src, q));
    gst_query_parse_latency (q, &live, &min, &max);
    fail_unless_equals_int (live, live_mode);
    /* upstream 20 ms + block (12 frames) + look-ahead (400 ms) + 300 ms */
    fail_unless_equals_uint64 (min, 20 * GST_MSECOND + 480 * GST_MSECOND +
        400 * GST_MSECOND + 300 * GST_MSECOND);
    fail_unless (max == GST_CLOCK_TIME_NONE || max >= min);
    gst_query_unref (q);
    gst_object_unref (src);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* ---- live deadlines and non-live back-pressure ---- */

/* Live, engine far too slow: at each passed deadline the element pushes a
 * repeated (here: the reference image, nothing generated yet) frame with the
 * right PTS, flagged GAP, and posts a QoS message. */
GST_START_TEST (test_live_deadlines)
{
  GstHarness *h;
  GstBus *bus;
  GstMessage *msg;
  GstClockTime base, lat = (480 + 400) * GST_MSECOND;
  guint i, n = 10;
  GstStructure *st;
  guint64 repeated;

  g_setenv ("LA_MOCK_BLOCK_MS", "60000", TRUE);
  h = make_harness (TRUE, &bus);
  base = gst_element_get_base_time (h->element);
  push_audio (h, 0, SR, 1600, FALSE);
  /* Deadline of frame k: base + k*40 ms + latency (upstream 0). */
  gst_harness_set_time (h, base + lat + (n - 1) * FRAME_NS);
  for (i = 0; i < n; i++) {
    GstBuffer *b = gst_harness_pull (h);
    fail_unless (b != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (b), i * FRAME_NS);
    fail_unless (GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_GAP));
    gst_buffer_unref (b);
  }
  /* Nothing beyond the deadline that has passed. */
  g_usleep (100000);
  fail_unless (gst_harness_try_pull (h) == NULL);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_QOS);
  fail_unless (msg != NULL, "no QoS message");
  gst_message_unref (msg);
  g_object_get (h->element, "stats", &st, NULL);
  fail_unless (gst_structure_get_uint64 (st, "frames-repeated", &repeated));
  fail_unless_equals_uint64 (repeated, n);
  gst_structure_free (st);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  g_unsetenv ("LA_MOCK_BLOCK_MS");
}

GST_END_TEST;

/* Live: speech after a long silence (no audio, no GAP) does not stall.
 * During the silence the element repeats frames on the clock; when audio
 * resumes 4.5 s later (DISCONT) the hole becomes silence, the session's
 * bounded queue drops the oldest, and generated (non-GAP) frames of the new
 * speech come out on the grid at their own time. */
GST_START_TEST (test_live_speech_after_silence)
{
  GstHarness *h = make_harness (TRUE, NULL);
  GstClockTime base = gst_element_get_base_time (h->element);
  GstClockTime lat = (480 + 400) * GST_MSECOND;
  GstBuffer *b;
  guint repeats = 0, fresh_after = 0;
  GstClockTime last = 0;
  gint i;

  push_audio (h, 0, SR, 1600, FALSE);
  gst_harness_set_time (h, base + lat + 5 * GST_SECOND);
  for (i = 0; i < 300; i++) {
    while ((b = gst_harness_try_pull (h))) {
      fail_unless (GST_BUFFER_PTS (b) >= last);
      last = GST_BUFFER_PTS (b);
      repeats += GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_GAP);
      gst_buffer_unref (b);
    }
    if (last >= 5 * GST_SECOND)
      break;
    g_usleep (10000);
  }
  fail_unless (repeats > 100, "only %u repeats", repeats);
  push_audio (h, 5500 * GST_MSECOND, 2 * SR, 1600, TRUE);
  for (i = 0; i < 300 && fresh_after == 0; i++) {
    while ((b = gst_harness_try_pull (h))) {
      fail_unless (GST_BUFFER_PTS (b) > last || last == 0);
      last = GST_BUFFER_PTS (b);
      if (!GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_GAP) &&
          GST_BUFFER_PTS (b) >= 5500 * GST_MSECOND)
        fresh_after++;
      gst_buffer_unref (b);
    }
    g_usleep (10000);
  }
  fail_unless (fresh_after > 0, "no generated frame after the silence");
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- a slow engine, live, on the test clock ---- */

typedef struct
{
  guint slots, fresh, fresh_late_half;  /* fresh: in the second half */
  guint slots_late_half;
  guint max_sync_ms;            /* largest |PTS - audio position| of a fresh frame */
  gboolean warned;
  guint64 qos_block_ms;         /* block-time of the last skip QoS message */
  guint fresh_quiet, slots_quiet;       /* in the silence, from 2 s in to 2.5 s
                                         * before the end (the hole filled at
                                         * resume) */
  GstClockTime speech_pts;      /* first fresh frame from audio after @resume */
  GstClockTime speech_at;       /* clock (running) time it was out by */
  gint64 skipped;
} SlowRun;

/* Live at @ratio times slower than real time (the mock's block costs
 * 480 ms * ratio of the harness's GstTestClock, made the default system
 * clock so the mock waits on it too), `latency` one block time + 480 ms:
 * @seconds of audio arrive in 40 ms pieces at real-time pace, except
 * between @quiet_from and @resume (ms; upstream sends nothing).  After each
 * piece the clock moves 40 ms on and every slot whose deadline passed is
 * pulled: each slot exactly once, in order, DISCONT only on the first; a
 * fresh (non-GAP) frame's PTS is within 40 ms of the audio it was made
 * from (the mock writes that position into its first bytes). */
static void
run_slow_live (gdouble ratio, guint seconds, guint quiet_from, guint resume,
    gboolean freeze, SlowRun * r)
{
  guint block_ms = (guint) (480 * ratio + 0.5), latency_ms = block_ms + 480;
  GstClockTime lat = (480 + 400 + latency_ms) * GST_MSECOND, base, now;
  gchar *v = g_strdup_printf ("%u", block_ms);
  GstTestClock *tc;
  GstHarness *h;
  GstBus *bus;
  GstMessage *msg;
  GstStructure *st;
  guint k, total = seconds * 25;
  gint64 next = -1;             /* the stream may start at slot 3 (the lead) */

  memset (r, 0, sizeof *r);
  r->speech_pts = r->speech_at = GST_CLOCK_TIME_NONE;
  g_setenv ("LA_MOCK_BLOCK_MS", v, TRUE);
  g_free (v);
  h = make_harness (TRUE, &bus);
  g_object_set (h->element, "latency", latency_ms, NULL);
  if (freeze)
    gst_util_set_object_arg (G_OBJECT (h->element), "idle", "freeze");
  tc = gst_harness_get_testclock (h);
  gst_system_clock_set_default (GST_CLOCK (tc));
  base = gst_element_get_base_time (h->element);
  for (k = 0; k < total; k++) {
    GstClockTime t = k * FRAME_NS;
    if (t < quiet_from * GST_MSECOND || t >= resume * GST_MSECOND)
      fail_unless_equals_int (push_audio (h, t, SPF, SPF, FALSE),
          GST_FLOW_OK);
    now = (k + 1) * FRAME_NS;
    gst_harness_set_time (h, base + now);
    /* In the silence, the task's idle check runs once per pull timeout
     * (10 ms of wall time): give it that for each 40 ms of clock. */
    g_usleep (resume && t >= quiet_from * GST_MSECOND &&
        t < resume * GST_MSECOND ? 15000 : 2000);
    while (MAX (next, 0) * FRAME_NS + lat <= now) {
      GstBuffer *b = gst_harness_pull (h);
      GstClockTime pts;

      fail_unless (b != NULL, "slot %" G_GINT64_FORMAT " missing", next);
      pts = GST_BUFFER_PTS (b);
      if (next < 0) {
        next = (gint64) (pts / FRAME_NS);
        fail_unless (next <= 3, "first slot %" G_GINT64_FORMAT, next);
      }
      fail_unless_equals_uint64 (pts, next * FRAME_NS);
      fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (b,
              GST_BUFFER_FLAG_DISCONT), r->slots == 0);
      next++;
      if (!GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_GAP)) {
        guint32 pos;
        guint off;

        gst_buffer_extract (b, 0, &pos, 4);
        off = (guint) (ABS ((gint64) pts - (gint64) pos * (gint64) FRAME_NS)
            / GST_MSECOND);
        r->max_sync_ms = MAX (r->max_sync_ms, off);
        r->fresh++;
        if (r->slots >= total / 2)
          r->fresh_late_half++;
        if (resume && pos * FRAME_NS >= resume * GST_MSECOND &&
            !GST_CLOCK_TIME_IS_VALID (r->speech_pts)) {
          r->speech_pts = pts;
          r->speech_at = now;
        }
        if (resume && pts >= (quiet_from + 2000) * GST_MSECOND &&
            pts + 2500 * GST_MSECOND < resume * GST_MSECOND)
          r->fresh_quiet++;
      }
      if (resume && pts >= (quiet_from + 2000) * GST_MSECOND &&
          pts + 2500 * GST_MSECOND < resume * GST_MSECOND)
        r->slots_quiet++;
      if (r->slots >= total / 2)
        r->slots_late_half++;
      r->slots++;
      gst_buffer_unref (b);
    }
  }
  /* A WARNING, and QoS messages of skips that say why: the block time
   * against the real-time budget.  (pop_filtered would discard the rest.) */
  while ((msg = gst_bus_pop (bus))) {
    const GstStructure *qs = gst_message_get_structure (msg);
    guint64 bt = 0, budget = 0;

    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_WARNING)
      r->warned = TRUE;
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_QOS &&
        gst_structure_get_uint64 (qs, "block-time", &bt) &&
        gst_structure_get_uint64 (qs, "real-time-budget", &budget)) {
      r->qos_block_ms = bt / GST_MSECOND;
      fail_unless_equals_uint64 (budget, 480 * GST_MSECOND);
    }
    gst_message_unref (msg);
  }
  g_object_get (h->element, "stats", &st, NULL);
  gst_structure_get_int64 (st, "blocks-skipped", &r->skipped);
  GST_INFO ("stats %" GST_PTR_FORMAT, st);
  gst_structure_free (st);
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  gst_system_clock_set_default (NULL);
  gst_object_unref (tc);
  g_unsetenv ("LA_MOCK_BLOCK_MS");
}

/* The avatar moves at the rate the engine allows: whole blocks of stale
 * audio are skipped and the engine stays busy, so the fresh-frame ratio
 * is about 1/ratio (second half of the run, past the start), every slot is
 * filled, lip-sync holds, a WARNING says why. */
static void
check_slow (gdouble ratio)
{
  SlowRun r;
  gdouble want = 1.0 / ratio, got;

  run_slow_live (ratio, ratio > 5 ? 60 : 20, 0, 0, FALSE, &r);
  got = (gdouble) r.fresh_late_half / r.slots_late_half;
  GST_INFO ("ratio %.1f: %u slots, %u fresh, second half %.3f (want %.3f), "
      "sync <= %u ms, %" G_GINT64_FORMAT " blocks skipped", ratio, r.slots,
      r.fresh, got, want, r.max_sync_ms, r.skipped);
  fail_unless (got > 0.75 * want && got < 1.25 * want,
      "fresh-frame ratio %.3f at %.1fx, want about %.3f", got, ratio, want);
  fail_unless (r.max_sync_ms <= 40, "lip-sync off by %u ms", r.max_sync_ms);
  fail_unless (r.skipped > 0);
  fail_unless (r.warned, "no WARNING");
  /* the measured block time, give or take a 40 ms clock step */
  fail_unless (ABS ((gint64) r.qos_block_ms - (gint64) (480 * ratio)) <= 40,
      "QoS block-time %" G_GUINT64_FORMAT " ms", r.qos_block_ms);
}

GST_START_TEST (test_slow_engine_1_5x)
{
  check_slow (1.5);
}

GST_END_TEST;

GST_START_TEST (test_slow_engine_3x)
{
  check_slow (3);
}

GST_END_TEST;

GST_START_TEST (test_slow_engine_10x)
{
  check_slow (10);
}

GST_END_TEST;

/* Upstream live and silent for 10 s (no buffer, no GAP): with
 * idle=silence (the default) the engine is fed silence on the clock and
 * fresh frames keep coming; speech after it is taken from the next block
 * on: its first frame is out within one block + look-ahead + latency
 * (+ one frame of the audio buffer) of the speech's arrival.  With
 * idle=freeze the avatar stands still in the silence. */
GST_START_TEST (test_idle_silence)
{
  SlowRun r;
  /* ratio 1: 480 ms per block, latency 960 ms. */
  const guint bound_ms = 480 + 400 + 960 + 40;

  run_slow_live (1.0, 22, 5000, 15000, FALSE, &r);
  GST_INFO ("quiet: %u fresh of %u; speech at %" GST_TIME_FORMAT " out by %"
      GST_TIME_FORMAT, r.fresh_quiet, r.slots_quiet,
      GST_TIME_ARGS (r.speech_pts), GST_TIME_ARGS (r.speech_at));
  fail_unless (r.slots_quiet > 100);
  fail_unless (r.fresh_quiet > r.slots_quiet / 2, "%u fresh of %u in the "
      "silence", r.fresh_quiet, r.slots_quiet);
  fail_unless (GST_CLOCK_TIME_IS_VALID (r.speech_pts), "no frame of speech");
  fail_unless (r.speech_at <= 15000 * GST_MSECOND + bound_ms * GST_MSECOND,
      "speech out at %" GST_TIME_FORMAT, GST_TIME_ARGS (r.speech_at));
  fail_unless (r.max_sync_ms <= 40);

  run_slow_live (1.0, 22, 5000, 15000, TRUE, &r);
  fail_unless_equals_int (r.fresh_quiet, 0);
  fail_unless (GST_CLOCK_TIME_IS_VALID (r.speech_pts));
}

GST_END_TEST;

/* Error texts name what is at fault: a model-path that is a file says so,
 * a missing LoRA names lora-path. */
static void
expect_ready_error (GstElement * e, GstBus * bus, const gchar * needle)
{
  GstMessage *msg;
  GError *err = NULL;

  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (strstr (err->message, needle) != NULL, "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
}

GST_START_TEST (test_error_texts)
{
  GstElement *e = make_element ();
  GstBus *bus = gst_bus_new ();
  gchar *dir = g_dir_make_tmp ("la-err-XXXXXX", NULL);
  gchar *file = g_build_filename (dir, "model.safetensors", NULL);

  gst_element_set_bus (e, bus);
  fail_unless (g_file_set_contents (file, "x", 1, NULL));
  g_object_set (e, "model-path", file, NULL);
  expect_ready_error (e, bus, "is a file");
  g_object_set (e, "model-path", la_model_dir, "lora-path",
      "/nonexistent/lora.safetensors", NULL);
  expect_ready_error (e, bus, "lora-path");
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  g_unlink (file);
  g_rmdir (dir);
  g_free (file);
  g_free (dir);
}

GST_END_TEST;

/* The template offers 25/1 only: a 30/1 downstream does not link. */
GST_START_TEST (test_only_25fps)
{
  GError *err = NULL;
  GstElement *p = gst_parse_launch ("liveavatarsrc ! "
      "video/x-raw,framerate=30/1 ! fakesink", &err);

  fail_unless (err != NULL && g_error_matches (err, GST_PARSE_ERROR,
          GST_PARSE_ERROR_LINK), "%s", err ? err->message : "linked");
  g_clear_error (&err);
  gst_clear_object (&p);
  p = gst_parse_launch ("liveavatarsrc ! video/x-raw,framerate=25/1 ! "
      "fakesink", &err);
  fail_unless (err == NULL, "%s", err ? err->message : "");
  gst_object_unref (p);
}

GST_END_TEST;

static void
count_notify (GObject * obj, GParamSpec * pspec, gint * n)
{
  g_atomic_int_inc (n);
}

/* `state` and `stats` changes are notified (gst-launch-1.0 -v shows them). */
GST_START_TEST (test_notify)
{
  GstElement *e = make_element ();
  GstHarness *h;
  gint n_state = 0, n_stats = 0;
  GPtrArray *a;

  g_signal_connect (e, "notify::state", G_CALLBACK (count_notify), &n_state);
  g_signal_connect (e, "notify::stats", G_CALLBACK (count_notify), &n_stats);
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_harness_set_live (h, FALSE);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  push_audio (h, 0, 3 * SR, 1600, FALSE);
  gst_harness_push_event (h, gst_event_new_eos ());
  a = pull_all (h);
  fail_unless (g_atomic_int_get (&n_state) >= 2, "state notified %d times",
      n_state);
  /* about once per second of video: 3 s */
  fail_unless (g_atomic_int_get (&n_stats) >= 2, "stats notified %d times",
      n_stats);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
  gst_object_unref (e);
}

GST_END_TEST;

typedef struct
{
  GstHarness *h;
  gsize n;
} Feeder;

static gpointer
feed (gpointer data)
{
  Feeder *f = data;
  push_audio (f->h, 0, f->n, 1600, FALSE);
  gst_harness_push_event (f->h, gst_event_new_eos ());
  return NULL;
}

/* Non-live with a slow engine and a small queue: upstream blocks, nothing is
 * dropped, every frame comes out. */
GST_START_TEST (test_nonlive_never_drops)
{
  GstHarness *h;
  GPtrArray *a;
  Feeder f;
  GThread *t;
  GstStructure *st;
  guint64 dropped, repeated;
  gint64 adrop;

  g_setenv ("LA_MOCK_BLOCK_MS", "20", TRUE);
  h = make_harness (FALSE, NULL);
  gst_element_set_state (h->element, GST_STATE_NULL);
  g_object_set (h->element, "max-size-time", (guint64) GST_SECOND, NULL);
  gst_harness_play (h);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  f.h = h;
  f.n = 5 * SR;
  t = g_thread_new ("feeder", feed, &f);
  a = pull_all (h);
  g_thread_join (t);
  fail_unless_equals_int (a->len, expected_frames (5 * SR));
  check_grid (a, 0, 3);
  g_object_get (h->element, "stats", &st, NULL);
  gst_structure_get_uint64 (st, "frames-dropped", &dropped);
  gst_structure_get_uint64 (st, "frames-repeated", &repeated);
  gst_structure_get_int64 (st, "audio-samples-dropped", &adrop);
  fail_unless_equals_uint64 (dropped, 0);
  fail_unless_equals_uint64 (repeated, 0);
  fail_unless_equals_int64 (adrop, 0);
  gst_structure_free (st);
  g_ptr_array_unref (a);
  gst_harness_teardown (h);
  g_unsetenv ("LA_MOCK_BLOCK_MS");
}

GST_END_TEST;

/* ---- properties and interface ---- */

static int
cmp_pspec (const void *a, const void *b)
{
  return strcmp ((*(GParamSpec * const *) a)->name,
      (*(GParamSpec * const *) b)->name);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static gchar *
describe_interface (void)
{
  GstElementFactory *f = gst_element_factory_find ("liveavatarsrc");
  GstElement *e = gst_element_factory_create (f, NULL);
  GString *s = g_string_new (NULL);
  GParamSpec **props;
  guint i, n;
  const GList *l;

  /* Sorted by name: the class lists properties in hash order. */
  props = g_object_class_list_properties (G_OBJECT_GET_CLASS (e), &n);
  qsort (props, n, sizeof *props, cmp_pspec);
  for (i = 0; i < n; i++) {
    GParamSpec *p = props[i];
    const GValue *def = g_param_spec_get_default_value (p);
    gchar *dv = NULL;

    if (p->owner_type != G_OBJECT_TYPE (e))
      continue;
    if (G_VALUE_HOLDS_ENUM (def)) {
      GEnumClass *ec = g_type_class_ref (G_VALUE_TYPE (def));
      GEnumValue *ev = g_enum_get_value (ec, g_value_get_enum (def));
      dv = g_strdup (ev ? ev->value_nick : "?");
      g_type_class_unref (ec);
    } else if (!G_VALUE_HOLDS_BOXED (def)) {
      dv = gst_value_serialize (def);
    }
    g_string_append_printf (s, "property %s %s default=%s flags=%s%s%s%s%s\n",
        p->name, g_type_name (p->value_type), dv ? dv : "NULL",
        (p->flags & G_PARAM_READABLE) ? "r" : "-",
        (p->flags & G_PARAM_WRITABLE) ? "w" : "-",
        (p->flags & GST_PARAM_MUTABLE_READY) ? ",mutable-ready" : "",
        (p->flags & GST_PARAM_MUTABLE_PLAYING) ? ",mutable-playing" : "",
        (p->flags & GST_PARAM_CONTROLLABLE) ? ",controllable" : "");
    g_free (dv);
  }
  g_free (props);
  for (l = gst_element_factory_get_static_pad_templates (f); l; l = l->next) {
    GstStaticPadTemplate *t = l->data;
    GstCaps *c = gst_static_caps_get (&t->static_caps);
    gchar *cs = gst_caps_to_string (c);
    g_string_append_printf (s, "pad %s %s %s %s\n", t->name_template,
        t->direction == GST_PAD_SRC ? "src" : "sink",
        t->presence == GST_PAD_ALWAYS ? "always" : "other", cs);
    g_free (cs);
    gst_caps_unref (c);
  }
  g_string_append_printf (s, "klass %s\n",
      gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_KLASS));
  gst_object_unref (e);
  gst_object_unref (f);
  /* Pad templates come in registration order from a fresh plugin load and
   * reversed from the registry cache: sort all lines. */
  {
    gchar **lines = g_strsplit (s->str, "\n", -1), *out;
    guint nl = g_strv_length (lines);
    qsort (lines, nl, sizeof *lines, cmp_str);
    out = g_strjoinv ("\n", lines);
    g_strfreev (lines);
    g_string_free (s, TRUE);
    /* The empty last line sorted first: move the newline to the end. */
    s = g_string_new (out[0] == '\n' ? out + 1 : out);
    g_string_append_c (s, '\n');
    g_free (out);
  }
  return g_string_free (s, FALSE);
}

/* Pins property names, types, defaults, flags and pad caps against the
 * checked-in expectation (LA_UPDATE_EXPECTED=1 rewrites it). */
GST_START_TEST (test_interface_pinned)
{
  gchar *got = describe_interface (), *want = NULL;

  if (g_getenv ("LA_UPDATE_EXPECTED"))
    g_file_set_contents (LA_PROPS_EXPECTED, got, -1, NULL);
  fail_unless (g_file_get_contents (LA_PROPS_EXPECTED, &want, NULL, NULL),
      "cannot read %s", LA_PROPS_EXPECTED);
  fail_unless_equals_string (got, want);
  g_free (got);
  g_free (want);
}

GST_END_TEST;

/* READY-mutable properties are refused in PAUSED/PLAYING (the old value
 * stays); PLAYING-mutable ones change. */
GST_START_TEST (test_property_mutability)
{
  GstHarness *h = make_harness (FALSE, NULL);
  gchar *path;
  guint lat;
  gint state;

  g_object_set (h->element, "model-path", "/elsewhere", "seed",
      (guint64) 7, NULL);
  g_object_get (h->element, "model-path", &path, NULL);
  fail_unless_equals_string (path, la_model_dir);
  g_free (path);
  g_object_set (h->element, "latency", 123, NULL);
  g_object_get (h->element, "latency", &lat, "state", &state, NULL);
  fail_unless_equals_int (lat, 123);
  fail_unless (state == 3 || state == 4);       /* idle or speaking */
  gst_harness_teardown (h);
}

GST_END_TEST;

/* reference-image / reference-sample may change while PLAYING: the avatar
 * is swapped (the mock engine shifts its pattern from the next block on);
 * an unreadable image posts a warning naming it and keeps the avatar. */
static gint64
reference_swaps (GstElement * e)
{
  GstStructure *st;
  gint64 n = -1;

  g_object_get (e, "stats", &st, NULL);
  fail_unless (gst_structure_get_int64 (st, "reference-swaps", &n));
  gst_structure_free (st);
  return n;
}

/* Swaps run on the element's swap worker: waits until @n were handed to
 * the session. */
static void
wait_swaps (GstElement * e, gint64 n)
{
  gint64 end = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;

  while (reference_swaps (e) < n && g_get_monotonic_time () < end)
    g_usleep (1000);
  fail_unless_equals_int (reference_swaps (e), n);
}

GST_START_TEST (test_reference_swap)
{
  GstStructure *st;
  GPtrArray *a = run_with_swap (FALSE, SPF, NULL);
  GPtrArray *b = run_with_swap (TRUE, SPF, &st);
  guint changed = count_changed_frames (a, b, 9);
  gint64 swaps = -1;

  fail_unless_equals_int (a->len, 2 * 48 - 3);
  /* every frame generated after the swap shows the new avatar */
  fail_unless (changed >= a->len - 9 - 12, "only %u frames changed", changed);
  fail_unless (gst_structure_get_int64 (st, "reference-swaps", &swaps));
  fail_unless_equals_int64 (swaps, 1);
  gst_structure_free (st);
  g_ptr_array_unref (a);
  g_ptr_array_unref (b);
}

GST_END_TEST;

GST_START_TEST (test_reference_swap_errors)
{
  GstBus *bus;
  GstHarness *h = make_harness (FALSE, &bus);
  GstMessage *msg;
  GError *err = NULL;
  gchar *dbg = NULL, *dir = g_dir_make_tmp ("la-swap-XXXXXX", NULL);
  gchar *png = g_build_filename (dir, "face.png", NULL);
  guint8 px[4 * 6 * 3];
  GdkPixbuf *pb;

  /* a readable file works in PLAYING (the sample must be unset: it wins) */
  memset (px, 90, sizeof px);
  pb = gdk_pixbuf_new_from_data (px, GDK_COLORSPACE_RGB, FALSE, 8, 4, 6, 12,
      NULL, NULL);
  fail_unless (gdk_pixbuf_save (pb, png, "png", NULL, NULL));
  g_object_unref (pb);
  g_object_set (h->element, "reference-image", png, NULL);
  wait_swaps (h->element, 1);   /* the sample again */
  g_object_set (h->element, "reference-sample", NULL, NULL);
  wait_swaps (h->element, 2);   /* the file */
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);

  /* a missing file: warning naming it, avatar kept, still streaming */
  g_object_set (h->element, "reference-image", "/nonexistent/other.png", NULL);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
      GST_MESSAGE_WARNING);
  fail_unless_equals_int (reference_swaps (h->element), 2);
  fail_unless (msg != NULL);
  gst_message_parse_warning (msg, &err, &dbg);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_READ), "%s", err->message);
  fail_unless (strstr (err->message, "/nonexistent/other.png") != NULL, "%s",
      err->message);
  GST_INFO ("warning: %s (%s)", err->message, dbg);
  g_error_free (err);
  g_free (dbg);
  gst_message_unref (msg);
  fail_unless_equals_int (push_audio (h, 0, 48 * SPF, SPF, FALSE), GST_FLOW_OK);
  gst_harness_push_event (h, gst_event_new_eos ());
  {
    GPtrArray *a = pull_all (h);
    fail_unless_equals_int (a->len, 48 - 3);
    g_ptr_array_unref (a);
  }
  gst_element_set_bus (h->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (h);
  g_unlink (png);
  g_rmdir (dir);
  g_free (png);
  g_free (dir);
}

GST_END_TEST;

/* ---- errors and life cycle ---- */

GST_START_TEST (test_missing_model)
{
  GstElement *e = make_element ();
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;

  gst_element_set_bus (e, bus);
  g_object_set (e, "model-path", "/nonexistent/liveavatar-model", NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_NOT_FOUND), "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);

  /* No model-path at all: the same error, with a hint. */
  gst_element_set_state (e, GST_STATE_NULL);
  g_object_set (e, "model-path", NULL, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_unref (msg);

  /* Reusable: back to NULL, fix the property, it runs. */
  gst_element_set_state (e, GST_STATE_NULL);
  g_object_set (e, "model-path", la_model_dir, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PLAYING),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_bad_settings)
{
  GstElement *e = gst_element_factory_make ("liveavatarsrc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;

  gst_element_set_bus (e, bus);
  g_object_set (e, "model-path", la_model_dir, NULL);   /* no reference */
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_LIBRARY_ERROR,
          GST_LIBRARY_ERROR_SETTINGS), "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  g_object_set (e, "reference-image", "/nonexistent/face.png", NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (err->domain == GST_RESOURCE_ERROR, "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

/* Repeated NULL<->PLAYING cycles, with some data each time (run under
 * valgrind with --setup valgrindgst for leaks). */
GST_START_TEST (test_state_cycles)
{
  GstHarness *h = make_harness (FALSE, NULL);
  guint i, n = 50;

  for (i = 0; i < n; i++) {
    GstBuffer *b;
    gst_element_set_state (h->element, GST_STATE_NULL);
    gst_harness_play (h);
    gst_harness_set_src_caps_str (h, AUDIO_CAPS);
    push_audio (h, 0, 12 * SPF + 6400, 1600, FALSE);
    if (i % 2 == 0) {
      b = gst_harness_pull (h);
      fail_unless (b != NULL);
      gst_buffer_unref (b);
    }
    while ((b = gst_harness_try_pull (h)))
      gst_buffer_unref (b);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_two_elements)
{
  GstHarness *h1 = make_harness (FALSE, NULL), *h2 = make_harness (FALSE,
      NULL);
  GPtrArray *a1, *a2;

  push_audio (h1, 0, 48 * SPF, 1600, FALSE);
  push_audio (h2, 0, 2 * 48 * SPF, 640, FALSE);
  gst_harness_push_event (h1, gst_event_new_eos ());
  gst_harness_push_event (h2, gst_event_new_eos ());
  a1 = pull_all (h1);
  a2 = pull_all (h2);
  fail_unless_equals_int (a1->len, 45);
  fail_unless_equals_int (a2->len, 93);
  g_ptr_array_unref (a1);
  g_ptr_array_unref (a2);
  gst_harness_teardown (h1);
  gst_harness_teardown (h2);
}

GST_END_TEST;

static Suite *
liveavatarsrc_suite (void)
{
  Suite *s = suite_create ("liveavatarsrc");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps_accept_refuse);
  tcase_add_test (tc, test_caps_fixation);
  tcase_add_test (tc, test_caps_not_negotiated);
  tcase_add_test (tc, test_cuda_template_first);
  tcase_add_test (tc, test_cuda_caps_query_sysmem);
  tcase_add_test (tc, test_cuda_only_downstream);
  tcase_add_test (tc, test_cuda_device_required);
  tcase_add_test (tc, test_frame_grid);
  tcase_add_test (tc, test_frame_count_clips);
  tcase_add_test (tc, test_segment_running_time);
  tcase_add_test (tc, test_gap);
  tcase_add_test (tc, test_discont);
  tcase_add_test (tc, test_eos_drain);
  tcase_add_test (tc, test_flush);
  tcase_add_test (tc, test_latency_query);
  tcase_add_test (tc, test_live_deadlines);
  tcase_add_test (tc, test_live_speech_after_silence);
  tcase_add_test (tc, test_nonlive_never_drops);
  tcase_add_test (tc, test_slow_engine_1_5x);
  tcase_add_test (tc, test_slow_engine_3x);
  tcase_add_test (tc, test_slow_engine_10x);
  tcase_add_test (tc, test_idle_silence);
  tcase_add_test (tc, test_error_texts);
  tcase_add_test (tc, test_only_25fps);
  tcase_add_test (tc, test_notify);
  tcase_add_test (tc, test_interface_pinned);
  tcase_add_test (tc, test_property_mutability);
  tcase_add_test (tc, test_reference_swap);
  tcase_add_test (tc, test_reference_swap_errors);
  tcase_add_test (tc, test_missing_model);
  tcase_add_test (tc, test_bad_settings);
  tcase_add_test (tc, test_state_cycles);
  tcase_add_test (tc, test_two_elements);
  return s;
}

int
main (int argc, char **argv)
{
  /* The mock session only needs the model folder to exist. */
  la_model_dir = g_get_tmp_dir ();
  gst_check_init (&argc, &argv);
  return gst_check_run_suite (liveavatarsrc_suite (), "liveavatarsrc",
      __FILE__);
}
