/* mock-session.c — a test-only implementation of la-session.h for the
 * element's streaming-logic tests: same contract and frame accounting as
 * the engine (blocks of 12 frames, the first block of a stream yields 9,
 * frame k at audio time (k+3)/25 s, EOS pads the last partial block, bounded
 * queue blocking or dropping the oldest audio in whole frames, which moves
 * later frames' pts), but frames are synthetic (a pattern of
 * x, y, channel and frame index; the first 4 bytes hold, little-endian, the
 * input audio position the frame was generated from, in frames of 40 ms from
 * t0, counting dropped and skipped audio, so tests can check lip-sync) and a
 * block costs LA_MOCK_BLOCK_MS of GStreamer system-clock time (default 0;
 * a test that makes its GstTestClock the default system clock drives the
 * engine's speed with it), so live deadlines, skips and QoS can be tested on
 * a slow "engine".  Stale blocks are skipped as la-session.h says.
 * la_session_new fails with LA_ERROR_NOT_FOUND when model_dir is missing,
 * like the engine.  The real engine is tested by test-liveavatarsrc-engine.
 */
#include <string.h>
#include <stdlib.h>
#include <math.h>
#include <liveavatar/la-session.h>
#include <liveavatar/la-error.h>
#include <liveavatar/la-image.h>
#include <gst/gst.h>
#include "liveavatar-timeline.h"

#define SPF (LA_SESSION_SAMPLE_RATE / LA_SESSION_FPS)
#define BLOCK (LA_SESSION_FRAMES_PER_BLOCK * SPF)
#define FIRST_DROP LA_TIMELINE_LEAD_FRAMES
#define GST_SECOND_NS G_GINT64_CONSTANT (1000000000)

struct _LaSession
{
  LaSessionParams p;
  int w, h;
  GBytes *ref_frame;            /* the reference as the engine prepares it */
  GMutex lock;
  GCond cond;
  GThread *thread;
  gsize pending, max_pending;   /* samples queued */
  gint64 consumed;              /* samples the engine took (or skipped) */
  gint64 head_pos;              /* input position of the queue's head (samples) */
  GArray *skips;                /* (pos, frames) pairs: audio dropped at pos */
  gboolean eos, quit, interrupted, drained;
  GQueue frames;
  gint64 frame_index, blocks;
  gint block_ms;
  gint avatar;                  /* reference swaps so far: shifts the pattern */
  LaSessionStats stats;
  LaSessionDeadlineFunc deadline_func;
  gpointer deadline_data;
};

void
la_session_params_init (LaSessionParams * p)
{
  memset (p, 0, sizeof *p);
  p->max_area = 720 * 400;
  p->seed = 420;
  p->sink_refresh = TRUE;
  p->lookahead_ms = 400;
  p->context_ms = 4000;
  p->max_queue_ms = 2000;
  p->devices = "cpu";
}

LaFrame *
la_frame_ref (LaFrame * f)
{
  g_atomic_int_inc (&f->ref_count);
  return f;
}

void
la_frame_unref (LaFrame * f)
{
  if (f && g_atomic_int_dec_and_test (&f->ref_count)) {
    g_free (f->rgb);
    g_free (f);
  }
}

/* Called with the lock: the frames shift of drops at or before frame
 * @index's audio. */
static gint64
dropped_before (LaSession * s, gint64 index)
{
  gint64 shift = 0;
  for (guint i = 0; i < s->skips->len; i += 2)
    if (g_array_index (s->skips, gint64, i) <= (index + FIRST_DROP) * SPF)
      shift += g_array_index (s->skips, gint64, i + 1);
  return shift;
}

/* Called with the lock, a block about to start: skips whole blocks of
 * stale audio (la_timeline_blocks_to_skip).  FALSE when every complete
 * block was skipped (wait for the next). */
