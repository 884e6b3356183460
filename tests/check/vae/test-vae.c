/* test-vae.c — the VAE on configs other than the golden one (docs/design/vae.md):
 * frame counts (1/5/49/73 frames -> 1/2/13/19 latents, T latents -> 1+4(T-1)
 * frames), encoder causality (a prefix of the frames gives a prefix of the
 * latents), decode split invariance (calls [7] vs [1|6] vs [3|4], one vs
 * three latents per pass), reset, priming + first-block drop, cache size
 * against the docs/design/vae.md §5 formula, bad inputs, and the official key list of the
 * real Wan2.1_VAE.pth from la_vae_random_weights (194 tensors, 126,892,531
 * parameters).
 */
#include <math.h>
#include <string.h>
#include <liveavatar/liveavatar.h>
#include "la-vae.h"
#include "la-ops.h"
#include <json-glib/json-glib.h>
#include "la-backend-impl.h"   /* a backend with an op missing */

static LaBackend *be;

/* Config A: 4 levels like Wan but other widths/depth/z_dim.  B: 3 levels,
 * temporal downsample on the first level only (spatial 4, temporal 2). */
static void
config_a (LaVaeConfig *c)
{
  la_vae_config_wan21 (c);
  c->dim = 4;
  c->z_dim = 6;
  c->dim_mult[0] = 1; c->dim_mult[1] = 2; c->dim_mult[2] = 2; c->dim_mult[3] = 3;
  c->num_res_blocks = 1;
}

static void
config_b (LaVaeConfig *c)
{
  la_vae_config_wan21 (c);
  c->dim = 6;
  c->z_dim = 8;
  c->n_levels = 3;
  c->dim_mult[0] = 1; c->dim_mult[1] = 2; c->dim_mult[2] = 2;
  c->temperal_downsample[0] = TRUE;
  c->temperal_downsample[1] = FALSE;
  c->num_res_blocks = 2;
}

static LaTensor *
rand_tensor (int64_t c, int64_t t, int64_t h, int64_t w, guint32 seed, double lo, double hi)
{
  LaTensor *x = la_tensor_new_v (LA_DTYPE_F32, c, t, h, w, -1);
  GRand *r = g_rand_new_with_seed (seed);
  float *d = la_tensor_f32 (x);
  for (int64_t i = 0; i < la_tensor_numel (x); i++)
    d[i] = (float) g_rand_double_range (r, lo, hi);
  g_rand_free (r);
  return x;
}

static LaTensor *
slice_t (const LaTensor *x, int64_t t0, int64_t n)
{
  LaTensor *y = la_tensor_new_v (LA_DTYPE_F32, x->shape[0], n, x->shape[2], x->shape[3], -1);
  int64_t zo[4] = { 0, 0, 0, 0 }, xo[4] = { 0, t0, 0, 0 }, cnt[4] = { x->shape[0], n, x->shape[2], x->shape[3] };
  la_copy4d (be, y, zo, x, xo, cnt);
  return y;
}

static double
max_diff (const LaTensor *a, const LaTensor *b)
{
  g_assert_cmpint (la_tensor_numel (a), ==, la_tensor_numel (b));
  double m = 0;
  for (int64_t i = 0; i < la_tensor_numel (a); i++)
    m = MAX (m, fabs ((double) la_tensor_f32 (a)[i] - la_tensor_f32 (b)[i]));
  return m;
}

static LaVae *
make_vae (const LaVaeConfig *cfg, guint64 seed)
{
  g_autoptr (LaCheckpoint) ck = la_vae_random_weights (cfg, seed);
  g_autoptr (GError) e = NULL;
  LaVae *vae = la_vae_new (be, ck, cfg, &e);
  g_assert_no_error (e);
  return vae;
}

