/* la-tpp.h — timestep-forcing pipeline parallelism (TPP, docs/design/tpp.md).
 *
 * The 4 denoising steps of a block become pipeline stages: stage k owns a
 * device, the steps it runs, their KV caches (a LaDitSession with a
 * cache_mask) and the weights on that device.  Blocks flow through the
 * stages like an assembly line; only the [16, F, h, w] latent (and the
 * block's audio features / sink offsets, produced or known on every stage)
 * crosses between stages.  A VAE stage receives the clean latents in block
 * order and runs the caller's output function (the streaming VAE decode).
 *
 * Exactness: for the same inputs and per-call sink offsets d, the output is
 * bit for bit the sequential 4-cache loop (la_dit_session_generate_block):
 * every stage runs the same la_dit_session_denoise_step, and draws d exactly
 * as the sequential loop would (each stage replays the d generator for all 4
 * steps of every block and keeps its own steps' values, or uses the d given
 * with the block).
 *
 * Device list -> stages (la_tpp_plan):
 *   1 device : one stage, steps 0-3, output inline (everything in sequence)
 *   2        : {0,1} on device 0, {2,3} on device 1, VAE on a 2nd stream of device 1
 *   3        : {0} {1} {2,3}, VAE on a 2nd stream of device 2
 *   4        : one step each, VAE on a 2nd stream of device 3
 *   5 (or more): one step each on devices 0-3, VAE on device 4 (the official layout)
 *
 * A device may be a stage worker in another process or on another machine
 * (LaTppDevice.remote = "tcp://HOST:PORT", la_tpp_worker_* below): its
 * stage's thread here sends each block there and waits for the latent.
 */
#pragma once
#include <glib.h>
#include <gio/gio.h>
#include "la-dit.h"

G_BEGIN_DECLS

#define LA_TPP_MAX_STAGES 8
#define LA_TPP_STEPS 4

typedef struct {
  int      device;      /* index into the device list */
  int      first_step;  /* DiT steps [first_step, first_step + n_steps) */
  int      n_steps;     /* 0: the VAE stage */
  gboolean output;      /* runs the output function (the VAE) after its steps */
} LaTppStagePlan;

typedef struct {
  int n_stages;
  LaTppStagePlan stage[LA_TPP_MAX_STAGES];
} LaTppPlan;

/* The mapping above for n_devices >= 1 (devices past 5 are left unused). */
gboolean la_tpp_plan (int n_devices, LaTppPlan *plan, GError **error);
/* "stage 0: device 0, steps 0-1; stage 1: ..." (caller frees). */
char    *la_tpp_plan_describe (const LaTppPlan *plan);

typedef enum {
  LA_TPP_TRANSPORT_LOCAL,  /* in-process queues + condition variables (CPU stages; stages sharing a GPU) */
  LA_TPP_TRANSPORT_NCCL,   /* one GPU per device, ncclCommInitAll, ncclSend/Recv + ncclBroadcast */
} LaTppTransportKind;

typedef struct {
  /* The DiT bound to this device's backend.  Several devices may name the
   * same model only when its backend may be called from several threads at
   * once (the CPU backend); each CUDA stage needs its own backend (stream). */
  LaDitModel *model;
  const char *name;        /* for messages, e.g. "cpu:0", "cuda:3"; NULL: "device N" */
  int         cuda_device; /* NCCL transport: the CUDA ordinal of this device */
  /* "tcp://HOST:PORT" of a stage worker (la_tpp_worker_*, liveavatar-stage):
   * this device's DiT steps run there (model may then be NULL).  The VAE /
   * output stage always runs in this process. */
  const char *remote;
} LaTppDevice;

/* Clean latents of block `block` (host f32 [16, F, h, w], borrowed), called
 * in block order on the VAE stage's thread.  FALSE + error stops the pipeline. */
typedef gboolean (*LaTppOutputFunc) (gint64 block, const LaTensor *clean, gpointer user, GError **error);

typedef struct {
  int                n_devices;
  LaTppDevice        devices[LA_TPP_MAX_STAGES];
  LaTppTransportKind transport;
  int                queue_depth;       /* blocks waiting between two stages (0: 2) */
  LaTppOutputFunc    output;            /* may be NULL */
  gpointer           output_user;
  gboolean           record_timeline;   /* keep start/end per block per stage */
  /* la_checkpoint_digest of this process's DiT weights: a stage worker that
   * reports another digest is refused (NULL: not checked). */
  const char        *model_digest;
  /* Test hook: stage `fault_stage` fails on block `fault_block` (fault_stage < 0: never). */
  int                fault_stage;
  gint64             fault_block;
} LaTppConfig;

void la_tpp_config_init (LaTppConfig *cfg);

/* One block of input.  d: the 4 sink offsets of its steps, or NULL to draw
 * them as the sequential loop does.  refresh: rebuild every stage's sink
 * before this block from refresh_ref (NULL: the stream's first clean latent
 * frame, sent by the last DiT stage — docs/design/streaming.md §4.3) and refresh_motion (NULL:
 * keep).  The adaptive clip-1 refresh of LaDitSessionParams
 * .refresh_sink_at_clip1 is applied automatically. */
