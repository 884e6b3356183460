/* test-wav2vec2.c — wav2vec2 properties on random tiny configs (docs/design/audio-path.md §3):
 * output length, frame t sees samples [320t, 320t+400) (feature encoder),
 * finite features for silence / clipping / DC, GError for a wrong rate or
 * channel count, an unseen config (other widths, layers, odd positional
 * kernel) loaded from a written HF folder, and the parametrizations spelling
 * of the weight norm giving the same result as weight_g/weight_v. */
#include <liveavatar/liveavatar.h>
#include "la-audio.h"
#include <math.h>
#include <string.h>

static void
tiny (LaWav2Vec2Config *c, int hidden, int layers, int heads, int pos_k, int pos_g)
{
  la_wav2vec2_config_init_large (c);   /* real kernels / strides */
  for (int i = 0; i < c->n_conv; i++)
    c->conv_dim[i] = 8;
  c->hidden_size = hidden;
  c->num_layers = layers;
  c->num_heads = heads;
  c->intermediate_size = 2 * hidden;
  c->pos_kernel = pos_k;
  c->pos_groups = pos_g;
}

static float *
speechlike (int n, guint32 seed)
{
  float *x = g_new (float, n);
  GRand *r = g_rand_new_with_seed (seed);
  for (int i = 0; i < n; i++)
    x[i] = 0.3f * sinf (2 * G_PI * 150 * i / 16000.f) * (0.5f + 0.5f * sinf (i / 900.f)) +
           0.05f * (float) g_rand_double_range (r, -1, 1);
  g_rand_free (r);
  return x;
}

static void
test_length_and_receptive_field (void)
{
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  LaWav2Vec2Config c;
  tiny (&c, 16, 1, 2, 8, 2);
  g_autoptr (LaCheckpoint) ck = la_wav2vec2_random_weights (&c, 7);
  g_autoptr (GError) e = NULL;
  LaWav2Vec2 *m = la_wav2vec2_new (be, &c, ck, &e);
  g_assert_no_error (e);
  const int64_t n = 7000;
  float *x = speechlike ((int) n, 1);
  g_autoptr (LaTensor) iv = la_tensor_new_from_f32 (1, &n, x);
  g_autoptr (LaCheckpoint) d0 = la_checkpoint_new ();
  g_autoptr (LaTensor) hs = la_wav2vec2_forward (m, iv, d0, &e);
  g_assert_no_error (e);
  const int64_t T = (n - 400) / 320 + 1;
  g_assert_cmpint (hs->shape[0], ==, c.num_layers + 1);
  g_assert_cmpint (hs->shape[1], ==, T);
  g_assert_cmpint (hs->shape[2], ==, c.hidden_size);
  /* perturb one sample: exactly the feature-encoder frames t with 320t <= s < 320t+400 change */
  const int64_t probes[] = { 0, 319, 320, 399, 400, 3333, 6719, 6999 };
  LaTensor *base = la_checkpoint_get (d0, "feature_encoder.conv6.out");   /* [T, C] */
  for (guint p = 0; p < G_N_ELEMENTS (probes); p++) {
    int64_t s = probes[p];
    g_autoptr (LaTensor) iv2 = la_tensor_new_from_f32 (1, &n, x);
    la_tensor_f32 (iv2)[s] += 0.5f;
    g_autoptr (LaCheckpoint) d1 = la_checkpoint_new ();
    g_autoptr (LaTensor) hs2 = la_wav2vec2_forward (m, iv2, d1, &e);
    g_assert_no_error (e);
    LaTensor *pert = la_checkpoint_get (d1, "feature_encoder.conv6.out");
    const int64_t C = base->shape[1];
    for (int64_t t = 0; t < T; t++) {
      gboolean changed = FALSE;
      for (int64_t ch = 0; ch < C; ch++)
        changed |= la_tensor_f32 (base)[t * C + ch] != la_tensor_f32 (pert)[t * C + ch];
      gboolean sees = 320 * t <= s && s < 320 * t + 400;
      g_assert_cmpint (changed, ==, sees);
    }
  }
  g_free (x);
  /* too short: error */
  int64_t n2 = 399;
  g_autoptr (LaTensor) sh = la_tensor_new (LA_DTYPE_F32, 1, &n2);
  g_autoptr (GError) e2 = NULL;
  g_assert_null (la_wav2vec2_forward (m, sh, NULL, &e2));
  g_assert_error (e2, LA_ERROR, LA_ERROR_INVALID_ARG);
  la_wav2vec2_free (m);
}

