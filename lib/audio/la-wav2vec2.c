/* la-wav2vec2.c — wav2vec2 (HF Wav2Vec2ForCTC, stable-layer-norm variant) as
 * LiveAvatar runs it (docs/design/audio-path.md §3), time-major throughout ([T, C]).
 *
 *   x_0 = input_values [N, 1]
 *   x_i = GELU(LN_c(Conv1d_i(x_{i-1})))            i = 0..n_conv-1, no padding
 *   p   = Linear(LN(x_last))                       feature projection -> [T, H]
 *   pc  = Conv1d_g(p; W = g·v/||v||_{dims 0,1} per tap, zero pad K/2 both sides)
 *   h0  = p + GELU(pc[:T])                         SamePad drops the last step for even K
 *   h_l = h + Attn(LN1(h)); h_l += W2·GELU(W1·LN2(h_l))   pre-LN layers
 *   hidden states = [h0, h1 .. h_{L-1}, LN_final(h_L)]   only the last one normed
 */
#include "la-audio.h"
#include "la-audio-private.h"
#include "la-json.h"
#include "la-ops.h"
#include <math.h>
#include <string.h>

typedef struct {
  LaTensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
  LaTensor *ln1_w, *ln1_b, *ln2_w, *ln2_b, *ff1_w, *ff1_b, *ff2_w, *ff2_b;
} W2vLayer;

struct _LaWav2Vec2 {
  LaBackend *be;
  LaWav2Vec2Config cfg;
  LaTensor *conv_w[LA_W2V_MAX_CONV], *conv_b[LA_W2V_MAX_CONV];
  LaTensor *conv_ln_w[LA_W2V_MAX_CONV], *conv_ln_b[LA_W2V_MAX_CONV];
  LaTensor *fp_ln_w, *fp_ln_b, *fp_w, *fp_b;
  LaTensor *pos_w, *pos_b;          /* pos_w: the folded weight-norm kernel */
  LaTensor *enc_ln_w, *enc_ln_b;
  W2vLayer *layers;
};

/* ---- config ---- */

void
la_wav2vec2_config_init_large (LaWav2Vec2Config *cfg)
{
  static const int k[7] = { 10, 3, 3, 3, 3, 2, 2 }, s[7] = { 5, 2, 2, 2, 2, 2, 2 };
  memset (cfg, 0, sizeof *cfg);
  cfg->hidden_size = 1024;
  cfg->num_layers = 24;
  cfg->num_heads = 16;
  cfg->intermediate_size = 4096;
  cfg->vocab_size = 33;
  cfg->n_conv = 7;
  for (int i = 0; i < 7; i++) {
    cfg->conv_dim[i] = 512;
    cfg->conv_kernel[i] = k[i];
    cfg->conv_stride[i] = s[i];
  }
  cfg->conv_bias = TRUE;
  cfg->pos_kernel = 128;
  cfg->pos_groups = 16;
  cfg->eps = 1e-5;
}

/* config.json is read as transformers' Wav2Vec2Config does: an absent key
 * takes the class default (hidden_size 768, 12 layers and heads,
 * intermediate 3072, conv_bias false, feat_extract_norm "group",
 * do_stable_layer_norm false, ...), keys we do not use are logged at debug
 * level, and values that contradict each other are refused naming both. */
static const char *const w2v_used_keys[] = {
  "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
  "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "vocab_size", "conv_dim", "conv_kernel",
  "conv_stride", "num_feat_extract_layers", "layer_norm_eps", "conv_bias", "feat_extract_norm",
  "feat_extract_activation", "hidden_act", "do_stable_layer_norm", NULL
};

static gboolean
json_int_member (JsonObject *o, const char *name, int *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  if (!n)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64 ||
      json_node_get_int (n) < G_MININT || json_node_get_int (n) > G_MAXINT) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "wav2vec2 config: '%s' is not an integer", name);
    return FALSE;
  }
  *out = (int) json_node_get_int (n);
  return TRUE;
}

