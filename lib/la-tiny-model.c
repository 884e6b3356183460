/* la-tiny-model.c — generated model folders in the official layout, key
 * names and file formats (docs/design/formats.md §4), with random or zero weights.
 *
 * tiny: the golden cases' widths, every component runs in seconds on a CPU:
 *   DIR/config.json + diffusion_pytorch_model-0000{1,2}-of-00002.safetensors + index (bf16)
 *   DIR/Wan2.1_VAE.pth (torch.save zip, fp32)
 *   DIR/models_t5_umt5-xxl-enc-bf16.pth (torch.save zip, bf16)
 *   DIR/google/umt5-xxl/{spiece.model,tokenizer.json} (a small SentencePiece model)
 *   DIR/wav2vec2-large-xlsr-53-english/{config.json,model.safetensors,preprocessor_config.json}
 *   DIR/liveavatar.safetensors (the LoRA, bf16)
 *   DIR/liveavatar.json (the T5/VAE configs, which the official folder does not carry)
 *
 * full: the two published downloads, every width as published, depth
 * optional (la-model.h, LaFullTreeOptions):
 *   DIR/Wan2.2-S2V-14B/ config.json (diffusers-style), 4 bf16 DiT shards +
 *     index, Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/,
 *     wav2vec2-large-xlsr-53-english/ (+ pytorch_model.bin)
 *   DIR/LiveAvatar/liveavatar.safetensors (bf16, rank 128)
 * Tensors of 16 Mi elements or more are zeros written as file holes (every
 * DiT/umT5 matrix and the embedding); the rest is seeded random
 * (la-synth.h).  liveavatar.json is written only when --t5-layers departs
 * from umT5-XXL's 24, the one depth the official folder cannot state.
 */
#include "liveavatar/liveavatar.h"
#include "la-dit.h"
#include "la-vae.h"
#include "la-text.h"
#include "la-audio.h"
#include <glib/gstdio.h>
#include "la-synth.h"
#include <errno.h>

#define LORA_RANK_TINY 4

static LaCheckpoint *
cast_all (LaCheckpoint *src, LaDType dt)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  const char * const *names = la_checkpoint_names (src);
  for (int i = 0; names[i]; i++) {
    LaTensor *s = la_checkpoint_get (src, names[i]);
    /* zero views stay views: a full-width tree is never materialised */
    g_autoptr (LaTensor) t = la_synth_is_zeros (s->data, la_tensor_nbytes (s)) ?
        la_synth_zeros (dt, s->ndim, s->shape) : la_tensor_to_dtype (s, dt);
    la_checkpoint_add (ck, names[i], t);
  }
  return ck;
}

/* `n_shards` shards cut by bytes and an index, as diffusers writes them. */
static gboolean
write_sharded (const char *dir, LaCheckpoint *ck, guint n_shards, GError **error)
{
  const char * const *names = la_checkpoint_names (ck);
  guint n = la_checkpoint_size (ck);
  if (n < n_shards) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: %u tensors cannot fill %u shards", dir, n, n_shards);
    return FALSE;
  }
  guint64 total = 0, seen = 0;
  gint64 prev = 0;
  for (guint i = 0; i < n; i++)
    total += la_tensor_nbytes (la_checkpoint_get (ck, names[i]));
  g_autoptr (GPtrArray) shards = g_ptr_array_new_with_free_func ((GDestroyNotify) la_checkpoint_unref);
  g_auto (GStrv) files = g_new0 (char *, n_shards + 1);
  for (guint s = 0; s < n_shards; s++) {
    g_ptr_array_add (shards, la_checkpoint_new ());
    files[s] = g_strdup_printf ("diffusion_pytorch_model-%05u-of-%05u.safetensors", s + 1, n_shards);
  }
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "total_size");
  json_builder_add_int_value (b, (gint64) total);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "weight_map");
  json_builder_begin_object (b);
  for (guint i = 0; i < n; i++) {
    LaTensor *t = la_checkpoint_get (ck, names[i]);
    /* by bytes, but never fewer tensors left than shards to fill */
    gint64 s = (gint64) (seen * n_shards / MAX (total, 1));
    s = CLAMP (s, MAX (prev, (gint64) n_shards - (gint64) (n - i)), i ? prev + 1 : 0);
    prev = s;
    la_checkpoint_add (shards->pdata[s], names[i], t);
    json_builder_set_member_name (b, names[i]);
    json_builder_add_string_value (b, files[s]);
    seen += la_tensor_nbytes (t);
  }
  json_builder_end_object (b);
  json_builder_end_object (b);
  for (guint s = 0; s < n_shards; s++) {
    g_autofree char *p = g_build_filename (dir, files[s], NULL);
    if (!la_safetensors_write (p, shards->pdata[s], error))
      return FALSE;
  }
  g_autofree char *pi = g_build_filename (dir, "diffusion_pytorch_model.safetensors.index.json", NULL);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_file (gen, pi, error);
}

