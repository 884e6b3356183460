/* test-timeline.c — unit tests of liveavatar-timeline.c, the element's
 * timing arithmetic: the audio time line (holes, overlaps, GAP, DISCONT),
 * the grid and the session's 3-frame lead, deadlines across segment
 * changes, the output cursor, and the live skip decision. */
#include <gst/gst.h>
#include "liveavatar-timeline.h"

#define MS GST_MSECOND
#define SPF LA_TIMELINE_SAMPLES_PER_FRAME

static gsize
feed (LaTimelineIn * in, GstClockTime pts, gboolean discont, gsize n,
    gsize * silence)
{
  gsize skip;
  la_timeline_in_audio (in, pts, discont, 0, n, silence, &skip);
  la_timeline_in_advance (in, *silence + n - skip);
  return skip;
}

/* The first buffer starts the line at its PTS (or the segment start when
 * it has none); contiguous buffers and sub-frame jitter change nothing. */
static void
test_start_and_jitter (void)
{
  LaTimelineIn in;
  gsize silence, skip;

  la_timeline_in_reset (&in);
  g_assert_cmpuint (la_timeline_in_end (&in), ==, GST_CLOCK_TIME_NONE);
  la_timeline_in_audio (&in, GST_CLOCK_TIME_NONE, FALSE, 7 * MS, 160,
      &silence, &skip);
  g_assert_cmpuint (in.t0, ==, 7 * MS);
  la_timeline_in_reset (&in);
  g_assert_cmpuint (feed (&in, 2 * GST_SECOND, FALSE, 1600, &silence), ==, 0);
  g_assert_cmpuint (in.t0, ==, 2 * GST_SECOND);
  g_assert_cmpuint (silence, ==, 0);
  /* 100 ms later as expected, then 30 ms early and 30 ms late: jitter. */
  feed (&in, 2100 * MS, FALSE, 1600, &silence);
  g_assert_cmpuint (silence, ==, 0);
  g_assert_cmpuint (feed (&in, 2170 * MS, FALSE, 1600, &silence), ==, 0);
  g_assert_cmpuint (silence, ==, 0);
  feed (&in, 2330 * MS, FALSE, 1600, &silence);
  g_assert_cmpuint (silence, ==, 0);
  g_assert_cmpuint (in.samples, ==, 4 * 1600);
  g_assert_cmpuint (la_timeline_in_end (&in), ==, 2400 * MS);
}

/* A hole beyond one frame becomes silence up to the buffer's PTS; a
 * DISCONT buffer resyncs even for a small hole. */
static void
test_hole_and_discont (void)
{
  LaTimelineIn in;
  gsize silence;

  la_timeline_in_reset (&in);
  feed (&in, 0, FALSE, 16000, &silence);
  feed (&in, 1500 * MS, FALSE, 1600, &silence);
  g_assert_cmpuint (silence, ==, 8000);
  g_assert_cmpuint (la_timeline_in_end (&in), ==, 1600 * MS);
  /* 20 ms late: jitter without DISCONT, a resync with it. */
  feed (&in, 1620 * MS, FALSE, 160, &silence);
  g_assert_cmpuint (silence, ==, 0);
  feed (&in, 1630 * MS, TRUE, 160, &silence);
  g_assert_cmpuint (silence, ==, 320);
  g_assert_cmpuint (la_timeline_in_end (&in), ==, 1640 * MS);
}

/* An overlap beyond one frame is cut from the buffer's head, at most the
 * whole buffer. */
static void
test_overlap (void)
{
  LaTimelineIn in;
  gsize silence, skip;

  la_timeline_in_reset (&in);
  feed (&in, 0, FALSE, 16000, &silence);
  g_assert_cmpuint (feed (&in, 800 * MS, TRUE, 16000, &silence), ==, 3200);
  g_assert_cmpuint (la_timeline_in_end (&in), ==, 1800 * MS);
  la_timeline_in_audio (&in, 0, TRUE, 0, 1600, &silence, &skip);
  g_assert_cmpuint (skip, ==, 1600);
}

/* A GAP is silence up to its end; one inside the audio given adds
 * nothing; one before any audio starts the line. */