static gboolean
json_int_array (JsonObject *o, const char *name, int *out, int *n, GError **error)
{
  JsonNode *node = json_object_get_member (o, name);
  if (!node)
    return TRUE;
  JsonArray *a = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  guint len = a ? json_array_get_length (a) : 0;
  if (!a || len == 0 || len > LA_W2V_MAX_CONV) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "wav2vec2 config: '%s' must be a list of 1 to %d integers",
                 name, LA_W2V_MAX_CONV);
    return FALSE;
  }
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_INT64) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "wav2vec2 config: '%s'[%u] is not an integer", name, i);
      return FALSE;
    }
    out[i] = (int) json_node_get_int (e);
  }
  *n = (int) len;
  return TRUE;
}

static gboolean
json_bool (JsonObject *o, const char *name, gboolean *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  if (!n)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "wav2vec2 config: '%s' is not a boolean", name);
    return FALSE;
  }
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* A string key whose value (or HF default `def` when absent) must be `want`. */
static gboolean
json_check_string (JsonObject *o, const char *name, const char *def, const char *want, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  const char *v = !n ? def : JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ?
      json_node_get_string (n) : NULL;
  if (!v || strcmp (v, want) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "wav2vec2 config: %s = '%s'%s (only '%s' is supported)",
                 name, v ? v : "?", n ? "" : " (absent: the HF default)", want);
    return FALSE;
  }
  return TRUE;
}

gboolean
la_wav2vec2_config_from_json (JsonObject *o, LaWav2Vec2Config *cfg, GError **error)
{
  static const int k[7] = { 10, 3, 3, 3, 3, 2, 2 }, st[7] = { 5, 2, 2, 2, 2, 2, 2 };
  memset (cfg, 0, sizeof *cfg);
  cfg->hidden_size = 768;
  cfg->num_layers = 12;
  cfg->num_heads = 12;
  cfg->intermediate_size = 3072;
  cfg->pos_kernel = 128;
  cfg->pos_groups = 16;
  cfg->vocab_size = 32;
  cfg->conv_bias = FALSE;
  cfg->eps = 1e-5;
  int n_dim = 7, n_kernel = 7, n_stride = 7, n_feat = -1;
  for (int i = 0; i < 7; i++) {
    cfg->conv_dim[i] = 512;
    cfg->conv_kernel[i] = k[i];
    cfg->conv_stride[i] = st[i];
  }
  gboolean stable = FALSE;
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *m = members; m; m = m->next)
    if (!g_strv_contains (w2v_used_keys, m->data))
      g_debug ("wav2vec2 config: ignoring key '%s'", (const char *) m->data);
  if (!json_int_member (o, "hidden_size", &cfg->hidden_size, error) ||
      !json_int_member (o, "num_hidden_layers", &cfg->num_layers, error) ||
      !json_int_member (o, "num_attention_heads", &cfg->num_heads, error) ||
      !json_int_member (o, "intermediate_size", &cfg->intermediate_size, error) ||
      !json_int_member (o, "num_conv_pos_embeddings", &cfg->pos_kernel, error) ||
      !json_int_member (o, "num_conv_pos_embedding_groups", &cfg->pos_groups, error) ||
      !json_int_member (o, "vocab_size", &cfg->vocab_size, error) ||
      !json_int_member (o, "num_feat_extract_layers", &n_feat, error) ||
      !json_int_array (o, "conv_dim", cfg->conv_dim, &n_dim, error) ||
      !json_int_array (o, "conv_kernel", cfg->conv_kernel, &n_kernel, error) ||
      !json_int_array (o, "conv_stride", cfg->conv_stride, &n_stride, error) ||
      !json_bool (o, "conv_bias", &cfg->conv_bias, error) ||
      !json_bool (o, "do_stable_layer_norm", &stable, error))
    return FALSE;
  if (json_object_has_member (o, "layer_norm_eps")) {
    JsonNode *n = json_object_get_member (o, "layer_norm_eps");
    GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
    if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "wav2vec2 config: 'layer_norm_eps' is not a number");
      return FALSE;
    }
    cfg->eps = json_node_get_double (n);
  }
  if (n_dim != n_kernel || n_dim != n_stride) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "wav2vec2 config: conv_dim (%d entries), conv_kernel (%d) and conv_stride (%d) disagree",
                 n_dim, n_kernel, n_stride);
    return FALSE;
  }
  if (n_feat >= 0 && n_feat != n_dim) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "wav2vec2 config: num_feat_extract_layers = %d but conv_dim has %d entries", n_feat, n_dim);
    return FALSE;
  }
  cfg->n_conv = n_dim;
  if (!json_check_string (o, "feat_extract_norm", "group", "layer", error) ||
      !json_check_string (o, "feat_extract_activation", "gelu", "gelu", error) ||
      !json_check_string (o, "hidden_act", "gelu", "gelu", error))
    return FALSE;
  if (!stable) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "wav2vec2 config: do_stable_layer_norm = false%s is not supported (the large-xlsr models set true)",
                 json_object_has_member (o, "do_stable_layer_norm") ? "" : " (absent: the HF default)");
    return FALSE;
  }
  if (cfg->hidden_size <= 0 || cfg->num_heads <= 0 || cfg->hidden_size % cfg->num_heads) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "wav2vec2 config: hidden_size = %d is not a positive multiple of num_attention_heads = %d",
                 cfg->hidden_size, cfg->num_heads);
    return FALSE;
  }
  if (cfg->pos_groups <= 0 || cfg->hidden_size % cfg->pos_groups || cfg->pos_kernel <= 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "wav2vec2 config: hidden_size = %d is not a multiple of num_conv_pos_embedding_groups = %d "
                 "(or num_conv_pos_embeddings = %d is not positive)", cfg->hidden_size, cfg->pos_groups,
                 cfg->pos_kernel);
    return FALSE;
  }
  if (cfg->num_layers < 1 || cfg->intermediate_size <= 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "wav2vec2 config: num_hidden_layers = %d and intermediate_size = %d must be positive",
                 cfg->num_layers, cfg->intermediate_size);
    return FALSE;
  }
  for (int i = 0; i < cfg->n_conv; i++)
    if (cfg->conv_dim[i] <= 0 || cfg->conv_kernel[i] <= 0 || cfg->conv_stride[i] <= 0) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "wav2vec2 config: conv layer %d has a non-positive size", i);
      return FALSE;
    }
  return TRUE;
}

