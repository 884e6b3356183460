/* la-model.h — locating the official model files, and the LoRA merge.
 *
 * The layout is the one `huggingface-cli download Wan-AI/Wan2.2-S2V-14B`
 * produces (docs/design/formats.md §4), plus the Live-Avatar LoRA file
 * (`Quark-Vision/Live-Avatar`, liveavatar.safetensors).
 */
#pragma once
#include "la-checkpoint.h"

G_BEGIN_DECLS

typedef struct {
  char *root;
  char *dit_config;       /* config.json */
  char *dit_weights;      /* diffusion_pytorch_model.safetensors.index.json (or one .safetensors) */
  char *vae;              /* Wan2.1_VAE.pth */
  char *t5;               /* models_t5_umt5-xxl-enc-bf16.pth */
  char *tokenizer;        /* google/umt5-xxl/spiece.model */
  char *wav2vec_dir;      /* wav2vec2-large-xlsr-53-english/ */
  char *wav2vec_config;   /* .../config.json */
  char *wav2vec_weights;  /* .../model.safetensors or .../pytorch_model.bin */
  char *lora;             /* liveavatar.safetensors, NULL when none */
  char *overrides;        /* liveavatar.json (generated models only: the T5/VAE configs
                           * that differ from the official ones), NULL when absent */
} LaModelPaths;

/* Resolves every component under `folder`.  `lora` is a file, a folder
 * holding liveavatar.safetensors (also in the Hugging Face cache layout
 * models--Quark-Vision--Live-Avatar/snapshots/<rev>/), or NULL for none.
 * An incomplete folder is one LA_ERROR_NOT_FOUND listing every missing file. */
LaModelPaths *la_model_paths_resolve (const char *folder, const char *lora, GError **error);
void          la_model_paths_free (LaModelPaths *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaModelPaths, la_model_paths_free)

/* The PEFT LoRA of Live Avatar: target modules whose dotted name ends with
 * one of these (docs/design/formats.md §5): q, k, v, o, ffn.0, ffn.2. */
extern const char * const la_lora_targets[];

typedef struct {
  guint n_targets;        /* Linear layers of the base that the LoRA targets */
  guint n_merged;
  guint n_extra;          /* non-LoRA tensors in the LoRA file (ignored, listed by the log) */
  int   rank;
} LaLoraReport;

/* W <- round_to_W_dtype (W + (alpha / r) · B · A) for every target, in place in
 * `base` (merged tensors replace the mapped ones).  Keys may carry the
 * `base_model.model.` prefix and the `.default` adapter segment or not.
 * Fails, naming them, when a target has no A/B pair, when an A/B pair has no
 * target, or when shapes disagree.  alpha <= 0 means the released value, 64. */
gboolean la_lora_merge (LaCheckpoint *base, LaCheckpoint *lora, double alpha,
                        LaLoraReport *report, GError **error);

/* The same merge, one target at a time, for loaders that bind weights as
 * they go.  la_lora_plan_new pairs A/B with base's targets and makes every
 * check of la_lora_merge (it merges nothing and keeps its own refs on A and
 * B, so `lora` may be released).  la_lora_plan_apply merges the pair of
 * base weight `wname` into w (a host f32 or bf16 tensor of the target's
 * shape, in place: fp32 product, one rounding); FALSE when wname is no
 * target.  la_lora_plan_finish fails, naming one, when a target was never
 * applied, and fills the report. */
typedef struct _LaLoraPlan LaLoraPlan;
LaLoraPlan *la_lora_plan_new (LaCheckpoint *base, LaCheckpoint *lora, double alpha, GError **error);
gboolean    la_lora_plan_targets (LaLoraPlan *plan, const char *wname);
gboolean    la_lora_plan_apply (LaLoraPlan *plan, const char *wname, LaTensor *w);
gboolean    la_lora_plan_finish (LaLoraPlan *plan, LaLoraReport *report, GError **error);
/* For a loader that owns `lora` (the checkpoint the plan was made from):
 * each pair leaves it (la_checkpoint_release) once merged, so the LoRA
 * file's pages do not accumulate while the model loads. */
void        la_lora_plan_set_release (LaLoraPlan *plan, LaCheckpoint *lora);
void        la_lora_plan_free (LaLoraPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaLoraPlan, la_lora_plan_free)

G_END_DECLS

G_BEGIN_DECLS
/* Random LoRA A/B pairs (rank r, bf16, "<module>.lora_{A,B}.default.weight")
 * for every target layer of `base` — for generated test models and benches. */
LaCheckpoint *la_lora_random (LaCheckpoint *base, int rank, guint64 seed);

/* Writes a complete tiny random-weight model folder in the official layout
 * (DiT dim 96 / 3 heads / 3 layers, the golden cases' widths) to `dir`. */
gboolean la_model_write_tiny (const char *dir, guint64 seed, GError **error);

/* The released LoRA's rank (liveavatar.safetensors). */
#define LA_LORA_RANK 128

/* Depths for la_model_write_full; 0 keeps the published one (40, 24, 24). */
typedef struct {
  int     dit_layers, t5_layers, wav2vec2_layers;
  guint64 seed;
} LaFullTreeOptions;

/* Writes both published downloads under `dir` at full width:
 * dir/Wan2.2-S2V-14B/ (config.json as diffusers writes it, 4 bf16 DiT shards
 * + index, Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/,
 * wav2vec2-large-xlsr-53-english/) and dir/LiveAvatar/liveavatar.safetensors
 * (bf16, rank 128).  Tensors of 2^24 elements or more are zeros stored as
 * file holes, smaller ones seeded random (la-tiny-model.c). */
gboolean la_model_write_full (const char *dir, const LaFullTreeOptions *opt, GError **error);
G_END_DECLS
