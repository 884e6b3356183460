/* la-model-bundle.c — loading a whole model folder (DiT + LoRA, VAE, umT5 +
 * tokenizer, wav2vec2).  The official folder carries no config for the VAE
 * and umT5 (the reference hard-codes them); a generated folder may say
 * otherwise in liveavatar.json, which is read when present. */
#include "la-model-bundle.h"

static gboolean
read_overrides (LaModelBundle *b, LaT5Config *t5, GError **error)
{
  la_t5_config_umt5_xxl (t5);
  la_vae_config_wan21 (&b->vae_cfg);
  if (!b->paths->overrides)
    return TRUE;
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_file (p, b->paths->overrides, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: not a JSON object", b->paths->overrides);
    return FALSE;
  }
  JsonObject *o = json_node_get_object (root);
  if (json_object_has_member (o, "vae")) {
    JsonObject *v = json_object_get_object_member (o, "vae");
    if (!v || !la_vae_config_from_json (&b->vae_cfg, v, error)) {
      if (error && !*error)
        g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: \"vae\" is not an object", b->paths->overrides);
      g_prefix_error (error, "%s: ", b->paths->overrides);
      return FALSE;
    }
  }
  if (json_object_has_member (o, "t5")) {
    JsonObject *t = json_object_get_object_member (o, "t5");
    if (!t) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: \"t5\" is not an object", b->paths->overrides);
      return FALSE;
    }
#define GET(f) t5->f = (int) json_object_get_int_member_with_default (t, #f, t5->f)
    GET (vocab); GET (dim); GET (dim_attn); GET (dim_ffn); GET (num_heads); GET (num_layers);
    GET (num_buckets); GET (max_dist);
#undef GET
  }
  return TRUE;
}

LaModelBundle *
la_model_bundle_load (LaBackend *be, const char *model_dir, const char *lora, GError **error)
{
  LaModelBundle *b = g_new0 (LaModelBundle, 1);
  b->be = la_backend_ref (be);
  LaT5Config t5cfg;
  if (!(b->paths = la_model_paths_resolve (model_dir, lora, error)))
    goto fail;
  if (!read_overrides (b, &t5cfg, error))
    goto fail;

  {
    LaDitLoadInfo info;
    if (!(b->dit = la_dit_model_load (be, model_dir, lora, &info, error)))
      goto fail;
    b->dit_cfg = info.cfg;
    b->lora = info.lora;
    g_strlcpy (b->dit_digest, info.digest, sizeof b->dit_digest);
  }
  {
    g_autoptr (LaCheckpoint) v = la_checkpoint_open (b->paths->vae, error);
    if (!v || !(b->vae = la_vae_new (be, v, &b->vae_cfg, error)))
      goto fail;
  }
  if (!(b->tok = la_tokenizer_new_from_file (b->paths->tokenizer, error)))
    goto fail;
  if (!(b->t5 = la_t5_encoder_new_from_file (be, b->paths->t5, &t5cfg, error)))
    goto fail;
  if (!(b->w2v = la_wav2vec2_open (be, b->paths->wav2vec_dir, error)))
    goto fail;
  if (la_wav2vec2_get_config (b->w2v)->hidden_size != b->dit_cfg.audio_dim ||
      la_t5_encoder_config (b->t5)->dim != b->dit_cfg.text_dim) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "%s: components disagree: wav2vec2 width %d vs DiT audio_dim %d, umT5 width %d vs DiT text_dim %d",
                 model_dir, la_wav2vec2_get_config (b->w2v)->hidden_size, b->dit_cfg.audio_dim,
                 la_t5_encoder_config (b->t5)->dim, b->dit_cfg.text_dim);
    goto fail;
  }
  return b;
fail:
  la_model_bundle_free (b);
  return NULL;
}

void
la_model_bundle_free (LaModelBundle *b)
{
  if (!b)
    return;
  if (b->w2v) la_wav2vec2_free (b->w2v);
  if (b->t5) la_t5_encoder_free (b->t5);
  if (b->tok) la_tokenizer_free (b->tok);
  if (b->vae) la_vae_free (b->vae);
  if (b->dit) la_dit_model_free (b->dit);
  la_model_paths_free (b->paths);
  la_backend_unref (b->be);
  g_free (b);
}