gboolean
la_wav2vec2_config_load (const char *config_json, LaWav2Vec2Config *cfg, GError **error)
{
  g_autoptr (JsonParser) p = la_json_parse_file (config_json, LA_JSON_DEPTH_CONFIG, error);
  if (!p)
    return FALSE;
  JsonNode *root = json_parser_get_root (p);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: not a JSON object", config_json);
    return FALSE;
  }
  if (!la_wav2vec2_config_from_json (json_node_get_object (root), cfg, error)) {
    g_prefix_error (error, "%s: ", config_json);
    return FALSE;
  }
  return TRUE;
}

char *
la_wav2vec2_config_to_json (const LaWav2Vec2Config *c)
{
  GString *s = g_string_new ("{\n  \"architectures\": [\"Wav2Vec2ForCTC\"],\n  \"model_type\": \"wav2vec2\",\n");
  const int *arrs[3] = { c->conv_dim, c->conv_kernel, c->conv_stride };
  const char *names[3] = { "conv_dim", "conv_kernel", "conv_stride" };
  for (int a = 0; a < 3; a++) {
    g_string_append_printf (s, "  \"%s\": [", names[a]);
    for (int i = 0; i < c->n_conv; i++)
      g_string_append_printf (s, "%s%d", i ? ", " : "", arrs[a][i]);
    g_string_append (s, "],\n");
  }
  g_string_append_printf (s,
      "  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
      "  \"intermediate_size\": %d,\n  \"num_conv_pos_embeddings\": %d,\n"
      "  \"num_conv_pos_embedding_groups\": %d,\n  \"num_feat_extract_layers\": %d,\n"
      "  \"vocab_size\": %d,\n  \"layer_norm_eps\": %g,\n  \"conv_bias\": %s,\n"
      "  \"feat_extract_norm\": \"layer\",\n  \"do_stable_layer_norm\": true,\n"
      "  \"feat_extract_activation\": \"gelu\",\n  \"hidden_act\": \"gelu\"\n}\n",
      c->hidden_size, c->num_layers, c->num_heads, c->intermediate_size, c->pos_kernel,
      c->pos_groups, c->n_conv, c->vocab_size, c->eps, c->conv_bias ? "true" : "false");
  return g_string_free (s, FALSE);
}

