/* la-tiny-model.c — a complete random-weight model folder in the official
 * layout, key names and file formats (io.md §6.1), with the golden cases'
 * widths, so every component runs in seconds on a CPU:
 *
 *   DIR/config.json + diffusion_pytorch_model-0000{1,2}-of-00002.safetensors + index (bf16)
 *   DIR/Wan2.1_VAE.pth (torch.save zip, fp32)
 *   DIR/models_t5_umt5-xxl-enc-bf16.pth (torch.save zip, bf16)
 *   DIR/google/umt5-xxl/spiece.model (a small SentencePiece model)
 *   DIR/wav2vec2-large-xlsr-53-english/{config.json,model.safetensors,preprocessor_config.json}
 *   DIR/liveavatar.safetensors (the LoRA, bf16)
 *   DIR/liveavatar.json (the T5/VAE configs, which the official folder does not carry)
 */
#include "liveavatar/liveavatar.h"
#include "la-dit.h"
#include "la-vae.h"
#include "la-text.h"
#include "la-audio.h"
#include <glib/gstdio.h>
#include <errno.h>

#define LORA_RANK_TINY 4

static LaCheckpoint *
cast_all (LaCheckpoint *src, LaDType dt)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  const char * const *names = la_checkpoint_names (src);
  for (int i = 0; names[i]; i++) {
    g_autoptr (LaTensor) t = la_tensor_to_dtype (la_checkpoint_get (src, names[i]), dt);
    la_checkpoint_add (ck, names[i], t);
  }
  return ck;
}

/* Two shards and an index, as diffusers writes them. */
static gboolean
write_sharded (const char *dir, LaCheckpoint *ck, GError **error)
{
  const char * const *names = la_checkpoint_names (ck);
  guint n = la_checkpoint_size (ck);
  g_autoptr (LaCheckpoint) s1 = la_checkpoint_new ();
  g_autoptr (LaCheckpoint) s2 = la_checkpoint_new ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint64 total = 0;
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "weight_map");
  json_builder_begin_object (b);
  for (guint i = 0; i < n; i++) {
    LaTensor *t = la_checkpoint_get (ck, names[i]);
    gboolean first = i < n / 2;
    la_checkpoint_add (first ? s1 : s2, names[i], t);
    json_builder_set_member_name (b, names[i]);
    json_builder_add_string_value (b, first ? "diffusion_pytorch_model-00001-of-00002.safetensors"
                                            : "diffusion_pytorch_model-00002-of-00002.safetensors");
    total += la_tensor_nbytes (t);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "total_size");
  json_builder_add_int_value (b, (gint64) total);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autofree char *p1 = g_build_filename (dir, "diffusion_pytorch_model-00001-of-00002.safetensors", NULL);
  g_autofree char *p2 = g_build_filename (dir, "diffusion_pytorch_model-00002-of-00002.safetensors", NULL);
  g_autofree char *pi = g_build_filename (dir, "diffusion_pytorch_model.safetensors.index.json", NULL);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return la_safetensors_write (p1, s1, error) && la_safetensors_write (p2, s2, error) &&
         json_generator_to_file (gen, pi, error);
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
write_overrides (const char *dir, const LaT5Config *t5, const LaVaeConfig *vae, guint64 seed, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "generator");
  json_builder_add_string_value (b, "liveavatar-mkmodel");
  json_builder_set_member_name (b, "preset");
  json_builder_add_string_value (b, "tiny");
  json_builder_set_member_name (b, "seed");
  json_builder_add_int_value (b, (gint64) seed);
