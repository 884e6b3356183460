/* liveavatar-timeline.h — the timing arithmetic of liveavatarsrc, on its
 * own (GStreamer-light: clock times and segments only, no pads, no locks;
 * the caller holds whatever lock guards the structs).
 *
 * Three time lines meet in the element:
 *  - the audio time line: t0 (the PTS of the first audio after a start,
 *    flush or new segment) + samples / 16 kHz.  Holes in the input become
 *    silence and overlaps are cut, so it is continuous from t0 and the
 *    session's sample count is a position on it;
 *  - the session's frame positions (LaFrame.pts_ns): frame k of the stream
 *    stands at (k + lead + skipped frames) / 25 s of that line, lead = 3
 *    frames (the first block drops 3) unless the reference's A/V lead is
 *    kept;
 *  - the output grid: slot n at pts(n) = t0 + n / 25 s, each slot pushed
 *    once, in order; its live deadline is
 *    base_time + running_time(pts(n)) + latency (GstAggregator's rule).
 * The output cursor decides, for each frame the session hands over, whether
 * it fills the next slot, comes after slots that must be filled first (the
 * session skipped audio: those slots get repeats, so the grid has no hole),
 * or comes after its slot went by (a repeat stood in; it is dropped).
 */
#pragma once
#include <gst/gst.h>

G_BEGIN_DECLS

#define LA_TIMELINE_FPS 25
#define LA_TIMELINE_RATE 16000
#define LA_TIMELINE_SAMPLES_PER_FRAME (LA_TIMELINE_RATE / LA_TIMELINE_FPS)
#define LA_TIMELINE_FRAMES_PER_BLOCK 12
#define LA_TIMELINE_FRAME_NS (GST_SECOND / LA_TIMELINE_FPS)
#define LA_TIMELINE_BLOCK_NS (LA_TIMELINE_FRAMES_PER_BLOCK * LA_TIMELINE_FRAME_NS)
/* The session's default picture delay behind the audio it was given. */
#define LA_TIMELINE_LEAD_FRAMES 3
/* A PTS jump larger than this (one frame, as audiobasesink's alignment
 * threshold) resyncs the audio time line; DISCONT buffers resync at once. */
#define LA_TIMELINE_RESYNC_TOLERANCE (40 * GST_MSECOND)

/* Input side: where the audio given to the session so far ends. */
typedef struct
{
  GstClockTime t0;              /* PTS of slot 0; NONE before the first audio */
  guint64 samples;              /* audio + silence given since t0 */
} LaTimelineIn;

void la_timeline_in_reset (LaTimelineIn * in);
/* Places @n samples stamped @pts (NONE: continues the line) on the line:
 * starts it at @pts (or @segment_start) when it has not started, else
 * *silence = samples of silence to give before them (a hole), *skip =
 * samples to cut from their head (an overlap).  Does not advance. */
void la_timeline_in_audio (LaTimelineIn * in, GstClockTime pts,
    gboolean discont, GstClockTime segment_start, gsize n, gsize * silence,
    gsize * skip);
/* A GAP event: the silence (in samples) that brings the line to ts + dur,
 * already added.  Starts the line at @ts if needed. */
gsize la_timeline_in_gap (LaTimelineIn * in, GstClockTime ts,
    GstClockTime dur);
void la_timeline_in_advance (LaTimelineIn * in, guint64 n);
/* The slot from which the audio given so far is complete: a serialized
 * event arriving now goes out before that slot. */
gint64 la_timeline_in_event_slot (const LaTimelineIn * in);
/* Current end of the line as a PTS (NONE before t0). */
GstClockTime la_timeline_in_end (const LaTimelineIn * in);

/* Grid. */
GstClockTime la_timeline_pts (GstClockTime t0, gint64 slot);
GstClockTime la_timeline_duration (GstClockTime t0, gint64 slot);
/* The slot of a frame at @pts_ns on the audio time line (rounded). */
gint64 la_timeline_slot_of (gint64 pts_ns);
/* A session frame's place on the audio time line: frame @index with
 * @lead frames of picture delay and @skipped frames of audio dropped or
 * skipped before it. */
gint64 la_timeline_frame_ns (gint64 index, gint64 lead, gint64 skipped);
/* Live deadline of @slot as a clock time (NONE outside @seg). */
GstClockTime la_timeline_deadline (const GstSegment * seg, GstClockTime t0,
    gint64 slot, GstClockTime base_time, GstClockTime latency);
/* Live scheduling: how many of the @complete blocks of audio queued (their
 * audio and look-ahead are there) to skip whole, when the oldest one's
 * first frame has @left_ns until its deadline and a block takes @block_ns
 * to generate.  Each block later on the line has one block (480 ms) more.
 * The first one that can be on time is generated; when none can, all are
 * skipped if the next block, complete in @wait_next_ns (audio comes in real
 * time), can be, else the newest is generated anyway (partly late, and the
 * block time keeps being measured). */
gint64 la_timeline_blocks_to_skip (gint64 left_ns, gint64 block_ns,
    gint64 complete, gint64 wait_next_ns);

/* Output side: the cursor over the grid. */
typedef struct
{
  gint64 next;                  /* next slot to push */
  gboolean discont;             /* the next buffer starts a stream */
} LaTimelineOut;

typedef enum
{
  LA_SLOT_FRESH,                /* the frame is for the next slot */
  LA_SLOT_START,                /* the stream starts at the frame's slot
                                 * (la_timeline_out_start): the 3-frame
                                 * lead leaves the first slots out */
  LA_SLOT_FILL,                 /* slots before the frame's must be filled first */
  LA_SLOT_LATE,                 /* its slot went by: drop it */
} LaSlotAction;

void la_timeline_out_reset (LaTimelineOut * out);
LaSlotAction la_timeline_out_place (const LaTimelineOut * out, gint64 slot);
void la_timeline_out_start (LaTimelineOut * out, gint64 slot);
/* Claims the next slot: returns it; *discont says whether the buffer
 * carries DISCONT (only the first one of a stream: the grid never jumps). */
gint64 la_timeline_out_take (LaTimelineOut * out, gboolean * discont);

G_END_DECLS