int64_t
la_wav2vec2_num_frames (const LaWav2Vec2Config *cfg, int64_t n)
{
  for (int i = 0; i < cfg->n_conv; i++) {
    if (n < cfg->conv_kernel[i])
      return 0;
    n = (n - cfg->conv_kernel[i]) / cfg->conv_stride[i] + 1;
  }
  return n;
}

int64_t
la_wav2vec2_hop (const LaWav2Vec2Config *cfg)
{
  int64_t h = 1;
  for (int i = 0; i < cfg->n_conv; i++)
    h *= cfg->conv_stride[i];
  return h;
}

int64_t
la_wav2vec2_receptive_field (const LaWav2Vec2Config *cfg)
{
  /* r = k_0 + Σ_{i>0} (k_i − 1)·Π_{j<i} s_j */
  int64_t r = 1, jump = 1;
  for (int i = 0; i < cfg->n_conv; i++) {
    r += (cfg->conv_kernel[i] - 1) * jump;
    jump *= cfg->conv_stride[i];
  }
  return r;
}

/* ---- loading ---- */

/* W[o, i, k] = g[k] · v[o, i, k] / ||v[:, :, k]|| (torch weight_norm with dim = 2:
 * the norm runs over every dim except the kernel tap). Norm in double. */
static LaTensor *
fold_weight_norm (LaTensor *g, LaTensor *v)
{
  g_autoptr (LaTensor) g32 = la_tensor_as_f32 (g);
  g_autoptr (LaTensor) v32 = la_tensor_as_f32 (v);
  const int64_t O = v->shape[0], I = v->shape[1], K = v->shape[2];
  LaTensor *w = la_tensor_new (LA_DTYPE_F32, 3, v->shape);
  const float *vd = la_tensor_f32 (v32), *gd = la_tensor_f32 (g32);
  float *wd = la_tensor_f32 (w);
  for (int64_t k = 0; k < K; k++) {
    double ss = 0;
    for (int64_t oi = 0; oi < O * I; oi++)
      ss += (double) vd[oi * K + k] * vd[oi * K + k];
    float norm = (float) sqrt (ss);
    for (int64_t oi = 0; oi < O * I; oi++)
      wd[oi * K + k] = gd[k] * (vd[oi * K + k] / norm);
  }
  return w;
}

#define LOAD(dst, nd, ...) do { \
    int64_t shp_[] = { __VA_ARGS__ }; \
    (dst) = la_weight_require (wb, name, (nd) == 2, nd, shp_, error); \
    if (!(dst)) goto fail; \
  } while (0)

LaWav2Vec2 *
la_wav2vec2_new (LaBackend *be, const LaWav2Vec2Config *cfg, LaCheckpoint *ck, GError **error)
{
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, LA_WEIGHTS_F32);
  return la_wav2vec2_new_bound (cfg, &wb, error);
}

/* 2-D tensors of wav2vec2 are all linear weights (projection, q/k/v/out,
 * feed-forward); conv kernels and norms are f32. */