#define INT(k, v) do { json_builder_set_member_name (b, k); json_builder_add_int_value (b, v); } while (0)
  json_builder_set_member_name (b, "t5");
  json_builder_begin_object (b);
  INT ("vocab", t5->vocab); INT ("dim", t5->dim); INT ("dim_attn", t5->dim_attn); INT ("dim_ffn", t5->dim_ffn);
  INT ("num_heads", t5->num_heads); INT ("num_layers", t5->num_layers);
  INT ("num_buckets", t5->num_buckets); INT ("max_dist", t5->max_dist);
  json_builder_end_object (b);
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
#undef INT
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autofree char *p = g_build_filename (dir, "liveavatar.json", NULL);
  return json_generator_to_file (gen, p, error);
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

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: cannot create: %s", dir, g_strerror (errno));
    return FALSE;
  }
  /* Tokenizer first: its vocabulary sizes T5's embedding. */
  g_autofree char *tok_dir = g_build_filename (dir, "google", "umt5-xxl", NULL);
  g_mkdir_with_parents (tok_dir, 0755);
  if (!la_tokenizer_train_tiny (tok_dir, 0, error))
    return FALSE;
  g_autofree char *spm = g_build_filename (tok_dir, "spiece.model", NULL);
  g_autoptr (LaTokenizer) tok = la_tokenizer_new_from_file (spm, error);
  if (!tok)
    return FALSE;
  tiny_t5 (&t5, dit.text_dim, la_tokenizer_vocab_size (tok));

  g_debug ("writing DiT (dim %d, %d heads, %d layers)\n", dit.dim, dit.num_heads, dit.num_layers);
  g_autofree char *cfg = g_build_filename (dir, "config.json", NULL);
  if (!la_dit_config_write_json_file (&dit, cfg, error))
    return FALSE;
  g_autoptr (LaCheckpoint) dit_w = la_dit_random_weights (&dit, seed);
  g_autoptr (LaCheckpoint) dit_bf16 = cast_all (dit_w, LA_DTYPE_BF16);
  if (!write_sharded (dir, dit_bf16, error))
    return FALSE;

  g_debug ("writing LoRA (rank %d)\n", LORA_RANK_TINY);
  g_autoptr (LaCheckpoint) lora = la_lora_random (dit_bf16, LORA_RANK_TINY, seed + 1);
  g_autofree char *lp = g_build_filename (dir, "liveavatar.safetensors", NULL);
  if (!la_safetensors_write (lp, lora, error))
    return FALSE;

  g_debug ("writing VAE (dim %d)\n", vae.dim);
  g_autoptr (LaCheckpoint) vae_w = la_vae_random_weights (&vae, seed + 2);
  g_autofree char *vp = g_build_filename (dir, "Wan2.1_VAE.pth", NULL);
  if (!la_torchzip_write (vp, vae_w, error))
    return FALSE;

  g_debug ("writing umT5 (dim %d, vocab %d)\n", t5.dim, t5.vocab);
  g_autoptr (LaCheckpoint) t5_w = la_t5_random_weights (&t5, seed + 3);
  g_autoptr (LaCheckpoint) t5_bf16 = cast_all (t5_w, LA_DTYPE_BF16);
  g_autofree char *tp = g_build_filename (dir, "models_t5_umt5-xxl-enc-bf16.pth", NULL);
  if (!la_torchzip_write (tp, t5_bf16, error))
    return FALSE;

  g_debug ("writing wav2vec2 (hidden %d, %d layers)\n", w2v.hidden_size, w2v.num_layers);
  g_autofree char *wdir = g_build_filename (dir, "wav2vec2-large-xlsr-53-english", NULL);
  if (!la_wav2vec2_write_random_folder (wdir, &w2v, seed + 4, error))
    return FALSE;
  g_autofree char *pre = g_build_filename (wdir, "preprocessor_config.json", NULL);
  static const char preprocessor[] =
    "{\n  \"do_normalize\": true,\n  \"feature_extractor_type\": \"Wav2Vec2FeatureExtractor\",\n"
    "  \"feature_size\": 1,\n  \"padding_side\": \"right\",\n  \"padding_value\": 0.0,\n"
    "  \"return_attention_mask\": true,\n  \"sampling_rate\": 16000\n}\n";
  if (!g_file_set_contents (pre, preprocessor, -1, error))
    return FALSE;

  return write_overrides (dir, &t5, &vae, seed, error);
}

