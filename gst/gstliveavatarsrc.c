/* GStreamer
 * Copyright (C) 2025 gst-liveavatar contributors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2 of the License, or (at your option) any later version.
 */
/**
 * SECTION:element-liveavatarsrc
 * @title: liveavatarsrc
 * @see_also: espeak, audioconvert, videoconvert
 *
 * Generates talking-avatar video from speech: 16 kHz mono audio in, raw
 * video out at the model's size and 25 frames per second.  It hosts the
 * gst-liveavatar engine session (la-session.h): Wan2.2-S2V causal
 * diffusion conditioned on a reference image and wav2vec2 audio features.
 *
 * Design (why it is a plain GstElement): the sink chain only queues audio
 * into the session (bounded: blocking when the pipeline is not live,
 * dropping the oldest audio when it is); a src-pad task pulls finished
 * frames from the session and pushes them with PTS on a constant 25 fps
 * grid that starts at the first audio timestamp of the segment.  The
 * input segment is forwarded unchanged, so audio and video running times
 * match.  Serialized events travel in order with the frames: each is
 * tagged with the frame index at which the audio before it ends.  No lock
 * is held across a push or a session wait.
 *
 * In live pipelines every slot of the grid gets one buffer: when a frame
 * is not ready by its deadline (base-time + running-time + latency), the
 * last frame (or the reference image before the first one) is repeated
 * with the right PTS and the GAP flag, and a QoS message is posted.  The
 * engine never starts a block that cannot be on time: stale audio is
 * skipped in whole blocks (session_time_left), so a slow device gives a
 * lip-synced avatar at a reduced rate, with a WARNING.  A silent live
 * upstream is fed silence on the clock (idle=silence).  Non-live pipelines
 * block and never drop.  The model loads on a worker thread.  Timing
 * arithmetic: liveavatar-timeline.c; output side: liveavatar-output.c.
 *
 * Output is system memory, or video/x-raw(memory:CUDAMemory) on the CUDA
 * context shared with downstream (cudadownload, cudaconvert, nvh264enc)
 * when the plugin was built with gstreamer-cuda-1.0 and a CUDA driver and
 * device are present (gstliveavatarcuda.c); CUDA memory is preferred when
 * downstream takes both, and never offered without a context.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 espeak text="Hello there" ! audioconvert ! audioresample ! \
 *     liveavatarsrc model-path=/models/la reference-image=face.png ! \
 *     videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <math.h>
#include <gst/gst.h>
#include <gst/audio/audio.h>
#include <gst/video/video.h>

#include <liveavatar/la-session.h>
#include <liveavatar/la-error.h>
#include <liveavatar/la-image.h>

#include "gstliveavatarsrc.h"
#include "gstliveavatarcuda.h"
#include "liveavatar-output.h"
#include "liveavatar-timeline.h"

GST_DEBUG_CATEGORY (gst_live_avatar_src_debug);
#define GST_CAT_DEFAULT gst_live_avatar_src_debug

#define DEFAULT_MODEL_PATH NULL
#define DEFAULT_LORA_PATH NULL
#define DEFAULT_REFERENCE_IMAGE NULL
#define DEFAULT_PROMPT NULL
#define DEFAULT_DEVICES "cpu"
#define DEFAULT_SEED 420
#define DEFAULT_SINK_OFFSET 0
#define DEFAULT_SINK_REFRESH TRUE
#define DEFAULT_AUDIO_MODE GST_LIVE_AVATAR_SRC_AUDIO_LIVE
#define DEFAULT_LOOKAHEAD_MS 400
#define DEFAULT_CONTEXT_MS 4000
#define DEFAULT_LATENCY_MS 500
#define DEFAULT_LEAKY GST_LIVE_AVATAR_SRC_LEAKY_AUTO
#define DEFAULT_MAX_SIZE_TIME (2 * GST_SECOND)
#define DEFAULT_QOS TRUE
#define DEFAULT_IDLE GST_LIVE_AVATAR_SRC_IDLE_SILENCE
#define DEFAULT_IDLE_TIMEOUT_MS 1000
#define DEFAULT_MAX_ERRORS 10
#define DEFAULT_MAX_AREA 0
#define DEFAULT_THREADS 0
#define DEFAULT_WEIGHTS GST_LIVE_AVATAR_SRC_WEIGHTS_FILE
#define DEFAULT_CUDA_DEVICE_ID -1

#define FPS_N LA_SESSION_FPS
#define FPS_D 1
#define RATE LA_SESSION_SAMPLE_RATE
G_STATIC_ASSERT (LA_TIMELINE_FPS == LA_SESSION_FPS);
G_STATIC_ASSERT (LA_TIMELINE_RATE == LA_SESSION_SAMPLE_RATE);
/* How long one task iteration waits for a frame before re-checking the
 * live deadline and pending events. */
#define PULL_TIMEOUT_US 10000
/* RMS above which the input counts as speech for the `state` property. */
#define SPEECH_RMS 1e-3

enum
{
  PROP_0,
  PROP_MODEL_PATH,
  PROP_LORA_PATH,
  PROP_REFERENCE_IMAGE,
  PROP_REFERENCE_SAMPLE,
  PROP_PROMPT,
  PROP_DEVICES,
  PROP_SEED,
  PROP_SINK_OFFSET,
  PROP_SINK_REFRESH,
  PROP_AUDIO_MODE,
  PROP_LOOKAHEAD,
  PROP_CONTEXT,
  PROP_LATENCY,
  PROP_LEAKY,
  PROP_MAX_SIZE_TIME,
  PROP_IDLE,
  PROP_IDLE_TIMEOUT,
  PROP_QOS,
  PROP_MAX_ERRORS,
  PROP_MAX_AREA,
  PROP_THREADS,
  PROP_WEIGHTS,
  PROP_CUDA_DEVICE_ID,
  PROP_STATS,
  PROP_STATE,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) { S16LE, F32LE }, "
        "rate = (int) 16000, channels = (int) 1, "
        "layout = (string) interleaved"));

/* memory:CUDAMemory first, so it is preferred when downstream takes both
 * (nvh264enc); the CAPS query drops it unless a CUDA context is held
 * (gstliveavatarcuda.h), so without a driver only system memory is
 * offered. */
#define SRC_FORMATS "{ RGB, RGBA, I420, NV12 }"
/* Only 25/1, the model's rate: a downstream asking for another rate fails
 * to link instead of failing at the first buffer. */
#define SRC_CAPS(features) "video/x-raw" features ", format = (string) " \
    SRC_FORMATS ", width = " GST_VIDEO_SIZE_RANGE ", height = " \
    GST_VIDEO_SIZE_RANGE ", framerate = (fraction) 25/1"
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (SRC_CAPS ("(" GST_LIVE_AVATAR_CAPS_FEATURE_CUDA_MEMORY
            ")") "; " SRC_CAPS ("")));

typedef struct
{
  GstEvent *event;
  gint64 frame;                 /* push once next_frame >= frame */
} PendingEvent;

#define AFTER_DRAIN G_MAXINT64

typedef enum
{
  LOAD_NONE,
  LOAD_RUNNING,
  LOAD_DONE,
  LOAD_FAILED,
} LoadStatus;

struct _GstLiveAvatarSrc
{
  GstElement parent;

  GstPad *sinkpad, *srcpad;

  /* Properties and QoS/counters: GST_OBJECT_LOCK. */
  gchar *model_path, *lora_path, *reference_image, *prompt, *devices;
  GstSample *reference_sample;
  guint64 seed;
  gint sink_offset;
  gboolean sink_refresh;
  GstLiveAvatarSrcAudioMode audio_mode;
  guint lookahead_ms, context_ms, latency_ms;
  GstLiveAvatarSrcLeaky leaky;
  guint64 max_size_time;
  gboolean qos;
  GstLiveAvatarSrcIdle idle;
  GstLiveAvatarSrcWeights weights;
  guint idle_timeout_ms;
  gint max_errors, max_area, threads;
  gint cuda_device_id;
  gboolean settings_dirty;      /* READY-mutable settings changed since load */
  guint64 queue_bound_ms;       /* audio queue bound given to the session */
  GstLiveAvatarSrcState state;
  gdouble proportion;
  GstClockTime earliest_time;
  guint64 frames_pushed, frames_repeated, frames_dropped, frames_fresh;
  gboolean upstream_live;
  GstClockTime upstream_min;

  /* Session: loaded by the loader thread started in NULL->READY (or
   * READY->PAUSED after a READY-time property change), freed in
   * READY->NULL, when no streaming thread runs.  load_status under
   * load_lock, signalled on load_cond. */
  LaSession *session;
  GThread *loader;
  GMutex load_lock;
  GCond load_cond;
  LoadStatus load_status;
  gint width, height;
  GBytes *idle_rgb;             /* reference resized to the output size (shown before
                                 * the first frame); replaced on a reference swap */
  /* Reference swaps in PAUSED/PLAYING run in the setting thread (image
   * load + VAE encode): swap_lock keeps the session alive meanwhile
   * without holding the object lock; ref_gen counts property changes. */
  GMutex swap_lock;
  guint ref_gen;
  guint applied_gen;            /* ref_gen the session's reference is from */
  guint64 swaps_prepared;       /* swaps handed to the session */
  /* The swap worker (request_swap): object lock. */
  GThread *swapper;
  gboolean swap_running, swap_again;
  gint64 session_latency_ns;
  /* CUDA memory output: context from NULL->READY to READY->NULL. */
  GstLiveAvatarCuda *cuda;

  /* The audio line: held across placing audio or silence on the timeline
   * and giving it to the session (chain, GAP, idle silence from the task),
   * so the two stay in step.  Taken before the stream lock; the task only
   * tries it (AUDIO_LINE_TRYLOCK), since a chain blocked in a full
   * non-leaky queue holds it. */
  GMutex line_lock;

  /* Stream state shared by chain, events and task: lock + cond
   * (STREAM_LOCK and friends). */
  GMutex lock;
  GCond cond;
  gboolean flushing;
  gboolean eos;
  GstFlowReturn srcresult;
  GQueue events;                /* of PendingEvent */
  GstAudioInfo ainfo;
  gboolean have_ainfo;
  GstSegment in_segment;
  LaTimelineIn in;              /* where the audio given so far ends */
  gboolean idling;              /* silence is being fed (step_idle) */

  /* Task only (reset while the task is stopped or paused). */
  GstSegment out_segment;
  gboolean have_out_segment;
  LaTimelineOut out;            /* the grid cursor */
  LaFrame *held;                /* pulled, waiting for its events */
  GstBuffer *last_buffer;
  LaOutput output;
  gint errors;
  guint64 processed;
  gint64 skips_seen;            /* session blocks_skipped already reported */
  gint64 stats_slot;            /* slot at which `stats` was last notified */
  gint64 last_warning_us;       /* "cannot keep up" WARNING, rate-limited */
};

/* The stream lock, gstqueue.c style: chain, sink events and the task
 * meet here; never held across a push or a session wait. */
#define STREAM_LOCK(self) g_mutex_lock (&(self)->lock)
#define STREAM_UNLOCK(self) g_mutex_unlock (&(self)->lock)
#define STREAM_SIGNAL(self) g_cond_broadcast (&(self)->cond)
#define AUDIO_LINE_LOCK(self) g_mutex_lock (&(self)->line_lock)
#define AUDIO_LINE_TRYLOCK(self) g_mutex_trylock (&(self)->line_lock)
#define AUDIO_LINE_UNLOCK(self) g_mutex_unlock (&(self)->line_lock)

