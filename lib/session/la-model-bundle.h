/* la-model-bundle.h — every component of a model folder, loaded once and
 * shared by the streams (sessions) that run on it.
 *
 * The model cache: la_model_bundle_acquire returns the bundle already
 * loaded for the same (model folder, LoRA, precision, device) — folders
 * compared by their canonical path — with one more reference, so two
 * sessions (two liveavatarsrc elements, or an element and a stage thread)
 * hold one resident copy of the weights.  Everything a stream changes
 * (KV caches, sink, decoder state, audio windows) lives in the session,
 * never in the bundle, which is read-only once loaded. */
#pragma once
#include "liveavatar/liveavatar.h"
#include "la-dit.h"
#include "la-vae.h"
#include "liveavatar/la-image.h"
#include "la-text.h"
#include "la-audio.h"

enum { LA_MODEL_PART_DIT, LA_MODEL_PART_VAE, LA_MODEL_PART_T5, LA_MODEL_PART_WAV2VEC2, LA_MODEL_N_PARTS };
/* Which components a bundle binds (bits of 1 << LA_MODEL_PART_*): on several
 * GPUs a DiT stage device holds the DiT only and the output device the rest
 * (docs/design/tpp.md), so no component is resident twice on one device. */
#define LA_MODEL_PARTS_ALL    0xf
#define LA_MODEL_PARTS_DIT    (1 << LA_MODEL_PART_DIT)
#define LA_MODEL_PARTS_NO_DIT (LA_MODEL_PARTS_ALL & ~LA_MODEL_PARTS_DIT)

typedef struct {
  gint          ref_count;
  guint         parts;           /* LA_MODEL_PARTS_*: the components bound (the DiT config is always read) */
  char         *key;             /* cache key, NULL when not cached */
  LaWeights     weights;
  LaBackend    *be;
  LaModelPaths *paths;
  LaDitConfig   dit_cfg;
  LaDitModel   *dit;
  LaVae        *vae;
  LaVaeConfig   vae_cfg;
  LaT5Encoder  *t5;
  LaTokenizer  *tok;
  LaWav2Vec2   *w2v;
  LaLoraReport  lora;
  char          dit_digest[65];   /* the DiT weights' la_checkpoint_digest (TPP stage workers compare it) */
  guint64       resident[LA_MODEL_N_PARTS][LA_DTYPE_COUNT];   /* bytes bound per component and dtype */
} LaModelBundle;

/* Loads and checks the components of `parts`; errors name the file or tensor. */
LaModelBundle *la_model_bundle_load (LaBackend *be, const char *model_dir, const char *lora,
                                     LaWeights weights, guint parts, GError **error);
void           la_model_bundle_free (LaModelBundle *b);
/* Through the process's model cache (see above); `device` names be's device
 * ("cpu", "cuda:0").  Release with la_model_bundle_release. */
LaModelBundle *la_model_bundle_acquire (LaBackend *be, const char *device, const char *model_dir,
                                        const char *lora, LaWeights weights, guint parts, GError **error);
/* One more reference to a bundle already held (release it the same way). */
LaModelBundle *la_model_bundle_ref (LaModelBundle *b);
void           la_model_bundle_release (LaModelBundle *b);
guint64        la_model_bundle_resident_bytes (const LaModelBundle *b);