typedef struct {
  const LaTensor *noise;           /* [16, F, h, w] */
  const LaTensor *audio;           /* [L_w2v, audio_dim, 4F] */
  const int      *d;
  gboolean        refresh;
  const LaTensor *refresh_ref;
  const LaTensor *refresh_motion;
} LaTppBlock;

typedef struct _LaTpp LaTpp;
/* Threads: la_tpp_push/drain/finish/free are called from one thread (the
 * caller's engine thread); the output function runs on the VAE stage's thread. */

/* Starts one thread per stage; every stage builds its session (text K/V,
 * sink prefill of its caches) in parallel.  Errors name the stage and device. */
LaTpp *la_tpp_new (const LaTppConfig *cfg, const LaDitSessionParams *p, const LaTensor *ref_latent,
                   const LaTensor *motion_latents, const LaTensor *text_context, GError **error);
/* Queues the next block (blocks while stage 0's queue is full).  FALSE once
 * the pipeline has failed (the error names the failing stage and device) or ended. */
gboolean la_tpp_push (LaTpp *t, const LaTppBlock *b, GError **error);
/* Flush: waits until every pushed block has left the last stage; with
 * discard the outputs of blocks still in flight are not delivered (the
 * caches still see them, so later blocks stay exact). */
gboolean la_tpp_drain (LaTpp *t, gboolean discard, GError **error);
/* EOS: drains, then stops the stage threads.  No push afterwards. */
gboolean la_tpp_finish (LaTpp *t, GError **error);
/* Shutdown at any point (mid-stream included): aborts every stage and joins. */
void     la_tpp_free (LaTpp *t);

const LaTppPlan *la_tpp_get_plan (LaTpp *t);
/* The stage session holding the KV cache of `step` (for inspection once the
 * pipeline is idle: after la_tpp_drain or la_tpp_finish). */
LaDitSession    *la_tpp_step_session (LaTpp *t, int step);
gint64   la_tpp_blocks_out (LaTpp *t);
/* Inside the output callback: the DiT steps' time of the block being output
 * (summed over the stages, waits excluded), in ms. */
double   la_tpp_get_block_dit_ms (LaTpp *t);

/* Timeline (record_timeline): what = 'S' DiT steps of a block, 'P' sink
 * (re)prefill, 'O' output (VAE); seconds since la_tpp_new. */
typedef struct {
  int    stage;
  gint64 block;
  char   what;
  double t0, t1;
} LaTppEvent;
/* Copy of the events so far (caller frees with g_free). */
LaTppEvent *la_tpp_timeline (LaTpp *t, int *n_events);
/* Writes the timeline as an SVG Gantt chart (one row per stage). */
gboolean la_tpp_timeline_svg (const LaTppEvent *ev, int n, int n_stages, const char *title,
                              const char *path, GError **error);

/* ---- Stage workers: TPP across processes and machines (docs/tpp.md) ----
 *
 * A worker holds a DiT model and serves pipeline stages over TCP: one
 * connection = one stage of one stream (its own KV caches), then the next.
 * Heads name it in LaTppDevice.remote.  No authentication: listen on a
 * private interface only. */
typedef struct _LaTppWorker LaTppWorker;
/* Listens on "[HOST:]PORT" (numeric host, default 127.0.0.1; port 0 picks a
 * free one).  model (borrowed, must outlive the worker); digest: its weights'
 * la_checkpoint_digest, sent to heads (NULL: none); backend_name for messages. */
LaTppWorker *la_tpp_worker_new (LaDitModel *model, const char *digest, const char *backend_name,
                                const char *address, GError **error);
guint16      la_tpp_worker_get_port (LaTppWorker *w);
/* "tcp://HOST:PORT" as bound (what heads list in devices). */
const char  *la_tpp_worker_get_address (LaTppWorker *w);
/* Accepts one head and serves its stream until it ends (BYE or close: TRUE)
 * or fails (FALSE; the head was told why).  cancel interrupts a wait. */
gboolean     la_tpp_worker_serve_one (LaTppWorker *w, GCancellable *cancel, GError **error);
/* Called when a stream served by la_tpp_worker_run ends: ok, or the error
 * (the head was told).  From the stream's thread. */
typedef void (*LaTppWorkerLogFunc) (gboolean ok, const GError *error, gpointer user);
/* Serves heads until `cancel` is cancelled (then the streams in progress are
 * interrupted and joined): each stream on its own thread, at most
 * max_streams at once (further heads wait in the listen queue).  The
 * streams share the model, which only the CPU backend allows.  FALSE when
 * accepting fails. */
gboolean     la_tpp_worker_run (LaTppWorker *w, int max_streams, LaTppWorkerLogFunc log, gpointer user,
                                GCancellable *cancel, GError **error);
/* la_tpp_worker_run on a thread of this process until la_tpp_worker_free,
 * which interrupts the streams in progress and joins it (tools and tests:
 * workers on the loopback next to their heads). */
void         la_tpp_worker_start (LaTppWorker *w, int max_streams, LaTppWorkerLogFunc log, gpointer user);
/* Test hook: the stage fails at this block (-1: never). */
void         la_tpp_worker_set_fault_block (LaTppWorker *w, gint64 block);
void         la_tpp_worker_free (LaTppWorker *w);

G_END_DECLS
