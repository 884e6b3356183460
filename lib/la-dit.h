/* la-dit.h — the causal S2V diffusion transformer (Live Avatar / Wan2.2-S2V)
 * and its streaming session (docs/design/model.md §3–§4, docs/design/streaming.md §4).
 *
 *  LaDitConfig   the checkpoint's config.json (dim, heads, layers, ...).
 *  LaDitModel    the weights bound to a backend, plus the audio encoder and
 *                injectors (lib/audio) and per-prompt text K/V.
 *  LaDitSession  4 per-step KV caches (ring of infer_frames/4 latent frames
 *                + a sink of ref/FramePack tokens), the 4-step Euler
 *                sampler and the rolling sink offset.  Feed one block of
 *                audio features and noise, get the block's clean latents.
 *
 * Everything is sized from the config and the latent size given at session
 * creation; nothing is tuned to one model.
 */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"
#include "liveavatar/la-weights.h"
#include "la-model.h"
#include "la-weight-binder.h"

G_BEGIN_DECLS

#define LA_DIT_MAX_INJECT 64

typedef struct {
  int    dim, ffn_dim, freq_dim, text_dim, num_heads, num_layers;
  int    in_dim, out_dim, audio_dim, num_audio_token, text_len, cond_dim;
  int    patch_size[3];
  double eps;
  int    n_inject;
  int    audio_inject_layers[LA_DIT_MAX_INJECT];
  /* Not in the math, kept so that a written config.json round-trips. */
  gboolean zero_timestep, enable_framepack, enable_adain;
} LaDitConfig;

gboolean la_dit_config_from_json_object (LaDitConfig *cfg, JsonObject *obj, GError **error);
gboolean la_dit_config_from_json_file (LaDitConfig *cfg, const char *path, GError **error);
/* The config.json of the official checkpoint (all keys the loader reads). */
JsonObject *la_dit_config_to_json_object (const LaDitConfig *cfg);
gboolean la_dit_config_write_json_file (const LaDitConfig *cfg, const char *path, GError **error);
/* Wan2.2-S2V-14B values (docs/design/model.md §1.1). */
void la_dit_config_init_14b (LaDitConfig *cfg);
/* Checks internal consistency (head_dim even, inject layers in range, ...). */
gboolean la_dit_config_validate (const LaDitConfig *cfg, GError **error);

/* Random weights with the official key names and shapes for any config
 * (host f32, normal(0, 1/sqrt(fan_in)) style; for generators and benches). */
LaCheckpoint *la_dit_random_weights (const LaDitConfig *cfg, guint64 seed);

typedef struct _LaDitModel LaDitModel;
/* Binds the weights; every required tensor is checked against the config. */
LaDitModel *la_dit_model_new (LaBackend *be, const LaDitConfig *cfg, LaCheckpoint *weights,
                              GError **error);
/* The same through a weight binder (la-weights.h): its backend, checkpoint,
 * resident precision, LoRA plan and release setting.  la_dit_model_new is
 * this with f32 weights, no LoRA, from a checkpoint the caller keeps. */
LaDitModel *la_dit_model_new_bound (const LaDitConfig *cfg, LaWeightBinder *wb, GError **error);
void        la_dit_model_free (LaDitModel *m);

/* What la_dit_model_load read. */
typedef struct {
  LaDitConfig  cfg;
  LaLoraReport lora;
  char         digest[65];   /* SHA-256 of the base weights' and the LoRA's la_checkpoint_digest
                              * and the resident precision: equal digests, equal resident weights */
  LaWeights    weights;
  guint64      resident[LA_DTYPE_COUNT];   /* resident bytes per dtype (LoRA merged in) */
} LaDitLoadInfo;
/* The DiT of a model folder (la_model_paths_resolve): config.json, the
 * weights in the checkpoint's precision (la-weights.h), the LoRA merged
 * into them one target at a time when `lora` is given; the checkpoint is
 * released as it is bound.  info may be NULL. */
LaDitModel *la_dit_model_load (LaBackend *be, const char *model_dir, const char *lora, LaDitLoadInfo *info,
                               GError **error);
LaDitModel *la_dit_model_load_full (LaBackend *be, const char *model_dir, const char *lora, LaWeights weights,
                                    LaDitLoadInfo *info, GError **error);
const LaDitConfig *la_dit_model_config (LaDitModel *m);

/* The flow-matching Euler table (docs/design/streaming.md §1): timesteps[steps], sigmas[steps+1]. */
void la_dit_euler_schedule (int steps, double shift, int num_train_timesteps,
                            float *timesteps, float *sigmas);

/* Optional intermediate dump (golden debugging): called with a name such as
 * "block0.out" and a backend tensor. */
typedef void (*LaDitDumpFunc) (const char *name, const LaTensor *t, gpointer user);