static void
test_gap (void)
{
  LaTimelineIn in;
  gsize silence;

  la_timeline_in_reset (&in);
  g_assert_cmpuint (la_timeline_in_gap (&in, 500 * MS, GST_SECOND), ==,
      16000);
  g_assert_cmpuint (in.t0, ==, 500 * MS);
  g_assert_cmpuint (la_timeline_in_gap (&in, 1 * GST_SECOND, 200 * MS), ==,
      0);
  g_assert_cmpuint (la_timeline_in_gap (&in, GST_CLOCK_TIME_NONE, 200 * MS),
      ==, 0);
  g_assert_cmpuint (la_timeline_in_gap (&in, 1400 * MS, GST_CLOCK_TIME_NONE),
      ==, 0);
  feed (&in, 1500 * MS, FALSE, 1600, &silence);
  g_assert_cmpuint (silence, ==, 0);
  g_assert_cmpuint (la_timeline_in_gap (&in, 1600 * MS, 400 * MS), ==, 6400);
  g_assert_cmpuint (la_timeline_in_end (&in), ==, 2000 * MS);
}

/* Events go out before the first slot whose audio was not complete when
 * they arrived. */
static void
test_event_slot (void)
{
  LaTimelineIn in;

  la_timeline_in_reset (&in);
  g_assert_cmpint (la_timeline_in_event_slot (&in), ==, 0);
  la_timeline_in_advance (&in, SPF);
  g_assert_cmpint (la_timeline_in_event_slot (&in), ==, 1);
  la_timeline_in_advance (&in, 1);
  g_assert_cmpint (la_timeline_in_event_slot (&in), ==, 2);
}

/* The grid: 25 slots make exactly one second, durations tile it; the
 * session's frame k (3-frame lead, skipped frames) lands on slot
 * k + 3 + skipped. */
static void
test_grid_and_lead (void)
{
  GstClockTime t0 = 1234567;
  gint64 k;
  GstClockTime sum = 0;

  for (k = 0; k < 25; k++)
    sum += la_timeline_duration (t0, k);
  g_assert_cmpuint (sum, ==, GST_SECOND);
  g_assert_cmpuint (la_timeline_pts (t0, 25), ==, t0 + GST_SECOND);
  g_assert_cmpint (la_timeline_frame_ns (0, LA_TIMELINE_LEAD_FRAMES, 0), ==,
      120 * MS);
  g_assert_cmpint (la_timeline_slot_of (la_timeline_frame_ns (0,
              LA_TIMELINE_LEAD_FRAMES, 0)), ==, 3);
  g_assert_cmpint (la_timeline_slot_of (la_timeline_frame_ns (9,
              LA_TIMELINE_LEAD_FRAMES, 24)), ==, 36);
  g_assert_cmpint (la_timeline_slot_of (la_timeline_frame_ns (5, 0, 0)), ==,
      5);
  /* A position a little off the grid rounds to the nearest slot. */
  g_assert_cmpint (la_timeline_slot_of (119 * MS), ==, 3);
  g_assert_cmpint (la_timeline_slot_of (101 * MS), ==, 3);
  g_assert_cmpint (la_timeline_slot_of (99 * MS), ==, 2);
}

/* Deadline = base + running time of the slot + latency, following the
 * segment (a new segment with another base or start moves it); NONE for a
 * slot before the segment. */
static void
test_deadline_segments (void)
{
  GstSegment seg;
  GstClockTime base = 5 * GST_SECOND, lat = 900 * MS;

  gst_segment_init (&seg, GST_FORMAT_TIME);
  g_assert_cmpuint (la_timeline_deadline (&seg, 0, 10, base, lat), ==,
      base + 400 * MS + lat);
  /* A segment starting at 10 s whose running time starts at 2 s. */
  seg.start = seg.time = 10 * GST_SECOND;
  seg.base = 2 * GST_SECOND;
  g_assert_cmpuint (la_timeline_deadline (&seg, 10 * GST_SECOND, 25, base,
          lat), ==, base + 3 * GST_SECOND + lat);
  g_assert_cmpuint (la_timeline_deadline (&seg, 9 * GST_SECOND, 0, base,
          lat), ==, GST_CLOCK_TIME_NONE);
}