LaWav2Vec2 *
la_wav2vec2_new_bound (const LaWav2Vec2Config *cfg, LaWeightBinder *wb, GError **error)
{
  LaBackend *be = wb->be;
  LaCheckpoint *ck = wb->ck;
  LaWav2Vec2 *m = g_new0 (LaWav2Vec2, 1);
  m->be = la_backend_ref (be);
  m->cfg = *cfg;
  const int64_t H = cfg->hidden_size, FF = cfg->intermediate_size;
  char name[256];
  int64_t cin = 1;
  for (int i = 0; i < cfg->n_conv; i++) {
    const char *pre = "wav2vec2.feature_extractor.conv_layers";
    g_snprintf (name, sizeof name, "%s.%d.conv.weight", pre, i);
    LOAD (m->conv_w[i], 3, cfg->conv_dim[i], cin, cfg->conv_kernel[i]);
    if (cfg->conv_bias) {
      g_snprintf (name, sizeof name, "%s.%d.conv.bias", pre, i);
      LOAD (m->conv_b[i], 1, cfg->conv_dim[i]);
    }
    g_snprintf (name, sizeof name, "%s.%d.layer_norm.weight", pre, i);
    LOAD (m->conv_ln_w[i], 1, cfg->conv_dim[i]);
    g_snprintf (name, sizeof name, "%s.%d.layer_norm.bias", pre, i);
    LOAD (m->conv_ln_b[i], 1, cfg->conv_dim[i]);
    cin = cfg->conv_dim[i];
  }
  g_strlcpy (name, "wav2vec2.feature_projection.layer_norm.weight", sizeof name);
  LOAD (m->fp_ln_w, 1, cin);
  g_strlcpy (name, "wav2vec2.feature_projection.layer_norm.bias", sizeof name);
  LOAD (m->fp_ln_b, 1, cin);
  g_strlcpy (name, "wav2vec2.feature_projection.projection.weight", sizeof name);
  LOAD (m->fp_w, 2, H, cin);
  g_strlcpy (name, "wav2vec2.feature_projection.projection.bias", sizeof name);
  LOAD (m->fp_b, 1, H);

  /* Positional conv: legacy weight_norm (weight_g / weight_v) or
   * parametrizations (original0 = g, original1 = v). */
  {
    const char *pc = "wav2vec2.encoder.pos_conv_embed.conv";
    char gname[256], vname[256];
    g_snprintf (gname, sizeof gname, "%s.weight_g", pc);
    g_snprintf (vname, sizeof vname, "%s.weight_v", pc);
    if (!la_checkpoint_get (ck, gname)) {
      g_snprintf (gname, sizeof gname, "%s.parametrizations.weight.original0", pc);
      g_snprintf (vname, sizeof vname, "%s.parametrizations.weight.original1", pc);
    }
    int64_t gs[3] = { 1, 1, cfg->pos_kernel };
    int64_t vs[3] = { H, H / cfg->pos_groups, cfg->pos_kernel };
    LaTensor *g = la_checkpoint_require (ck, gname, 3, gs, error);
    if (!g) {
      g_prefix_error (error, "positional conv (weight_g or parametrizations.weight.original0): ");
      goto fail;
    }
    LaTensor *v = la_checkpoint_require (ck, vname, 3, vs, error);
    if (!v)
      goto fail;
    g_autoptr (LaTensor) w = fold_weight_norm (g, v);
    m->pos_w = la_alloc (be, LA_DTYPE_F32, 3, vs);
    la_copy (be, m->pos_w, w);
    wb->bytes[LA_DTYPE_F32] += la_tensor_nbytes (m->pos_w);
    if (wb->release) {
      la_checkpoint_release (ck, gname);
      la_checkpoint_release (ck, vname);
    }
    g_snprintf (name, sizeof name, "%s.bias", pc);
    LOAD (m->pos_b, 1, H);
  }
  g_strlcpy (name, "wav2vec2.encoder.layer_norm.weight", sizeof name);
  LOAD (m->enc_ln_w, 1, H);
  g_strlcpy (name, "wav2vec2.encoder.layer_norm.bias", sizeof name);
  LOAD (m->enc_ln_b, 1, H);

  m->layers = g_new0 (W2vLayer, cfg->num_layers);
  for (int l = 0; l < cfg->num_layers; l++) {
    W2vLayer *L = &m->layers[l];
    struct { LaTensor **dst; const char *sub; int nd; int64_t a, b; } t[] = {
      { &L->q_w, "attention.q_proj.weight", 2, H, H }, { &L->q_b, "attention.q_proj.bias", 1, H, 0 },
      { &L->k_w, "attention.k_proj.weight", 2, H, H }, { &L->k_b, "attention.k_proj.bias", 1, H, 0 },
      { &L->v_w, "attention.v_proj.weight", 2, H, H }, { &L->v_b, "attention.v_proj.bias", 1, H, 0 },
      { &L->o_w, "attention.out_proj.weight", 2, H, H }, { &L->o_b, "attention.out_proj.bias", 1, H, 0 },
      { &L->ln1_w, "layer_norm.weight", 1, H, 0 }, { &L->ln1_b, "layer_norm.bias", 1, H, 0 },
      { &L->ln2_w, "final_layer_norm.weight", 1, H, 0 }, { &L->ln2_b, "final_layer_norm.bias", 1, H, 0 },
      { &L->ff1_w, "feed_forward.intermediate_dense.weight", 2, FF, H },
      { &L->ff1_b, "feed_forward.intermediate_dense.bias", 1, FF, 0 },
      { &L->ff2_w, "feed_forward.output_dense.weight", 2, H, FF },
      { &L->ff2_b, "feed_forward.output_dense.bias", 1, H, 0 },
    };
    for (guint i = 0; i < G_N_ELEMENTS (t); i++) {
      g_snprintf (name, sizeof name, "wav2vec2.encoder.layers.%d.%s", l, t[i].sub);
      int64_t shp[2] = { t[i].a, t[i].b };
      *t[i].dst = la_weight_require (wb, name, t[i].nd == 2, t[i].nd, shp, error);
      if (!*t[i].dst)
        goto fail;
    }
  }
  return m;
fail:
  la_wav2vec2_free (m);
  return NULL;
}