#define gst_live_avatar_src_parent_class parent_class
G_DEFINE_TYPE (GstLiveAvatarSrc, gst_live_avatar_src, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (liveavatarsrc, "liveavatarsrc",
    GST_RANK_NONE, GST_TYPE_LIVE_AVATAR_SRC,
    GST_DEBUG_CATEGORY_INIT (gst_live_avatar_src_debug, "liveavatarsrc", 0,
        "Live Avatar video generation"));

static void gst_live_avatar_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_live_avatar_src_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_live_avatar_src_finalize (GObject * object);
static GstStateChangeReturn gst_live_avatar_src_change_state (GstElement *
    element, GstStateChange transition);
static GstFlowReturn gst_live_avatar_src_chain (GstPad * pad,
    GstObject * parent, GstBuffer * buffer);
static gboolean gst_live_avatar_src_sink_event (GstPad * pad,
    GstObject * parent, GstEvent * event);
static gboolean gst_live_avatar_src_src_event (GstPad * pad,
    GstObject * parent, GstEvent * event);
static void gst_live_avatar_src_set_context (GstElement * element,
    GstContext * context);
static gboolean gst_live_avatar_src_sink_query (GstPad * pad,
    GstObject * parent, GstQuery * query);
static gboolean gst_live_avatar_src_src_query (GstPad * pad,
    GstObject * parent, GstQuery * query);
static gboolean gst_live_avatar_src_src_activate_mode (GstPad * pad,
    GstObject * parent, GstPadMode mode, gboolean active);
static void gst_live_avatar_src_loop (GstLiveAvatarSrc * self);
static gint64 session_time_left (gint64 pts_ns, gpointer user_data);
static void swap_reference (GstLiveAvatarSrc * self);
static void join_load (GstLiveAvatarSrc * self);
static void request_swap (GstLiveAvatarSrc * self);
static void join_swap (GstLiveAvatarSrc * self);

/* Enums */

/* Registers an enum type once (the element's property enums). */
static GType
enum_type_once (gsize * id, const gchar * name, const GEnumValue * values)
{
  if (g_once_init_enter (id)) {
    GType t = g_enum_register_static (name, values);
    g_once_init_leave (id, t);
  }
  return (GType) * id;
}

static const GEnumValue leaky_values[] = {
  {GST_LIVE_AVATAR_SRC_LEAKY_AUTO,
      "Auto: none when upstream is not live, downstream when it is", "auto"},
  {GST_LIVE_AVATAR_SRC_LEAKY_NONE, "Not leaky: block upstream", "none"},
  {GST_LIVE_AVATAR_SRC_LEAKY_DOWNSTREAM,
      "Leaky on downstream: drop the oldest audio", "downstream"},
  {0, NULL, NULL}
};

#define GST_TYPE_LIVE_AVATAR_SRC_LEAKY (gst_live_avatar_src_leaky_get_type ())
static GType
gst_live_avatar_src_leaky_get_type (void)
{
  static gsize id = 0;
  return enum_type_once (&id, "GstLiveAvatarSrcLeaky", leaky_values);
}

static const GEnumValue weights_values[] = {
  {GST_LIVE_AVATAR_SRC_WEIGHTS_FILE,
      "The checkpoint's precision (bf16 for the published checkpoints)",
      "file"},
  {GST_LIVE_AVATAR_SRC_WEIGHTS_F32, "Everything f32", "f32"},
  {GST_LIVE_AVATAR_SRC_WEIGHTS_BF16, "Linear weights bf16", "bf16"},
  {GST_LIVE_AVATAR_SRC_WEIGHTS_FP8,
      "CUDA only: the DiT's eligible linears FP8 (e4m3), the rest bf16", "fp8"},
  {0, NULL, NULL}
};

#define GST_TYPE_LIVE_AVATAR_SRC_WEIGHTS (gst_live_avatar_src_weights_get_type ())
static GType
gst_live_avatar_src_weights_get_type (void)
{
  static gsize id = 0;
  return enum_type_once (&id, "GstLiveAvatarSrcWeights", weights_values);
}

static const GEnumValue idle_values[] = {
  {GST_LIVE_AVATAR_SRC_IDLE_SILENCE,
      "Silence: a silent live upstream is fed silence on the clock",
      "silence"},
  {GST_LIVE_AVATAR_SRC_IDLE_FREEZE,
      "Freeze: repeat the last frame until audio comes", "freeze"},
  {0, NULL, NULL}
};

#define GST_TYPE_LIVE_AVATAR_SRC_IDLE (gst_live_avatar_src_idle_get_type ())
static GType
gst_live_avatar_src_idle_get_type (void)
{
  static gsize id = 0;
  return enum_type_once (&id, "GstLiveAvatarSrcIdle", idle_values);
}

static const GEnumValue state_values[] = {
  {GST_LIVE_AVATAR_SRC_STATE_NULL, "No model loaded", "null"},
  {GST_LIVE_AVATAR_SRC_STATE_LOADING, "Loading the model", "loading"},
  {GST_LIVE_AVATAR_SRC_STATE_READY, "Model loaded, not streaming", "ready"},
  {GST_LIVE_AVATAR_SRC_STATE_IDLE, "Streaming, no speech", "idle"},
  {GST_LIVE_AVATAR_SRC_STATE_SPEAKING, "Streaming speech", "speaking"},
  {GST_LIVE_AVATAR_SRC_STATE_ERROR, "Failed", "error"},
  {0, NULL, NULL}
};

#define GST_TYPE_LIVE_AVATAR_SRC_STATE (gst_live_avatar_src_state_get_type ())
static GType
gst_live_avatar_src_state_get_type (void)
{
  static gsize id = 0;
  return enum_type_once (&id, "GstLiveAvatarSrcState", state_values);
}

static const GEnumValue audio_mode_values[] = {
  {GST_LIVE_AVATAR_SRC_AUDIO_LIVE,
      "Per-block windows with past context and look-ahead", "live"},
  {GST_LIVE_AVATAR_SRC_AUDIO_OFFLINE,
      "wav2vec2 over the whole stream so far (reference parity)", "offline"},
  {0, NULL, NULL}
};

#define GST_TYPE_LIVE_AVATAR_SRC_AUDIO_MODE \
    (gst_live_avatar_src_audio_mode_get_type ())
static GType
gst_live_avatar_src_audio_mode_get_type (void)
{
  static gsize id = 0;
  return enum_type_once (&id, "GstLiveAvatarSrcAudioMode", audio_mode_values);
}

static void
gst_live_avatar_src_class_init (GstLiveAvatarSrcClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_live_avatar_src_set_property;
  gobject_class->get_property = gst_live_avatar_src_get_property;
  gobject_class->finalize = gst_live_avatar_src_finalize;

  /**
   * GstLiveAvatarSrc:model-path:
   *
   * Model folder: the official Wan2.2-S2V-14B layout, or one written by
   * liveavatar-mkmodel.  Required.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL_PATH,
      g_param_spec_string ("model-path", "Model path",
          "Model folder (official Wan2.2-S2V-14B layout or liveavatar-mkmodel "
          "output); required", DEFAULT_MODEL_PATH,
          rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:lora-path:
   *
   * LoRA file or folder merged into the DiT at load time (NULL: none).
   */
  g_object_class_install_property (gobject_class, PROP_LORA_PATH,
      g_param_spec_string ("lora-path", "LoRA path",
          "LoRA file or folder merged at load time (NULL = none)",
          DEFAULT_LORA_PATH, rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:reference-image:
   *
   * Image file (PNG, JPEG, ...) of the avatar.  Ignored when
   * reference-sample is set.  May change while PLAYING: the avatar is
   * swapped within a block, without a cut in the frame grid (a file that
   * cannot be read posts a warning and keeps the current avatar).
   */
  g_object_class_install_property (gobject_class, PROP_REFERENCE_IMAGE,
      g_param_spec_string ("reference-image", "Reference image",
          "Image file of the avatar (PNG, JPEG, ...); reference-sample wins "
          "when both are set; changing it while playing swaps the avatar",
          DEFAULT_REFERENCE_IMAGE, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLiveAvatarSrc:reference-sample:
   *
   * The avatar image as a #GstSample with raw video caps (any format
   * videoconvert understands), for applications.  May change while
   * PLAYING, like reference-image.
   */
  g_object_class_install_property (gobject_class, PROP_REFERENCE_SAMPLE,
      g_param_spec_boxed ("reference-sample", "Reference sample",
          "Avatar image as a GstSample with video/x-raw caps (for "
          "applications); wins over reference-image; changing it while "
          "playing swaps the avatar", GST_TYPE_SAMPLE,
          rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "Text prompt (UTF-8) for the umT5 encoder; NULL = empty",
          DEFAULT_PROMPT, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DEVICES,
      g_param_spec_string ("devices", "Devices",
          "Devices of the pipeline stages: \"cpu\", or one TPP stage per "
          "entry, each \"cpu\" or \"tcp://HOST:PORT\" (a liveavatar-stage "
          "worker), or one per GPU \"cuda:N\" (\"cuda:0,cuda:1,...\"; "
          "stages may share a GPU)",
          DEFAULT_DEVICES, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed", "Noise seed", 0, G_MAXUINT64,
          DEFAULT_SEED, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SINK_OFFSET,
      g_param_spec_int ("sink-offset", "Sink offset",
          "Rolling-sink offset d in frames (4..30); 0 = random per clip "
          "(seeded)", 0, 30, DEFAULT_SINK_OFFSET,
          rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SINK_REFRESH,
      g_param_spec_boolean ("sink-refresh", "Sink refresh",
          "Rebuild the sink from the first generated latent after clip 0",
          DEFAULT_SINK_REFRESH, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_AUDIO_MODE,
      g_param_spec_enum ("audio-mode", "Audio mode",
          "How wav2vec2 sees the audio", GST_TYPE_LIVE_AVATAR_SRC_AUDIO_MODE,
          DEFAULT_AUDIO_MODE, rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_LOOKAHEAD,
      g_param_spec_uint ("audio-lookahead", "Audio look-ahead",
          "Audio after each block given to wav2vec2 in live mode, in ms "
          "(adds to the latency)", 0, 2000, DEFAULT_LOOKAHEAD_MS,
          rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CONTEXT,
      g_param_spec_uint ("audio-context", "Audio context",
          "Past audio given to wav2vec2 in live mode, in ms", 0, 60000,
          DEFAULT_CONTEXT_MS, rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:latency:
   *
   * The time one block may take to generate, added to the reported latency
   * and to the live deadlines: in a live pipeline a block whose measured
   * time exceeds it can never be on time.  Changing it posts a LATENCY
   * message.
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency",
          "Time a block may take to generate in ms (set it to at least the "
          "measured block time, stats ms-block-avg), added to the reported "
          "latency (block + look-ahead + this)", 0, 60000, DEFAULT_LATENCY_MS,
          rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_LEAKY,
      g_param_spec_enum ("leaky", "Leaky",
          "What to do when the audio queue is full",
          GST_TYPE_LIVE_AVATAR_SRC_LEAKY, DEFAULT_LEAKY,
          rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_SIZE_TIME,
      g_param_spec_uint64 ("max-size-time", "Max size time",
          "Bound of the audio queue in ns (at least one block + look-ahead "
          "is always accepted)", 100 * GST_MSECOND, 600 * GST_SECOND,
          DEFAULT_MAX_SIZE_TIME, rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:idle:
   *
   * What a live pipeline shows when upstream sends nothing (no buffer, no
   * GAP) for longer than idle-timeout: silence fed on the clock (the
   * model's own idle motion), or the last frame frozen.  No effect when
   * upstream is not live or the queue is not leaky.
   */
  g_object_class_install_property (gobject_class, PROP_IDLE,
      g_param_spec_enum ("idle", "Idle",
          "What a silent live upstream shows: idle motion or a frozen frame",
          GST_TYPE_LIVE_AVATAR_SRC_IDLE, DEFAULT_IDLE,
          rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstLiveAvatarSrc:idle-timeout:
   *
   * How long (ms) a live upstream may send nothing before idle=silence
   * feeds silence.  Audio arriving afterwards continues the line from the
   * clock's position: up to one buffer of it overlapping the silence
   * already fed is cut.
   */
  g_object_class_install_property (gobject_class, PROP_IDLE_TIMEOUT,
      g_param_spec_uint ("idle-timeout", "Idle timeout",
          "Silence in ms from a live upstream before idle applies",
          40, 60000, DEFAULT_IDLE_TIMEOUT_MS, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_QOS,
      g_param_spec_boolean ("qos", "QoS",
          "Live: downstream QoS marks slots as late when choosing which block "
          "to generate",
          DEFAULT_QOS, rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_ERRORS,
      g_param_spec_int ("max-errors", "Max errors",
          "Consecutive generation errors tolerated before failing "
          "(-1 = never fail)", -1, G_MAXINT, DEFAULT_MAX_ERRORS,
          rw | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MAX_AREA,
      g_param_spec_int ("max-area", "Max area",
          "Pixel-area budget of the output size (multiples of 64 chosen from "
          "the reference aspect); 0 = 720*400", 0, G_MAXINT, DEFAULT_MAX_AREA,
          rw | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_int ("threads", "Threads",
          "CPU threads of the CPU backend; 0 = all", 0, 1024, DEFAULT_THREADS,
          rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:weights:
   *
   * Resident precision of the weights.  The default keeps the checkpoint's
   * (bf16 for the published checkpoints: half the memory of f32); f32 is
   * the reference precision; fp8 (CUDA devices only) halves the DiT's
   * weights again, the way the official single-GPU setting does.
   */
  g_object_class_install_property (gobject_class, PROP_WEIGHTS,
      g_param_spec_enum ("weights", "Weights",
          "Resident precision of the weights", GST_TYPE_LIVE_AVATAR_SRC_WEIGHTS,
          DEFAULT_WEIGHTS, rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:cuda-device-id:
   *
   * CUDA device of the video/x-raw(memory:CUDAMemory) output.  -1: use the
   * CUDA context downstream or the application shares, else device 0, and
   * fall back to system memory when CUDA is not usable.  A device >= 0 is a
   * requirement: going to READY fails (LIBRARY/INIT) when that device
   * cannot be used.  Independent of the devices that run the model.
   */
  g_object_class_install_property (gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int ("cuda-device-id", "CUDA device id",
          "CUDA device of the memory:CUDAMemory output (-1 = auto: the "
          "shared context or device 0, system memory when CUDA is not "
          "usable)", -1, G_MAXINT, DEFAULT_CUDA_DEVICE_ID,
          rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstLiveAvatarSrc:stats:
   *
   * Read-only statistics, built fresh at each read:
   * fps (double, generated frames per wall second), ms-audio, ms-dit,
   * ms-vae, ms-block (double, last block's stage times), ms-setup (double,
   * model load + prefill), latency (guint64 ns, reported minimum latency of
   * this element), frames-pushed, frames-repeated, frames-dropped (guint64),
   * frames-generated, block-index (gint64, blocks generated in this
   * stream), audio-samples-in, audio-samples-dropped (gint64), queue-ms
   * (double), sink-offset (int, configured), sink-frame (string:
   * "reference" until the rolling sink switches to "first-generated" at
   * clip 1), width, height (int), cuda-frames-uploaded and
   * cuda-frames-device (guint64: CUDA memory frames filled from a host
   * frame, or copied device-to-device from the engine's GPU frames).
   */
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Generation statistics (see the element documentation)",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_STATE,
      g_param_spec_enum ("state", "State", "Runtime state",
          GST_TYPE_LIVE_AVATAR_SRC_STATE, GST_LIVE_AVATAR_SRC_STATE_NULL,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "Live Avatar generator", "Converter/Audio/Video",
      "Generates talking-avatar video from speech audio with the Live Avatar "
      "diffusion model", "gst-liveavatar contributors");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_change_state);
  element_class->set_context =
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_set_context);

  gst_type_mark_as_plugin_api (GST_TYPE_LIVE_AVATAR_SRC_LEAKY, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_LIVE_AVATAR_SRC_STATE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_LIVE_AVATAR_SRC_AUDIO_MODE, 0);
}

static void
gst_live_avatar_src_init (GstLiveAvatarSrc * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_sink_event));
  gst_pad_set_query_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_event_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_src_event));
  gst_pad_set_query_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_src_query));
  gst_pad_set_activatemode_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_live_avatar_src_src_activate_mode));
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->devices = g_strdup (DEFAULT_DEVICES);
  self->seed = DEFAULT_SEED;
  self->sink_offset = DEFAULT_SINK_OFFSET;
  self->sink_refresh = DEFAULT_SINK_REFRESH;
  self->audio_mode = DEFAULT_AUDIO_MODE;
  self->lookahead_ms = DEFAULT_LOOKAHEAD_MS;
  self->context_ms = DEFAULT_CONTEXT_MS;
  self->latency_ms = DEFAULT_LATENCY_MS;
  self->leaky = DEFAULT_LEAKY;
  self->max_size_time = DEFAULT_MAX_SIZE_TIME;
  self->qos = DEFAULT_QOS;
  self->idle = DEFAULT_IDLE;
  self->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
  self->max_errors = DEFAULT_MAX_ERRORS;
  self->max_area = DEFAULT_MAX_AREA;
  self->threads = DEFAULT_THREADS;
  self->weights = DEFAULT_WEIGHTS;
  self->cuda_device_id = DEFAULT_CUDA_DEVICE_ID;
  self->cuda = gst_live_avatar_cuda_new (GST_ELEMENT (self));
  self->state = GST_LIVE_AVATAR_SRC_STATE_NULL;
  self->earliest_time = GST_CLOCK_TIME_NONE;
  self->proportion = 1.0;

  g_mutex_init (&self->lock);
  g_mutex_init (&self->line_lock);
  g_mutex_init (&self->load_lock);
  g_cond_init (&self->load_cond);
  g_mutex_init (&self->swap_lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->events);
  gst_segment_init (&self->in_segment, GST_FORMAT_TIME);
  gst_segment_init (&self->out_segment, GST_FORMAT_TIME);
  la_timeline_in_reset (&self->in);
  la_timeline_out_reset (&self->out);
  la_output_init (&self->output, GST_ELEMENT (self), self->srcpad,
      self->cuda);
  self->flushing = TRUE;
  self->srcresult = GST_FLOW_FLUSHING;
}

static void
pending_event_free (gpointer data)
{
  PendingEvent *pe = data;
  gst_event_unref (pe->event);
  g_free (pe);
}

static void
gst_live_avatar_src_finalize (GObject * object)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (object);

  g_free (self->model_path);
  g_free (self->lora_path);
  g_free (self->reference_image);
  g_free (self->prompt);
  g_free (self->devices);
  g_clear_pointer (&self->reference_sample, gst_sample_unref);
  g_queue_clear_full (&self->events, pending_event_free);
  join_load (self);
  join_swap (self);
  g_clear_pointer (&self->session, la_session_free);
  g_clear_pointer (&self->idle_rgb, g_bytes_unref);
  g_clear_pointer (&self->cuda, gst_live_avatar_cuda_free);
  g_mutex_clear (&self->swap_lock);
  la_output_clear (&self->output);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->line_lock);
  g_mutex_clear (&self->load_lock);
  g_cond_clear (&self->load_cond);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Properties */

/* Called with the object lock: TRUE when @pspec may change in the current
 * state.  The GST_PARAM_MUTABLE_* flags are only hints to applications; this
 * enforces them (a refused change keeps the old value and logs a warning,
 * not a g_warning, which would abort gst-check tests). */
static gboolean
property_is_mutable (GstLiveAvatarSrc * self, GParamSpec * pspec)
{
  GstState cur = GST_STATE (self), pending = GST_STATE_PENDING (self);
  GstState st = pending != GST_STATE_VOID_PENDING ? MAX (cur, pending) : cur;

  if ((pspec->flags & GST_PARAM_MUTABLE_READY) && st > GST_STATE_READY) {
    GST_WARNING_OBJECT (self, "property '%s' can only be changed in the NULL "
        "or READY state; ignoring the change in %s", pspec->name,
        gst_element_state_get_name (st));
    return FALSE;
  }
  return TRUE;
}

static void
gst_live_avatar_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (object);
  gboolean post_latency = FALSE, swap = FALSE;

  GST_OBJECT_LOCK (self);
  if (!property_is_mutable (self, pspec)) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  if (pspec->flags & GST_PARAM_MUTABLE_READY)
    self->settings_dirty = TRUE;

  switch (prop_id) {
    case PROP_MODEL_PATH:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_LORA_PATH:
      g_free (self->lora_path);
      self->lora_path = g_value_dup_string (value);
      break;
    case PROP_REFERENCE_IMAGE:
      g_free (self->reference_image);
      self->reference_image = g_value_dup_string (value);
      self->ref_gen++;
      swap = TRUE;
      break;
    case PROP_REFERENCE_SAMPLE:
      g_clear_pointer (&self->reference_sample, gst_sample_unref);
      self->reference_sample = g_value_dup_boxed (value);
      self->ref_gen++;
      swap = TRUE;
      break;
    case PROP_PROMPT:
      g_free (self->prompt);
      self->prompt = g_value_dup_string (value);
      break;
    case PROP_DEVICES:
      g_free (self->devices);
      self->devices = g_value_dup_string (value);
      break;
    case PROP_SEED:
      self->seed = g_value_get_uint64 (value);
      break;
    case PROP_SINK_OFFSET:
      self->sink_offset = g_value_get_int (value);
      break;
    case PROP_SINK_REFRESH:
      self->sink_refresh = g_value_get_boolean (value);
      break;
    case PROP_AUDIO_MODE:
      self->audio_mode = g_value_get_enum (value);
      break;
    case PROP_LOOKAHEAD:
      self->lookahead_ms = g_value_get_uint (value);
      break;
    case PROP_CONTEXT:
      self->context_ms = g_value_get_uint (value);
      break;
    case PROP_LATENCY:
      post_latency = self->latency_ms != g_value_get_uint (value);
      self->latency_ms = g_value_get_uint (value);
      break;
    case PROP_LEAKY:
      self->leaky = g_value_get_enum (value);
      break;
    case PROP_MAX_SIZE_TIME:
      self->max_size_time = g_value_get_uint64 (value);
      break;
    case PROP_QOS:
      self->qos = g_value_get_boolean (value);
      break;
    case PROP_IDLE:
      self->idle = g_value_get_enum (value);
      break;
    case PROP_IDLE_TIMEOUT:
      self->idle_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_MAX_ERRORS:
      self->max_errors = g_value_get_int (value);
      break;
    case PROP_MAX_AREA:
      self->max_area = g_value_get_int (value);
      break;
    case PROP_WEIGHTS:
      self->weights = g_value_get_enum (value);
      break;
    case PROP_THREADS:
      self->threads = g_value_get_int (value);
      break;
    case PROP_CUDA_DEVICE_ID:
      self->cuda_device_id = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);

  if (swap)
    request_swap (self);
  /* As gst_aggregator_set_latency: the application recomputes and
   * redistributes the pipeline latency. */
  if (post_latency)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
}

static GstClockTime
own_latency_locked (GstLiveAvatarSrc * self)
{
  gint64 sess = self->session_latency_ns;
  if (sess <= 0)                /* no session yet: one block + look-ahead */
    sess = gst_util_uint64_scale (LA_SESSION_FRAMES_PER_BLOCK, GST_SECOND,
        FPS_N) + self->lookahead_ms * GST_MSECOND;
  return (GstClockTime) sess + self->latency_ms * GST_MSECOND;
}

static GstStructure *
make_stats (GstLiveAvatarSrc * self)
{
  LaSessionStats st = { 0 };
  GstStructure *s;
  guint64 cuda_uploaded, cuda_device;

  gst_live_avatar_cuda_get_counts (self->cuda, &cuda_uploaded, &cuda_device);
  /* The session is only freed in READY->NULL with no reader in flight from
   * the streaming side; get_stats takes the session's own lock. */
  GST_OBJECT_LOCK (self);
  if (self->session)
    la_session_get_stats (self->session, &st);
  s = gst_structure_new ("application/x-liveavatarsrc-stats",
      "fps", G_TYPE_DOUBLE, st.fps,
      "ms-audio", G_TYPE_DOUBLE, st.ms_audio,
      "ms-dit", G_TYPE_DOUBLE, st.ms_dit,
      "ms-vae", G_TYPE_DOUBLE, st.ms_vae,
      "ms-block", G_TYPE_DOUBLE, st.ms_block,
      "ms-setup", G_TYPE_DOUBLE, st.ms_setup,
      "latency", G_TYPE_UINT64, (guint64) (self->upstream_min +
          own_latency_locked (self)),
      "frames-pushed", G_TYPE_UINT64, self->frames_pushed,
      "frames-repeated", G_TYPE_UINT64, self->frames_repeated,
      "frames-dropped", G_TYPE_UINT64, self->frames_dropped,
      "frames-fresh", G_TYPE_UINT64, self->frames_fresh,
      "cuda-frames-uploaded", G_TYPE_UINT64, cuda_uploaded,
      "cuda-frames-device", G_TYPE_UINT64, cuda_device,
      "fresh-frame-ratio", G_TYPE_DOUBLE, self->frames_pushed ?
      (gdouble) self->frames_fresh / self->frames_pushed : 0.0,
      "blocks-skipped", G_TYPE_INT64, st.blocks_skipped,
      "ms-block-avg", G_TYPE_DOUBLE, st.ms_block_avg,
      "frames-generated", G_TYPE_INT64, st.frames_out,
      "block-index", G_TYPE_INT64, st.blocks_done,
      "audio-samples-in", G_TYPE_INT64, st.audio_samples_in,
      "audio-samples-dropped", G_TYPE_INT64, st.audio_samples_dropped,
      "queue-ms", G_TYPE_DOUBLE, st.queue_ms,
      "sink-offset", G_TYPE_INT, self->sink_offset,
      "sink-frame", G_TYPE_STRING, st.sink_from_stream ?
      "first-generated" : "reference",
      "reference-swaps", G_TYPE_INT64, st.reference_swaps,
      "reference-swaps-prepared", G_TYPE_UINT64, self->swaps_prepared,
      "width", G_TYPE_INT, self->width, "height", G_TYPE_INT, self->height,
      NULL);
  GST_OBJECT_UNLOCK (self);
  return s;
}

static void
gst_live_avatar_src_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (object);

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (self));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL_PATH:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_LORA_PATH:
      g_value_set_string (value, self->lora_path);
      break;
    case PROP_REFERENCE_IMAGE:
      g_value_set_string (value, self->reference_image);
      break;
    case PROP_REFERENCE_SAMPLE:
      g_value_set_boxed (value, self->reference_sample);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prompt);
      break;
    case PROP_DEVICES:
      g_value_set_string (value, self->devices);
      break;
    case PROP_SEED:
      g_value_set_uint64 (value, self->seed);
      break;
    case PROP_SINK_OFFSET:
      g_value_set_int (value, self->sink_offset);
      break;
    case PROP_SINK_REFRESH:
      g_value_set_boolean (value, self->sink_refresh);
      break;
    case PROP_AUDIO_MODE:
      g_value_set_enum (value, self->audio_mode);
      break;
    case PROP_LOOKAHEAD:
      g_value_set_uint (value, self->lookahead_ms);
      break;
    case PROP_CONTEXT:
      g_value_set_uint (value, self->context_ms);
      break;
    case PROP_LATENCY:
      g_value_set_uint (value, self->latency_ms);
      break;
    case PROP_LEAKY:
      g_value_set_enum (value, self->leaky);
      break;
    case PROP_MAX_SIZE_TIME:
      g_value_set_uint64 (value, self->max_size_time);
      break;
    case PROP_QOS:
      g_value_set_boolean (value, self->qos);
      break;
    case PROP_IDLE:
      g_value_set_enum (value, self->idle);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_MAX_ERRORS:
      g_value_set_int (value, self->max_errors);
      break;
    case PROP_MAX_AREA:
      g_value_set_int (value, self->max_area);
      break;
    case PROP_WEIGHTS:
      g_value_set_enum (value, self->weights);
      break;
    case PROP_THREADS:
      g_value_set_int (value, self->threads);
      break;
    case PROP_CUDA_DEVICE_ID:
      g_value_set_int (value, self->cuda_device_id);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
set_state (GstLiveAvatarSrc * self, GstLiveAvatarSrcState st)
{
  gboolean changed;

  GST_OBJECT_LOCK (self);
  changed = self->state != st;
  self->state = st;
  GST_OBJECT_UNLOCK (self);
  if (changed) {
    GST_DEBUG_OBJECT (self, "state %d", st);
    /* From whichever thread changed it (gst-launch-1.0 -v shows it). */
    g_object_notify (G_OBJECT (self), "state");
  }
}

/* Model loading (NULL->READY) */

/* Decodes the reference sample into packed RGB8 through a video converter,
 * so any raw format an application has is accepted. */
static guint8 *
sample_to_rgb (GstSample * sample, gint * w, gint * h, GError ** error)
{
  GstCaps *caps = gst_sample_get_caps (sample);
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstVideoInfo in_info, out_info;
  GstVideoFrame in_frame, out_frame;
  GstVideoConverter *conv;
  GstBuffer *out;
  guint8 *rgb;
  gint y;

  if (!caps || !buf || !gst_video_info_from_caps (&in_info, caps)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
        "reference-sample: needs video/x-raw caps and a buffer");
    return NULL;
  }
  gst_video_info_set_format (&out_info, GST_VIDEO_FORMAT_RGB,
      GST_VIDEO_INFO_WIDTH (&in_info), GST_VIDEO_INFO_HEIGHT (&in_info));
  if (!gst_video_frame_map (&in_frame, &in_info, buf, GST_MAP_READ)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
        "reference-sample: buffer too small for its caps");
    return NULL;
  }
  out = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&out_info), NULL);
  gst_video_frame_map (&out_frame, &out_info, out, GST_MAP_WRITE);
  conv = gst_video_converter_new (&in_info, &out_info, NULL);
  gst_video_converter_frame (conv, &in_frame, &out_frame);
  gst_video_converter_free (conv);

  *w = GST_VIDEO_INFO_WIDTH (&out_info);
  *h = GST_VIDEO_INFO_HEIGHT (&out_info);
  rgb = g_malloc ((gsize) 3 * *w * *h);
  for (y = 0; y < *h; y++)
    memcpy (rgb + (gsize) y * 3 * *w,
        (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&out_frame, 0) +
        (gsize) y * GST_VIDEO_FRAME_PLANE_STRIDE (&out_frame, 0), 3 * *w);
  gst_video_frame_unmap (&out_frame);
  gst_video_frame_unmap (&in_frame);
  gst_buffer_unref (out);
  return rgb;
}

/* Maps an engine error to the GStreamer error domain/code of the notes
 * (missing -> RESOURCE/NOT_FOUND, corrupt -> RESOURCE/OPEN_READ, bad
 * settings -> LIBRARY/SETTINGS, device -> LIBRARY/INIT). */
static void
post_engine_error (GstLiveAvatarSrc * self, const gchar * what, GError * err)
{
  gchar *msg = g_strdup_printf ("%s: %s", what, err->message);

  if (err->domain == LA_ERROR && err->code == LA_ERROR_NOT_FOUND)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", msg), (NULL));
  else if (err->domain == LA_ERROR && (err->code == LA_ERROR_IO ||
          err->code == LA_ERROR_FORMAT || err->code == LA_ERROR_SHAPE))
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("%s", msg), (NULL));
  else if (err->domain == LA_ERROR && (err->code == LA_ERROR_INVALID_ARG ||
          err->code == LA_ERROR_UNSUPPORTED))
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("%s", msg), (NULL));
  else if (err->domain == G_FILE_ERROR && err->code == G_FILE_ERROR_NOENT)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", msg), (NULL));
  else
    GST_ELEMENT_ERROR (self, LIBRARY, INIT, ("%s", msg), (NULL));
  g_free (msg);
}

static void
post_progress (GstLiveAvatarSrc * self, GstProgressType type,
    const gchar * text)
{
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_progress (GST_OBJECT (self), type, "load", text));
}

/* The avatar image, packed RGB: from the sample when set, else the file.
 * NULL without error when neither is set. */
static guint8 *
load_reference (GstSample * sample, const gchar * path, gint * w, gint * h,
    GError ** err)
{
  if (sample)
    return sample_to_rgb (sample, w, h, err);
  if (path && *path)
    return la_image_load (path, 0, w, h, err);
  return NULL;
}

/* reference-image / reference-sample changed: with a session loaded, swap
 * the avatar (la_session_set_reference: before the engine's next block).
 * Runs in the thread that set the property; a failure keeps the current
 * avatar and posts a warning naming the image. */
static void
swap_reference (GstLiveAvatarSrc * self)
{
  GstSample *sample;
  gchar *path;
  guint8 *ref = NULL;
  gint rw = 0, rh = 0;
  guint gen;
  GError *err = NULL;

  g_mutex_lock (&self->swap_lock);
  GST_OBJECT_LOCK (self);
  /* Not loaded: the loader reads the properties.  Already applied (the
   * loader and a swap request can both see one change): nothing to do. */
  if (!self->session || self->applied_gen == self->ref_gen) {
    GST_OBJECT_UNLOCK (self);
    g_mutex_unlock (&self->swap_lock);
    return;
  }
  gen = self->ref_gen;
  sample = self->reference_sample ? gst_sample_ref (self->reference_sample)
      : NULL;
  path = g_strdup (self->reference_image);
  GST_OBJECT_UNLOCK (self);

  ref = load_reference (sample, path, &rw, &rh, &err);
  if (!ref && !err)
    g_set_error (&err, LA_ERROR, LA_ERROR_INVALID_ARG,
        "neither reference-image nor reference-sample is set");
  if (!ref || !la_session_set_reference (self->session, ref, rw, rh, 3 * rw,
          &err)) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Cannot swap the avatar to %s; keeping the current one",
            sample ? "the reference-sample" : (path ? path : "(none)")),
        ("%s", err->message));
  } else {
    GBytes *idle = la_session_get_reference_frame (self->session);
    GST_OBJECT_LOCK (self);
    g_clear_pointer (&self->idle_rgb, g_bytes_unref);
    self->idle_rgb = idle;
    self->applied_gen = gen;
    self->swaps_prepared++;
    GST_OBJECT_UNLOCK (self);
    GST_INFO_OBJECT (self, "avatar swapped to %s", sample ?
        "the reference-sample" : path);
  }
  g_mutex_unlock (&self->swap_lock);
  g_clear_error (&err);
  g_free (ref);
  g_free (path);
  if (sample)
    gst_sample_unref (sample);
}

/* Avatar swaps run on a worker thread too: decoding the image and the VAE
 * encode take seconds, which the setter (an application's main loop) must
 * not wait for.  The session applies the new reference at its next block
 * boundary.  A swap requested while one runs is done once more afterwards
 * with the newest property values. */
static gpointer
swap_thread (gpointer data)
{
  GstLiveAvatarSrc *self = data;
  gboolean again;

  do {
    swap_reference (self);
    GST_OBJECT_LOCK (self);
    again = self->swap_again;
    self->swap_again = FALSE;
    if (!again)
      self->swap_running = FALSE;
    GST_OBJECT_UNLOCK (self);
  } while (again);
  return NULL;
}

static void
request_swap (GstLiveAvatarSrc * self)
{
  GThread *old;

  GST_OBJECT_LOCK (self);
  if (self->swap_running) {
    self->swap_again = TRUE;
    GST_OBJECT_UNLOCK (self);
    return;
  }
  self->swap_running = TRUE;
  /* The previous worker cleared swap_running as its last locked step, so
   * joining it here, under the lock, does not wait for the lock. */
  old = self->swapper;
  if (old)
    g_thread_join (old);
  self->swapper = g_thread_new ("liveavatar-swap", swap_thread, self);
  GST_OBJECT_UNLOCK (self);
}

/* Waits for a swap in progress (READY->NULL, finalize). */
static void
join_swap (GstLiveAvatarSrc * self)
{
  GThread *t;

  GST_OBJECT_LOCK (self);
  t = self->swapper;
  self->swapper = NULL;
  GST_OBJECT_UNLOCK (self);
  if (t)
    g_thread_join (t);
}

/* Model loading runs on a worker thread (the state change returns at
 * once; a GUI's or an agent's loop does not stall for the minutes a large
 * model takes): NULL->READY checks what it can at once (model folder,
 * reference image: a failed state change, as before), then the worker
 * loads the session, posting PROGRESS start/continue/complete naming what
 * it loads; a load error reaches the bus as an ERROR.  Streaming waits for
 * the model (await_session): the chain, serialized events and the task. */
typedef struct
{
  GstLiveAvatarSrc *self;
  LaSessionParams p;
  gchar *model_path, *lora_path, *prompt, *devices;
  guint8 *ref;
  gint rw, rh;
  guint gen;
} LoadJob;

static void
load_job_free (LoadJob * job)
{
  g_free (job->ref);
  g_free (job->model_path);
  g_free (job->lora_path);
  g_free (job->prompt);
  g_free (job->devices);
  g_free (job);
}

static void
set_load_status (GstLiveAvatarSrc * self, LoadStatus st)
{
  g_mutex_lock (&self->load_lock);
  self->load_status = st;
  g_cond_broadcast (&self->load_cond);
  g_mutex_unlock (&self->load_lock);
}

static gpointer
load_thread (gpointer data)
{
  LoadJob *job = data;
  GstLiveAvatarSrc *self = job->self;
  GError *err = NULL;
  LaSession *session;
  gint w = 0, h = 0;
  gint64 lat;
  gboolean changed;
  gchar *text;

  text = g_strdup_printf ("Loading the model %s on %s%s%s (weights, "
      "reference, prompt, sink prefill)", job->model_path, job->devices,
      job->p.lora ? " with LoRA " : "", job->p.lora ? job->p.lora : "");
  post_progress (self, GST_PROGRESS_TYPE_CONTINUE, text);
  g_free (text);
  session = la_session_new (&job->p, &err);
  if (!session) {
    /* the state says error before the bus does: whoever reacts to the
     * ERROR message finds the element already failed */
    set_state (self, GST_LIVE_AVATAR_SRC_STATE_ERROR);
    post_progress (self, GST_PROGRESS_TYPE_ERROR, "Loading failed");
    if (job->p.lora && err && strstr (err->message, job->p.lora)) {
      text = g_strdup_printf ("Cannot load the LoRA (lora-path %s)",
          job->p.lora);
      post_engine_error (self, text, err);
      g_free (text);
    } else {
      post_engine_error (self, "Cannot load the model", err);
    }
    g_clear_error (&err);
    set_load_status (self, LOAD_FAILED);
    load_job_free (job);
    return NULL;
  }

  la_session_get_size (session, &w, &h);
  lat = la_session_get_latency_ns (session);
  la_session_set_deadline_func (session, session_time_left, self);

  GST_OBJECT_LOCK (self);
  self->session = session;
  self->width = w;
  self->height = h;
  self->session_latency_ns = lat;
  g_clear_pointer (&self->idle_rgb, g_bytes_unref);
  self->idle_rgb = la_session_get_reference_frame (session);
  self->applied_gen = job->gen;
  changed = self->ref_gen != job->gen;
  GST_OBJECT_UNLOCK (self);
  /* PROGRESS complete goes out before the load is marked done, so whoever
   * sees the state leave "loading" finds the message already on the bus. */
  text = g_strdup_printf ("Model loaded: %dx%d output", w, h);
  post_progress (self, GST_PROGRESS_TYPE_COMPLETE, text);
  g_free (text);
  /* Done before the state says so: READY->PAUSED, seeing it done, sets
   * idle itself; seeing it running, leaves the state to us (the target
   * state tells whether that transition is under way). */
  set_load_status (self, LOAD_DONE);
  GST_OBJECT_LOCK (self);
  if (self->state == GST_LIVE_AVATAR_SRC_STATE_LOADING)
    self->state = GST_STATE_TARGET (self) >= GST_STATE_PAUSED ?
        GST_LIVE_AVATAR_SRC_STATE_IDLE : GST_LIVE_AVATAR_SRC_STATE_READY;
  GST_OBJECT_UNLOCK (self);
  g_object_notify (G_OBJECT (self), "state");
  GST_INFO_OBJECT (self, "session ready: %dx%d, latency %" GST_TIME_FORMAT,
      w, h, GST_TIME_ARGS (lat));
  /* the reference changed while the model loaded: apply the newest */
  if (changed)
    swap_reference (self);
  /* caps now carry the model's size */
  gst_pad_mark_reconfigure (self->srcpad);
  load_job_free (job);
  return NULL;
}

/* Checks what can be checked at once and starts the worker; FALSE with an
 * error posted otherwise. */
static gboolean
start_load (GstLiveAvatarSrc * self)
{
  LoadJob *job = g_new0 (LoadJob, 1);
  GError *err = NULL;
  gchar *ref_path, *text;
  GstSample *sample;

  job->self = self;
  la_session_params_init (&job->p);
  GST_OBJECT_LOCK (self);
  job->model_path = g_strdup (self->model_path);
  job->lora_path = g_strdup (self->lora_path);
  ref_path = g_strdup (self->reference_image);
  job->prompt = g_strdup (self->prompt);
  job->devices = g_strdup (self->devices);
  sample = self->reference_sample ? gst_sample_ref (self->reference_sample)
      : NULL;
  job->gen = self->ref_gen;
  job->p.seed = self->seed;
  job->p.sink_offset = self->sink_offset;
  job->p.sink_refresh = self->sink_refresh;
  job->p.audio_mode = self->audio_mode == GST_LIVE_AVATAR_SRC_AUDIO_OFFLINE ?
      LA_AUDIO_OFFLINE : LA_AUDIO_LIVE;
  job->p.lookahead_ms = self->lookahead_ms;
  job->p.context_ms = self->context_ms;
  /* Liveness is only known once data flows: the chain function sets the
   * policy (drop oldest when live and leaky, else block) before each push. */
  job->p.queue_policy = LA_QUEUE_BLOCK;
  /* At least one block + look-ahead + 500 ms must fit, or a blocking
   * upstream could never give the engine a full block. */
  self->queue_bound_ms = MAX (self->max_size_time / GST_MSECOND,
      1000 * LA_SESSION_FRAMES_PER_BLOCK / FPS_N + self->lookahead_ms + 500);
  job->p.max_queue_ms = (int) self->queue_bound_ms;
  if (self->max_area > 0)
    job->p.max_area = self->max_area;
  job->p.n_threads = self->threads;
  job->p.weights = (LaWeights) self->weights;
  /* Defaults come from la_session_params_init (). */
  self->settings_dirty = FALSE;
  GST_OBJECT_UNLOCK (self);
  set_state (self, GST_LIVE_AVATAR_SRC_STATE_LOADING);

  if (!job->model_path || !*job->model_path)
    goto no_model;
  if (g_file_test (job->model_path, G_FILE_TEST_IS_REGULAR))
    goto model_is_file;
  if (!g_file_test (job->model_path, G_FILE_TEST_IS_DIR))
    goto model_missing;
  if (job->lora_path && *job->lora_path &&
      !g_file_test (job->lora_path, G_FILE_TEST_EXISTS))
    goto lora_missing;
  job->ref = load_reference (sample, ref_path, &job->rw, &job->rh, &err);
  if (!job->ref && err)
    goto ref_failed;
  if (!job->ref)
    goto no_reference;

  job->p.model_dir = job->model_path;
  job->p.lora = job->lora_path && *job->lora_path ? job->lora_path : NULL;
  job->p.prompt = job->prompt;
  job->p.devices = job->devices;
  job->p.ref_rgb = job->ref;
  job->p.ref_width = job->rw;
  job->p.ref_height = job->rh;
  job->p.ref_stride = 3 * job->rw;

  GST_INFO_OBJECT (self, "loading model %s on %s", job->model_path,
      job->devices);
  text = g_strdup_printf ("Loading the model %s", job->model_path);
  post_progress (self, GST_PROGRESS_TYPE_START, text);
  g_free (text);
  set_load_status (self, LOAD_RUNNING);
  self->loader = g_thread_new ("liveavatar-load", load_thread, job);
  job = NULL;

done:
  g_free (ref_path);
  if (sample)
    gst_sample_unref (sample);
  g_clear_error (&err);
  if (job) {
    load_job_free (job);
    set_state (self, GST_LIVE_AVATAR_SRC_STATE_ERROR);
    return FALSE;
  }
  return TRUE;

  /* ERRORS */
no_model:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No model folder: set the model-path property (liveavatar-mkmodel "
            "--preset tiny --out DIR writes a test model)"), (NULL));
    goto done;
  }
model_is_file:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("model-path '%s' is a file: it must name the model folder",
            job->model_path), (NULL));
    goto done;
  }
model_missing:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("Cannot load the model: model folder '%s' (model-path) does not "
            "exist", job->model_path), (NULL));
    goto done;
  }
