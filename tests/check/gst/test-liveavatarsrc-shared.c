/* test-liveavatarsrc-shared.c — two liveavatarsrc elements of one model in
 * one process (the engine's model cache: one resident copy of the weights,
 * counted once in tests/check/session/test-model-cache) running at the same
 * time give the frames one element gives alone: nothing of a stream lives in
 * the shared weights.  Real CPU engine, tiny model from liveavatar-mkmodel.
 */
#include "la-gst-test.h"
#include <glib/gstdio.h>


static GPtrArray *
run (GstHarness * h)
{
  gst_harness_push_event (h, gst_event_new_eos ());
  return pull_all (h);
}

static void
assert_same (GPtrArray * a, GPtrArray * b)
{
  guint i;

  fail_unless_equals_int (a->len, b->len);
  for (i = 0; i < a->len; i++) {
    GstBuffer *x = g_ptr_array_index (a, i), *y = g_ptr_array_index (b, i);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (x), GST_BUFFER_PTS (y));
    {
      GstMapInfo mx, my;
      gst_buffer_map (x, &mx, GST_MAP_READ);
      gst_buffer_map (y, &my, GST_MAP_READ);
      fail_unless_equals_uint64 (mx.size, my.size);
      fail_unless (memcmp (mx.data, my.data, mx.size) == 0, "frame %u differs", i);
      gst_buffer_unmap (x, &mx);
      gst_buffer_unmap (y, &my);
    }
  }
}

GST_START_TEST (test_two_elements)
{
  GstHarness *h0 = make_harness (FALSE, NULL), *h1, *h2;
  GPtrArray *alone, *a1, *a2;

  {
    gsize off;
    /* (push_audio's tone restarts with each call: the same chunks for all) */
    for (off = 0; off < 48 * SPF; off += 12 * SPF)
      fail_unless_equals_int (push_audio (h0, gst_util_uint64_scale (off, GST_SECOND, SR), 12 * SPF, 320, FALSE),
          GST_FLOW_OK);
  }
  alone = run (h0);
  fail_unless_equals_int (alone->len, 45);
  gst_harness_teardown (h0);

  h1 = make_harness (FALSE, NULL);
  h2 = make_harness (FALSE, NULL);
  /* the same audio to both, in turns, so both engines run at once */
  {
    gsize off;
    for (off = 0; off < 48 * SPF; off += 12 * SPF) {
      fail_unless_equals_int (push_audio (h1, gst_util_uint64_scale (off, GST_SECOND, SR), 12 * SPF, 320, FALSE),
          GST_FLOW_OK);
      fail_unless_equals_int (push_audio (h2, gst_util_uint64_scale (off, GST_SECOND, SR), 12 * SPF, 320, FALSE),
          GST_FLOW_OK);
    }
  }
  a1 = run (h1);
  a2 = run (h2);
  assert_same (alone, a1);
  assert_same (alone, a2);
  g_ptr_array_unref (alone);
  g_ptr_array_unref (a1);
  g_ptr_array_unref (a2);
  gst_harness_teardown (h1);
  gst_harness_teardown (h2);
}

GST_END_TEST;

static Suite *
shared_suite (void)
{
  Suite *s = suite_create ("liveavatarsrc-shared");
  TCase *tc = tcase_create ("shared");

  tcase_set_timeout (tc, 280);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_two_elements);
  return s;
}

int
main (int argc, char **argv)
{
  return la_gst_test_main_tiny (argc, argv, shared_suite, "liveavatarsrc-shared");
}