static gboolean
skip_stale (LaSession * s, gsize look)
{
  LaSessionDeadlineFunc func = s->deadline_func;
  gint64 left, n, complete, wait_ns, pts_ns,
      est_ns = (gint64) (s->stats.ms_block_avg * 1e6);

  if (!func || est_ns <= 0 || s->eos || s->pending < BLOCK + look)
    return TRUE;
  complete = (gint64) ((s->pending - look) / BLOCK);
  wait_ns = gst_util_uint64_scale ((complete + 1) * BLOCK + look - s->pending,
      GST_SECOND, LA_SESSION_SAMPLE_RATE);
  pts_ns = la_timeline_frame_ns (s->frame_index, FIRST_DROP,
      dropped_before (s, s->frame_index));
  g_mutex_unlock (&s->lock);
  left = func (pts_ns, s->deadline_data);
  g_mutex_lock (&s->lock);
  n = la_timeline_blocks_to_skip (left, est_ns, complete, wait_ns);
  /* The queue may have been dropped from meanwhile. */
  n = MIN (n, (gint64) (s->pending / BLOCK));
  s->consumed += n * BLOCK;
  s->head_pos += n * BLOCK;
  s->pending -= n * BLOCK;
  s->frame_index += n * LA_SESSION_FRAMES_PER_BLOCK;
  s->stats.blocks_skipped += n;
  s->stats.audio_samples_dropped += n * BLOCK;
  return s->pending >= BLOCK + look;
}

/* Called with the lock: waits block_ms on the GStreamer system clock (a
 * GstTestClock in tests that set one as the default: it is polled, as a
 * test clock releases waits only when cranked).  FALSE on quit. */
static gboolean
block_cost (LaSession * s)
{
  GstClock *clock = gst_system_clock_obtain ();
  GstClockTime start = gst_clock_get_time (clock), end, now;

  end = start + (GstClockTime) s->block_ms * GST_MSECOND;
  while (!s->quit && (now = gst_clock_get_time (clock)) < end)
    g_cond_wait_until (&s->cond, &s->lock, g_get_monotonic_time () +
        MIN (1000, (gint64) ((end - now) / 1000)));
  s->stats.ms_block = (gst_clock_get_time (clock) - start) / 1e6;
  s->stats.ms_block_avg = s->stats.ms_block_avg > 0 ?
      0.75 * s->stats.ms_block_avg + 0.25 * s->stats.ms_block :
      s->stats.ms_block;
  gst_object_unref (clock);
  return !s->quit;
}

static gpointer
engine (gpointer data)
{
  LaSession *s = data;
  gsize look = (gsize) s->p.lookahead_ms * (LA_SESSION_SAMPLE_RATE / 1000);
  gint64 block_pos;

  g_mutex_lock (&s->lock);
  for (;;) {
    while (!s->quit && !(s->pending >= BLOCK + look) && !(s->eos
            && !s->drained))
      g_cond_wait (&s->cond, &s->lock);
    if (s->quit)
      break;
    if (s->eos && s->pending == 0) {
      s->drained = TRUE;
      g_cond_broadcast (&s->cond);
      continue;
    }
    if (s->blocks > 0 && !skip_stale (s, look))
      continue;
    block_pos = s->head_pos;
    s->consumed += (gint64) MIN (s->pending, BLOCK);
    s->head_pos += (gint64) MIN (s->pending, BLOCK);
    s->pending -= MIN (s->pending, BLOCK);
    if (s->block_ms > 0 && !block_cost (s))
      break;
    for (int k = s->blocks == 0 ? FIRST_DROP : 0;
        k < LA_SESSION_FRAMES_PER_BLOCK; k++) {
      LaFrame *f = g_new0 (LaFrame, 1);
      f->ref_count = 1;
      f->width = s->w;
      f->height = s->h;
      f->stride = 3 * s->w;
      f->rgb = g_malloc ((gsize) 3 * s->w * s->h);
      /* Varies with x, y, channel and frame, so a copy that gets strides,
       * pitches or planes wrong shows (the CUDA pixel test). */
      for (gsize i = 0; i < (gsize) 3 * s->w * s->h; i++) {
        gsize x = (i / 3) % s->w, y = i / 3 / s->w;
        f->rgb[i] = (guint8) (s->frame_index * 7 + x * 3 + y * 5 + (i % 3) * 60 + s->avatar * 100);
      }
      {
        guint32 pos = (guint32) (block_pos / SPF + k);
        memcpy (f->rgb, &pos, 4);
      }
      f->index = s->frame_index++;
      f->pts_ns = la_timeline_frame_ns (f->index, FIRST_DROP,
          dropped_before (s, f->index));
      g_queue_push_tail (&s->frames, f);
      s->stats.frames_out++;
    }
    s->blocks++;
    s->stats.blocks_done = s->blocks;
    g_cond_broadcast (&s->cond);
  }
  g_mutex_unlock (&s->lock);
  return NULL;
}