lora_missing:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("LoRA '%s' (lora-path) does not exist", job->lora_path), (NULL));
    goto done;
  }
no_reference:
  {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
        ("No avatar image: set reference-image or reference-sample"), (NULL));
    goto done;
  }
ref_failed:
  {
    post_engine_error (self, "Cannot read the reference image", err);
    goto done;
  }
}

/* Waits for the loader (not cancellable: la_session_new runs to its end). */
static void
join_load (GstLiveAvatarSrc * self)
{
  if (self->loader) {
    g_thread_join (self->loader);
    self->loader = NULL;
  }
}

/* The session once loaded; waits up to @timeout_us (-1: until loaded,
 * failed or flushing) while it loads.  NULL if not (yet) there. */
static LaSession *
await_session (GstLiveAvatarSrc * self, gint64 timeout_us)
{
  gint64 end = timeout_us < 0 ? G_MAXINT64 :
      g_get_monotonic_time () + timeout_us;
  LoadStatus st;
  gboolean flushing;

  for (;;) {
    g_mutex_lock (&self->load_lock);
    if (self->load_status == LOAD_RUNNING)
      g_cond_wait_until (&self->load_cond, &self->load_lock,
          MIN (end, g_get_monotonic_time () + 10 * G_TIME_SPAN_MILLISECOND));
    st = self->load_status;
    g_mutex_unlock (&self->load_lock);
    if (st != LOAD_RUNNING)
      break;
    STREAM_LOCK (self);
    flushing = self->flushing;
    STREAM_UNLOCK (self);
    if (flushing || g_get_monotonic_time () >= end)
      return NULL;
  }
  return st == LOAD_DONE ? self->session : NULL;
}

