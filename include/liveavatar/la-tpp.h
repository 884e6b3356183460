/* la-tpp.h — timestep-forcing pipeline parallelism (TPP, docs/design/tpp.md):
 * what an application sees of it.
 *
 * The 4 denoising steps of a block become pipeline stages, each on its own
 * device with its own KV caches; blocks flow through them like an assembly
 * line and a last stage decodes (VAE).  An application chooses the devices
 * (LaSessionParams.devices) and may run stage workers: processes that hold
 * the DiT and serve stages to heads over TCP ("tcp://HOST:PORT" in the
 * device list).  The pipeline itself, which takes the DiT model, is engine
 * internal (lib/la-tpp-pipeline.h).
 *
 * Device list -> stages (la_tpp_plan):
 *   1 device : one stage, steps 0-3, output inline (everything in sequence)
 *   2        : {0,1} on device 0, {2,3} on device 1, VAE on a 2nd stream of device 1
 *   3        : {0} {1} {2,3}, VAE on a 2nd stream of device 2
 *   4        : one step each, VAE on a 2nd stream of device 3
 *   5 (or more): one step each on devices 0-3, VAE on device 4 (the official layout)
 */
#pragma once
#include <glib.h>
#include <gio/gio.h>
#include "la-weights.h"

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

/* ---- Stage workers: TPP across processes and machines (docs/tpp.md) ----
 *
 * A worker holds a DiT model and serves pipeline stages over TCP: one
 * connection = one stage of one stream (its own KV caches), then the next.
 * Heads name it in their device list.  No authentication: listen on a
 * private interface only. */
typedef struct _LaTppWorker LaTppWorker;
/* Loads the DiT of `model_dir` (official layout or generated; `lora` a
 * file or folder as for LaSessionParams, NULL for none) with resident
 * precision `weights` on a backend the worker owns — `device` "cpu" (or
 * NULL: n_threads threads, 0 = all cores) or "cuda:N" — and listens on
 * "[HOST:]PORT" (numeric host, default 127.0.0.1; port 0 picks a free one).
 * Heads must load the same folder, LoRA and precision: the weights' digest
 * is checked at connection.  Errors name the file, tensor, device or
 * address at fault. */
LaTppWorker *la_tpp_worker_open (const char *model_dir, const char *lora, LaWeights weights, const char *device,
                                 int n_threads, const char *address, GError **error);
/* "DiT dim 5120, 40 layers, weights 0123456789ab" (caller frees): what the
 * worker serves, for its log. */
char        *la_tpp_worker_describe (LaTppWorker *w);
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
 * streams share the model (a CUDA worker's streams take turns on its one
 * stream; the backend serialises its calls).  FALSE when
 * accepting fails. */
gboolean     la_tpp_worker_run (LaTppWorker *w, int max_streams, LaTppWorkerLogFunc log, gpointer user,
                                GCancellable *cancel, GError **error);
/* la_tpp_worker_run on a thread of this process until la_tpp_worker_free,
 * which interrupts the streams in progress and joins it (tools and tests:
 * workers on the loopback next to their heads). */
void         la_tpp_worker_start (LaTppWorker *w, int max_streams, LaTppWorkerLogFunc log, gpointer user);
void         la_tpp_worker_free (LaTppWorker *w);

G_END_DECLS
