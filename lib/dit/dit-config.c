/* dit-config.c — LaDitConfig <-> the checkpoint's config.json.
 *
 * The official model is built with from_pretrained(ckpt_dir) (docs/design/model.md §1.1).
 * diffusers' register_to_config leaves the constructor arguments named in
 * ignore_for_config (patch_size, cross_attn_norm, qk_norm, text_dim,
 * window_size) out of the file, and from_pretrained then takes the
 * constructor's defaults for every absent key.  So do we: the defaults below
 * are those of LiveAvatar's CausalWanModel_S2V.__init__ (the same as Wan2.2's
 * WanModel_S2V, plus cross_attn_type / slide_motion_frames /
 * local_attn_size).  Keys we do not know (_class_name, _diffusers_version,
 * ...) are ignored with a debug line; values that contradict each other are
 * refused naming both keys.  The writer follows register_to_config too: the
 * ignored keys are written only when they differ from the default (a tiny
 * text_dim), so a generated config.json reads like the published one.
 */
#include <string.h>
#include "la-dit.h"
#include "liveavatar/la-error.h"
#include "la-json.h"

/* Published as _diffusers_version by our writer; the value is not read. */
#define LA_DIFFUSERS_VERSION "0.35.1"

static const int default_inject[] = { 0, 4, 8, 12, 16, 20, 24, 27 };

/* Every key the constructor takes; anything else is logged and ignored. */
static const char *const known_keys[] = {
  "cross_attn_type", "cond_dim", "audio_dim", "num_audio_token", "enable_adain", "adain_mode",
  "audio_inject_layers", "zero_init", "zero_timestep", "enable_motioner", "add_last_motion",
  "enable_tsm", "trainable_token_pos_emb", "motion_token_num", "enable_framepack",
  "framepack_drop_mode", "model_type", "patch_size", "text_len", "in_dim", "dim", "ffn_dim",
  "freq_dim", "text_dim", "out_dim", "num_heads", "num_layers", "window_size", "qk_norm",
  "cross_attn_norm", "eps", "slide_motion_frames", "local_attn_size", NULL
};

static gboolean
get_int (JsonObject *o, const char *k, int *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, k);
  if (!n)
    return TRUE;                          /* the default already in *out */
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64 ||
      json_node_get_int (n) < G_MININT || json_node_get_int (n) > G_MAXINT) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: key '%s' is not an integer", k);
    return FALSE;
  }
  *out = (int) json_node_get_int (n);
  return TRUE;
}

static gboolean
get_bool (JsonObject *o, const char *k, gboolean *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, k);
  if (!n)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: key '%s' is not a boolean", k);
    return FALSE;
  }
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* A string key that must equal `want` when present (its default). */
static gboolean
check_string (JsonObject *o, const char *k, const char *want, GError **error)
{
  JsonNode *n = json_object_get_member (o, k);
  if (!n)
    return TRUE;
  const char *v = JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ?
      json_node_get_string (n) : NULL;
  if (!v || strcmp (v, want) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "DiT config: %s = '%s' is not supported (only '%s')",
                 k, v ? v : "(not a string)", want);
    return FALSE;
  }
  return TRUE;
}

/* An integer list of at most `max` entries; *n untouched when absent. */
static gboolean
get_int_list (JsonObject *o, const char *k, int *out, int *n, int min_len, int max_len, GError **error)
{
  JsonNode *node = json_object_get_member (o, k);
  if (!node)
    return TRUE;
  JsonArray *a = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  int len = a ? (int) json_array_get_length (a) : -1;
  if (!a || len < min_len || len > max_len) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: '%s' must be a list of %d to %d integers", k,
                 min_len, max_len);
    return FALSE;
  }
  for (int i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_INT64) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: '%s'[%d] is not an integer", k, i);
      return FALSE;
    }
    out[i] = (int) json_node_get_int (e);
  }
  *n = len;
  return TRUE;
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