static gboolean
load_failed (GstLiveAvatarSrc * self)
{
  gboolean failed;

  g_mutex_lock (&self->load_lock);
  failed = self->load_status == LOAD_FAILED;
  g_mutex_unlock (&self->load_lock);
  return failed;
}

/* The session if loaded, without waiting. */
static LaSession *
loaded_session (GstLiveAvatarSrc * self)
{
  return await_session (self, 0);
}

static void
free_session (GstLiveAvatarSrc * self)
{
  LaSession *s;

  /* a reference swap in another thread finishes with the session first */
  g_mutex_lock (&self->swap_lock);
  GST_OBJECT_LOCK (self);
  s = self->session;
  self->session = NULL;
  self->session_latency_ns = 0;
  g_clear_pointer (&self->idle_rgb, g_bytes_unref);
  GST_OBJECT_UNLOCK (self);
  g_mutex_unlock (&self->swap_lock);
  if (s)
    la_session_free (s);
}

/* Stream state */

/* Called with self->lock, streaming stopped. */
static void
reset_stream_locked (GstLiveAvatarSrc * self)
{
  g_queue_clear_full (&self->events, pending_event_free);
  g_queue_init (&self->events);
  self->eos = FALSE;
  la_timeline_in_reset (&self->in);
  self->idling = FALSE;
  gst_segment_init (&self->in_segment, GST_FORMAT_TIME);
}

