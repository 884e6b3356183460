/* vae-config.c — VAE hyper-parameters (docs/design/vae.md §1, §6) and frame counts.
 *
 * Frame counts follow the chunked reference exactly: the encoder sees
 * chunks of 1, 4, 4, ... frames (1 + (T−1)//4 chunks); a chunk of n > 1
 * frames leaves each downsample3d as (n+1−3)/2 + 1 frames (the stored
 * frame is prepended), the first chunk's single frame stays one frame.
 * The decoder turns latent 0 into 1 frame and every later latent into
 * 2^(#upsample3d) frames.
 */
#include <string.h>
#include <json-glib/json-glib.h>
#include "vae-private.h"

static const float WAN21_MEAN[16] = {
  -0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
  0.4134f, -0.0715f, 0.5517f, -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f };
static const float WAN21_STD[16] = {
  2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
  3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f };

void
la_vae_config_wan21 (LaVaeConfig *cfg)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->dim = 96;
  cfg->z_dim = 16;
  cfg->n_levels = 4;
  const int mult[4] = { 1, 2, 4, 4 };
  for (int i = 0; i < 4; i++)
    cfg->dim_mult[i] = mult[i];
  cfg->num_res_blocks = 2;
  cfg->temperal_downsample[0] = FALSE;
  cfg->temperal_downsample[1] = TRUE;
  cfg->temperal_downsample[2] = TRUE;
  for (int i = 0; i < 16; i++) {
    cfg->mean[i] = WAN21_MEAN[i];
    cfg->std[i] = WAN21_STD[i];
  }
}

static gboolean
int_member (JsonObject *o, const char *m, int *out, GError **error)
{
  JsonNode *n = json_object_get_member (o, m);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "VAE config: member '%s' is missing or not an integer", m);
    return FALSE;
  }
  *out = (int) json_node_get_int (n);
  return TRUE;
}

gboolean
la_vae_config_from_json (LaVaeConfig *cfg, gpointer json_object, GError **error)
{
  JsonObject *o = json_object;
  if (!int_member (o, "dim", &cfg->dim, error) || !int_member (o, "z_dim", &cfg->z_dim, error)
      || !int_member (o, "num_res_blocks", &cfg->num_res_blocks, error))
    return FALSE;
  JsonNode *dmn = json_object_get_member (o, "dim_mult"), *tdn = json_object_get_member (o, "temperal_downsample");
  JsonArray *dm = dmn && JSON_NODE_HOLDS_ARRAY (dmn) ? json_node_get_array (dmn) : NULL;
  JsonArray *td = tdn && JSON_NODE_HOLDS_ARRAY (tdn) ? json_node_get_array (tdn) : NULL;
  if (!dm || !td || json_array_get_length (dm) < 2 || json_array_get_length (dm) > LA_VAE_MAX_LEVELS
      || json_array_get_length (td) != json_array_get_length (dm) - 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "VAE config: dim_mult (2..%d entries) and temperal_downsample (one fewer) are required",
                 LA_VAE_MAX_LEVELS);
    return FALSE;
  }
  cfg->n_levels = (int) json_array_get_length (dm);
  for (int i = 0; i < cfg->n_levels; i++) {
    cfg->dim_mult[i] = (int) json_array_get_int_element (dm, i);
    if (cfg->dim_mult[i] < 1) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "VAE config: dim_mult[%d] must be >= 1", i);
      return FALSE;
    }
  }
  for (int i = 0; i < cfg->n_levels - 1; i++)
    cfg->temperal_downsample[i] = json_array_get_boolean_element (td, i);
  JsonNode *asn = json_object_get_member (o, "attn_scales");
  if (asn && !JSON_NODE_HOLDS_NULL (asn)) {
    JsonArray *as = JSON_NODE_HOLDS_ARRAY (asn) ? json_node_get_array (asn) : NULL;
    if (!as || json_array_get_length (as) > 0) {
      g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                   "VAE config: attn_scales must be empty (as in Wan2.1); extra attention blocks are not implemented");
      return FALSE;
    }
  }
  if (cfg->z_dim < 1 || cfg->z_dim > 64 || cfg->dim < 1 || cfg->num_res_blocks < 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "VAE config: bad dim %d / z_dim %d",
                 cfg->dim, cfg->z_dim);
    return FALSE;
  }
  return TRUE;
}

int
la_vae_spatial_factor (const LaVaeConfig *cfg)
{
  return 1 << (cfg->n_levels - 1);
}

int
la_vae_temporal_factor (const LaVaeConfig *cfg)
{
  int f = 1;
  for (int i = 0; i < cfg->n_levels - 1; i++)
    if (cfg->temperal_downsample[i])
      f *= 2;
  return f;
}

int
la_vae_latent_frames (const LaVaeConfig *cfg, int pixel_frames)
{
  if (pixel_frames < 1)
    return 0;
  int per_chunk = 4;
  for (int i = 0; i < cfg->n_levels - 1; i++)
    if (cfg->temperal_downsample[i])
      per_chunk = (per_chunk + 1 - 3) / 2 + 1;
  return 1 + (pixel_frames - 1) / 4 * per_chunk;
}

int
la_vae_pixel_frames (const LaVaeConfig *cfg, int latent_frames)
{
  return latent_frames < 1 ? 0 : 1 + la_vae_temporal_factor (cfg) * (latent_frames - 1);
}
