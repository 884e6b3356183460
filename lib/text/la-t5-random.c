/* la-t5-random.c — random umT5 encoder weights with the official state-dict
 * key names and shapes (models_t5_umt5-xxl-enc-bf16.pth layout, docs/design/text.md §6),
 * as host f32, for the tiny demo model and benchmarks.
 *
 * Scales follow T5Encoder.init_weights loosely (the values only need to keep
 * activations in a sane range): embedding N(0,1), q N(0, (dim·dim_attn/H)^-1/2),
 * k/v/o/gate/fc1/fc2 N(0, fan_in^-1/2), norms 1, position tables N(0,1).
 * Deterministic for a seed (splitmix64 + Box-Muller, not torch's generator).
 */
#include <math.h>
#include "la-text-private.h"
#include "la-rng.h"
#include "la-synth.h"

static LaTensor *
randn (LaRng *r, int ndim, int64_t d0, int64_t d1, double std, double mean)
{
  int64_t shape[2] = { d0, d1 };
  if (la_synth_wants_zeros (ndim == 2 ? d0 * d1 : d0))
    return la_synth_zeros (LA_DTYPE_F32, ndim, shape);
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  float *p = la_tensor_f32 (t);
  int64_t n = la_tensor_numel (t);
  for (int64_t i = 0; i < n; i++)
    p[i] = (float) (mean + std * la_rng_normal (r));
  return t;
}

static void
add (LaCheckpoint *ck, const char *name, LaTensor *t)
{
  la_tensor_set_name (t, name);
  la_checkpoint_add (ck, name, t);
  la_tensor_unref (t);
}

LaCheckpoint *
la_t5_random_weights (const LaT5Config *cfg, guint64 seed)
{
  g_return_val_if_fail (cfg && cfg->dim > 0 && cfg->num_heads > 0, NULL);
  LaRng r = { seed };
  int D = cfg->dim, A = cfg->dim_attn > 0 ? cfg->dim_attn : cfg->dim, F = cfg->dim_ffn;
  int H = cfg->num_heads, NB = cfg->num_buckets > 0 ? cfg->num_buckets : 32;
  LaCheckpoint *ck = la_checkpoint_new ();
  add (ck, "token_embedding.weight", randn (&r, 2, cfg->vocab, D, 1.0, 0.0));
  for (int l = 0; l < cfg->num_layers; l++) {
    char n[96];
#define ADD(key, t) g_snprintf (n, sizeof n, "blocks.%d." key, l); add (ck, n, t);
    ADD ("norm1.weight", randn (&r, 1, D, 0, 0.0, 1.0));
    ADD ("attn.q.weight", randn (&r, 2, A, D, 1.0 / sqrt ((double) D * A / H), 0.0));
    ADD ("attn.k.weight", randn (&r, 2, A, D, 1.0 / sqrt (D), 0.0));
    ADD ("attn.v.weight", randn (&r, 2, A, D, 1.0 / sqrt (D), 0.0));
    ADD ("attn.o.weight", randn (&r, 2, D, A, 1.0 / sqrt (A), 0.0));
    ADD ("norm2.weight", randn (&r, 1, D, 0, 0.0, 1.0));
    ADD ("ffn.gate.0.weight", randn (&r, 2, F, D, 1.0 / sqrt (D), 0.0));
    ADD ("ffn.fc1.weight", randn (&r, 2, F, D, 1.0 / sqrt (D), 0.0));
    ADD ("ffn.fc2.weight", randn (&r, 2, D, F, 1.0 / sqrt (F), 0.0));
    ADD ("pos_embedding.embedding.weight", randn (&r, 2, NB, H, 1.0, 0.0));
#undef ADD
  }
  add (ck, "norm.weight", randn (&r, 1, D, 0, 0.0, 1.0));
  la_checkpoint_set_path (ck, "(random umT5 weights)");
  return ck;
}
