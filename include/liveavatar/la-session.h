/* la-session.h — the engine's streaming session: 16 kHz mono PCM in, RGB
 * video frames out, GStreamer-free.  This is what the liveavatarsrc element
 * and liveavatar-render wrap.
 *
 * A session composes the components into the loop of docs/design/streaming.md §3
 * with TPP semantics: size selection from the reference image, reference
 * and motion latents (VAE), text context (umT5), sink prefill into the four
 * per-step KV caches, decoder priming; then per block of 12 video frames:
 * wav2vec2 features -> 4 DiT steps -> streaming VAE decode -> frames.
 *
 * Threads: la_session_push_audio() only queues (bounded; the caller picks
 * blocking or dropping the oldest audio); an engine thread generates; the
 * caller pulls frames.  Frame accounting (docs/design/streaming.md §5.1): the first block of a
 * stream yields 9 frames, every later one 12.  A/V offset (docs/design/streaming.md §5.3): see
 * la_session_params_init(); by default frame k is shown at the time of the
 * audio it was conditioned on (the reference's 3-frame lead is not kept).
 */
#pragma once
#include <glib.h>
#include "la-backend.h"
#include "la-weights.h"

G_BEGIN_DECLS

#define LA_SESSION_FPS 25
#define LA_SESSION_SAMPLE_RATE 16000
#define LA_SESSION_FRAMES_PER_BLOCK 12

typedef enum {
  LA_QUEUE_BLOCK,         /* push_audio waits for room (non-live pipelines, renders) */
  LA_QUEUE_DROP_OLDEST,   /* push_audio drops the oldest queued audio (live pipelines) */
} LaQueuePolicy;

typedef enum {
  LA_AUDIO_OFFLINE,       /* wav2vec2 over the whole stream so far (parity with the reference) */
  LA_AUDIO_LIVE,          /* per-block windows with past context and look-ahead */
} LaAudioMode;

/* Frames kept on the output GPU (la_session_set_device_frames). */
typedef enum {
  LA_DEVICE_FRAMES_OFF = 0,      /* host RGB frames (LaFrame.rgb), the default */
  LA_DEVICE_FRAMES_RGBA = 1,     /* packed RGBA8, RGB bytes equal to the host frames' */
  LA_DEVICE_FRAMES_NV12_BT601,   /* NV12 of those RGBA frames, limited range (la_rgba8_to_nv12) */
  LA_DEVICE_FRAMES_NV12_BT709,
} LaDeviceFrames;

typedef struct {
  const char *model_dir;       /* official Wan2.2-S2V-14B folder or a generated one */
  const char *lora;            /* LoRA file/folder, NULL for none */
  /* Reference image, packed RGB8 (stride >= 3*width). */
  const guint8 *ref_rgb;
  int ref_width, ref_height, ref_stride;
  const char *prompt;          /* UTF-8; NULL or "" for empty */
  int max_area;                /* pixel-area budget for the output size (docs/design/image.md §1); 0 = 720*400 */
  guint64 seed;                /* noise seed */
  int sink_offset;             /* rolling-sink d in [4,30]; 0 = random per call (seeded) */
  gboolean sink_refresh;       /* rebuild the sink from the first generated latent at clip 1 */
  LaAudioMode audio_mode;
  int lookahead_ms, context_ms;/* live mode windows */
  LaQueuePolicy queue_policy;
  int max_queue_ms;            /* audio queue bound; 0 = 2000 ms */
  gboolean keep_av_lead;       /* TRUE: show frame k at audio time k/25 like the reference (picture leads by 3 frames) */
  const char *devices;         /* "cpu" (default); a comma list of TPP stages, each "cpu" or
                                * "tcp://HOST:PORT" (a liveavatar-stage worker); or of CUDA
                                * stages "cuda:N" (stages may share a GPU; one GPU per stage
                                * moves the latent through NCCL; docs/cuda.md "The session") */
  int n_threads;               /* CPU threads, 0 = all */
  LaWeights weights;           /* resident precision of the linear weights (la-weights.h):
                                * LA_WEIGHTS_FILE (0, the checkpoint's: bf16 stays bf16),
                                * LA_WEIGHTS_F32 (golden-case parity), LA_WEIGHTS_BF16, or
                                * LA_WEIGHTS_FP8 (CUDA only: the DiT's eligible linears) */
  LaDeviceFrames device_frames;/* frames stay on the output GPU (LaFrame.device_data) instead
                                * of host RGB; needs the VAE on cuda:N (see
                                * la_session_set_device_frames); default OFF */
} LaSessionParams;