static void
test_frame_counts (void)
{
  LaVaeConfig real;
  la_vae_config_wan21 (&real);
  const int px[4] = { 1, 5, 49, 73 }, lat[4] = { 1, 2, 13, 19 };
  for (int i = 0; i < 4; i++) {
    g_assert_cmpint (la_vae_latent_frames (&real, px[i]), ==, lat[i]);
    g_assert_cmpint (la_vae_pixel_frames (&real, lat[i]), ==, px[i]);
  }
  g_assert_cmpint (la_vae_spatial_factor (&real), ==, 8);
  g_assert_cmpint (la_vae_temporal_factor (&real), ==, 4);

  /* The same counts from real encodes / decodes with a tiny network. */
  LaVaeConfig cfg;
  config_a (&cfg);
  LaVae *vae = make_vae (&cfg, 1);
  for (int i = 0; i < 4; i++) {
    g_autoptr (LaTensor) x = rand_tensor (3, px[i], 8, 16, 10 + i, -1, 1);
    g_autoptr (GError) e = NULL;
    g_autoptr (LaTensor) z = la_vae_encode (vae, x, &e);
    g_assert_no_error (e);
    g_assert_cmpint (z->shape[0], ==, cfg.z_dim);
    g_assert_cmpint (z->shape[1], ==, lat[i]);
    g_assert_cmpint (z->shape[2], ==, 1);
    g_assert_cmpint (z->shape[3], ==, 2);
    LaVaeDecoder *dec = la_vae_decoder_new (vae);
    g_autoptr (LaTensor) y = la_vae_decoder_decode (dec, z, &e);
    g_assert_no_error (e);
    g_assert_cmpint (y->shape[0], ==, 3);
    g_assert_cmpint (y->shape[1], ==, px[i]);
    g_assert_cmpint (y->shape[2], ==, 8);
    g_assert_cmpint (y->shape[3], ==, 16);
    la_vae_decoder_free (dec);
  }
  la_vae_free (vae);

  /* Config B: temporal factor 2, spatial 4 — shapes follow the config. */
  config_b (&cfg);
  g_assert_cmpint (la_vae_temporal_factor (&cfg), ==, 2);
  g_assert_cmpint (la_vae_spatial_factor (&cfg), ==, 4);
  vae = make_vae (&cfg, 2);
  g_autoptr (LaTensor) x = rand_tensor (3, 9, 12, 8, 3, -1, 1);
  g_autoptr (GError) e = NULL;
  g_autoptr (LaTensor) z = la_vae_encode (vae, x, &e);
  g_assert_no_error (e);
  g_assert_cmpint (z->shape[0], ==, 8);
  g_assert_cmpint (z->shape[1], ==, la_vae_latent_frames (&cfg, 9));
  g_assert_cmpint (z->shape[1], ==, 5);
  g_assert_cmpint (z->shape[2], ==, 3);
  g_assert_cmpint (z->shape[3], ==, 2);
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  g_autoptr (LaTensor) y = la_vae_decoder_decode (dec, z, &e);
  g_assert_no_error (e);
  g_assert_cmpint (y->shape[1], ==, la_vae_pixel_frames (&cfg, 5));
  g_assert_cmpint (y->shape[1], ==, 9);
  la_vae_decoder_free (dec);
  la_vae_free (vae);
}

static void
test_encode_causal (void)
{
  LaVaeConfig cfg;
  config_a (&cfg);
  LaVae *vae = make_vae (&cfg, 3);
  g_autoptr (LaTensor) x = rand_tensor (3, 9, 16, 8, 4, -1, 1);
  g_autoptr (LaTensor) x1 = slice_t (x, 0, 1), x5 = slice_t (x, 0, 5);
  g_autoptr (LaTensor) z9 = la_vae_encode (vae, x, NULL);
  g_autoptr (LaTensor) z1 = la_vae_encode (vae, x1, NULL);
  g_autoptr (LaTensor) z5 = la_vae_encode (vae, x5, NULL);
  g_autoptr (LaTensor) p1 = slice_t (z9, 0, 1), p5 = slice_t (z9, 0, 2);
  g_assert_cmpfloat (max_diff (z1, p1), <=, 1e-5);
  g_assert_cmpfloat (max_diff (z5, p5), <=, 1e-5);
  /* Trailing frames beyond 1+4k are ignored, as in the reference. */
  g_autoptr (LaTensor) x7 = slice_t (x, 0, 7);
  g_autoptr (LaTensor) z7 = la_vae_encode (vae, x7, NULL);
  g_assert_cmpint (z7->shape[1], ==, 2);
  g_assert_cmpfloat (max_diff (z7, z5), <=, 0);
  la_vae_free (vae);
}