/* The constructor's defaults, for keys config.json leaves out. */
static void
init_defaults (LaDitConfig *c)
{
  memset (c, 0, sizeof *c);
  c->dim = 2048; c->ffn_dim = 8192; c->freq_dim = 256; c->text_dim = 4096;
  c->num_heads = 16; c->num_layers = 32; c->in_dim = 16; c->out_dim = 16;
  c->audio_dim = 5120; c->num_audio_token = 4; c->text_len = 512; c->cond_dim = 0;
  c->patch_size[0] = 1; c->patch_size[1] = 2; c->patch_size[2] = 2;
  c->eps = 1e-6;
  c->n_inject = G_N_ELEMENTS (default_inject);
  memcpy (c->audio_inject_layers, default_inject, sizeof default_inject);
  c->zero_timestep = c->enable_framepack = c->enable_adain = FALSE;
}

gboolean
la_dit_config_validate (const LaDitConfig *c, GError **error)
{
  char bad[200] = "";
#define BAD(...) g_snprintf (bad, sizeof bad, __VA_ARGS__)
  if (c->dim <= 0 || c->num_heads <= 0 || c->dim % c->num_heads)
    BAD ("dim = %d is not a positive multiple of num_heads = %d", c->dim, c->num_heads);
  else if ((c->dim / c->num_heads) % 2)
    BAD ("dim = %d / num_heads = %d gives an odd head_dim (RoPE needs pairs)", c->dim, c->num_heads);
  else if ((c->dim / c->num_heads) / 2 < 3)
    BAD ("dim = %d / num_heads = %d gives a head_dim too small for the 3-D RoPE split", c->dim, c->num_heads);
  else if (c->num_layers <= 0 || c->ffn_dim <= 0 || c->freq_dim <= 0 || c->freq_dim % 2)
    BAD ("num_layers = %d, ffn_dim = %d, freq_dim = %d (positive, freq_dim even)", c->num_layers, c->ffn_dim,
         c->freq_dim);
  else if (c->in_dim <= 0 || c->out_dim <= 0 || c->text_dim <= 0 || c->text_len <= 0)
    BAD ("in_dim = %d, out_dim = %d, text_dim = %d, text_len = %d (all positive)", c->in_dim, c->out_dim,
         c->text_dim, c->text_len);
  else if (c->patch_size[0] != 1 || c->patch_size[1] <= 0 || c->patch_size[2] <= 0)
    BAD ("patch_size must be (1, ph, pw)");
  else if (c->audio_dim <= 0 || c->num_audio_token <= 0 || c->dim % c->num_audio_token)
    BAD ("dim = %d is not a multiple of num_audio_token = %d (audio_dim = %d)", c->dim, c->num_audio_token,
         c->audio_dim);
  else if (c->cond_dim <= 0)
    BAD ("cond_dim = %d: Live Avatar adds the cond_encoder (pose) branch, which needs cond_dim > 0", c->cond_dim);
  else if (!(c->eps > 0))
    BAD ("eps must be positive");
#undef BAD
  if (*bad) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "DiT config: %s", bad);
    return FALSE;
  }
  for (int j = 0; j < c->n_inject; j++) {
    int l = c->audio_inject_layers[j];
    if (l < 0 || l >= c->num_layers || (j > 0 && l <= c->audio_inject_layers[j - 1])) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                   "DiT config: audio_inject_layers[%d] = %d contradicts num_layers = %d "
                   "(entries must increase, within 0..%d)", j, l, c->num_layers, c->num_layers - 1);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