void la_session_params_init (LaSessionParams *p);

typedef struct _LaSession LaSession;

typedef struct {
  gint   ref_count;
  int    width, height, stride;  /* RGB8, stride = 3*width */
  guint8 *rgb;
  gint64 index;                  /* frame number in the stream, from 0 */
  gint64 pts_ns;                 /* its place on the audio time line: (index + 3) * 40 ms
                                  * (index * 40 ms with keep_av_lead), plus 40 ms per
                                  * frame of audio dropped before it (LA_QUEUE_DROP_OLDEST) */
  /* A device frame (la_session_set_device_frames; OFF for host frames): rgb
   * is NULL and the planes are on CUDA device device_index, complete (no
   * pending work) and valid until the last la_frame_unref.  RGBA: plane 0
   * packed RGBA8 (alpha 255, RGB bytes equal to the host path's); NV12:
   * plane 0 Y (height rows), plane 1 interleaved CbCr (height/2 rows). */
  LaDeviceFrames device_format;
  void   *device_data[2];
  int    device_pitch[2];
  int    device_index;
  /*< private >*/
  gpointer device_owner;
} LaFrame;

LaFrame *la_frame_ref (LaFrame *f);
void     la_frame_unref (LaFrame *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaFrame, la_frame_unref)

typedef struct {
  gint64 blocks_done, frames_out;
  gint64 audio_samples_in, audio_samples_dropped;
  double queue_ms;               /* audio waiting to be generated */
  double fps;                    /* generated frames per second of wall time (recent) */
  /* Last block's stage times; ms_dit sums the pipeline stages' steps, ms_block
   * is the engine thread's time to queue a block (with the pipeline full: the
   * time one block takes to come out). */
  double ms_audio, ms_dit, ms_vae, ms_block;
  double ms_setup;               /* model load + prefill */
  gboolean sink_from_stream;     /* the sink is the stream's first generated latent (rolling
                                  * sink, from clip 1 on); FALSE: the reference image */
  gint64 reference_swaps;        /* la_session_set_reference calls applied so far */
  gint64 blocks_skipped;         /* blocks of stale audio skipped (la_session_set_deadline_func) */
  double ms_block_avg;           /* smoothed wall time of one block, audio features to frames */
  guint64 weight_bytes;          /* resident weights of its model (shared with the sessions
                                  * of the same model: see la_model_cache_get_stats) */
} LaSessionStats;

/* Loads the model, encodes the reference and the prompt, prefills the sink
 * and primes the decoder.  Errors name the file, tensor or argument. */
LaSession *la_session_new (const LaSessionParams *p, GError **error);
void       la_session_free (LaSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaSession, la_session_free)

/* Replaces the reference image while streaming (another avatar, or a new
 * photo of the same one).  The image is resized and cropped to the session's
 * output size and VAE-encoded here, in the caller's thread; the engine
 * applies it before its next block: the sink (all 4 caches) and the motion
 * latents become the new image's, the rings and the decoder keep their
 * state, so the picture changes within a block without a cut in the frame
 * grid.  The rolling sink's clip-1 switch to the stream's first latent is
 * not done after a swap (that latent shows the old reference): the sink
 * stays the new image.  Later la_session_reset calls keep the new image.
 * Two calls before the engine gets to the first: the second wins. */
/* The last reference given (la_session_new or la_session_set_reference) as
 * the session prepared it: packed RGB, resized and cropped to
 * la_session_get_size (a new ref; what an element shows while idle). */
GBytes    *la_session_get_reference_frame (LaSession *s);
gboolean   la_session_set_reference (LaSession *s, const guint8 *rgb, int width, int height, int stride,
                                     GError **error);