static void
tiny_dit (LaDitConfig *c)
{
  la_dit_config_init_14b (c);
  c->dim = 96; c->ffn_dim = 192; c->num_heads = 3; c->num_layers = 3;
  c->text_dim = 32; c->audio_dim = 32; c->text_len = 16;
  c->n_inject = 2; c->audio_inject_layers[0] = 0; c->audio_inject_layers[1] = 2;
}

static void
tiny_w2v (LaWav2Vec2Config *c, int audio_dim)
{
  la_wav2vec2_config_init_large (c);
  c->hidden_size = audio_dim; c->num_heads = 2; c->intermediate_size = 2 * audio_dim;
  for (int i = 0; i < c->n_conv; i++)
    c->conv_dim[i] = 32;
  c->pos_groups = 4; c->pos_kernel = 16;
  /* 24 layers as in the real model: the DiT mixes all 25 hidden states. */
}

static void
tiny_t5 (LaT5Config *c, int text_dim, int vocab)
{
  la_t5_config_umt5_xxl (c);
  c->vocab = vocab; c->dim = text_dim; c->dim_attn = text_dim; c->dim_ffn = 2 * text_dim;
  c->num_heads = 4; c->num_layers = 2;
}

static void
tiny_vae (LaVaeConfig *c)
{
  la_vae_config_wan21 (c);
  c->dim = 8;
}

static gboolean
write_overrides (const char *dir, const LaT5Config *t5, const LaVaeConfig *vae, guint64 seed,
                 const char *preset, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "generator");
  json_builder_add_string_value (b, "liveavatar-mkmodel");
  json_builder_set_member_name (b, "preset");
  json_builder_add_string_value (b, preset);
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, (gint64) seed);
#define INT(k, v) do { json_builder_set_member_name (b, k); json_builder_add_int_value (b, v); } while (0)
  json_builder_set_member_name (b, "t5");
  json_builder_begin_object (b);
  INT ("vocab", t5->vocab); INT ("dim", t5->dim); INT ("dim_attn", t5->dim_attn); INT ("dim_ffn", t5->dim_ffn);
  INT ("num_heads", t5->num_heads); INT ("num_layers", t5->num_layers);
  INT ("num_buckets", t5->num_buckets); INT ("max_dist", t5->max_dist);
  json_builder_end_object (b);
  if (vae) {
    json_builder_set_member_name (b, "vae");
    json_builder_begin_object (b);
    INT ("dim", vae->dim); INT ("z_dim", vae->z_dim); INT ("num_res_blocks", vae->num_res_blocks);
    json_builder_set_member_name (b, "dim_mult");
    json_builder_begin_array (b);
    for (int i = 0; i < vae->n_levels; i++)
      json_builder_add_int_value (b, vae->dim_mult[i]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "temperal_downsample");
    json_builder_begin_array (b);
    for (int i = 0; i < vae->n_levels - 1; i++)
      json_builder_add_boolean_value (b, vae->temperal_downsample[i]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "attn_scales");
    json_builder_begin_array (b);
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
#undef INT
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autofree char *p = g_build_filename (dir, "liveavatar.json", NULL);
  return json_generator_to_file (gen, p, error);
}

static gboolean
make_dir (const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: cannot create: %s", dir, g_strerror (errno));
    return FALSE;
  }
  return TRUE;
}

