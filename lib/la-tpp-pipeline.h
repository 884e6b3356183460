/* la-tpp-pipeline.h — the TPP pipeline inside the engine (docs/design/tpp.md),
 * over the public plan and worker API of liveavatar/la-tpp.h.
 *
 * Stage k owns a device, the steps it runs, their KV caches (a LaDitSession
 * with a cache_mask) and the weights on that device.  Only the [16, F, h, w]
 * latent (and the block's audio features / sink offsets, produced or known
 * on every stage) crosses between stages.  A VAE stage receives the clean
 * latents in block order and runs the caller's output function (the
 * streaming VAE decode).
 *
 * Exactness: for the same inputs and per-call sink offsets d, the output is
 * bit for bit the sequential 4-cache loop (la_dit_session_generate_block):
 * every stage runs the same la_dit_session_denoise_step, and draws d exactly
 * as the sequential loop would (each stage replays the d generator for all 4
 * steps of every block and keeps its own steps' values, or uses the d given
 * with the block).
 *
 * A device may be a stage worker in another process or on another machine
 * (LaTppDevice.remote = "tcp://HOST:PORT"): its stage's thread here sends
 * each block there and waits for the latent.
 */
#pragma once
#include <glib.h>
#include <gio/gio.h>
#include "liveavatar/la-tpp.h"
#include "la-dit.h"

G_BEGIN_DECLS

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

/* A worker serving `model` (borrowed, must outlive the worker), for heads
 * in this process (tests, benches, goldens) or a host that loaded the DiT
 * itself; la_tpp_worker_open is the public entry.  digest: the weights'
 * la_checkpoint_digest, sent to heads (NULL: none); backend_name for
 * messages; address as for la_tpp_worker_open. */
LaTppWorker *la_tpp_worker_new (LaDitModel *model, const char *digest, const char *backend_name,
                                const char *address, GError **error);
/* Test hook: the stage fails at this block (-1: never). */
void         la_tpp_worker_set_fault_block (LaTppWorker *w, gint64 block);

G_END_DECLS