static void
start (LaSession * s)
{
  s->quit = s->eos = s->interrupted = s->drained = FALSE;
  s->pending = 0;
  s->consumed = s->head_pos = 0;
  g_array_set_size (s->skips, 0);
  s->frame_index = s->blocks = 0;
  s->thread = g_thread_new ("mock-engine", engine, s);
}

static void
stop (LaSession * s)
{
  g_mutex_lock (&s->lock);
  s->quit = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  g_thread_join (s->thread);
  g_queue_clear_full (&s->frames, (GDestroyNotify) la_frame_unref);
}

/* As the engine: resized and centre-cropped to the output size. */
static GBytes *
prepare_frame (LaSession * s, const guint8 * rgb, int w, int h, int stride)
{
  guint8 *packed = g_malloc ((gsize) w * h * 3);
  guint8 *crop;

  for (int y = 0; y < h; y++)
    memcpy (packed + (gsize) y * w * 3, rgb + (gsize) y * stride, (gsize) w * 3);
  crop = la_image_resize_crop (packed, w, h, s->h, s->w, NULL, NULL);
  g_free (packed);
  return g_bytes_new_take (crop, (gsize) s->w * s->h * 3);
}

GBytes *
la_session_get_reference_frame (LaSession * s)
{
  GBytes *b;

  g_mutex_lock (&s->lock);
  b = g_bytes_ref (s->ref_frame);
  g_mutex_unlock (&s->lock);
  return b;
}

LaSession *
la_session_new (const LaSessionParams * p, GError ** error)
{
  LaSession *s;
  const char *ms = g_getenv ("LA_MOCK_BLOCK_MS");

  if (!p->model_dir || !g_file_test (p->model_dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
        "model folder '%s' not found", p->model_dir ? p->model_dir : "");
    return NULL;
  }
  if (!p->ref_rgb || p->ref_width <= 0 || p->ref_height <= 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "no reference image");
    return NULL;
  }
  s = g_new0 (LaSession, 1);
  s->p = *p;
  /* Square output of the area budget, multiples of 64. */
  s->w = s->h = MAX (64,
      (int) sqrt ((double) (p->max_area ? p->max_area : 720 * 400)) / 64 * 64);
  s->max_pending = (gsize) (p->max_queue_ms ? p->max_queue_ms : 2000) *
      (LA_SESSION_SAMPLE_RATE / 1000);
  s->block_ms = ms ? atoi (ms) : 0;
  s->ref_frame = prepare_frame (s, p->ref_rgb, p->ref_width, p->ref_height,
      p->ref_stride ? p->ref_stride : 3 * p->ref_width);
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  g_queue_init (&s->frames);
  s->skips = g_array_new (FALSE, FALSE, sizeof (gint64));
  start (s);
  return s;
}