/* The cursor: one buffer per slot in order, DISCONT on the first only;
 * frames for passed slots are late, for later slots need filling. */
static void
test_out_cursor (void)
{
  LaTimelineOut out;
  gboolean discont;

  la_timeline_out_reset (&out);
  g_assert_cmpint (la_timeline_out_place (&out, 0), ==, LA_SLOT_FRESH);
  /* Nothing pushed yet: the stream may start later (the 3-frame lead). */
  g_assert_cmpint (la_timeline_out_place (&out, 3), ==, LA_SLOT_START);
  la_timeline_out_start (&out, 3);
  g_assert_cmpint (la_timeline_out_place (&out, 3), ==, LA_SLOT_FRESH);
  g_assert_cmpint (la_timeline_out_take (&out, &discont), ==, 3);
  g_assert_true (discont);
  g_assert_cmpint (la_timeline_out_take (&out, &discont), ==, 4);
  g_assert_false (discont);
  /* Started: a later frame needs the slots before it filled. */
  g_assert_cmpint (la_timeline_out_place (&out, 9), ==, LA_SLOT_FILL);
  g_assert_cmpint (la_timeline_out_place (&out, 3), ==, LA_SLOT_LATE);
  g_assert_cmpint (la_timeline_out_place (&out, 5), ==, LA_SLOT_FRESH);
  la_timeline_out_reset (&out);
  g_assert_cmpint (la_timeline_out_take (&out, &discont), ==, 0);
  g_assert_true (discont);
}

/* Live skip: none while the oldest block fits; otherwise up to the first
 * queued block that fits (each later block has 480 ms more); with none
 * queued that fits, all when the next to come fits, else all but the
 * newest. */
static void
test_blocks_to_skip (void)
{
  g_assert_cmpint (la_timeline_blocks_to_skip (800 * MS, 700 * MS, 5, 0), ==,
      0);
  g_assert_cmpint (la_timeline_blocks_to_skip (700 * MS, 700 * MS, 1, 0), ==,
      0);
  g_assert_cmpint (la_timeline_blocks_to_skip (600 * MS, 700 * MS, 5, 0), ==,
      1);
  g_assert_cmpint (la_timeline_blocks_to_skip (-500 * MS, 700 * MS, 5, 0), ==,
      3);
  /* Two queued, neither fits (-500 + 480 < 700): the next, 100 ms away,
   * has -500 + 960 - 100 = 360 ms: no better; generate the newest. */
  g_assert_cmpint (la_timeline_blocks_to_skip (-500 * MS, 700 * MS, 2,
          100 * MS), ==, 1);
  /* One queued, 100 ms left, the next 300 ms away: 280 ms < 700: the
   * newest; with a block time of 200 ms it does fit: wait for it. */
  g_assert_cmpint (la_timeline_blocks_to_skip (100 * MS, 700 * MS, 1,
          300 * MS), ==, 0);
  g_assert_cmpint (la_timeline_blocks_to_skip (100 * MS, 200 * MS, 1,
          300 * MS), ==, 1);
  g_assert_cmpint (la_timeline_blocks_to_skip (-100 * MS, 200 * MS, 1,
          100 * MS), ==, 1);
  g_assert_cmpint (la_timeline_blocks_to_skip (-500 * MS, 700 * MS, 0, 0), ==,
      0);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/timeline/start-and-jitter", test_start_and_jitter);
  g_test_add_func ("/timeline/hole-and-discont", test_hole_and_discont);
  g_test_add_func ("/timeline/overlap", test_overlap);
  g_test_add_func ("/timeline/gap", test_gap);
  g_test_add_func ("/timeline/event-slot", test_event_slot);
  g_test_add_func ("/timeline/grid-and-lead", test_grid_and_lead);
  g_test_add_func ("/timeline/deadline-segments", test_deadline_segments);
  g_test_add_func ("/timeline/out-cursor", test_out_cursor);
  g_test_add_func ("/timeline/blocks-to-skip", test_blocks_to_skip);
  return g_test_run ();
}