/* Task-only state; called while the task is stopped or paused. */
static void
reset_task_state (GstLiveAvatarSrc * self)
{
  gst_segment_init (&self->out_segment, GST_FORMAT_TIME);
  self->have_out_segment = FALSE;
  la_timeline_out_reset (&self->out);
  g_clear_pointer (&self->held, la_frame_unref);
  gst_clear_buffer (&self->last_buffer);
  self->errors = 0;
  self->processed = 0;
  self->skips_seen = 0;
  self->stats_slot = 0;
  self->last_warning_us = 0;
  GST_OBJECT_LOCK (self);
  self->earliest_time = GST_CLOCK_TIME_NONE;
  self->proportion = 1.0;
  GST_OBJECT_UNLOCK (self);
}

/* The CUDA context for memory:CUDAMemory output (NULL->READY, or a
 * READY-time reload).  Optional with cuda-device-id -1: without a driver
 * the element negotiates system memory only, with no error.  A device >= 0
 * is a requirement (docs/design/element-timing.md §7: no CUDA driver -> LIBRARY/INIT). */
static gboolean
open_cuda (GstLiveAvatarSrc * self)
{
  GError *err = NULL;
  gint dev;

  GST_OBJECT_LOCK (self);
  dev = self->cuda_device_id;
  GST_OBJECT_UNLOCK (self);
  if (gst_live_avatar_cuda_open (self->cuda, dev, &err))
    return TRUE;

  GST_ELEMENT_ERROR (self, LIBRARY, INIT,
      ("CUDA device %d (cuda-device-id) is not usable", dev),
      ("%s", err->message));
  g_clear_error (&err);
  set_state (self, GST_LIVE_AVATAR_SRC_STATE_ERROR);
  return FALSE;
}

static GstStateChangeReturn
gst_live_avatar_src_change_state (GstElement * element,
    GstStateChange transition)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (element);
  GstStateChangeReturn ret;
  gboolean dirty;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      /* CUDA first: a bad cuda-device-id fails before a long model load.
       * Downstream is READY already, so its CUDA context can be adopted. */
      if (!open_cuda (self))
        return GST_STATE_CHANGE_FAILURE;
      if (!start_load (self)) {
        gst_live_avatar_cuda_close (self->cuda);
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      GST_OBJECT_LOCK (self);
      dirty = self->settings_dirty;
      self->frames_pushed = self->frames_repeated = self->frames_dropped = 0;
      self->frames_fresh = 0;
      GST_OBJECT_UNLOCK (self);
      /* READY-mutable properties changed in READY: reload now. */
      if (dirty) {
        join_load (self);
        free_session (self);
        gst_live_avatar_cuda_close (self->cuda);
        if (!open_cuda (self) || !start_load (self))
          return GST_STATE_CHANGE_FAILURE;
      }
      /* Still loading: the new session is a fresh stream already. */
      if (loaded_session (self)) {
        la_session_reset (self->session);
        set_state (self, GST_LIVE_AVATAR_SRC_STATE_IDLE);
      }
      STREAM_LOCK (self);
      reset_stream_locked (self);
      STREAM_UNLOCK (self);
      reset_task_state (self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* Pads are deactivated: the task is stopped. */
      STREAM_LOCK (self);
      reset_stream_locked (self);
      STREAM_UNLOCK (self);
      reset_task_state (self);
      la_output_release (&self->output);
      set_state (self, GST_LIVE_AVATAR_SRC_STATE_READY);
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      join_load (self);
      join_swap (self);
      free_session (self);
      set_load_status (self, LOAD_NONE);
      gst_live_avatar_cuda_close (self->cuda);
      set_state (self, GST_LIVE_AVATAR_SRC_STATE_NULL);
      break;
    default:
      break;
  }
  return ret;
}

/* Sink side: chain and events (upstream thread) */

static void
enqueue_event_locked (GstLiveAvatarSrc * self, GstEvent * event, gint64 frame)
{
  PendingEvent *pe = g_new (PendingEvent, 1);
  pe->event = event;
  pe->frame = frame;
  g_queue_push_tail (&self->events, pe);
  STREAM_SIGNAL (self);
}

static gboolean
is_live_leaky (GstLiveAvatarSrc * self)
{
  gboolean leaky;

  GST_OBJECT_LOCK (self);
  leaky = self->leaky == GST_LIVE_AVATAR_SRC_LEAKY_DOWNSTREAM ||
      (self->leaky == GST_LIVE_AVATAR_SRC_LEAKY_AUTO && self->upstream_live);
  GST_OBJECT_UNLOCK (self);
  return leaky;
}

static void
update_speaking (GstLiveAvatarSrc * self, const GstMapInfo * map,
    gboolean is_f32)
{
  gdouble acc = 0;
  gsize i, n = map->size / (is_f32 ? 4 : 2);

  if (n == 0)
    return;
  for (i = 0; i < n; i++) {
    gdouble v = is_f32 ? ((const gfloat *) map->data)[i]
        : ((const gint16 *) map->data)[i] / 32768.0;
    acc += v * v;
  }
  set_state (self, sqrt (acc / n) > SPEECH_RMS ?
      GST_LIVE_AVATAR_SRC_STATE_SPEAKING : GST_LIVE_AVATAR_SRC_STATE_IDLE);
}

