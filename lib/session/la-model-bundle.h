/* la-model-bundle.h — every component of a model folder, loaded once and
 * shared by the streams (sessions) that run on it. */
#pragma once
#include "liveavatar/liveavatar.h"
#include "la-dit.h"
#include "la-vae.h"
#include "liveavatar/la-image.h"
#include "la-text.h"
#include "la-audio.h"

typedef struct {
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
} LaModelBundle;

/* Loads and checks every component; errors name the file or tensor. */
LaModelBundle *la_model_bundle_load (LaBackend *be, const char *model_dir, const char *lora,
                                     GError **error);
void           la_model_bundle_free (LaModelBundle *b);