static gboolean
all_finite (const LaTensor *t)
{
  for (int64_t i = 0; i < la_tensor_numel (t); i++)
    if (!isfinite (la_tensor_f32 (t)[i]))
      return FALSE;
  return TRUE;
}

static void
test_bad_input (void)
{
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  LaWav2Vec2Config c;
  tiny (&c, 16, 2, 4, 8, 4);
  g_autoptr (LaCheckpoint) ck = la_wav2vec2_random_weights (&c, 11);
  g_autoptr (GError) e = NULL;
  LaWav2Vec2 *m = la_wav2vec2_new (be, &c, ck, &e);
  g_assert_no_error (e);
  const int n = 4000;
  float *x = g_new (float, n);
  for (int kind = 0; kind < 3; kind++) {
    for (int i = 0; i < n; i++)
      x[i] = kind == 0 ? 0.f : kind == 1 ? (i % 50 < 25 ? 1.f : -1.f) : 0.7f;   /* silence, clipping, DC */
    g_autoptr (LaTensor) hs = la_wav2vec2_encode_pcm (m, x, n, 16000, 1, &e);
    g_assert_no_error (e);
    g_assert_true (all_finite (hs));
  }
  g_autoptr (GError) e1 = NULL, e2 = NULL;
  g_assert_null (la_wav2vec2_encode_pcm (m, x, n, 44100, 1, &e1));
  g_assert_error (e1, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_null (la_wav2vec2_encode_pcm (m, x, n / 2, 16000, 2, &e2));
  g_assert_error (e2, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_free (x);
  /* missing tensor: error names it */
  g_autoptr (GError) e3 = NULL;
  la_checkpoint_remove (ck, "wav2vec2.encoder.layers.1.attention.k_proj.bias");
  g_assert_null (la_wav2vec2_new (be, &c, ck, &e3));
  g_assert_nonnull (e3);
  g_assert_nonnull (strstr (e3->message, "layers.1.attention.k_proj.bias"));
  la_wav2vec2_free (m);
}

static gboolean
config_from (const char *text, LaWav2Vec2Config *c, GError **e)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, text, -1, NULL));
  return la_wav2vec2_config_from_json (json_node_get_object (json_parser_get_root (p)), c, e);
}

/* config.json read as transformers' Wav2Vec2Config: absent keys take its
 * defaults, keys it carries that we do not use are ignored, contradictions
 * name both keys. */