LaWav2Vec2 *
la_wav2vec2_open (LaBackend *be, const char *folder, GError **error)
{
  return la_wav2vec2_open_full (be, folder, LA_WEIGHTS_FILE, NULL, error);
}

LaWav2Vec2 *
la_wav2vec2_open_full (LaBackend *be, const char *folder, LaWeights weights, guint64 *resident,
                       GError **error)
{
  LaWav2Vec2Config cfg;
  g_autofree char *cj = g_build_filename (folder, "config.json", NULL);
  if (!la_wav2vec2_config_load (cj, &cfg, error))
    return NULL;
  g_autofree char *st = g_build_filename (folder, "model.safetensors", NULL);
  g_autofree char *pt = g_build_filename (folder, "pytorch_model.bin", NULL);
  g_autoptr (LaCheckpoint) ck = NULL;
  if (g_file_test (st, G_FILE_TEST_EXISTS))
    ck = la_checkpoint_open (st, error);
  else if (g_file_test (pt, G_FILE_TEST_EXISTS))
    ck = la_checkpoint_open (pt, error);
  else {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
                 "%s: neither model.safetensors nor pytorch_model.bin", folder);
    return NULL;
  }
  if (!ck)
    return NULL;
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, weights);
  wb.release = TRUE;
  LaWav2Vec2 *m = la_wav2vec2_new_bound (&cfg, &wb, error);
  if (resident)
    memcpy (resident, wb.bytes, sizeof wb.bytes);
  return m;
}

void
la_wav2vec2_free (LaWav2Vec2 *m)
{
  if (!m)
    return;
  for (int i = 0; i < LA_W2V_MAX_CONV; i++) {
    LA_AUDIO_CLEAR (m->conv_w[i]);
    LA_AUDIO_CLEAR (m->conv_b[i]);
    LA_AUDIO_CLEAR (m->conv_ln_w[i]);
    LA_AUDIO_CLEAR (m->conv_ln_b[i]);
  }
  LA_AUDIO_CLEAR (m->fp_ln_w);
  LA_AUDIO_CLEAR (m->fp_ln_b);
  LA_AUDIO_CLEAR (m->fp_w);
  LA_AUDIO_CLEAR (m->fp_b);
  LA_AUDIO_CLEAR (m->pos_w);
  LA_AUDIO_CLEAR (m->pos_b);
  LA_AUDIO_CLEAR (m->enc_ln_w);
  LA_AUDIO_CLEAR (m->enc_ln_b);
  if (m->layers)
    for (int l = 0; l < m->cfg.num_layers; l++) {
      LaTensor **p = (LaTensor **) &m->layers[l];
      for (guint i = 0; i < sizeof (W2vLayer) / sizeof (LaTensor *); i++)
        LA_AUDIO_CLEAR (p[i]);
    }
  g_free (m->layers);
  la_backend_unref (m->be);
  g_free (m);
}

const LaWav2Vec2Config *
la_wav2vec2_get_config (LaWav2Vec2 *m)
{
  return &m->cfg;
}

LaBackend *
la_wav2vec2_get_backend (LaWav2Vec2 *m)
{
  return m->be;
}

/* ---- forward ---- */

