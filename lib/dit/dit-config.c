/* dit-config.c — LaDitConfig <-> the checkpoint's config.json.
 *
 * The official model is built with from_pretrained(ckpt_dir), so every
 * hyper-parameter comes from config.json (dit.md §1.1).  We read the keys
 * the maths depends on and write back the full set the official loader
 * expects, so a generated tiny model is loadable by both.
 */
#include <string.h>
#include "la-dit.h"
#include "liveavatar/la-error.h"

static gboolean
get_int (JsonObject *o, const char *k, int *out, gboolean required, GError **error)
{
  if (!json_object_has_member (o, k)) {
    if (required)
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: missing key '%s'", k);
    return !required;
  }
  JsonNode *n = json_object_get_member (o, k);
  if (!JSON_NODE_HOLDS_VALUE (n)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: key '%s' is not a number", k);
    return FALSE;
  }
  *out = (int) json_node_get_int (n);
  return TRUE;
}

static gboolean
get_bool (JsonObject *o, const char *k, gboolean def)
{
  if (!json_object_has_member (o, k))
    return def;
  JsonNode *n = json_object_get_member (o, k);
  return JSON_NODE_HOLDS_VALUE (n) ? json_node_get_boolean (n) : def;
}

void
la_dit_config_init_14b (LaDitConfig *c)
{
  static const int inj[] = { 0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39 };
  memset (c, 0, sizeof *c);
  c->dim = 5120; c->ffn_dim = 13824; c->freq_dim = 256; c->text_dim = 4096;
  c->num_heads = 40; c->num_layers = 40; c->in_dim = 16; c->out_dim = 16;
  c->audio_dim = 1024; c->num_audio_token = 4; c->text_len = 512; c->cond_dim = 16;
  c->patch_size[0] = 1; c->patch_size[1] = 2; c->patch_size[2] = 2;
  c->eps = 1e-6;
  c->n_inject = G_N_ELEMENTS (inj);
  memcpy (c->audio_inject_layers, inj, sizeof inj);
  c->zero_timestep = c->enable_framepack = c->enable_adain = TRUE;
}

gboolean
la_dit_config_validate (const LaDitConfig *c, GError **error)
{
  const char *bad = NULL;
  if (c->dim <= 0 || c->num_heads <= 0 || c->dim % c->num_heads) bad = "dim must be a positive multiple of num_heads";
  else if ((c->dim / c->num_heads) % 2) bad = "head_dim (dim/num_heads) must be even (RoPE pairs)";
  else if ((c->dim / c->num_heads) / 2 < 3) bad = "head_dim too small for the 3-D RoPE split";
  else if (c->num_layers <= 0 || c->ffn_dim <= 0 || c->freq_dim <= 0 || c->freq_dim % 2) bad = "num_layers/ffn_dim/freq_dim";
  else if (c->in_dim <= 0 || c->out_dim <= 0 || c->text_dim <= 0 || c->text_len <= 0) bad = "in_dim/out_dim/text_dim/text_len";
  else if (c->patch_size[0] != 1 || c->patch_size[1] <= 0 || c->patch_size[2] <= 0) bad = "patch_size must be (1, ph, pw)";
  else if (c->audio_dim <= 0 || c->num_audio_token <= 0 || c->dim % c->num_audio_token) bad = "audio_dim/num_audio_token";
  else if (!(c->eps > 0)) bad = "eps";
  if (bad) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "DiT config: %s", bad);
    return FALSE;
  }
  for (int j = 0; j < c->n_inject; j++) {
    int l = c->audio_inject_layers[j];
    if (l < 0 || l >= c->num_layers || (j > 0 && l <= c->audio_inject_layers[j - 1])) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                   "DiT config: audio_inject_layers[%d] = %d (must increase, within 0..%d)", j, l, c->num_layers - 1);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