void
la_session_free (LaSession * s)
{
  if (!s)
    return;
  stop (s);
  g_array_unref (s->skips);
  g_bytes_unref (s->ref_frame);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

void
la_session_get_size (LaSession * s, int *width, int *height)
{
  *width = s->w;
  *height = s->h;
}

gint64
la_session_get_latency_ns (LaSession * s)
{
  return (gint64) LA_SESSION_FRAMES_PER_BLOCK * (GST_SECOND_NS /
      LA_SESSION_FPS) + (gint64) s->p.lookahead_ms * 1000000;
}

static gboolean
push (LaSession * s, gsize n)
{
  g_mutex_lock (&s->lock);
  /* Blocking: admit large pushes in pieces as the engine makes room (it
   * only consumes whole blocks + look-ahead, which the bound admits). */
  while (s->p.queue_policy == LA_QUEUE_BLOCK && !s->interrupted && !s->quit
      && !s->eos && n > 0) {
    gsize piece = MIN (n, s->max_pending / 2);
    if (s->pending + piece > s->max_pending) {
      g_cond_wait (&s->cond, &s->lock);
      continue;
    }
    s->pending += piece;
    s->stats.audio_samples_in += piece;
    n -= piece;
    g_cond_broadcast (&s->cond);
  }
  if (!s->interrupted && !s->eos && n > 0) {
    s->pending += n;
    s->stats.audio_samples_in += n;
    if (s->p.queue_policy == LA_QUEUE_DROP_OLDEST
        && s->pending > s->max_pending) {
      gsize over = s->pending - s->max_pending;
      gsize drop = MIN (s->pending, (over + SPF - 1) / SPF * SPF);
      gint64 pair[2] = { s->consumed, (gint64) (drop / SPF) };
      s->stats.audio_samples_dropped += drop;
      s->pending -= drop;
      s->head_pos += drop;
      g_array_append_vals (s->skips, pair, 2);
    }
    g_cond_broadcast (&s->cond);
  }
  g_mutex_unlock (&s->lock);
  return TRUE;
}

gboolean
la_session_push_audio (LaSession * s, const float *pcm, gsize n, GError ** e)
{
  return push (s, n);
}

gboolean
la_session_push_audio_s16 (LaSession * s, const gint16 * pcm, gsize n,
    GError ** e)
{
  return push (s, n);
}

void
la_session_push_silence (LaSession * s, gsize n)
{
  push (s, n);
}

void
la_session_set_queue_policy (LaSession * s, LaQueuePolicy policy)
{
  g_mutex_lock (&s->lock);
  s->p.queue_policy = policy;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
la_session_end_of_stream (LaSession * s)
{
  g_mutex_lock (&s->lock);
  s->eos = TRUE;
  /* Pad the last partial block (and the look-ahead) with silence. */
  if (s->pending % BLOCK)
    s->pending += BLOCK - s->pending % BLOCK;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

LaFrame *
la_session_pull_frame (LaSession * s, gint64 timeout_us, GError ** error)
{
  LaFrame *f;
  gint64 end = g_get_monotonic_time () + timeout_us;

  g_mutex_lock (&s->lock);
  while (!(f = g_queue_pop_head (&s->frames)) && !s->drained
      && !s->interrupted) {
    if (timeout_us < 0)
      g_cond_wait (&s->cond, &s->lock);
    else if (!g_cond_wait_until (&s->cond, &s->lock, end))
      break;
  }
  g_mutex_unlock (&s->lock);
  return f;
}

gboolean
la_session_is_drained (LaSession * s)
{
  gboolean d;
  g_mutex_lock (&s->lock);
  d = s->drained && g_queue_is_empty (&s->frames);
  g_mutex_unlock (&s->lock);
  return d;
}

void
la_session_interrupt (LaSession * s)
{
  g_mutex_lock (&s->lock);
  s->interrupted = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

void
la_session_reset (LaSession * s)
{
  stop (s);
  memset (&s->stats, 0, sizeof s->stats);
  start (s);
}

gboolean
la_session_set_reference (LaSession * s, const guint8 * rgb, int width,
    int height, int stride, GError ** error)
{
  if (!rgb || width <= 0 || height <= 0 || stride < 3 * width) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "bad reference image");
    return FALSE;
  }
  GBytes *frame = prepare_frame (s, rgb, width, height, stride);

  g_mutex_lock (&s->lock);
  g_bytes_unref (s->ref_frame);
  s->ref_frame = frame;
  s->avatar++;                  /* frames generated from now on show it */
  s->stats.reference_swaps++;
  g_mutex_unlock (&s->lock);
  return TRUE;
}

void
la_session_set_deadline_func (LaSession * s, LaSessionDeadlineFunc func,
    gpointer user_data)
{
  g_mutex_lock (&s->lock);
  s->deadline_func = func;
  s->deadline_data = user_data;
  g_mutex_unlock (&s->lock);
}

void
la_session_get_stats (LaSession * s, LaSessionStats * st)
{
  g_mutex_lock (&s->lock);
  *st = s->stats;
  st->queue_ms = s->pending * 1000.0 / LA_SESSION_SAMPLE_RATE;
  g_mutex_unlock (&s->lock);
}

/* The mock makes host frames only (it has no device). */
gboolean
la_session_set_device_frames (LaSession * s, LaDeviceFrames format,
    GError ** error)
{
  if (format == LA_DEVICE_FRAMES_OFF)
    return TRUE;
  g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
      "device frames: the mock session has no CUDA device");
  return FALSE;
}