LaTensor *
la_wav2vec2_forward (LaWav2Vec2 *m, const LaTensor *input_values, LaCheckpoint *dbg, GError **error)
{
  LaBackend *be = m->be;
  const LaWav2Vec2Config *c = &m->cfg;
  const int64_t H = c->hidden_size;
  if (input_values->dtype != LA_DTYPE_F32 || input_values->ndim != 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "wav2vec2: input_values must be a 1-D f32 tensor");
    return NULL;
  }
  const int64_t N = input_values->shape[0];
  const int64_t T = la_wav2vec2_num_frames (c, N);
  if (T < 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "wav2vec2: %" G_GINT64_FORMAT " samples are fewer than one frame (%" G_GINT64_FORMAT ")",
                 N, la_wav2vec2_receptive_field (c));
    return NULL;
  }
  char name[128];
  la_audio_dbg (be, dbg, "pos_conv_embed.conv.weight_folded", m->pos_w);

  /* Feature encoder, [T_i, C_i] time-major. */
  int64_t s0[2] = { N, 1 };
  LaTensor *cur = la_audio_view (input_values, 0, 2, s0);
  if (input_values->device != LA_DEVICE_CPU || la_backend_get_device (be) != LA_DEVICE_CPU) {
    /* upload (or stay) on the backend */
    LaTensor *up = la_alloc (be, LA_DTYPE_F32, 2, s0);
    la_copy (be, up, cur);
    la_tensor_unref (cur);
    cur = up;
  }
  int64_t t = N;
  for (int i = 0; i < c->n_conv; i++) {
    t = (t - c->conv_kernel[i]) / c->conv_stride[i] + 1;
    int64_t ys[2] = { t, c->conv_dim[i] };
    LaTensor *y = la_alloc (be, LA_DTYPE_F32, 2, ys);
    la_conv1d (be, y, cur, m->conv_w[i], m->conv_b[i], c->conv_stride[i], 0, 0, FALSE, 1, FALSE);
    g_snprintf (name, sizeof name, "feature_encoder.conv%d.conv_out", i);
    la_audio_dbg (be, dbg, name, y);
    la_layer_norm (be, y, y, m->conv_ln_w[i], m->conv_ln_b[i], (float) c->eps);
    la_unary (be, LA_UNARY_GELU_ERF, y, y);
    g_snprintf (name, sizeof name, "feature_encoder.conv%d.out", i);
    la_audio_dbg (be, dbg, name, y);
    la_tensor_unref (cur);
    cur = y;
  }

  /* Feature projection. */
  la_layer_norm (be, cur, cur, m->fp_ln_w, m->fp_ln_b, (float) c->eps);
  la_audio_dbg (be, dbg, "feature_projection.layer_norm_out", cur);
  int64_t th[2] = { T, H };
  g_autoptr (LaTensor) proj = la_alloc (be, LA_DTYPE_F32, 2, th);
  la_linear (be, proj, cur, m->fp_w, m->fp_b);
  la_tensor_unref (cur);
  la_audio_dbg (be, dbg, "feature_projection.out", proj);

  /* Positional conv; SamePad removes one step when the kernel is even. */
  const int K = c->pos_kernel;
  const int64_t Tpc = T + 2 * (K / 2) - K + 1;
  int64_t pcs[2] = { Tpc, H };
  g_autoptr (LaTensor) pc = la_alloc (be, LA_DTYPE_F32, 2, pcs);
  la_conv1d (be, pc, proj, m->pos_w, m->pos_b, 1, K / 2, K / 2, FALSE, c->pos_groups, FALSE);
  la_audio_dbg (be, dbg, "pos_conv_embed.conv_out", pc);
  g_autoptr (LaTensor) pc_head = la_audio_view (pc, 0, 2, th);   /* first T steps */
  g_autoptr (LaTensor) pos = la_alloc (be, LA_DTYPE_F32, 2, th);
  la_unary (be, LA_UNARY_GELU_ERF, pos, pc_head);
  la_audio_dbg (be, dbg, "pos_conv_embed.out", pos);

  int64_t hss[3] = { c->num_layers + 1, T, H };
  LaTensor *hs = la_alloc (be, LA_DTYPE_F32, 3, hss);
  g_autoptr (LaTensor) h0 = la_audio_view (hs, 0, 2, th);
  la_axpy (be, h0, proj, 1.0f, pos);

  /* Pre-LN transformer layers. */
  int64_t tf[2] = { T, c->intermediate_size };
  g_autoptr (LaTensor) a = la_alloc (be, LA_DTYPE_F32, 2, th);
  g_autoptr (LaTensor) q = la_alloc (be, LA_DTYPE_F32, 2, th);
  g_autoptr (LaTensor) k = la_alloc (be, LA_DTYPE_F32, 2, th);
  g_autoptr (LaTensor) v = la_alloc (be, LA_DTYPE_F32, 2, th);
  g_autoptr (LaTensor) att = la_alloc (be, LA_DTYPE_F32, 2, th);
  g_autoptr (LaTensor) ff = la_alloc (be, LA_DTYPE_F32, 2, tf);
  const float scale = 1.0f / sqrtf ((float) (H / c->num_heads));
  for (int l = 0; l < c->num_layers; l++) {
    W2vLayer *L = &m->layers[l];
    g_autoptr (LaTensor) h = la_audio_view (hs, l * T * H, 2, th);
    g_autoptr (LaTensor) hn = la_audio_view (hs, (l + 1) * T * H, 2, th);
    la_layer_norm (be, a, h, L->ln1_w, L->ln1_b, (float) c->eps);
    g_snprintf (name, sizeof name, "encoder.layers.%d.layer_norm_out", l);
    la_audio_dbg (be, dbg, name, a);
    la_linear (be, q, a, L->q_w, L->q_b);
    la_linear (be, k, a, L->k_w, L->k_b);
    la_linear (be, v, a, L->v_w, L->v_b);
    la_attention (be, att, q, k, v, c->num_heads, scale, NULL);
    la_linear (be, a, att, L->o_w, L->o_b);
    g_snprintf (name, sizeof name, "encoder.layers.%d.attention_out", l);
    la_audio_dbg (be, dbg, name, a);
    la_axpy (be, hn, h, 1.0f, a);
    la_layer_norm (be, a, hn, L->ln2_w, L->ln2_b, (float) c->eps);
    g_snprintf (name, sizeof name, "encoder.layers.%d.final_layer_norm_out", l);
    la_audio_dbg (be, dbg, name, a);
    la_linear (be, ff, a, L->ff1_w, L->ff1_b);
    la_unary (be, LA_UNARY_GELU_ERF, ff, ff);
    la_linear (be, a, ff, L->ff2_w, L->ff2_b);
    g_snprintf (name, sizeof name, "encoder.layers.%d.feed_forward_out", l);
    la_audio_dbg (be, dbg, name, a);
    la_axpy (be, hn, hn, 1.0f, a);
  }
  g_autoptr (LaTensor) last = la_audio_view (hs, c->num_layers * T * H, 2, th);
  la_audio_dbg (be, dbg, "encoder.last_layer_out", last);
  la_layer_norm (be, last, last, m->enc_ln_w, m->enc_ln_b, (float) c->eps);
  if (!la_backend_sync (be, error)) {
    la_tensor_unref (hs);
    return NULL;
  }
  return hs;
}

LaTensor *
la_wav2vec2_encode_pcm (LaWav2Vec2 *m, const float *pcm, size_t n_frames, int sample_rate,
                        int channels, GError **error)
{
  if (sample_rate != LA_AUDIO_SAMPLE_RATE) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "wav2vec2: sample_rate %d Hz (must be %d; resample upstream)", sample_rate,
                 LA_AUDIO_SAMPLE_RATE);
    return NULL;
  }
  if (channels != 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "wav2vec2: %d channels (must be mono; mix down upstream)", channels);
    return NULL;
  }
  if (!pcm && n_frames) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "wav2vec2: pcm is NULL");
    return NULL;
  }
  int64_t n = (int64_t) n_frames;
  g_autoptr (LaTensor) iv = la_tensor_new (LA_DTYPE_F32, 1, &n);
  la_audio_normalize (pcm, n_frames, la_tensor_f32 (iv), NULL);
  return la_wav2vec2_forward (m, iv, NULL, error);
}