/* google/umt5-xxl/: a small trained spiece.model and its tokenizer.json. */
static LaTokenizer *
write_tokenizer (const char *root, GError **error)
{
  g_autofree char *tok_dir = g_build_filename (root, "google", "umt5-xxl", NULL);
  if (!make_dir (tok_dir, error) || !la_tokenizer_train_tiny (tok_dir, 0, error))
    return NULL;
  g_autofree char *spm = g_build_filename (tok_dir, "spiece.model", NULL);
  g_autofree char *hf = g_build_filename (tok_dir, "tokenizer.json", NULL);
  LaTokenizer *tok = la_tokenizer_new_from_file (spm, error);
  if (tok && !la_tokenizer_write_hf_json (tok, hf, error))
    g_clear_pointer (&tok, la_tokenizer_free);
  return tok;
}

/* wav2vec2-large-xlsr-53-english/ (fp32, as published); pytorch_model.bin,
 * the same weights as a torch zip, when `with_bin`. */
static gboolean
write_wav2vec2 (const char *root, const LaWav2Vec2Config *w2v, guint64 seed, gboolean with_bin, GError **error)
{
  g_autofree char *wdir = g_build_filename (root, "wav2vec2-large-xlsr-53-english", NULL);
  g_debug ("writing wav2vec2 (hidden %d, %d layers)", w2v->hidden_size, w2v->num_layers);
  if (!make_dir (wdir, error))
    return FALSE;
  g_autofree char *json = la_wav2vec2_config_to_json (w2v);
  g_autofree char *cj = g_build_filename (wdir, "config.json", NULL);
  g_autofree char *st = g_build_filename (wdir, "model.safetensors", NULL);
  g_autofree char *bin = g_build_filename (wdir, "pytorch_model.bin", NULL);
  g_autofree char *pre = g_build_filename (wdir, "preprocessor_config.json", NULL);
  static const char preprocessor[] =
    "{\n  \"do_normalize\": true,\n  \"feature_extractor_type\": \"Wav2Vec2FeatureExtractor\",\n"
    "  \"feature_size\": 1,\n  \"padding_side\": \"right\",\n  \"padding_value\": 0.0,\n"
    "  \"return_attention_mask\": true,\n  \"sampling_rate\": 16000\n}\n";
  g_autoptr (LaCheckpoint) ck = la_wav2vec2_random_weights (w2v, seed);
  return g_file_set_contents (cj, json, -1, error) && la_safetensors_write (st, ck, error) &&
         (!with_bin || la_torchzip_write (bin, ck, error)) &&
         g_file_set_contents (pre, preprocessor, -1, error);
}

/* The DiT (bf16, `n_shards` shards) into model_dir, its LoRA to lora_path. */
static gboolean
write_dit_and_lora (const char *model_dir, const char *lora_path, const LaDitConfig *dit, int rank,
                    guint n_shards, guint64 seed, GError **error)
{
  g_debug ("writing DiT (dim %d, %d heads, %d layers), LoRA rank %d", dit->dim, dit->num_heads,
           dit->num_layers, rank);
  g_autofree char *cfg = g_build_filename (model_dir, "config.json", NULL);
  if (!la_dit_config_write_json_file (dit, cfg, error))
    return FALSE;
  g_autoptr (LaCheckpoint) dit_bf16 = NULL;
  {
    g_autoptr (LaCheckpoint) dit_w = la_dit_random_weights (dit, seed);
    dit_bf16 = cast_all (dit_w, LA_DTYPE_BF16);
  }
  if (!write_sharded (model_dir, dit_bf16, n_shards, error))
    return FALSE;
  g_autoptr (LaCheckpoint) lora = la_lora_random (dit_bf16, rank, seed + 1);
  return la_safetensors_write (lora_path, lora, error);
}