static LaTensor *
decode_split (LaVae *vae, const LaTensor *z, const int *cuts, int n_cuts, int max_pass)
{
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  la_vae_decoder_set_max_pass (dec, max_pass);
  GPtrArray *parts = g_ptr_array_new_with_free_func ((GDestroyNotify) la_tensor_unref);
  int64_t frames = 0;
  for (int i = 0; i + 1 < n_cuts; i++) {
    g_autoptr (LaTensor) zi = slice_t (z, cuts[i], cuts[i + 1] - cuts[i]);
    g_autoptr (GError) e = NULL;
    LaTensor *y = la_vae_decoder_decode (dec, zi, &e);
    g_assert_no_error (e);
    frames += y->shape[1];
    g_ptr_array_add (parts, y);
  }
  LaTensor *first = parts->pdata[0];
  LaTensor *all = la_tensor_new_v (LA_DTYPE_F32, 3, frames, first->shape[2], first->shape[3], -1);
  int64_t at = 0;
  for (guint i = 0; i < parts->len; i++) {
    LaTensor *y = parts->pdata[i];
    int64_t yo[4] = { 0, at, 0, 0 }, zo[4] = { 0, 0, 0, 0 };
    la_copy4d (be, all, yo, y, zo, y->shape);
    at += y->shape[1];
  }
  g_ptr_array_unref (parts);
  la_vae_decoder_free (dec);
  return all;
}