typedef struct {
  int lat_h, lat_w;          /* latent size = image size / 8 */
  int infer_frames;          /* pixel frames per clip (multiple of 12); ring = infer_frames/4 latents */
  int frames_per_block;      /* latent frames per block (3) */
  int audio_prefix;          /* P ≡ 1 (mod 4) copies of the block's first audio column (docs/design/audio-path.md §5); 73 official */
  int motion_latent_frames;  /* 19 */
  /* Rolling sink: d in [4, 30]. fixed_d > 0 uses that value for every call; otherwise
   * d is drawn from a generator seeded with d_seed. */
  int     fixed_d;
  guint64 d_seed;
  /* TPP "adaptive sink" (docs/design/streaming.md §4.3): at the start of clip 1 rebuild the sink of the 4 caches
   * from the stream's first clean latent frame, motion tokens unchanged.  For the
   * single-GPU online-decode variant (new motion latents too) call
   * la_dit_session_refresh_sink yourself. */
  gboolean refresh_sink_at_clip1;
  /* Which per-step KV caches this session holds: bit i = step i; 0 = all 4.
   * A TPP stage (lib/tpp) holds only the caches of the steps it runs. */
  guint cache_mask;
  /* KV caches (ring, sink K/V, un-roped sink keys): LA_DTYPE_F32 (0, the
   * golden-case setting) or LA_DTYPE_BF16 (half the memory; attention reads
   * them as the reference's bf16 autocast does).  BF16 needs a backend with
   * 16-bit activations (CUDA); the CPU ops read f32. */
  LaDType cache_dtype;
  /* Activations the reference computes under bf16 autocast — the outputs of
   * the block's linears (q, k, v, attention, projections, FFN hidden) and
   * the text K/V — in LA_DTYPE_F32 (0) or LA_DTYPE_BF16 (rounded where the
   * reference rounds; the residual stream, norms, modulation, gates, time
   * embedding and head stay f32 as in its fp32 autocast regions).  BF16
   * needs a backend with 16-bit activations (CUDA). */
  LaDType act_dtype;
  LaDitDumpFunc dump;        /* NULL: none */
  gpointer dump_user;
  /* TRUE: never capture steps as graphs (CUDA graphs are used by default
   * where the backend has them, once the KV ring is full; also off with the
   * environment LA_DIT_GRAPHS=0 and whenever dump is set). */
  gboolean no_graphs;
} LaDitSessionParams;

void la_dit_session_params_init (LaDitSessionParams *p, int lat_h, int lat_w);

typedef struct _LaDitSession LaDitSession;

/* ref_latent [16, 1, h, w] (or [1,16,1,h,w]); motion_latents [16, T, h, w] (or 5-D), last 19 used;
 * text_context [L <= text_len, text_dim].  Runs the sink prefill into the 4 caches. */
LaDitSession *la_dit_session_new (LaDitModel *m, const LaDitSessionParams *p,
                                  const LaTensor *ref_latent, const LaTensor *motion_latents,
                                  const LaTensor *text_context, GError **error);
void la_dit_session_free (LaDitSession *s);

/* Rebuilds the sink (all 4 caches) from a new ref latent (and optionally new
 * motion latents, NULL keeps them); the rings keep their contents (docs/design/streaming.md §4.3). */
gboolean la_dit_session_refresh_sink (LaDitSession *s, const LaTensor *ref_latent,
                                      const LaTensor *motion_latents, GError **error);

/* One block: noise [16, F, h, w] and audio [L_w2v, audio_dim, 4·F] wav2vec
 * features (the block's 12 video frames), host or backend tensors.  Returns
 * the clean latents [16, F, h, w] (new host tensor, the block's one download). */
LaTensor *la_dit_session_generate_block (LaDitSession *s, const LaTensor *noise,
                                         const LaTensor *audio, GError **error);

/* Lower level, for replaying recorded calls: one sink prefill into cache i,
 * and one DiT step call against cache i at absolute latent frame n with sink offset d. */
gboolean la_dit_session_sink_call (LaDitSession *s, int cache, GError **error);
LaTensor *la_dit_session_step_call (LaDitSession *s, int cache, const LaTensor *x, float t,
                                    const LaTensor *audio, gint64 frame_n, int d, GError **error);
/* Cache i's un-roped sink K/V of a layer [Nc, D] and ring K/V [C, D] (new ref on a backend view: unref it); what = "cond_k", "cond_v", "k", "v". */
LaTensor *la_dit_session_cache_tensor (LaDitSession *s, int cache, int layer, const char *what);
/* One Euler step in place on the f32 latent x [16, F, h, w]:
 * x += (σ_{step+1} − σ_step)·DiT_step(x, t_step) against cache `step`, at
 * latent frame frame_n with sink offset d.  x on the session's backend
 * (la_backend_holds) stays there; a host x is uploaded and downloaded. */
gboolean  la_dit_session_denoise_step (LaDitSession *s, int step, LaTensor *x, const LaTensor *audio,
                                       gint64 frame_n, int d, GError **error);
/* Steps first_step .. first_step + n_steps − 1 of block `block` on x (latent
 * frame block·frames_per_block).  The block's 4 sink offsets are d (NULL: 4
 * draws of la_dit_session_next_d, on every TPP stage alike, so each stage
 * uses the d the sequential loop would).  The audio is encoded once for all
 * the steps; x on the backend stays there, a host x is uploaded before the
 * first step and downloaded after the last; one sync at the end. */
gboolean  la_dit_session_run_steps (LaDitSession *s, gint64 block, int first_step, int n_steps,
                                    const int *d, LaTensor *x, const LaTensor *audio, GError **error);
/* The next sink offset d the sequential loop would use: the queue, else
 * fixed_d, else the d_seed generator.  generate_block draws 4 per block. */
int       la_dit_session_next_d (LaDitSession *s);
/* d values used, in order, by the next generate_block steps (before fixed/random d). */
void      la_dit_session_queue_d (LaDitSession *s, const int *d, int n);
gint64    la_dit_session_blocks_done (LaDitSession *s);

G_END_DECLS