/* Called with the audio line lock. */
static GstFlowReturn
chain_line_locked (GstLiveAvatarSrc * self, GstBuffer * buf)
{
  GstFlowReturn ret;
  gsize n, skip = 0, silence = 0;
  gint bpf;
  gboolean is_f32, ok;
  GstMapInfo map;
  GError *err = NULL;

  STREAM_LOCK (self);
  if (self->flushing || self->srcresult != GST_FLOW_OK)
    goto out_flow;
  if (self->eos)
    goto out_eos;
  if (!self->have_ainfo)
    goto not_negotiated;

  bpf = GST_AUDIO_INFO_BPF (&self->ainfo);
  is_f32 = GST_AUDIO_INFO_FORMAT (&self->ainfo) == GST_AUDIO_FORMAT_F32LE;
  buf = gst_audio_buffer_clip (buf, &self->in_segment, RATE, bpf);
  if (!buf) {
    STREAM_UNLOCK (self);
    return GST_FLOW_OK;
  }

  n = gst_buffer_get_size (buf) / bpf;
  self->idling = FALSE;
  /* Keep the grid: holes become silence, overlaps are cut, so the audio
   * time line stays continuous from t0. */
  la_timeline_in_audio (&self->in, GST_BUFFER_PTS (buf),
      GST_BUFFER_IS_DISCONT (buf), self->in_segment.start, n, &silence, &skip);
  if (silence || skip)
    GST_DEBUG_OBJECT (self, "audio hole of %" G_GSIZE_FORMAT " samples, "
        "overlap of %" G_GSIZE_FORMAT, silence, skip);
  STREAM_UNLOCK (self);

  if (skip >= n) {
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }
  /* Live and leaky: the session drops the oldest audio (whole frames, and
   * moves later frames' pts_ns).  Otherwise a full queue blocks the pushes
   * below until the engine has taken some; a flush interrupts them. */
  la_session_set_queue_policy (self->session, is_live_leaky (self) ?
      LA_QUEUE_DROP_OLDEST : LA_QUEUE_BLOCK);
  if (silence) {
    la_session_push_silence (self->session, silence);
    STREAM_LOCK (self);
    la_timeline_in_advance (&self->in, silence);
    STREAM_UNLOCK (self);
  }


  gst_buffer_map (buf, &map, GST_MAP_READ);
  if (is_f32)
    ok = la_session_push_audio (self->session,
        (const gfloat *) map.data + skip, n - skip, &err);
  else
    ok = la_session_push_audio_s16 (self->session,
        (const gint16 *) map.data + skip, n - skip, &err);
  update_speaking (self, &map, is_f32);
  gst_buffer_unmap (buf, &map);
  gst_buffer_unref (buf);
  if (!ok)
    goto push_failed;

  STREAM_LOCK (self);
  la_timeline_in_advance (&self->in, n - skip);
  ret = self->srcresult;
  STREAM_SIGNAL (self);
  STREAM_UNLOCK (self);
  return ret;

  /* ERRORS */
out_flow:
  {
    ret = self->flushing ? GST_FLOW_FLUSHING : self->srcresult;
    STREAM_UNLOCK (self);
    GST_LOG_OBJECT (self, "refusing buffer: %s", gst_flow_get_name (ret));
    gst_buffer_unref (buf);
    return ret;
  }
out_eos:
  {
    STREAM_UNLOCK (self);
    gst_buffer_unref (buf);
    return GST_FLOW_EOS;
  }
not_negotiated:
  {
    STREAM_UNLOCK (self);
    gst_buffer_unref (buf);
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("audio buffer before caps"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
push_failed:
  {
    gboolean flushing;
    STREAM_LOCK (self);
    flushing = self->flushing;
    STREAM_UNLOCK (self);
    if (flushing) {
      g_clear_error (&err);
      return GST_FLOW_FLUSHING;
    }
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL),
        ("la_session_push_audio: %s", err ? err->message : "failed"));
    g_clear_error (&err);
    return GST_FLOW_ERROR;
  }
}

static GstFlowReturn
gst_live_avatar_src_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (parent);
  GstFlowReturn ret;

  /* The first buffer waits for the model. */
  if (!await_session (self, -1)) {
    gst_buffer_unref (buf);
    return load_failed (self) ? GST_FLOW_ERROR : GST_FLOW_FLUSHING;
  }
  AUDIO_LINE_LOCK (self);
  ret = chain_line_locked (self, buf);
  AUDIO_LINE_UNLOCK (self);
  return ret;
}

static gboolean
gst_live_avatar_src_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (parent);

  GST_LOG_OBJECT (self, "sink event %" GST_PTR_FORMAT, event);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GstAudioInfo info;
      gboolean ok;

      gst_event_parse_caps (event, &caps);
      ok = gst_audio_info_from_caps (&info, caps);
      if (ok) {
        STREAM_LOCK (self);
        self->ainfo = info;
        self->have_ainfo = TRUE;
        STREAM_UNLOCK (self);
      }
      /* Consumed: the element makes its own video caps. */
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;

      gst_event_parse_segment (event, &seg);
      if (seg->format != GST_FORMAT_TIME) {
        GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
            ("need a TIME segment, got %s", gst_format_get_name (seg->format)));
        gst_event_unref (event);
        return FALSE;
      }
      STREAM_LOCK (self);
      self->in_segment = *seg;
      enqueue_event_locked (self, event, la_timeline_in_event_slot (&self->in));
      STREAM_UNLOCK (self);
      return TRUE;
    }
    case GST_EVENT_GAP:{
      GstClockTime ts, dur;
      gsize silence = 0;

      /* A gap is silence: the avatar keeps moving through it. */
      gst_event_parse_gap (event, &ts, &dur);
      if (!await_session (self, -1)) {
        gst_event_unref (event);
        return FALSE;
      }
      AUDIO_LINE_LOCK (self);
      STREAM_LOCK (self);
      if (!self->flushing && !self->eos) {
        silence = la_timeline_in_gap (&self->in, ts, dur);
        self->idling = FALSE;
      }
      STREAM_UNLOCK (self);
      if (silence) {
        GST_DEBUG_OBJECT (self, "gap: %" G_GSIZE_FORMAT " samples of silence",
            silence);
        la_session_push_silence (self->session, silence);
      }
      AUDIO_LINE_UNLOCK (self);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_EOS:
      STREAM_LOCK (self);
      self->eos = TRUE;
      enqueue_event_locked (self, event, AFTER_DRAIN);
      STREAM_UNLOCK (self);
      /* The session pads the last partial block with silence. */
      if (await_session (self, -1))
        la_session_end_of_stream (self->session);
      return TRUE;
    case GST_EVENT_FLUSH_START:
      STREAM_LOCK (self);
      self->flushing = TRUE;
      self->srcresult = GST_FLOW_FLUSHING;
      STREAM_SIGNAL (self);
      STREAM_UNLOCK (self);
      if (loaded_session (self))
        la_session_interrupt (self->session);
      gst_pad_push_event (self->srcpad, event);
      /* Waits for the task to leave its iteration (it only waits with a
       * timeout or on the interrupted session). */
      gst_pad_pause_task (self->srcpad);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:{
      gboolean ret;

      if (loaded_session (self))
        la_session_reset (self->session);
      STREAM_LOCK (self);
      reset_stream_locked (self);
      self->flushing = FALSE;
      self->srcresult = GST_FLOW_OK;
      STREAM_UNLOCK (self);
      reset_task_state (self);
      ret = gst_pad_push_event (self->srcpad, event);
      gst_pad_start_task (self->srcpad,
          (GstTaskFunction) gst_live_avatar_src_loop, self, NULL);
      return ret;
    }
    default:
      if (GST_EVENT_IS_SERIALIZED (event)) {
        STREAM_LOCK (self);
        if (self->flushing) {
          STREAM_UNLOCK (self);
          gst_event_unref (event);
          return FALSE;
        }
        enqueue_event_locked (self, event, la_timeline_in_event_slot (&self->in));
        STREAM_UNLOCK (self);
        return TRUE;
      }
      return gst_pad_event_default (pad, parent, event);
  }
}

/* Source side (task) */

/* A QoS message for the slots [pts, pts + dur); @block_ms > 0 adds why
 * (the engine cannot keep up): fields block-time (the measured block time)
 * and real-time-budget (one block of video), in ns. */
static void
post_qos_full (GstLiveAvatarSrc * self, GstClockTime pts, GstClockTime dur,
    GstClockTimeDiff jitter, gboolean live, gdouble block_ms)
{
  GstMessage *msg;
  guint64 dropped;

  GST_OBJECT_LOCK (self);
  dropped = self->frames_dropped + self->frames_repeated;
  GST_OBJECT_UNLOCK (self);
  msg = gst_message_new_qos (GST_OBJECT (self), live,
      gst_segment_to_running_time (&self->out_segment, GST_FORMAT_TIME, pts),
      gst_segment_to_stream_time (&self->out_segment, GST_FORMAT_TIME, pts),
      pts, dur);
  gst_message_set_qos_values (msg, jitter, 1.0, 1000000);
  gst_message_set_qos_stats (msg, GST_FORMAT_BUFFERS, self->processed,
      dropped);
  if (block_ms > 0)
    gst_structure_set (gst_message_writable_structure (msg),
        "block-time", G_TYPE_UINT64, (guint64) (block_ms * GST_MSECOND),
        "real-time-budget", G_TYPE_UINT64, (guint64) LA_TIMELINE_BLOCK_NS,
        NULL);
  gst_element_post_message (GST_ELEMENT (self), msg);
}

static void
post_qos (GstLiveAvatarSrc * self, GstClockTime pts, GstClockTime dur,
    GstClockTimeDiff jitter, gboolean live)
{
  post_qos_full (self, pts, dur, jitter, live, 0);
}

/* Pushes @buf (owned) into the next grid slot.  Returns the flow result.
 * Nothing is dropped here: downstream QoS (earliest_time) acts earlier, in
 * the session's choice of which block to generate (session_time_left), so
 * every slot gets its one buffer. */
static GstFlowReturn
push_slot (GstLiveAvatarSrc * self, GstBuffer * buf, GstClockTime t0,
    gboolean repeated)
{
  gboolean discont;
  gint64 slot = la_timeline_out_take (&self->out, &discont);
  GstClockTime pts = la_timeline_pts (t0, slot);
  GstClockTime dur = la_timeline_duration (t0, slot);
  guint64 cstart, cstop;

  self->processed++;
  if (!gst_segment_clip (&self->out_segment, GST_FORMAT_TIME, pts, pts + dur,
          &cstart, &cstop)) {
    GST_LOG_OBJECT (self, "slot %" G_GINT64_FORMAT " outside the segment",
        slot);
    self->out.discont |= discont;
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }

  buf = gst_buffer_make_writable (buf);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DTS (buf) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION (buf) = dur;
  GST_BUFFER_OFFSET (buf) = slot;
  GST_BUFFER_OFFSET_END (buf) = slot + 1;
  if (discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  else
    GST_BUFFER_FLAG_UNSET (buf, GST_BUFFER_FLAG_DISCONT);
  if (repeated)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
  else
    GST_BUFFER_FLAG_UNSET (buf, GST_BUFFER_FLAG_GAP);

  gst_buffer_replace (&self->last_buffer, buf);
  GST_OBJECT_LOCK (self);
  self->frames_pushed++;
  if (!repeated)
    self->frames_fresh++;
  GST_OBJECT_UNLOCK (self);
  GST_LOG_OBJECT (self, "pushing slot %" G_GINT64_FORMAT " pts %"
      GST_TIME_FORMAT "%s", slot, GST_TIME_ARGS (pts),
      repeated ? " (repeat)" : "");
  /* `stats` changes with every frame: notified once per second of video. */
  if (slot >= self->stats_slot + LA_TIMELINE_FPS) {
    self->stats_slot = slot;
    g_object_notify (G_OBJECT (self), "stats");
  }
  return gst_pad_push (self->srcpad, buf);
}

/* A repeated frame (the last one, or the reference image before the first)
 * for the next slot. */
static GstBuffer *
make_repeat (GstLiveAvatarSrc * self)
{
  GstBuffer *buf = NULL;
  GBytes *idle;

  if (self->last_buffer)
    return gst_buffer_copy (self->last_buffer);
  GST_OBJECT_LOCK (self);
  idle = self->idle_rgb ? g_bytes_ref (self->idle_rgb) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (idle) {
    buf = la_output_render (&self->output, g_bytes_get_data (idle, NULL),
        self->width, self->height);
    g_bytes_unref (idle);
  }
  return buf;
}

/* Repeats into the slots before @slot (one QoS message for the run). */
static GstFlowReturn
fill_slots (GstLiveAvatarSrc * self, GstClockTime t0, gint64 slot)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gint64 first = self->out.next;

  GST_DEBUG_OBJECT (self, "filling slots %" G_GINT64_FORMAT "..%"
      G_GINT64_FORMAT " with repeats", first, slot - 1);
  post_qos (self, la_timeline_pts (t0, first), la_timeline_pts (t0, slot) -
      la_timeline_pts (t0, first), 0, TRUE);
  while (ret == GST_FLOW_OK && self->out.next < slot) {
    GstBuffer *buf = make_repeat (self);
    if (!buf)
      return GST_FLOW_ERROR;
    GST_OBJECT_LOCK (self);
    self->frames_repeated++;
    GST_OBJECT_UNLOCK (self);
    ret = push_slot (self, buf, t0, TRUE);
  }
  return ret;
}

/* Live: a repeat stands in for the next slot, whose deadline passed by
 * @late. */
static GstFlowReturn
push_repeat (GstLiveAvatarSrc * self, GstClockTime t0, GstClockTimeDiff late)
{
  gint64 slot = self->out.next;
  GstBuffer *buf = make_repeat (self);

  if (!buf)
    return GST_FLOW_ERROR;
  GST_OBJECT_LOCK (self);
  self->frames_repeated++;
  GST_OBJECT_UNLOCK (self);
  GST_DEBUG_OBJECT (self, "slot %" G_GINT64_FORMAT " missed its deadline by %"
      GST_STIME_FORMAT ", repeating", slot, GST_STIME_ARGS (late));
  post_qos (self, la_timeline_pts (t0, slot), la_timeline_duration (t0, slot),
      late, TRUE);
  return push_slot (self, buf, t0, TRUE);
}

