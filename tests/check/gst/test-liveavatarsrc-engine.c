/* test-liveavatarsrc-engine.c — liveavatarsrc with the real CPU engine and
 * the tiny random-weight model, generated into a temp folder by
 * liveavatar-mkmodel ($LA_MKMODEL) at start-up.
 *
 * One element (one model load: the slow part on a 2-core machine) runs two
 * streams separated by a flush: 1 clip of audio -> 45 frames, then 2 clips
 * -> 93 frames (48N - 3), PTS on the 25 fps grid, frames not constant.
 * The streaming logic in detail is covered by test-liveavatarsrc (mock).
 */
#include "la-gst-test.h"
#include <glib/gstdio.h>


static gboolean
frame_varies (GstBuffer * b)
{
  GstMapInfo map;
  gsize i;
  gboolean varies = FALSE;

  gst_buffer_map (b, &map, GST_MAP_READ);
  for (i = 1; i < map.size && !varies; i++)
    varies = map.data[i] != map.data[0];
  gst_buffer_unmap (b, &map);
  return varies;
}

GST_START_TEST (test_engine_streams)
{
  GstHarness *h = make_harness (FALSE, NULL);
  GstSegment seg;
  GPtrArray *a;
  guint n, i;
  GstStructure *st;
  gint64 blocks;

  for (n = 1; n <= 2; n++) {
    if (n > 1) {
      fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
      fail_unless (gst_harness_push_event (h,
              gst_event_new_flush_stop (TRUE)));
      gst_segment_init (&seg, GST_FORMAT_TIME);
      gst_harness_push_event (h, gst_event_new_segment (&seg));
    }
    fail_unless_equals_int (push_audio (h, 0, n * 48 * SPF, 320, FALSE),
        GST_FLOW_OK);
    gst_harness_push_event (h, gst_event_new_eos ());
    a = pull_all (h);
    fail_unless_equals_int (a->len, 48 * n - 3);
    check_grid (a, 0, 3);
    for (i = 0; i < a->len; i += 11)
      fail_unless (frame_varies (g_ptr_array_index (a, i)));
    g_ptr_array_unref (a);
    g_object_get (h->element, "stats", &st, NULL);
    fail_unless (gst_structure_get_int64 (st, "block-index", &blocks));
    fail_unless_equals_int64 (blocks, 4 * n);
    /* One clip leaves the reference as the sink; the second clip's blocks
     * were made with the rolling sink (the stream's first latent). */
    fail_unless_equals_string (gst_structure_get_string (st, "sink-frame"),
        n == 1 ? "reference" : "first-generated");
    gst_structure_free (st);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The avatar swapped while PLAYING (reference-sample), on the real engine:
 * the frames after the swap differ from a run without it, the ones before
 * do not, and the rolling sink stays the new image. */
GST_START_TEST (test_engine_reference_swap)
{
  GstStructure *sa, *sb;
  GPtrArray *a = run_with_swap (FALSE, 320, &sa), *b = run_with_swap (TRUE,
      320, &sb);
  guint changed = count_changed_frames (a, b, 9);
  gint64 swaps = -1;

  fail_unless_equals_int (a->len, 2 * 48 - 3);
  fail_unless (changed > (a->len - 9) / 2, "only %u frames changed", changed);
  fail_unless (gst_structure_get_int64 (sb, "reference-swaps", &swaps));
  fail_unless_equals_int64 (swaps, 1);
  /* the rolling sink switched to the first latent without the swap only */
  fail_unless_equals_string (gst_structure_get_string (sa, "sink-frame"),
      "first-generated");
  fail_unless_equals_string (gst_structure_get_string (sb, "sink-frame"),
      "reference");
  gst_structure_free (sa);
  gst_structure_free (sb);
  g_ptr_array_unref (a);
  g_ptr_array_unref (b);
}

GST_END_TEST;

/* Loading runs off the caller's thread: set_state(READY) returns at once
 * (a generous functional bound, not a benchmark: the tiny model takes
 * seconds to load here), PROGRESS start/continue/complete follow, and the
 * state says ready once loaded.  A model folder that cannot be loaded
 * still succeeds the state change and then posts an ERROR. */
GST_START_TEST (test_engine_load_off_thread)
{
  GstElement *e = make_element ();
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  gint64 t0, took;
  gboolean seen[3] = { FALSE, FALSE, FALSE };
  gint state;
  GError *err = NULL;
  gchar *empty;

  gst_element_set_bus (e, bus);
  t0 = g_get_monotonic_time ();
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  took = g_get_monotonic_time () - t0;
  fail_unless (took < 100 * G_TIME_SPAN_MILLISECOND, "READY took %"
      G_GINT64_FORMAT " us", took);
  wait_loaded (e);
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_PROGRESS))) {
    GstProgressType type;
    gst_message_parse_progress (msg, &type, NULL, NULL);
    if (type == GST_PROGRESS_TYPE_START)
      seen[0] = TRUE;
    else if (type == GST_PROGRESS_TYPE_CONTINUE)
      seen[1] = TRUE;
    else if (type == GST_PROGRESS_TYPE_COMPLETE)
      seen[2] = TRUE;
    gst_message_unref (msg);
  }
  fail_unless (seen[0] && seen[1] && seen[2], "PROGRESS %d %d %d", seen[0],
      seen[1], seen[2]);
  g_object_get (e, "state", &state, NULL);
  fail_unless_equals_int (state, 2);    /* ready */
  gst_element_set_state (e, GST_STATE_NULL);

  empty = g_build_filename (la_tmpdir, "empty", NULL);
  g_mkdir (empty, 0700);
  g_object_set (e, "model-path", empty, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  msg = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no ERROR for an unloadable model");
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (err->domain == GST_RESOURCE_ERROR, "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  g_object_get (e, "state", &state, NULL);
  fail_unless_equals_int (state, 5);    /* error */
  gst_element_set_state (e, GST_STATE_NULL);
  g_rmdir (empty);
  g_free (empty);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
engine_suite (void)
{
  Suite *s = suite_create ("liveavatarsrc-engine");
  TCase *tc = tcase_create ("engine");

  tcase_set_timeout (tc, 280);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_engine_load_off_thread);
  tcase_add_test (tc, test_engine_streams);
  tcase_add_test (tc, test_engine_reference_swap);
  return s;
}

int
main (int argc, char **argv)
{
  return la_gst_test_main_tiny (argc, argv, engine_suite, "liveavatarsrc-engine");
}
