/* dit-test-util.h — small DiT configurations and random tensors shared by
 * the DiT and TPP tests (configs the golden cases do not have). */
#pragma once
#include <liveavatar/liveavatar.h>
#include "la-dit.h"

static inline void
tiny_config (LaDitConfig *c, int dim, int heads, int layers)
{
  la_dit_config_init_14b (c);
  c->dim = dim;
  c->ffn_dim = 2 * dim;
  c->num_heads = heads;
  c->num_layers = layers;
  c->text_dim = 24;
  c->text_len = 8;
  c->audio_dim = 20;
  c->n_inject = 2;
  c->audio_inject_layers[0] = 0;
  c->audio_inject_layers[1] = layers - 1;
}

/* Uniform in [-1, 1). */
static inline LaTensor *
randn (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  float *p = la_tensor_f32 (t);
  for (gint64 i = 0; i < la_tensor_numel (t); i++)
    p[i] = (float) (g_rand_double (r) * 2 - 1);
  return t;
}
