/* la-model-bundle.c — loading a whole model folder (DiT + LoRA, VAE, umT5 +
 * tokenizer, wav2vec2).  The official folder carries no config for the VAE
 * and umT5 (the reference hard-codes them); a generated folder may say
 * otherwise in liveavatar.json, which is read when present. */
#include "la-model-bundle.h"
#include "la-json.h"
#include <stdlib.h>
#include <string.h>

static gboolean
read_overrides (LaModelBundle *b, LaT5Config *t5, GError **error)
{
  la_t5_config_umt5_xxl (t5);
  la_vae_config_wan21 (&b->vae_cfg);
  if (!b->paths->overrides)
    return TRUE;
  g_autoptr (JsonParser) p = la_json_parse_file (b->paths->overrides, LA_JSON_DEPTH_CONFIG, error);
  if (!p)
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
la_model_bundle_load (LaBackend *be, const char *model_dir, const char *lora, LaWeights weights, guint parts,
                      GError **error)
{
  LaModelBundle *b = g_new0 (LaModelBundle, 1);
  b->ref_count = 1;
  b->parts = parts;
  /* FP8 is for the DiT's linears only; the other components stay bf16. */
  LaWeights other = weights == LA_WEIGHTS_FP8 ? LA_WEIGHTS_BF16 : weights;
  b->weights = weights;
  b->be = la_backend_ref (be);
  LaT5Config t5cfg;
  if (!(b->paths = la_model_paths_resolve (model_dir, lora, error)))
    goto fail;
  if (!read_overrides (b, &t5cfg, error))
    goto fail;

  if (parts & LA_MODEL_PARTS_DIT) {
    LaDitLoadInfo info;
    if (!(b->dit = la_dit_model_load_full (be, model_dir, lora, weights, &info, error)))
      goto fail;
    memcpy (b->resident[LA_MODEL_PART_DIT], info.resident, sizeof info.resident);
    b->dit_cfg = info.cfg;
    b->lora = info.lora;
    g_strlcpy (b->dit_digest, info.digest, sizeof b->dit_digest);
  } else if (!la_dit_config_from_json_file (&b->dit_cfg, b->paths->dit_config, error))
    goto fail;
  if (!(parts & LA_MODEL_PARTS_NO_DIT))
    return b;
  {
    g_autoptr (LaCheckpoint) v = la_checkpoint_open (b->paths->vae, error);
    /* the published VAE is fp32 and all of it is conv kernels: f32 resident */
    if (!v || !(b->vae = la_vae_new (be, v, &b->vae_cfg, error)))
      goto fail;
    b->resident[LA_MODEL_PART_VAE][LA_DTYPE_F32] = la_vae_resident_bytes (b->vae);
  }
  if (!(b->tok = la_tokenizer_new_from_file (b->paths->tokenizer, error)))
    goto fail;
  {
    g_autoptr (LaCheckpoint) ck = la_checkpoint_open (b->paths->t5, error);
    LaWeightBinder wb;
    if (!ck)
      goto fail;
    la_weight_binder_init (&wb, be, ck, other);
    wb.release = TRUE;      /* the encoder keeps ck for its (mapped) token embedding only */
    if (!(b->t5 = la_t5_encoder_new_bound (&t5cfg, &wb, error)))
      goto fail;
    memcpy (b->resident[LA_MODEL_PART_T5], wb.bytes, sizeof wb.bytes);
  }
  if (!(b->w2v = la_wav2vec2_open_full (be, b->paths->wav2vec_dir, other, b->resident[LA_MODEL_PART_WAV2VEC2],
                                        error)))
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
  g_free (b->key);
  if (b->w2v) la_wav2vec2_free (b->w2v);
  if (b->t5) la_t5_encoder_free (b->t5);
  if (b->tok) la_tokenizer_free (b->tok);
  if (b->vae) la_vae_free (b->vae);
  if (b->dit) la_dit_model_free (b->dit);
  la_model_paths_free (b->paths);
  la_backend_unref (b->be);
  g_free (b);
}

guint64
la_model_bundle_resident_bytes (const LaModelBundle *b)
{
  guint64 n = 0;
  for (int p = 0; p < LA_MODEL_N_PARTS; p++)
    for (int t = 0; t < LA_DTYPE_COUNT; t++)
      n += b->resident[p][t];
  return n;
}

/* ---- the process's model cache ---- */

static GMutex cache_lock;
static GHashTable *cache;      /* key -> LaModelBundle* (borrowed: removed at its last release) */

static char *
canonical (const char *path)
{
  if (!path || !*path)
    return g_strdup ("");
  char *r = realpath (path, NULL);
  if (r) {
    char *g = g_strdup (r);
    free (r);
    return g;
  }
  return g_canonicalize_filename (path, NULL);
}

LaModelBundle *
la_model_bundle_acquire (LaBackend *be, const char *device, const char *model_dir, const char *lora,
                         LaWeights weights, guint parts, GError **error)
{
  g_autofree char *dir = canonical (model_dir);
  g_autofree char *lo = canonical (lora);
  char *key = g_strdup_printf ("%s\n%s\n%s\n%s\n%x", dir, lo, la_weights_to_string (weights),
                               device && *device ? device : "cpu", parts);
  /* Loading under the lock: a second session of the same model waits for the
   * first load instead of loading a second copy beside it. */
  g_mutex_lock (&cache_lock);
  if (!cache)
    cache = g_hash_table_new (g_str_hash, g_str_equal);
  LaModelBundle *b = g_hash_table_lookup (cache, key);
  if (b) {
    g_atomic_int_inc (&b->ref_count);
    g_free (key);
  } else if ((b = la_model_bundle_load (be, model_dir, lora, weights, parts, error))) {
    b->key = key;
    g_hash_table_insert (cache, b->key, b);
  } else
    g_free (key);
  g_mutex_unlock (&cache_lock);
  return b;
}

LaModelBundle *
la_model_bundle_ref (LaModelBundle *b)
{
  g_atomic_int_inc (&b->ref_count);
  return b;
}

void
la_model_bundle_release (LaModelBundle *b)
{
  if (!b)
    return;
  g_mutex_lock (&cache_lock);
  gboolean last = g_atomic_int_dec_and_test (&b->ref_count);
  if (last && b->key && cache)
    g_hash_table_remove (cache, b->key);
  g_mutex_unlock (&cache_lock);
  if (last)
    la_model_bundle_free (b);
}

void
la_model_cache_get_stats (LaModelCacheStats *st)
{
  memset (st, 0, sizeof *st);
  g_mutex_lock (&cache_lock);
  if (cache) {
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init (&it, cache);
    while (g_hash_table_iter_next (&it, NULL, &v)) {
      LaModelBundle *b = v;
      st->n_models++;
      st->n_users += (guint) g_atomic_int_get (&b->ref_count);
      st->resident_bytes += la_model_bundle_resident_bytes (b);
    }
  }
  g_mutex_unlock (&cache_lock);
}
