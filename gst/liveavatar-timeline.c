/* liveavatar-timeline.c — see liveavatar-timeline.h.  Times are rounded
 * with gst_util_uint64_scale (down) for positions and durations so that
 * pts(n + 1) - pts(n) sums to exactly one second every 25 slots. */
#include "liveavatar-timeline.h"

void
la_timeline_in_reset (LaTimelineIn * in)
{
  in->t0 = GST_CLOCK_TIME_NONE;
  in->samples = 0;
}

GstClockTime
la_timeline_in_end (const LaTimelineIn * in)
{
  if (!GST_CLOCK_TIME_IS_VALID (in->t0))
    return GST_CLOCK_TIME_NONE;
  return in->t0 + gst_util_uint64_scale (in->samples, GST_SECOND,
      LA_TIMELINE_RATE);
}

void
la_timeline_in_audio (LaTimelineIn * in, GstClockTime pts, gboolean discont,
    GstClockTime segment_start, gsize n, gsize * silence, gsize * skip)
{
  GstClockTime expected, tol;

  *silence = *skip = 0;
  if (!GST_CLOCK_TIME_IS_VALID (in->t0)) {
    in->t0 = GST_CLOCK_TIME_IS_VALID (pts) ? pts : segment_start;
    in->samples = 0;
    return;
  }
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return;
  /* A DISCONT buffer resyncs to the sample; otherwise jitter below one
   * frame is absorbed so the grid does not wobble. */
  tol = discont ? GST_SECOND / LA_TIMELINE_RATE : LA_TIMELINE_RESYNC_TOLERANCE;
  expected = la_timeline_in_end (in);
  if (pts > expected + tol)
    *silence = gst_util_uint64_scale (pts - expected, LA_TIMELINE_RATE,
        GST_SECOND);
  else if (pts + tol < expected)
    *skip = MIN (n, gst_util_uint64_scale (expected - pts, LA_TIMELINE_RATE,
            GST_SECOND));
}

gsize
la_timeline_in_gap (LaTimelineIn * in, GstClockTime ts, GstClockTime dur)
{
  GstClockTime end;
  gsize silence = 0;

  if (!GST_CLOCK_TIME_IS_VALID (ts))
    return 0;
  if (!GST_CLOCK_TIME_IS_VALID (in->t0)) {
    in->t0 = ts;
    in->samples = 0;
  }
  end = la_timeline_in_end (in);
  if (GST_CLOCK_TIME_IS_VALID (dur) && ts + dur > end)
    silence = gst_util_uint64_scale (ts + dur - end, LA_TIMELINE_RATE,
        GST_SECOND);
  in->samples += silence;
  return silence;
}

void
la_timeline_in_advance (LaTimelineIn * in, guint64 n)
{
  in->samples += n;
}

gint64
la_timeline_in_event_slot (const LaTimelineIn * in)
{
  return (gint64) ((in->samples + LA_TIMELINE_SAMPLES_PER_FRAME - 1) /
      LA_TIMELINE_SAMPLES_PER_FRAME);
}

GstClockTime
la_timeline_pts (GstClockTime t0, gint64 slot)
{
  return t0 + gst_util_uint64_scale (slot, GST_SECOND, LA_TIMELINE_FPS);
}

GstClockTime
la_timeline_duration (GstClockTime t0, gint64 slot)
{
  return la_timeline_pts (t0, slot + 1) - la_timeline_pts (t0, slot);
}

gint64
la_timeline_slot_of (gint64 pts_ns)
{
  return (gint64) gst_util_uint64_scale_round (pts_ns, LA_TIMELINE_FPS,
      GST_SECOND);
}

gint64
la_timeline_frame_ns (gint64 index, gint64 lead, gint64 skipped)
{
  return (index + lead + skipped) * (gint64) LA_TIMELINE_FRAME_NS;
}

GstClockTime
la_timeline_deadline (const GstSegment * seg, GstClockTime t0, gint64 slot,
    GstClockTime base_time, GstClockTime latency)
{
  GstClockTime rt = gst_segment_to_running_time (seg, GST_FORMAT_TIME,
      la_timeline_pts (t0, slot));

  if (!GST_CLOCK_TIME_IS_VALID (rt))
    return GST_CLOCK_TIME_NONE;
  return base_time + rt + latency;
}

gint64
la_timeline_blocks_to_skip (gint64 left_ns, gint64 block_ns, gint64 complete,
    gint64 wait_next_ns)
{
  const gint64 B = (gint64) LA_TIMELINE_BLOCK_NS;
  gint64 n;

  if (complete <= 0 || left_ns >= block_ns)
    return 0;
  /* Block i (0 = oldest) has left_ns + i * B. */
  n = (block_ns - left_ns + B - 1) / B;
  if (n < complete)
    return n;
  /* None queued can be on time: wait for the next if it can. */
  if (left_ns + complete * B - wait_next_ns >= block_ns)
    return complete;
  return complete - 1;
}

void
la_timeline_out_reset (LaTimelineOut * out)
{
  out->next = 0;
  out->discont = TRUE;
}

LaSlotAction
la_timeline_out_place (const LaTimelineOut * out, gint64 slot)
{
  if (slot < out->next)
    return LA_SLOT_LATE;
  if (slot > out->next)
    return out->discont ? LA_SLOT_START : LA_SLOT_FILL;
  return LA_SLOT_FRESH;
}

void
la_timeline_out_start (LaTimelineOut * out, gint64 slot)
{
  g_return_if_fail (out->discont);
  out->next = slot;
}

gint64
la_timeline_out_take (LaTimelineOut * out, gboolean * discont)
{
  *discont = out->discont;
  out->discont = FALSE;
  return out->next++;
}