la_dit_config_from_json_object (LaDitConfig *c, JsonObject *o, GError **error)
{
  memset (c, 0, sizeof *c);
  c->cond_dim = 16;
  if (!get_int (o, "dim", &c->dim, TRUE, error) || !get_int (o, "ffn_dim", &c->ffn_dim, TRUE, error) ||
      !get_int (o, "freq_dim", &c->freq_dim, TRUE, error) || !get_int (o, "text_dim", &c->text_dim, TRUE, error) ||
      !get_int (o, "num_heads", &c->num_heads, TRUE, error) || !get_int (o, "num_layers", &c->num_layers, TRUE, error) ||
      !get_int (o, "in_dim", &c->in_dim, TRUE, error) || !get_int (o, "out_dim", &c->out_dim, TRUE, error) ||
      !get_int (o, "audio_dim", &c->audio_dim, TRUE, error) ||
      !get_int (o, "num_audio_token", &c->num_audio_token, TRUE, error) ||
      !get_int (o, "text_len", &c->text_len, TRUE, error) || !get_int (o, "cond_dim", &c->cond_dim, FALSE, error))
    return FALSE;
  if (!json_object_has_member (o, "eps")) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: missing key 'eps'");
    return FALSE;
  }
  c->eps = json_object_get_double_member (o, "eps");
  JsonArray *ps = json_object_has_member (o, "patch_size") ? json_object_get_array_member (o, "patch_size") : NULL;
  if (!ps || json_array_get_length (ps) != 3) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: 'patch_size' must be a list of 3 ints");
    return FALSE;
  }
  for (int i = 0; i < 3; i++)
    c->patch_size[i] = (int) json_array_get_int_element (ps, i);
  JsonArray *il = json_object_has_member (o, "audio_inject_layers") ?
      json_object_get_array_member (o, "audio_inject_layers") : NULL;
  if (!il || json_array_get_length (il) > LA_DIT_MAX_INJECT) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: 'audio_inject_layers' missing or longer than %d",
                 LA_DIT_MAX_INJECT);
    return FALSE;
  }
  c->n_inject = json_array_get_length (il);
  for (int j = 0; j < c->n_inject; j++)
    c->audio_inject_layers[j] = (int) json_array_get_int_element (il, j);
  c->zero_timestep = get_bool (o, "zero_timestep", TRUE);
  c->enable_framepack = get_bool (o, "enable_framepack", TRUE);
  c->enable_adain = get_bool (o, "enable_adain", TRUE);
  if (!c->zero_timestep || !c->enable_framepack || !c->enable_adain) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "DiT config: only zero_timestep, enable_framepack and enable_adain = true are supported (the Live Avatar path)");
    return FALSE;
  }
  return la_dit_config_validate (c, error);
}

gboolean
la_dit_config_from_json_file (LaDitConfig *c, const char *path, GError **error)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_file (p, path, error)) {
    g_prefix_error (error, "DiT config %s: ", path);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config %s: not a JSON object", path);
    return FALSE;
  }
  if (!la_dit_config_from_json_object (c, json_node_get_object (root), error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  return TRUE;
}

JsonObject *
la_dit_config_to_json_object (const LaDitConfig *c)
{
  JsonObject *o = json_object_new ();
  json_object_set_string_member (o, "_class_name", "WanModel_S2V");
  json_object_set_string_member (o, "model_type", "s2v");
  json_object_set_string_member (o, "cross_attn_type", "t2v_cross_attn");
  JsonArray *ps = json_array_new ();
  for (int i = 0; i < 3; i++)
    json_array_add_int_element (ps, c->patch_size[i]);
  json_object_set_array_member (o, "patch_size", ps);
  json_object_set_int_member (o, "text_len", c->text_len);
  json_object_set_int_member (o, "in_dim", c->in_dim);
  json_object_set_int_member (o, "dim", c->dim);
  json_object_set_int_member (o, "ffn_dim", c->ffn_dim);
  json_object_set_int_member (o, "freq_dim", c->freq_dim);
  json_object_set_int_member (o, "text_dim", c->text_dim);
  json_object_set_int_member (o, "out_dim", c->out_dim);
  json_object_set_int_member (o, "num_heads", c->num_heads);
  json_object_set_int_member (o, "num_layers", c->num_layers);
  JsonArray *ws = json_array_new ();
  json_array_add_int_element (ws, -1);
  json_array_add_int_element (ws, -1);
  json_object_set_array_member (o, "window_size", ws);
  json_object_set_boolean_member (o, "qk_norm", TRUE);
  json_object_set_boolean_member (o, "cross_attn_norm", TRUE);
  json_object_set_double_member (o, "eps", c->eps);
  json_object_set_int_member (o, "cond_dim", c->cond_dim);
  json_object_set_int_member (o, "audio_dim", c->audio_dim);
  json_object_set_int_member (o, "num_audio_token", c->num_audio_token);
  json_object_set_boolean_member (o, "enable_adain", c->enable_adain);
  json_object_set_string_member (o, "adain_mode", "attn_norm");
  JsonArray *il = json_array_new ();
  for (int j = 0; j < c->n_inject; j++)
    json_array_add_int_element (il, c->audio_inject_layers[j]);
  json_object_set_array_member (o, "audio_inject_layers", il);
  json_object_set_boolean_member (o, "zero_init", TRUE);
  json_object_set_boolean_member (o, "zero_timestep", c->zero_timestep);
  json_object_set_boolean_member (o, "enable_motioner", FALSE);
  json_object_set_boolean_member (o, "add_last_motion", TRUE);
  json_object_set_boolean_member (o, "enable_tsm", FALSE);
  json_object_set_boolean_member (o, "trainable_token_pos_emb", FALSE);
  json_object_set_int_member (o, "motion_token_num", 1024);
  json_object_set_boolean_member (o, "enable_framepack", c->enable_framepack);
  json_object_set_string_member (o, "framepack_drop_mode", "padd");
  return o;
}

gboolean
la_dit_config_write_json_file (const LaDitConfig *c, const char *path, GError **error)
{
  g_autoptr (JsonGenerator) g = json_generator_new ();
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (root, la_dit_config_to_json_object (c));
  json_generator_set_root (g, root);
  json_generator_set_pretty (g, TRUE);
  return json_generator_to_file (g, path, error);
}
