/* la-wav2vec2-random.c — random wav2vec2 weights with the HF key names, for
 * the model generator, tests on unseen configs and the bench.  Same init rule
 * as the golden generator: matrices N(0, 1/fan_in), norm weights 1 + N(0, 0.01),
 * biases N(0, 0.01); weight_g U[0.5, 1.5), weight_v N(0, 1).
 */
#include "la-audio.h"
#include "liveavatar/la-error.h"
#include <glib/gstdio.h>
#include <math.h>
#include "la-rng.h"
#include "la-synth.h"

#define MAT(nm, o, i) la_synth_add_random (ck, &r, nm, 2, (int64_t[]) { o, i }, 0, 1.0 / sqrt ((double) (i)), FALSE)
#define VEC(nm, n, mean) la_synth_add_random (ck, &r, nm, 1, (int64_t[]) { n }, mean, 0.01, FALSE)

LaCheckpoint *
la_wav2vec2_random_weights (const LaWav2Vec2Config *c, guint64 seed)
{
  LaRng r = { seed * 0x2545F4914F6CDD1Dull + 1 };
  LaCheckpoint *ck = la_checkpoint_new ();
  const int64_t H = c->hidden_size, FF = c->intermediate_size;
  char n[160];
  int64_t cin = 1;
  for (int i = 0; i < c->n_conv; i++) {
    const char *p = "wav2vec2.feature_extractor.conv_layers";
    int64_t co = c->conv_dim[i], k = c->conv_kernel[i];
    g_snprintf (n, sizeof n, "%s.%d.conv.weight", p, i);
    la_synth_add_random (ck, &r, n, 3, (int64_t[]) { co, cin, k }, 0, 1.0 / sqrt ((double) (cin * k)), FALSE);
    if (c->conv_bias) {
      g_snprintf (n, sizeof n, "%s.%d.conv.bias", p, i);
      VEC (n, co, 0);
    }
    g_snprintf (n, sizeof n, "%s.%d.layer_norm.weight", p, i);
    VEC (n, co, 1);
    g_snprintf (n, sizeof n, "%s.%d.layer_norm.bias", p, i);
    VEC (n, co, 0);
    cin = co;
  }
  VEC ("wav2vec2.feature_projection.layer_norm.weight", cin, 1);
  VEC ("wav2vec2.feature_projection.layer_norm.bias", cin, 0);
  MAT ("wav2vec2.feature_projection.projection.weight", H, cin);
  VEC ("wav2vec2.feature_projection.projection.bias", H, 0);
  la_synth_add_random (ck, &r, "wav2vec2.encoder.pos_conv_embed.conv.weight_g", 3, (int64_t[]) { 1, 1, c->pos_kernel },
       0.5, 1.0, TRUE);
  la_synth_add_random (ck, &r, "wav2vec2.encoder.pos_conv_embed.conv.weight_v", 3,
       (int64_t[]) { H, H / c->pos_groups, c->pos_kernel }, 0, 1, FALSE);
  VEC ("wav2vec2.encoder.pos_conv_embed.conv.bias", H, 0);
  VEC ("wav2vec2.encoder.layer_norm.weight", H, 1);
  VEC ("wav2vec2.encoder.layer_norm.bias", H, 0);
  VEC ("wav2vec2.masked_spec_embed", H, 0);
  for (int l = 0; l < c->num_layers; l++) {
    const char *pr[4] = { "q_proj", "k_proj", "v_proj", "out_proj" };
    for (int i = 0; i < 4; i++) {
      g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.attention.%s.weight", l, pr[i]);
      MAT (n, H, H);
      g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.attention.%s.bias", l, pr[i]);
      VEC (n, H, 0);
    }
    const char *ln[2] = { "layer_norm", "final_layer_norm" };
    for (int i = 0; i < 2; i++) {
      g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.%s.weight", l, ln[i]);
      VEC (n, H, 1);
      g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.%s.bias", l, ln[i]);
      VEC (n, H, 0);
    }
    g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.feed_forward.intermediate_dense.weight", l);
    MAT (n, FF, H);
    g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.feed_forward.intermediate_dense.bias", l);
    VEC (n, FF, 0);
    g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.feed_forward.output_dense.weight", l);
    MAT (n, H, FF);
    g_snprintf (n, sizeof n, "wav2vec2.encoder.layers.%d.feed_forward.output_dense.bias", l);
    VEC (n, H, 0);
  }
  if (c->vocab_size > 0) {
    MAT ("lm_head.weight", c->vocab_size, H);
    VEC ("lm_head.bias", c->vocab_size, 0);
  }
  return ck;
}

gboolean
la_wav2vec2_write_random_folder (const char *folder, const LaWav2Vec2Config *cfg, guint64 seed, GError **error)
{
  if (g_mkdir_with_parents (folder, 0755) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: cannot create folder", folder);
    return FALSE;
  }
  g_autofree char *json = la_wav2vec2_config_to_json (cfg);
  g_autofree char *cj = g_build_filename (folder, "config.json", NULL);
  if (!g_file_set_contents (cj, json, -1, error))
    return FALSE;
  g_autoptr (LaCheckpoint) ck = la_wav2vec2_random_weights (cfg, seed);
  g_autofree char *st = g_build_filename (folder, "model.safetensors", NULL);
  return la_safetensors_write (st, ck, error);
}