static void
test_config_hf_defaults (void)
{
  LaWav2Vec2Config c;
  GError *e = NULL;
  /* the large-xlsr-53 config.json, abridged (the keys that matter + some we ignore) */
  g_assert_true (config_from (
      "{\"activation_dropout\": 0.05, \"apply_spec_augment\": true, \"architectures\": [\"Wav2Vec2ForCTC\"],"
      " \"conv_bias\": true, \"conv_dim\": [512, 512, 512, 512, 512, 512, 512],"
      " \"conv_kernel\": [10, 3, 3, 3, 3, 2, 2], \"conv_stride\": [5, 2, 2, 2, 2, 2, 2],"
      " \"do_stable_layer_norm\": true, \"feat_extract_activation\": \"gelu\", \"feat_extract_norm\": \"layer\","
      " \"hidden_act\": \"gelu\", \"hidden_size\": 1024, \"intermediate_size\": 4096, \"layer_norm_eps\": 1e-05,"
      " \"model_type\": \"wav2vec2\", \"num_attention_heads\": 16, \"num_conv_pos_embedding_groups\": 16,"
      " \"num_conv_pos_embeddings\": 128, \"num_feat_extract_layers\": 7, \"num_hidden_layers\": 24,"
      " \"transformers_version\": \"4.7.0.dev0\", \"vocab_size\": 33}", &c, &e));
  g_assert_no_error (e);
  LaWav2Vec2Config large;
  la_wav2vec2_config_init_large (&large);
  g_assert_cmpmem (&c, sizeof c, &large, sizeof large);

  /* only what the class default cannot give: its 768-wide base model */
  const char *min = "{\"feat_extract_norm\": \"layer\", \"do_stable_layer_norm\": true}";
  g_assert_true (config_from (min, &c, &e));
  g_assert_cmpint (c.hidden_size, ==, 768);
  g_assert_cmpint (c.num_layers, ==, 12);
  g_assert_cmpint (c.num_heads, ==, 12);
  g_assert_cmpint (c.intermediate_size, ==, 3072);
  g_assert_false (c.conv_bias);
  g_assert_cmpint (c.n_conv, ==, 7);
  g_assert_cmpint (c.conv_kernel[0], ==, 10);

  struct { const char *json, *n1, *n2; } bad[] = {
    { "{\"feat_extract_norm\": \"layer\"}", "do_stable_layer_norm", "absent" },
    { "{\"do_stable_layer_norm\": true}", "feat_extract_norm = 'group'", "absent" },
    { "{\"feat_extract_norm\": \"layer\", \"do_stable_layer_norm\": true, \"hidden_size\": 1000}",
      "hidden_size = 1000", "num_attention_heads = 12" },
    { "{\"feat_extract_norm\": \"layer\", \"do_stable_layer_norm\": true, \"conv_kernel\": [10, 3, 3]}",
      "conv_dim", "conv_kernel" },
    { "{\"feat_extract_norm\": \"layer\", \"do_stable_layer_norm\": true, \"num_feat_extract_layers\": 6}",
      "num_feat_extract_layers = 6", "conv_dim" },
    { "{\"feat_extract_norm\": \"layer\", \"do_stable_layer_norm\": true, \"hidden_size\": \"1024\"}",
      "hidden_size", "integer" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_assert_false (config_from (bad[i].json, &c, &e));
    if (!strstr (e->message, bad[i].n1) || !strstr (e->message, bad[i].n2))
      g_error ("%s: message lacks '%s'/'%s': %s", bad[i].json, bad[i].n1, bad[i].n2, e->message);
    g_clear_error (&e);
  }
}

static void
test_other_config_folder (void)
{
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  LaWav2Vec2Config c;
  tiny (&c, 24, 3, 3, 7, 3);   /* odd positional kernel: nothing to drop */
  c.conv_dim[6] = 12;
  g_autofree char *dir = g_dir_make_tmp ("w2v-XXXXXX", NULL);
  g_autoptr (GError) e = NULL;
  g_assert_true (la_wav2vec2_write_random_folder (dir, &c, 99, &e));
  LaWav2Vec2 *m = la_wav2vec2_open (be, dir, &e);
  g_assert_no_error (e);
  g_assert_cmpint (la_wav2vec2_get_config (m)->num_layers, ==, 3);
  const int n = 9000;
  float *x = speechlike (n, 3);
  g_autoptr (LaTensor) hs = la_wav2vec2_encode_pcm (m, x, n, 16000, 1, &e);
  g_assert_no_error (e);
  g_assert_cmpint (hs->shape[0], ==, 4);
  g_assert_cmpint (hs->shape[1], ==, (n - 400) / 320 + 1);
  g_assert_cmpint (hs->shape[2], ==, 24);
  g_assert_true (all_finite (hs));
  /* only the last state is LayerNormed (weights ~1, biases ~0): per-frame mean ~0, var ~1 */
  const int64_t T = hs->shape[1], H = 24;
  const float *last = la_tensor_f32 (hs) + 3 * T * H;
  for (int64_t t = 0; t < T; t++) {
    double mu = 0, v = 0;
    for (int h = 0; h < H; h++)
      mu += last[t * H + h];
    mu /= H;
    for (int h = 0; h < H; h++)
      v += (last[t * H + h] - mu) * (last[t * H + h] - mu);
    g_assert_cmpfloat (fabs (mu), <, 0.05);
    g_assert_cmpfloat (fabs (v / H - 1), <, 0.1);
  }
  /* parametrizations spelling of the weight norm: identical output */
  g_autofree char *st = g_build_filename (dir, "model.safetensors", NULL);
  g_autoptr (LaCheckpoint) ck = la_safetensors_open (st, &e);
  g_assert_no_error (e);
  LaTensor *g = la_tensor_ref (la_checkpoint_get (ck, "wav2vec2.encoder.pos_conv_embed.conv.weight_g"));
  LaTensor *v = la_tensor_ref (la_checkpoint_get (ck, "wav2vec2.encoder.pos_conv_embed.conv.weight_v"));
  la_checkpoint_remove (ck, "wav2vec2.encoder.pos_conv_embed.conv.weight_g");
  la_checkpoint_remove (ck, "wav2vec2.encoder.pos_conv_embed.conv.weight_v");
  la_checkpoint_add (ck, "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0", g);
  la_checkpoint_add (ck, "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original1", v);
  la_tensor_unref (g);
  la_tensor_unref (v);
  LaWav2Vec2 *m2 = la_wav2vec2_new (be, &c, ck, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) hs2 = la_wav2vec2_encode_pcm (m2, x, n, 16000, 1, &e);
  g_assert_no_error (e);
  g_assert_cmpmem (hs->data, la_tensor_nbytes (hs), hs2->data, la_tensor_nbytes (hs2));
  la_wav2vec2_free (m2);
  la_wav2vec2_free (m);
  g_free (x);
}

static void
test_live (void)
{
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  LaWav2Vec2Config c;
  tiny (&c, 16, 1, 2, 8, 2);
  g_autoptr (LaCheckpoint) ck = la_wav2vec2_random_weights (&c, 5);
  g_autoptr (GError) e = NULL;
  LaWav2Vec2 *m = la_wav2vec2_new (be, &c, ck, &e);
  LaAudioLiveConfig lc;
  la_audio_live_config_init (&lc);
  lc.past_ms = 1000;
  lc.lookahead_ms = 200;
  LaAudioLive *live = la_audio_live_new (m, &lc, &e);
  g_assert_no_error (e);
  g_assert_cmpint (la_audio_live_block_samples (live), ==, 7680);
  g_assert_cmpuint (la_audio_live_latency_ns (live), ==, 200000000u);
  const int n = 7680 * 3 + 1000;
  float *x = speechlike (n, 9);
  int blocks = 0;
  for (int off = 0; off < n; off += 1000) {
    g_assert_true (la_audio_live_push (live, x + off, MIN (1000, n - off), 16000, 1, &e));
    LaTensor *b;
    while ((b = la_audio_live_pop_block (live, &e))) {
      g_assert_cmpint (b->shape[0], ==, 2);
      g_assert_cmpint (b->shape[1], ==, 16);
      g_assert_cmpint (b->shape[2], ==, 12);
      g_assert_true (all_finite (b));
      la_tensor_unref (b);
      blocks++;
      /* block k needs samples up to 7680(k+1) + 3200 */
      g_assert_cmpint (off + MIN (1000, n - off), >=, 7680 * blocks + 3200);
    }
    g_assert_no_error (e);
  }
  g_assert_cmpint (blocks, ==, 2);
  la_audio_live_finish (live);
  LaTensor *b;
  while ((b = la_audio_live_pop_block (live, &e)))
    la_tensor_unref (b), blocks++;
  g_assert_cmpint (blocks, ==, 4);   /* the partial block 3 is padded with silence */
  g_autoptr (GError) e2 = NULL;
  LaAudioLive *l2 = la_audio_live_new (m, &lc, NULL);
  g_assert_false (la_audio_live_push (l2, x, 10, 48000, 1, &e2));
  g_assert_error (e2, LA_ERROR, LA_ERROR_INVALID_ARG);
  la_audio_live_free (l2);
  la_audio_live_free (live);
  la_wav2vec2_free (m);
  g_free (x);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/audio/wav2vec2/length-receptive-field", test_length_and_receptive_field);
  g_test_add_func ("/audio/wav2vec2/bad-input", test_bad_input);
  g_test_add_func ("/audio/wav2vec2/other-config-folder", test_other_config_folder);
  g_test_add_func ("/audio/wav2vec2/config-hf-defaults", test_config_hf_defaults);
  g_test_add_func ("/audio/wav2vec2/live", test_live);
  return g_test_run ();
}