la_dit_config_from_json_object (LaDitConfig *c, JsonObject *o, GError **error)
{
  init_defaults (c);
  gboolean motioner = TRUE, qk_norm = TRUE, cross_norm = TRUE;
  int window[2] = { -1, -1 }, n_window = 2, n_patch = 3;
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *m = members; m; m = m->next)
    if (!g_strv_contains (known_keys, m->data))
      g_debug ("DiT config: ignoring unknown key '%s'", (const char *) m->data);
  if (!get_int (o, "dim", &c->dim, error) || !get_int (o, "ffn_dim", &c->ffn_dim, error) ||
      !get_int (o, "freq_dim", &c->freq_dim, error) || !get_int (o, "text_dim", &c->text_dim, error) ||
      !get_int (o, "num_heads", &c->num_heads, error) || !get_int (o, "num_layers", &c->num_layers, error) ||
      !get_int (o, "in_dim", &c->in_dim, error) || !get_int (o, "out_dim", &c->out_dim, error) ||
      !get_int (o, "audio_dim", &c->audio_dim, error) ||
      !get_int (o, "num_audio_token", &c->num_audio_token, error) ||
      !get_int (o, "text_len", &c->text_len, error) || !get_int (o, "cond_dim", &c->cond_dim, error) ||
      !get_int_list (o, "patch_size", c->patch_size, &n_patch, 3, 3, error) ||
      !get_int_list (o, "window_size", window, &n_window, 2, 2, error) ||
      !get_int_list (o, "audio_inject_layers", c->audio_inject_layers, &c->n_inject, 0, LA_DIT_MAX_INJECT, error) ||
      !get_bool (o, "zero_timestep", &c->zero_timestep, error) ||
      !get_bool (o, "enable_framepack", &c->enable_framepack, error) ||
      !get_bool (o, "enable_adain", &c->enable_adain, error) ||
      !get_bool (o, "enable_motioner", &motioner, error) ||
      !get_bool (o, "qk_norm", &qk_norm, error) || !get_bool (o, "cross_attn_norm", &cross_norm, error) ||
      !check_string (o, "model_type", "s2v", error) || !check_string (o, "adain_mode", "attn_norm", error) ||
      !check_string (o, "cross_attn_type", "t2v_cross_attn", error))
    return FALSE;
  if (json_object_has_member (o, "eps")) {
    JsonNode *n = json_object_get_member (o, "eps");
    GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
    if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "DiT config: key 'eps' is not a number");
      return FALSE;
    }
    c->eps = json_node_get_double (n);
  }
  if (motioner && c->enable_framepack) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "DiT config: enable_motioner and enable_framepack are both true (mutually exclusive; "
                 "enable_motioner defaults to true when absent)");
    return FALSE;
  }
  if (!c->zero_timestep || !c->enable_framepack || !c->enable_adain) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "DiT config: only zero_timestep, enable_framepack and enable_adain = true are supported "
                 "(the Live Avatar path; absent keys take the constructor default, false)");
    return FALSE;
  }
  if (!qk_norm || !cross_norm || window[0] != -1 || window[1] != -1) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "DiT config: only qk_norm = cross_attn_norm = true and window_size = [-1, -1] are supported");
    return FALSE;
  }
  return la_dit_config_validate (c, error);
}

gboolean
la_dit_config_from_json_file (LaDitConfig *c, const char *path, GError **error)
{
  g_autoptr (JsonParser) p = la_json_parse_file (path, LA_JSON_DEPTH_CONFIG, error);
  if (!p) {
    g_prefix_error (error, "DiT config: ");
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
  json_object_set_string_member (o, "_diffusers_version", LA_DIFFUSERS_VERSION);
  json_object_set_string_member (o, "model_type", "s2v");
  /* ignore_for_config keys: only when they differ from the default */
  if (c->patch_size[0] != 1 || c->patch_size[1] != 2 || c->patch_size[2] != 2) {
    JsonArray *ps = json_array_new ();
    for (int i = 0; i < 3; i++)
      json_array_add_int_element (ps, c->patch_size[i]);
    json_object_set_array_member (o, "patch_size", ps);
  }
  if (c->text_dim != 4096)
    json_object_set_int_member (o, "text_dim", c->text_dim);
  json_object_set_int_member (o, "text_len", c->text_len);
  json_object_set_int_member (o, "in_dim", c->in_dim);
  json_object_set_int_member (o, "dim", c->dim);
  json_object_set_int_member (o, "ffn_dim", c->ffn_dim);
  json_object_set_int_member (o, "freq_dim", c->freq_dim);
  json_object_set_int_member (o, "out_dim", c->out_dim);
  json_object_set_int_member (o, "num_heads", c->num_heads);
  json_object_set_int_member (o, "num_layers", c->num_layers);
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