static void
query_upstream_latency (GstLiveAvatarSrc * self)
{
  GstQuery *q = gst_query_new_latency ();
  gboolean live = FALSE;
  GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;

  if (gst_pad_peer_query (self->sinkpad, q))
    gst_query_parse_latency (q, &live, &min, &max);
  gst_query_unref (q);
  GST_OBJECT_LOCK (self);
  self->upstream_live = live;
  self->upstream_min = GST_CLOCK_TIME_IS_VALID (min) ? min : 0;
  GST_OBJECT_UNLOCK (self);
}

/* Deadline-aware scheduling (la_session_set_deadline_func; engine thread,
 * no session lock held).  How long is left until the deadline of the slot
 * of the frame at @pts_ns on the audio time line; G_MAXINT64 when there is
 * none: not live or not leaky (never drop), not PLAYING, no clock, or
 * before the first audio.  With `qos`, a slot downstream already reported
 * as too late (earliest_time) counts as late. */
static gint64
session_time_left (gint64 pts_ns, gpointer user_data)
{
  GstLiveAvatarSrc *self = user_data;
  GstSegment seg;
  GstClockTime t0, latency, earliest, deadline, now, rt;
  GstClock *clock;
  gboolean qos;
  gint64 slot = la_timeline_slot_of (pts_ns), left;

  if (!is_live_leaky (self) || GST_STATE (self) != GST_STATE_PLAYING)
    return G_MAXINT64;
  GST_OBJECT_LOCK (self);
  latency = self->upstream_min + own_latency_locked (self);
  qos = self->qos;
  earliest = self->earliest_time;
  GST_OBJECT_UNLOCK (self);
  STREAM_LOCK (self);
  seg = self->in_segment;
  t0 = self->in.t0;
  STREAM_UNLOCK (self);
  if (!GST_CLOCK_TIME_IS_VALID (t0))
    return G_MAXINT64;
  deadline = la_timeline_deadline (&seg, t0, slot,
      gst_element_get_base_time (GST_ELEMENT (self)), latency);
  clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock || !GST_CLOCK_TIME_IS_VALID (deadline)) {
    gst_clear_object (&clock);
    return G_MAXINT64;
  }
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  left = GST_CLOCK_DIFF (now, deadline);
  rt = gst_segment_to_running_time (&seg, GST_FORMAT_TIME,
      la_timeline_pts (t0, slot));
  if (qos && GST_CLOCK_TIME_IS_VALID (earliest) &&
      GST_CLOCK_TIME_IS_VALID (rt) && rt + la_timeline_duration (t0,
          slot) <= earliest)
    left = MIN (left, -1);
  return left;
}

/* Seconds between two "cannot keep up" warnings after the first. */
#define WARNING_INTERVAL_US (30 * G_USEC_PER_SEC)

/* Reports that generation does not keep up with real time: a QoS message
 * for the frames of each skipped block, and a WARNING (the first time,
 * then at most every 30 s) naming the measured block time against the
 * real-time budget (one block of video, 480 ms) and the deadline budget
 * (the `latency` property plus upstream's). */
static void
watch_speed (GstLiveAvatarSrc * self, GstClockTime t0, gboolean late_frame)
{
  LaSessionStats st;
  gint64 now_us, skipped;
  guint latency_ms;
  GstClockTime upstream;

  la_session_get_stats (self->session, &st);
  skipped = st.blocks_skipped - self->skips_seen;
  if (skipped <= 0 && !late_frame)
    return;
  self->skips_seen = st.blocks_skipped;
  if (skipped > 0)
    post_qos_full (self, la_timeline_pts (t0, self->out.next),
        skipped * LA_TIMELINE_BLOCK_NS, 0, TRUE, st.ms_block_avg);
  now_us = g_get_monotonic_time ();
  if (self->last_warning_us &&
      now_us - self->last_warning_us < WARNING_INTERVAL_US)
    return;
  self->last_warning_us = now_us;
  GST_OBJECT_LOCK (self);
  latency_ms = self->latency_ms;
  upstream = self->upstream_min;
  GST_OBJECT_UNLOCK (self);
  if (st.ms_block_avg > latency_ms + upstream / GST_MSECOND)
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("Avatar generation is too slow for the configured latency"),
        ("measured block time %.0f ms; real-time budget %" G_GINT64_FORMAT
            " ms per block; deadline budget %u ms (latency) + %"
            G_GUINT64_FORMAT " ms (upstream): no generated frame can be on "
            "time, raise the latency property to at least %.0f ms; %"
            G_GINT64_FORMAT " blocks of stale audio skipped", st.ms_block_avg,
            (gint64) (LA_TIMELINE_BLOCK_NS / GST_MSECOND), latency_ms,
            upstream / GST_MSECOND, st.ms_block_avg, st.blocks_skipped));
  else
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("Avatar generation is slower than real time: the avatar moves at "
            "a reduced rate"),
        ("measured block time %.0f ms; real-time budget %" G_GINT64_FORMAT
            " ms per block; deadline budget %u ms (latency) + %"
            G_GUINT64_FORMAT " ms (upstream); %" G_GINT64_FORMAT
            " blocks of stale audio skipped", st.ms_block_avg,
            (gint64) (LA_TIMELINE_BLOCK_NS / GST_MSECOND), latency_ms,
            upstream / GST_MSECOND, st.blocks_skipped));
}

/* Task steps.  One iteration of the loop:
 *   step_pull      the next generated frame (held until its events are out);
 *   step_events    serialized events whose audio ends before it;
 *   step_negotiate caps, renegotiated when downstream asks;
 *   step_idle      (live, nothing generated) silence for a silent upstream;
 *   step_place     the frame into its grid slot, or
 *   step_deadline  (live, nothing generated) a repeat into a slot whose
 *                  deadline passed.
 * Each returns a flow result, or: STEP_AGAIN ends the iteration quietly,
 * STEP_EOS_SENT after our EOS went out, STEP_FAILED after an error
 * message of our own was posted. */
#define STEP_AGAIN GST_FLOW_CUSTOM_SUCCESS
#define STEP_EOS_SENT GST_FLOW_CUSTOM_SUCCESS_1
#define STEP_FAILED GST_FLOW_CUSTOM_ERROR

static GstFlowReturn
step_pull (GstLiveAvatarSrc * self, GError ** err)
{
  if (!self->held) {
    self->held = la_session_pull_frame (self->session, PULL_TIMEOUT_US, err);
    if (*err)
      return GST_FLOW_ERROR;
    self->errors = 0;
  }
  return GST_FLOW_OK;
}

/* CUDA fill path: with CUDA memory negotiated in a format the engine makes
 * on its GPU (RGBA; NV12 in BT.601 or BT.709 limited range) and the engine's
 * output on a GPU, the session keeps frames on the device and they are
 * copied device-to-device into the pool's buffers
 * (gst_live_avatar_cuda_fill_device); otherwise host frames, converted on
 * the host and uploaded.  A CPU engine refuses device frames: the host path
 * stays. */
static LaDeviceFrames
device_frames_for (const LaOutput * o)
{
  const GstVideoColorimetry *cm = &o->vinfo.colorimetry;

  if (!o->cuda_output)
    return LA_DEVICE_FRAMES_OFF;
  switch (GST_VIDEO_INFO_FORMAT (&o->vinfo)) {
    case GST_VIDEO_FORMAT_RGBA:
      return LA_DEVICE_FRAMES_RGBA;
    case GST_VIDEO_FORMAT_NV12:
      if (cm->range != GST_VIDEO_COLOR_RANGE_16_235)
        return LA_DEVICE_FRAMES_OFF;
      if (cm->matrix == GST_VIDEO_COLOR_MATRIX_BT601)
        return LA_DEVICE_FRAMES_NV12_BT601;
      if (cm->matrix == GST_VIDEO_COLOR_MATRIX_BT709)
        return LA_DEVICE_FRAMES_NV12_BT709;
      return LA_DEVICE_FRAMES_OFF;
    default:
      return LA_DEVICE_FRAMES_OFF;
  }
}

static void
choose_frame_kind (GstLiveAvatarSrc * self)
{
  LaDeviceFrames want = device_frames_for (&self->output);
  LaSession *session = loaded_session (self);
  GError *err = NULL;

  if (!session)
    return;
  if (!la_session_set_device_frames (session, want, &err)) {
    GST_INFO_OBJECT (self, "host frames, uploaded: %s", err->message);
    g_clear_error (&err);
  } else if (want != LA_DEVICE_FRAMES_OFF) {
    GST_INFO_OBJECT (self, "device frames (%s), copied device-to-device",
        gst_video_format_to_string (GST_VIDEO_INFO_FORMAT
            (&self->output.vinfo)));
  }
}

static gboolean
negotiate_output (GstLiveAvatarSrc * self)
{
  if (!la_output_negotiate (&self->output, self->width, self->height))
    return FALSE;
  choose_frame_kind (self);
  return TRUE;
}

/* A buffer of the CUDA pool filled from a device frame. */
static GstBuffer *
render_device (GstLiveAvatarSrc * self, const LaFrame * frame)
{
  GstBuffer *out = NULL;
  GError *err = NULL;

  /* Frames made before a renegotiation to another format or memory. */
  if (frame->device_format != device_frames_for (&self->output) ||
      !self->output.pool) {
    GST_ERROR_OBJECT (self, "a device frame (kind %d) made for another "
        "output than the negotiated one", (int) frame->device_format);
    return NULL;
  }
  if (gst_buffer_pool_acquire_buffer (self->output.pool, &out, NULL) !=
      GST_FLOW_OK)
    return NULL;
  if (!gst_live_avatar_cuda_fill_device (self->cuda, &self->output.vinfo,
          frame->device_data, frame->device_pitch, out, &err)) {
    GST_ERROR_OBJECT (self, "device frame: %s", err->message);
    g_clear_error (&err);
    gst_clear_buffer (&out);
  }
  return out;
}

/* The held frame's slot: its place on the audio time line (la-session.h:
 * pts_ns, which counts the 3-frame lead and any audio dropped or skipped)
 * as a grid slot; the next slot when nothing is held. */
static gint64
held_slot (GstLiveAvatarSrc * self)
{
  return self->held ? la_timeline_slot_of (self->held->pts_ns) :
      self->out.next;
}

static GstFlowReturn
step_events (GstLiveAvatarSrc * self, GstClockTime * t0)
{
  PendingEvent *pe;
  gint64 slot = held_slot (self);
  gboolean eos, drained;

  STREAM_LOCK (self);
  eos = self->eos;
  STREAM_UNLOCK (self);
  /* Everything goes once the session is drained after EOS. */
  drained = !self->held && eos && la_session_is_drained (self->session);

  STREAM_LOCK (self);
  while (!self->flushing && (pe = g_queue_peek_head (&self->events)) &&
      (pe->frame <= slot || drained)) {
    GstEvent *event = gst_event_ref (pe->event);
    GstEventType type = GST_EVENT_TYPE (event);

    g_queue_pop_head (&self->events);
    pending_event_free (pe);
    STREAM_UNLOCK (self);

    if (type == GST_EVENT_SEGMENT) {
      const GstSegment *seg;
      if (!self->output.negotiated && !negotiate_output (self)) {
        gst_event_unref (event);
        return GST_FLOW_NOT_NEGOTIATED;
      }
      gst_event_parse_segment (event, &seg);
      self->out_segment = *seg;
      self->have_out_segment = TRUE;
      query_upstream_latency (self);
    }
    GST_LOG_OBJECT (self, "pushing %" GST_PTR_FORMAT, event);
    gst_pad_push_event (self->srcpad, event);
    if (type == GST_EVENT_EOS)
      return STEP_EOS_SENT;
    STREAM_LOCK (self);
  }
  *t0 = self->in.t0;
  if (self->flushing) {
    STREAM_UNLOCK (self);
    return GST_FLOW_FLUSHING;
  }
  STREAM_UNLOCK (self);
  return GST_FLOW_OK;
}

static GstFlowReturn
step_negotiate (GstLiveAvatarSrc * self)
{
  if (self->have_out_segment && (!self->output.negotiated ||
          gst_pad_check_reconfigure (self->srcpad))) {
    if (!negotiate_output (self))
      return GST_FLOW_NOT_NEGOTIATED;
  }
  return GST_FLOW_OK;
}