/* Output size chosen from the reference and max_area (docs/design/image.md §1: multiples of 64). */
void       la_session_get_size (LaSession *s, int *width, int *height);
/* Frames of latency the session adds beyond generation: block accumulation
 * and look-ahead, in ns. */
gint64     la_session_get_latency_ns (LaSession *s);

/* Queues mono PCM (f32 in [-1,1] or s16).  Never blocks with LA_QUEUE_DROP_OLDEST;
 * with LA_QUEUE_BLOCK waits until there is room or la_session_reset/close. */
gboolean   la_session_push_audio (LaSession *s, const float *pcm, gsize n_samples, GError **error);
gboolean   la_session_push_audio_s16 (LaSession *s, const gint16 *pcm, gsize n_samples, GError **error);
/* Changes the queue policy (e.g. once the host learns whether its source is
 * live); a pusher waiting under LA_QUEUE_BLOCK is released. Drops are whole
 * frames (640 samples) and move the later frames' pts_ns accordingly. */
void       la_session_set_queue_policy (LaSession *s, LaQueuePolicy policy);
/* Queues n samples of silence (GAP / DISCONT resync). */
void       la_session_push_silence (LaSession *s, gsize n_samples);
/* No more audio: the last partial block is padded with silence and generated. */
void       la_session_end_of_stream (LaSession *s);

/* Next frame, waiting up to timeout_us (-1 = forever).  NULL with no error on
 * timeout or after the last frame of an ended stream (la_session_is_drained);
 * NULL with an error when generation failed. */
LaFrame   *la_session_pull_frame (LaSession *s, gint64 timeout_us, GError **error);
gboolean   la_session_is_drained (LaSession *s);
/* Interrupts a waiting pull/push (flush, shutdown); they return at once, and
 * keep returning at once (pushes queue nothing) until la_session_reset(). */
void       la_session_interrupt (LaSession *s);
/* Drops queued audio and frames and starts a new stream (caches, sink,
 * decoder state) without reloading weights.  A stream that has been given
 * no audio and no EOS yet is kept as it is (it is already new). */
void       la_session_reset (LaSession *s);

void       la_session_get_stats (LaSession *s, LaSessionStats *st);

/* Frames of the blocks emitted from now on stay on the output GPU in
 * @format (LaFrame.device_data: converted there by the frames_to_rgba8 and
 * rgba8_to_nv12 ops, no download), or come to the host as RGB
 * (LA_DEVICE_FRAMES_OFF, the default).  Frames already queued keep their
 * kind.  FALSE with LA_ERROR_UNSUPPORTED when @format is not OFF and the
 * session's output (the VAE) is not on a CUDA device. */
gboolean   la_session_set_device_frames (LaSession *s, LaDeviceFrames format, GError **error);

/* Live scheduling.  Returns how long (ns) is left until the deadline of the
 * frame at @pts_ns (LaFrame.pts_ns of the frame), negative once it passed,
 * G_MAXINT64 when there is none (not live, no clock). */
typedef gint64 (*LaSessionDeadlineFunc) (gint64 pts_ns, gpointer user_data);
/* Before each block after the first, the engine asks @func about the
 * block's first frame; when less time is left than the measured block time
 * (ms_block_avg) and newer audio is queued, the block's audio is skipped
 * whole (blocks_skipped, audio_samples_dropped; later frames' pts_ns move
 * by 12 frames) and the next is considered, so the block generated is the
 * newest that can be on time, or the newest queued when none can.  Called
 * on the engine thread without the session's lock held.  The block time
 * runs from queuing a block to its frames, so the blocks in flight in a
 * TPP pipeline's stages are counted. */
void       la_session_set_deadline_func (LaSession *s, LaSessionDeadlineFunc func, gpointer user_data);
/* The process's model cache: sessions that load the same model folder, LoRA,
 * precision and device share one resident copy of the weights (reference
 * counted; freed with the last session using it). */
typedef struct {
  guint   n_models;          /* distinct models resident */
  guint   n_users;           /* sessions holding them */
  guint64 resident_bytes;    /* their weights, each model counted once */
} LaModelCacheStats;
void       la_model_cache_get_stats (LaModelCacheStats *st);

G_END_DECLS