static gboolean
write_vae_t5 (const char *root, const LaVaeConfig *vae, const LaT5Config *t5, guint64 seed, GError **error)
{
  g_debug ("writing VAE (dim %d), umT5 (dim %d, %d layers, vocab %d)", vae->dim, t5->dim, t5->num_layers, t5->vocab);
  g_autofree char *vp = g_build_filename (root, "Wan2.1_VAE.pth", NULL);
  g_autofree char *tp = g_build_filename (root, "models_t5_umt5-xxl-enc-bf16.pth", NULL);
  {
    g_autoptr (LaCheckpoint) vae_w = la_vae_random_weights (vae, seed + 2);
    if (!la_torchzip_write (vp, vae_w, error))
      return FALSE;
  }
  g_autoptr (LaCheckpoint) t5_w = la_t5_random_weights (t5, seed + 3);
  g_autoptr (LaCheckpoint) t5_bf16 = cast_all (t5_w, LA_DTYPE_BF16);
  return la_torchzip_write (tp, t5_bf16, error);
}

gboolean
la_model_write_tiny (const char *dir, guint64 seed, GError **error)
{
  LaDitConfig dit;
  LaWav2Vec2Config w2v;
  LaT5Config t5;
  LaVaeConfig vae;
  tiny_dit (&dit);
  tiny_w2v (&w2v, dit.audio_dim);
  tiny_vae (&vae);
  if (!make_dir (dir, error))
    return FALSE;
  /* Tokenizer first: its vocabulary sizes T5's embedding. */
  g_autoptr (LaTokenizer) tok = write_tokenizer (dir, error);
  if (!tok)
    return FALSE;
  tiny_t5 (&t5, dit.text_dim, la_tokenizer_vocab_size (tok));
  g_autofree char *lp = g_build_filename (dir, "liveavatar.safetensors", NULL);
  return write_dit_and_lora (dir, lp, &dit, LORA_RANK_TINY, 2, seed, error) &&
         write_vae_t5 (dir, &vae, &t5, seed, error) &&
         write_wav2vec2 (dir, &w2v, seed + 4, FALSE, error) &&
         write_overrides (dir, &t5, &vae, seed, "tiny", error);
}

gboolean
la_model_write_full (const char *dir, const LaFullTreeOptions *opt, GError **error)
{
  LaDitConfig dit;
  LaWav2Vec2Config w2v;
  LaT5Config t5;
  LaVaeConfig vae;
  la_dit_config_init_14b (&dit);
  la_wav2vec2_config_init_large (&w2v);
  la_t5_config_umt5_xxl (&t5);
  la_vae_config_wan21 (&vae);
  const int t5_published = t5.num_layers;
  if (opt->dit_layers > 0) {
    /* shrink the depth; the audio injectors follow the layers they sit on */
    dit.num_layers = opt->dit_layers;
    int k = 0;
    for (int j = 0; j < dit.n_inject; j++)
      if (dit.audio_inject_layers[j] < dit.num_layers)
        dit.audio_inject_layers[k++] = dit.audio_inject_layers[j];
    dit.n_inject = k;
  }
  if (opt->t5_layers > 0)
    t5.num_layers = opt->t5_layers;
  if (opt->wav2vec2_layers > 0)
    w2v.num_layers = opt->wav2vec2_layers;

  g_autofree char *model = g_build_filename (dir, "Wan2.2-S2V-14B", NULL);
  g_autofree char *lora_dir = g_build_filename (dir, "LiveAvatar", NULL);
  g_autofree char *lp = g_build_filename (lora_dir, "liveavatar.safetensors", NULL);
  if (!make_dir (model, error) || !make_dir (lora_dir, error))
    return FALSE;
  gint64 saved = la_synth_zero_from;
  la_synth_zero_from = (gint64) 1 << 24;
  g_autoptr (LaTokenizer) tok = write_tokenizer (model, error);
  gboolean ok = tok && write_dit_and_lora (model, lp, &dit, LA_LORA_RANK, 4, opt->seed, error) &&
                write_vae_t5 (model, &vae, &t5, opt->seed, error) &&
                write_wav2vec2 (model, &w2v, opt->seed + 4, TRUE, error);
  la_synth_zero_from = saved;
  if (ok && t5.num_layers != t5_published)
    ok = write_overrides (model, &t5, NULL, opt->seed, "full", error);
  return ok;
}