static GstFlowReturn
step_place (GstLiveAvatarSrc * self, GstClockTime t0)
{
  gint64 slot = held_slot (self);
  LaFrame *frame;
  GstBuffer *buf;

  if (!self->have_out_segment || !GST_CLOCK_TIME_IS_VALID (t0)) {
    /* Audio (hence this frame) came before its SEGMENT went out; keep it
     * until the next iteration has pushed the events. */
    return STEP_AGAIN;
  }
  frame = g_steal_pointer (&self->held);
  switch (la_timeline_out_place (&self->out, slot)) {
    case LA_SLOT_LATE:
      /* Already stood in for by a repeat at its deadline. */
      GST_OBJECT_LOCK (self);
      self->frames_dropped++;
      GST_OBJECT_UNLOCK (self);
      la_frame_unref (frame);
      watch_speed (self, t0, TRUE);
      return STEP_AGAIN;
    case LA_SLOT_FILL:{
      /* The session dropped or skipped audio: the slots up to the frame
       * get repeats, so the grid has no hole and never jumps. */
      GstFlowReturn ret = fill_slots (self, t0, slot);
      if (ret != GST_FLOW_OK) {
        la_frame_unref (frame);
        return ret;
      }
      break;
    }
    case LA_SLOT_START:
      la_timeline_out_start (&self->out, slot);
      break;
    case LA_SLOT_FRESH:
      break;
  }
  watch_speed (self, t0, FALSE);
  if (frame->device_format != LA_DEVICE_FRAMES_OFF)
    buf = render_device (self, frame);
  else
    buf = la_output_render (&self->output, frame->rgb, frame->width,
        frame->height);
  la_frame_unref (frame);
  if (!buf) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL),
        ("cannot convert the generated frame"));
    return STEP_FAILED;
  }
  return push_slot (self, buf, t0, FALSE);
}

/* Live, idle=silence: when upstream has sent nothing for idle-timeout,
 * silence brings the audio line up to the clock (less upstream latency),
 * so the session keeps generating (the model's idle motion) and the next
 * audio continues from there.  Leaky only: a silence push never blocks. */
static void
step_idle (GstLiveAvatarSrc * self)
{
  GstClockTime upstream, timeout, now, end_rt;
  GstClock *clock;
  gboolean silence;
  gsize n = 0;

  GST_OBJECT_LOCK (self);
  silence = self->idle == GST_LIVE_AVATAR_SRC_IDLE_SILENCE;
  upstream = self->upstream_min;
  timeout = self->idle_timeout_ms * GST_MSECOND;
  GST_OBJECT_UNLOCK (self);
  if (!silence || !is_live_leaky (self) ||
      GST_STATE (self) != GST_STATE_PLAYING)
    return;
  clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock)
    return;
  now = gst_clock_get_time (clock) -
      gst_element_get_base_time (GST_ELEMENT (self));
  gst_object_unref (clock);
  /* A chain in progress holds the line: upstream is not silent then. */
  if (!AUDIO_LINE_TRYLOCK (self))
    return;
  STREAM_LOCK (self);
  end_rt = gst_segment_to_running_time (&self->in_segment, GST_FORMAT_TIME,
      la_timeline_in_end (&self->in));
  /* Once idle, the line follows the clock frame by frame. */
  if (!self->idling)
    self->idling = GST_CLOCK_TIME_IS_VALID (end_rt) &&
        end_rt + timeout + upstream < now;
  if (!self->flushing && !self->eos && self->idling &&
      end_rt + LA_TIMELINE_FRAME_NS + upstream <= now) {
    n = gst_util_uint64_scale (now - upstream - end_rt, RATE, GST_SECOND);
    la_timeline_in_advance (&self->in, n);
  }
  STREAM_UNLOCK (self);
  if (n) {
    GST_LOG_OBJECT (self, "upstream silent: %" G_GSIZE_FORMAT " samples of "
        "silence", n);
    la_session_push_silence (self->session, n);
    set_state (self, GST_LIVE_AVATAR_SRC_STATE_IDLE);
  }
  AUDIO_LINE_UNLOCK (self);
}

static GstFlowReturn
step_deadline (GstLiveAvatarSrc * self, GstClockTime t0)
{
  GstFlowReturn ret = GST_FLOW_OK;
  GstClock *clock;
  GstClockTime deadline, now, latency;
  gboolean live;

  GST_OBJECT_LOCK (self);
  live = self->upstream_live;
  latency = self->upstream_min + own_latency_locked (self);
  GST_OBJECT_UNLOCK (self);
  if (!live || !self->output.negotiated || !GST_CLOCK_TIME_IS_VALID (t0) ||
      GST_STATE (self) != GST_STATE_PLAYING)
    return GST_FLOW_OK;
  clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock)
    return GST_FLOW_OK;
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  /* Every slot whose deadline passed gets its repeat now. */
  do {
    deadline = la_timeline_deadline (&self->out_segment, t0, self->out.next,
        gst_element_get_base_time (GST_ELEMENT (self)), latency);
    if (!GST_CLOCK_TIME_IS_VALID (deadline) || now < deadline)
      break;
    ret = push_repeat (self, t0, GST_CLOCK_DIFF (deadline, now));
  } while (ret == GST_FLOW_OK);
  return ret;
}

static GstFlowReturn
generation_failed (GstLiveAvatarSrc * self, GError * err)
{
  gint max;

  GST_OBJECT_LOCK (self);
  max = self->max_errors;
  GST_OBJECT_UNLOCK (self);
  STREAM_LOCK (self);
  if (self->flushing) {
    STREAM_UNLOCK (self);
    return GST_FLOW_FLUSHING;
  }
  STREAM_UNLOCK (self);
  self->errors++;
  if (max >= 0 && self->errors > max) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Avatar generation failed"),
        ("%s (%d consecutive errors)", err->message, self->errors));
    set_state (self, GST_LIVE_AVATAR_SRC_STATE_ERROR);
    return STEP_FAILED;
  }
  GST_ELEMENT_WARNING (self, STREAM, FAILED, ("Avatar generation failed"),
      ("%s (%d consecutive errors)", err->message, self->errors));
  return STEP_AGAIN;
}

static void
gst_live_avatar_src_loop (GstLiveAvatarSrc * self)
{
  GstFlowReturn ret;
  GstClockTime t0 = GST_CLOCK_TIME_NONE;
  GError *err = NULL;

  /* Nothing streams before the model is there. */
  if (!await_session (self, PULL_TIMEOUT_US)) {
    if (!load_failed (self))
      return;
    ret = STEP_FAILED;          /* the loader posted the error */
    goto done;
  }
  ret = step_pull (self, &err);
  if (err) {
    ret = generation_failed (self, err);
    g_clear_error (&err);
    if (ret == STEP_AGAIN)
      return;
    goto done;
  }
  ret = step_events (self, &t0);
  if (ret == GST_FLOW_OK)
    ret = step_negotiate (self);
  if (ret == GST_FLOW_OK && !self->held)
    step_idle (self);
  if (ret == GST_FLOW_OK)
    ret = self->held ? step_place (self, t0) : step_deadline (self, t0);
  if (ret == GST_FLOW_OK || ret == STEP_AGAIN)
    return;

done:
  if (ret == GST_FLOW_FLUSHING) {
    GST_DEBUG_OBJECT (self, "flushing, pausing task");
    gst_pad_pause_task (self->srcpad);
    return;
  }
  if (ret == STEP_EOS_SENT) {
    GST_DEBUG_OBJECT (self, "EOS pushed, pausing task");
    STREAM_LOCK (self);
    if (self->srcresult == GST_FLOW_OK)
      self->srcresult = GST_FLOW_EOS;
    STREAM_UNLOCK (self);
    gst_pad_pause_task (self->srcpad);
    return;
  }
  if (ret == GST_FLOW_NOT_NEGOTIATED) {
    /* output.error: e.g. downstream wants CUDA memory that cannot be made
     * here; NULL gives GStreamer's generic text. */
    if (self->output.error)
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("%s", self->output.error),
          ("cannot negotiate %dx%d at %d/%d fps with downstream",
              self->width, self->height, FPS_N, FPS_D));
    else
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
          ("cannot negotiate %dx%d at %d/%d fps with downstream",
              self->width, self->height, FPS_N, FPS_D));
    ret = GST_FLOW_NOT_NEGOTIATED;
  } else if (ret == STEP_FAILED) {
    ret = GST_FLOW_ERROR;
  } else if (ret == GST_FLOW_EOS || ret == GST_FLOW_NOT_LINKED ||
      ret < GST_FLOW_EOS) {
    GST_ELEMENT_FLOW_ERROR (self, ret);
  }
  STREAM_LOCK (self);
  self->srcresult = ret;
  STREAM_SIGNAL (self);
  STREAM_UNLOCK (self);
  /* Upstream gets @ret from chain; downstream gets EOS to finish. */
  gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  gst_pad_pause_task (self->srcpad);
}

static gboolean
gst_live_avatar_src_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;

  if (active) {
    STREAM_LOCK (self);
    self->flushing = FALSE;
    self->srcresult = GST_FLOW_OK;
    STREAM_UNLOCK (self);
    return gst_pad_start_task (pad, (GstTaskFunction) gst_live_avatar_src_loop,
        self, NULL);
  }

  STREAM_LOCK (self);
  self->flushing = TRUE;
  self->srcresult = GST_FLOW_FLUSHING;
  STREAM_SIGNAL (self);
  STREAM_UNLOCK (self);
  if (loaded_session (self))
    la_session_interrupt (self->session);
  /* Waits for the loop to finish its iteration (it never blocks for long:
   * the session wait has a timeout and was interrupted). */
  return gst_pad_stop_task (pad);
}

static gboolean
gst_live_avatar_src_src_event (GstPad * pad, GstObject * parent,
    GstEvent * event)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_QOS:{
      GstQOSType type;
      gdouble proportion;
      GstClockTimeDiff diff;
      GstClockTime ts;

      gst_event_parse_qos (event, &type, &proportion, &diff, &ts);
      GST_OBJECT_LOCK (self);
      self->proportion = proportion;
      if (GST_CLOCK_TIME_IS_VALID (ts))
        self->earliest_time = diff > 0 ? ts + 2 * diff : ts + diff;
      GST_OBJECT_UNLOCK (self);
      gst_event_unref (event);
      return TRUE;
    }
    case GST_EVENT_RECONFIGURE:
      /* Handled by the task (gst_pad_check_reconfigure); not forwarded. */
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_SEEK:{
      gdouble rate;
      gst_event_parse_seek (event, &rate, NULL, NULL, NULL, NULL, NULL, NULL);
      if (rate != 1.0) {
        GST_WARNING_OBJECT (self, "refusing seek with rate %f", rate);
        gst_event_unref (event);
        return FALSE;
      }
      return gst_pad_push_event (self->sinkpad, event);
    }
    default:
      return gst_pad_event_default (pad, parent, event);
  }
}

static void
gst_live_avatar_src_set_context (GstElement * element, GstContext * context)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (element);
  gint dev;

  GST_OBJECT_LOCK (self);
  dev = self->cuda_device_id;
  GST_OBJECT_UNLOCK (self);
  /* A CUDA context from downstream or the application (kept only if it is
   * on cuda-device-id, or that is -1). */
  gst_live_avatar_cuda_set_context (self->cuda, context, dev);
  GST_ELEMENT_CLASS (parent_class)->set_context (element, context);
}

static gboolean
gst_live_avatar_src_sink_query (GstPad * pad, GstObject * parent,
    GstQuery * query)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_CONTEXT &&
      gst_live_avatar_cuda_handle_context_query (self->cuda, query))
    return TRUE;
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_live_avatar_src_src_query (GstPad * pad, GstObject * parent,
    GstQuery * query)
{
  GstLiveAvatarSrc *self = GST_LIVE_AVATAR_SRC (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CONTEXT:
      if (gst_live_avatar_cuda_handle_context_query (self->cuda, query))
        return TRUE;
      return gst_pad_query_default (pad, parent, query);
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps, *res;
      gint w, h;

      gst_query_parse_caps (query, &filter);
      /* memory:CUDAMemory only while it can be given (gstliveavatarcuda.h). */
      caps = gst_live_avatar_cuda_filter_caps (self->cuda,
          gst_pad_get_pad_template_caps (pad));
      GST_OBJECT_LOCK (self);
      w = self->width;
      h = self->height;
      GST_OBJECT_UNLOCK (self);
      /* With a model loaded: its size, 25/1 and square pixels. */
      if (w > 0 && h > 0) {
        caps = gst_caps_make_writable (caps);
        gst_caps_set_simple (caps, "width", G_TYPE_INT, w, "height",
            G_TYPE_INT, h, "framerate", GST_TYPE_FRACTION, FPS_N, FPS_D,
            "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);
      }
      if (filter) {
        res = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref (caps);
        caps = res;
      }
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_LATENCY:{
      GstQuery *q = gst_query_new_latency ();
      gboolean live = FALSE;
      GstClockTime min = 0, max = GST_CLOCK_TIME_NONE, own, max_size;

      if (gst_pad_peer_query (self->sinkpad, q))
        gst_query_parse_latency (q, &live, &min, &max);
      gst_query_unref (q);
      if (!GST_CLOCK_TIME_IS_VALID (min))
        min = 0;
      GST_OBJECT_LOCK (self);
      self->upstream_live = live;
      self->upstream_min = min;
      own = own_latency_locked (self);
      max_size = self->max_size_time;
      GST_OBJECT_UNLOCK (self);
      /* We add one block + look-ahead + the configured generation time;
       * the audio queue can absorb max-size-time more. */
      min += own;
      if (GST_CLOCK_TIME_IS_VALID (max))
        max += own + max_size;
      GST_DEBUG_OBJECT (self, "latency live %d min %" GST_TIME_FORMAT
          " max %" GST_TIME_FORMAT, live, GST_TIME_ARGS (min),
          GST_TIME_ARGS (max));
      gst_query_set_latency (query, live, min, max);
      return TRUE;
    }
    default:
      return gst_pad_query_default (pad, parent, query);
  }
}