static void
check_decode_split (const LaVaeConfig *cfg, int h, int w)
{
  LaVae *vae = make_vae (cfg, 5);
  g_autoptr (LaTensor) z = rand_tensor (cfg->z_dim, 13, h, w, 6, -2, 2);
  const int whole[2] = { 0, 13 }, tpp[4] = { 0, 7, 10, 13 }, odd[5] = { 0, 1, 7, 8, 13 };
  g_autoptr (LaTensor) ref = decode_split (vae, z, whole, 2, 1);
  g_assert_cmpint (ref->shape[1], ==, la_vae_pixel_frames (cfg, 13));
  g_autoptr (LaTensor) a = decode_split (vae, z, tpp, 4, 1);
  g_autoptr (LaTensor) b = decode_split (vae, z, tpp, 4, 3);
  g_autoptr (LaTensor) c = decode_split (vae, z, odd, 5, 12);
  g_autoptr (LaTensor) d = decode_split (vae, z, whole, 2, 12);
  g_assert_cmpfloat (max_diff (ref, a), <=, 1e-5);
  g_assert_cmpfloat (max_diff (ref, b), <=, 1e-5);
  g_assert_cmpfloat (max_diff (ref, c), <=, 1e-5);
  g_assert_cmpfloat (max_diff (ref, d), <=, 1e-5);

  /* Reset: the same decoder object gives a fresh stream again. */
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  g_autoptr (LaTensor) y1 = la_vae_decoder_decode (dec, z, NULL);
  la_vae_decoder_reset (dec);
  g_assert_cmpint (la_vae_decoder_cache_elements (dec), ==, 0);
  g_autoptr (LaTensor) y2 = la_vae_decoder_decode (dec, z, NULL);
  g_assert_cmpfloat (max_diff (y1, y2), <=, 0);
  g_assert_cmpfloat (max_diff (y1, ref), <=, 1e-5);
  /* Cache memory matches the docs/design/vae.md §5 formula. */
  g_assert_cmpint (la_vae_decoder_cache_elements (dec), ==, la_vae_decoder_cache_formula (cfg, h, w));
  /* Another latent size in the same stream is an error; after reset it is fine. */
  g_autoptr (LaTensor) z2 = rand_tensor (cfg->z_dim, 2, h + 1, w, 8, -1, 1);
  g_autoptr (GError) e = NULL;
  g_assert_null (la_vae_decoder_decode (dec, z2, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  la_vae_decoder_reset (dec);
  g_autoptr (LaTensor) y3 = la_vae_decoder_decode (dec, z2, NULL);
  g_assert_nonnull (y3);
  la_vae_decoder_free (dec);

  /* Output is clamped; all values within [-1, 1]. */
  for (int64_t i = 0; i < la_tensor_numel (ref); i++)
    g_assert_true (fabsf (la_tensor_f32 (ref)[i]) <= 1.0f);
  la_vae_free (vae);
}

static void
test_decode_split (void)
{
  LaVaeConfig cfg;
  config_a (&cfg);
  check_decode_split (&cfg, 2, 3);
  config_b (&cfg);
  check_decode_split (&cfg, 3, 2);
}

static void
test_prime_block (void)
{
  LaVaeConfig cfg;
  config_a (&cfg);
  LaVae *vae = make_vae (&cfg, 9);
  g_autoptr (LaTensor) motion = rand_tensor (cfg.z_dim, 19, 2, 2, 10, -2, 2);
  g_autoptr (LaTensor) blocks = rand_tensor (cfg.z_dim, 6, 2, 2, 11, -2, 2);
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  g_autoptr (GError) e = NULL;
  g_assert_true (la_vae_decoder_prime (dec, motion, 7, &e));
  g_autoptr (LaTensor) b0 = slice_t (blocks, 0, 3), b1 = slice_t (blocks, 3, 3);
  g_autoptr (LaTensor) y0 = la_vae_decoder_decode_block (dec, b0, 3, &e);
  g_autoptr (LaTensor) y1 = la_vae_decoder_decode_block (dec, b1, 3, &e);
  g_assert_no_error (e);
  g_assert_cmpint (y0->shape[1], ==, 9);
  g_assert_cmpint (y1->shape[1], ==, 12);
  /* Same as one continuous stream [m0..m6, b0..b5] minus the priming frames
   * (25) and the 3 dropped ones. */
  g_autoptr (LaTensor) cat = la_tensor_new_v (LA_DTYPE_F32, cfg.z_dim, 13, 2, 2, -1);
  int64_t zo[4] = { 0, 0, 0, 0 }, o7[4] = { 0, 7, 0, 0 };
  int64_t c7[4] = { cfg.z_dim, 7, 2, 2 }, c6[4] = { cfg.z_dim, 6, 2, 2 };
  la_copy4d (be, cat, zo, motion, zo, c7);
  la_copy4d (be, cat, o7, blocks, zo, c6);
  LaVaeDecoder *d2 = la_vae_decoder_new (vae);
  g_autoptr (LaTensor) all = la_vae_decoder_decode (d2, cat, &e);
  g_assert_no_error (e);
  g_assert_cmpint (all->shape[1], ==, 49);
  g_autoptr (LaTensor) w0 = slice_t (all, 28, 9), w1 = slice_t (all, 37, 12);
  g_assert_cmpfloat (max_diff (y0, w0), <=, 1e-5);
  g_assert_cmpfloat (max_diff (y1, w1), <=, 1e-5);
  /* uint8 by truncation. */
  g_autofree guint8 *rgb = la_vae_frames_to_rgb8 (be, y1, &e);
  g_assert_no_error (e);
  float v = la_tensor_f32 (y1)[0];
  g_assert_cmpint (rgb[0], ==, (guint8) floorf ((v + 1.0f) / 2.0f * 255.0f));
  la_vae_decoder_free (dec);
  la_vae_decoder_free (d2);
  la_vae_free (vae);
}

static void
test_bad_input (void)
{
  LaVaeConfig cfg;
  config_a (&cfg);
  LaVae *vae = make_vae (&cfg, 12);
  g_autoptr (GError) e = NULL;
  g_autoptr (LaTensor) bad = rand_tensor (3, 1, 12, 8, 1, -1, 1);   /* 12 not a multiple of 8 */
  g_assert_null (la_vae_encode (vae, bad, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_clear_error (&e);
  g_autoptr (LaTensor) badz = rand_tensor (cfg.z_dim + 1, 1, 2, 2, 1, -1, 1);
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  g_assert_null (la_vae_decoder_decode (dec, badz, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_clear_error (&e);
  la_vae_decoder_free (dec);
  la_vae_free (vae);

  /* A missing / mis-shaped tensor is named. */
  g_autoptr (LaCheckpoint) ck = la_vae_random_weights (&cfg, 1);
  g_assert_true (la_checkpoint_remove (ck, "decoder.upsamples.2.time_conv.weight"));
  g_assert_null (la_vae_new (be, ck, &cfg, &e));
  g_assert_nonnull (e);
  g_assert_nonnull (strstr (e->message, "decoder.upsamples.2.time_conv.weight"));
  g_clear_error (&e);
  LaVaeConfig other = cfg;
  other.dim = 5;
  g_autoptr (LaCheckpoint) ck2 = la_vae_random_weights (&cfg, 1);
  g_assert_null (la_vae_new (be, ck2, &other, &e));
  g_assert_nonnull (e);
  g_assert_nonnull (strstr (e->message, "encoder.conv1.weight"));
  g_clear_error (&e);

  /* A backend without one of the VAE ops: an error naming the op. */
  LaBackendOps partial = *be->ops;
  partial.copy4d = NULL;
  LaBackend fake = *be;
  fake.ops = &partial;
  fake.ref_count = 100;
  g_assert_null (la_vae_new (&fake, ck2, &cfg, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (e->message, "copy4d"));
}

static void
test_real_keys (void)
{
  LaVaeConfig cfg;
  la_vae_config_wan21 (&cfg);
  g_autoptr (LaCheckpoint) ck = la_vae_random_weights (&cfg, 42);
  g_assert_cmpint (la_checkpoint_size (ck), ==, 194);
  gint64 n = 0;
  for (const char * const *k = la_checkpoint_names (ck); *k; k++)
    n += la_tensor_numel (la_checkpoint_get (ck, *k));
  g_assert_cmpint (n, ==, 126892531);
  const struct { const char *name; int nd; int64_t s[5]; } want[] = {
    { "encoder.conv1.weight", 5, { 96, 3, 3, 3, 3 } },
    { "encoder.downsamples.3.shortcut.weight", 5, { 192, 96, 1, 1, 1 } },
    { "encoder.downsamples.5.time_conv.weight", 5, { 192, 192, 3, 1, 1 } },
    { "encoder.downsamples.8.resample.1.weight", 4, { 384, 384, 3, 3 } },
    { "encoder.middle.1.norm.gamma", 3, { 384, 1, 1 } },
    { "encoder.middle.1.to_qkv.weight", 4, { 1152, 384, 1, 1 } },
    { "encoder.head.2.weight", 5, { 32, 384, 3, 3, 3 } },
    { "conv1.weight", 5, { 32, 32, 1, 1, 1 } },
    { "conv2.weight", 5, { 16, 16, 1, 1, 1 } },
    { "decoder.conv1.weight", 5, { 384, 16, 3, 3, 3 } },
    { "decoder.upsamples.3.time_conv.weight", 5, { 768, 384, 3, 1, 1 } },
    { "decoder.upsamples.4.shortcut.weight", 5, { 384, 192, 1, 1, 1 } },
    { "decoder.upsamples.4.residual.0.gamma", 4, { 192, 1, 1, 1 } },
    { "decoder.upsamples.11.resample.1.weight", 4, { 96, 192, 3, 3 } },
    { "decoder.upsamples.14.residual.6.bias", 1, { 96 } },
    { "decoder.head.2.weight", 5, { 3, 96, 3, 3, 3 } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (want); i++) {
    g_autoptr (GError) e = NULL;
    g_assert_nonnull (la_checkpoint_require (ck, want[i].name, want[i].nd, want[i].s, &e));
    g_assert_no_error (e);
  }
  /* docs/design/vae.md §5: about 639 M cache elements at 384x704 (48x88 latents). */
  gint64 cache = la_vae_decoder_cache_formula (&cfg, 48, 88);
  g_assert_cmpint (cache, >, 630000000);
  g_assert_cmpint (cache, <, 645000000);
}

/* docs/design/vae.md §6 bf16 path: the constants are the bf16 values the reference uses, the
 * encoded latents are bf16-representable, BF16 latents decode. */
static void
test_bf16_norm (void)
{
  static const float mean_bf16[16] = { -0.7578125f, -0.70703125f, -0.91015625f, 0.107421875f,
    -0.1748046875f, 0.96484375f, -0.1513671875f, 1.5546875f, 0.4140625f, -0.0712890625f,
    0.55078125f, -0.36328125f, -0.1923828125f, -0.94921875f, 0.25f, -0.29296875f };
  static const float inv_bf16[16] = { 0.35546875f, 0.6875f, 0.4296875f, 0.376953125f, 0.8203125f,
    0.5625f, 0.3828125f, 0.48046875f, 0.306640625f, 0.462890625f, 0.349609375f, 0.64453125f,
    0.609375f, 0.890625f, 0.353515625f, 0.5234375f };
  LaVaeConfig cfg;
  la_vae_config_wan21 (&cfg);
  cfg.bf16_norm = TRUE;
  float m[64], s[64];
  la_vae_norm_constants (&cfg, m, s);
  for (int c = 0; c < 16; c++) {
    g_assert_cmpfloat (m[c], ==, mean_bf16[c]);
    g_assert_cmpfloat (s[c], ==, inv_bf16[c]);
  }
  cfg.bf16_norm = FALSE;
  la_vae_norm_constants (&cfg, m, s);
  g_assert_cmpfloat (s[0], ==, 1.0f / 2.8184f);

  config_a (&cfg);
  cfg.z_dim = 16;
  cfg.bf16_norm = TRUE;
  LaVae *vae = make_vae (&cfg, 21);
  g_autoptr (LaTensor) x = rand_tensor (3, 5, 8, 8, 22, -1, 1);
  g_autoptr (GError) e = NULL;
  g_autoptr (LaTensor) z = la_vae_encode (vae, x, &e);
  g_assert_no_error (e);
  for (int64_t i = 0; i < la_tensor_numel (z); i++)
    g_assert_cmpfloat (la_tensor_f32 (z)[i], ==, la_round_bf16 (la_tensor_f32 (z)[i]));
  g_autoptr (LaTensor) zb = la_tensor_to_dtype (z, LA_DTYPE_BF16);
  LaVaeDecoder *d1 = la_vae_decoder_new (vae), *d2 = la_vae_decoder_new (vae);
  g_autoptr (LaTensor) y1 = la_vae_decoder_decode (d1, z, &e);
  g_autoptr (LaTensor) y2 = la_vae_decoder_decode (d2, zb, &e);
  g_assert_no_error (e);
  g_assert_cmpint (y2->shape[1], ==, 5);
  /* Same values, other rounding of the de-normalisation: close, not far. */
  g_assert_cmpfloat (max_diff (y1, y2), <=, 0.1);
  la_vae_decoder_free (d1);
  la_vae_decoder_free (d2);
  la_vae_free (vae);
}

static gboolean
parse_cfg (const char *json, LaVaeConfig *cfg, GError **error)
{
  g_autoptr (JsonNode) n = json_from_string (json, NULL);
  g_assert_nonnull (n);
  la_vae_config_wan21 (cfg);
  return la_vae_config_from_json (cfg, json_node_get_object (n), error);
}

static void
test_config_json (void)
{
  LaVaeConfig cfg;
  g_autoptr (GError) e = NULL;
  g_assert_true (parse_cfg ("{\"dim\": 8, \"z_dim\": 16, \"dim_mult\": [1, 2, 4, 4], \"num_res_blocks\": 2,"
                            " \"attn_scales\": [], \"temperal_downsample\": [false, true, true]}", &cfg, &e));
  g_assert_no_error (e);
  g_assert_cmpint (cfg.dim, ==, 8);
  g_assert_cmpint (cfg.n_levels, ==, 4);
  g_assert_true (cfg.temperal_downsample[2] && !cfg.temperal_downsample[0]);
  const char *bad[] = {
    "{\"z_dim\": 16, \"dim_mult\": [1, 2], \"num_res_blocks\": 2, \"temperal_downsample\": [true]}",
    "{\"dim\": \"8\", \"z_dim\": 16, \"dim_mult\": [1, 2], \"num_res_blocks\": 2, \"temperal_downsample\": [true]}",
    "{\"dim\": 8, \"z_dim\": 16, \"dim_mult\": [1, 0], \"num_res_blocks\": 2, \"temperal_downsample\": [true]}",
    "{\"dim\": 8, \"z_dim\": 16, \"dim_mult\": [1, 2], \"num_res_blocks\": 2, \"temperal_downsample\": []}",
    "{\"dim\": 8, \"z_dim\": 16, \"dim_mult\": [1, 2], \"num_res_blocks\": 2, \"temperal_downsample\": [true],"
    " \"attn_scales\": [0.5]}",
    "{\"dim\": 8, \"z_dim\": 0, \"dim_mult\": [1, 2], \"num_res_blocks\": 2, \"temperal_downsample\": [true]}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) be2 = NULL;
    g_assert_false (parse_cfg (bad[i], &cfg, &be2));
    g_assert_nonnull (be2);
    g_test_message ("%s", be2->message);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  be = la_backend_cpu_new (0);
  g_test_add_func ("/vae/frame-counts", test_frame_counts);
  g_test_add_func ("/vae/encode-causal", test_encode_causal);
  g_test_add_func ("/vae/decode-split", test_decode_split);
  g_test_add_func ("/vae/prime-block", test_prime_block);
  g_test_add_func ("/vae/bad-input", test_bad_input);
  g_test_add_func ("/vae/bf16-norm", test_bf16_norm);
  g_test_add_func ("/vae/config-json", test_config_json);
  g_test_add_func ("/vae/real-keys", test_real_keys);
  int rc = g_test_run ();
  la_backend_unref (be);
  return rc;
}
