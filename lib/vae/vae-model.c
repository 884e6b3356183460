/* vae-model.c — builds the Wan2.1 VAE module lists from a config (the
 * official Encoder3d / Decoder3d constructors, vae2_1.py) and either loads
 * each parameter from a checkpoint (shape-checked, uploaded to the backend)
 * or, for la_vae_random_weights(), generates it under the same name.
 *
 *  encoder: dims = dim·[1, m0, m1, ...]; conv1 3→dims0; per level i:
 *           num_res_blocks × Res(in→dims[i+1]), then (not last level)
 *           downsample3d if temperal_downsample[i] else downsample2d;
 *           middle Res/Attn/Res; head RMS, SiLU, CConv → 2·z_dim.
 *  decoder: dims = dim·[m_last, m_last, ..., m0] (reversed); conv1 z→dims0;
 *           middle; per level i: (num_res_blocks+1) × Res(in→dims[i+1])
 *           with in = dims[i]/2 after a resample (the reference's
 *           "if i in (1,2,3): in_dim //= 2"), then upsample3d if
 *           temperal_downsample[::-1][i] else upsample2d; head → 3.
 */
#include <math.h>
#include <string.h>
#include "vae-private.h"
#include "la-synth.h"
#include "la-ops.h"

typedef struct {
  LaVae *vae;
  LaCheckpoint *ck;
  GRand *rng;              /* non-NULL: generate into ck instead of loading */
  GError **error;
  gboolean failed;
} Loader;

/* Fetches (or generates) `name` with file shape fshape, returns it on the
 * backend with shape tshape (same numel). kind 0: U(-b, b); 1: 1 + U(-0.1, 0.1). */
static LaTensor *
param (Loader *L, const char *name, int fnd, const int64_t *fshape, int tnd, const int64_t *tshape,
       int kind, double bound)
{
  if (L->failed)
    return NULL;
  if (L->rng) {
    gint64 n = 1;
    for (int i = 0; i < fnd; i++)
      n *= fshape[i];
    if (la_synth_wants_zeros (n)) {
      g_autoptr (LaTensor) z = la_synth_zeros (LA_DTYPE_F32, fnd, fshape);
      la_checkpoint_add (L->ck, name, z);
      return NULL;
    }
    LaTensor *t = la_tensor_new (LA_DTYPE_F32, fnd, fshape);
    float *d = la_tensor_f32 (t);
    for (int64_t i = 0; i < la_tensor_numel (t); i++)
      d[i] = kind ? (float) (1.0 + g_rand_double_range (L->rng, -0.1, 0.1))
                  : (float) g_rand_double_range (L->rng, -bound, bound);
    la_checkpoint_add (L->ck, name, t);
    la_tensor_unref (t);
    return NULL;
  }
  LaTensor *src = la_checkpoint_require (L->ck, name, fnd, fshape, L->error);
  if (!src) {
    L->failed = TRUE;
    return NULL;
  }
  LaBackend *be = L->vae->be;
  LaTensor *t = la_alloc (be, LA_DTYPE_F32, tnd, tshape);
  la_copy (be, t, src);
  la_tensor_set_name (t, name);
  L->vae->resident_bytes += la_tensor_nbytes (t);
  return t;
}

static void
conv (Loader *L, VaeConv *cv, const char *prefix, int co, int ci, int kt, int kh, int kw,
      gboolean is2d)
{
  char n[128];
  int64_t f5[5] = { co, ci, kt, kh, kw }, f4[4] = { co, ci, kh, kw }, b1[1] = { co };
  double bound = 1.0 / sqrt ((double) ci * kt * kh * kw);
  g_snprintf (n, sizeof n, "%s.weight", prefix);
  cv->w = is2d ? param (L, n, 4, f4, 5, f5, 0, bound) : param (L, n, 5, f5, 5, f5, 0, bound);
  g_snprintf (n, sizeof n, "%s.bias", prefix);
  cv->b = param (L, n, 1, b1, 1, b1, 0, bound);
}

static LaTensor *
load_gamma (Loader *L, const char *prefix, int c, gboolean images)
{
  char n[128];
  int64_t f[4] = { c, 1, 1, 1 }, t[1] = { c };
  g_snprintf (n, sizeof n, "%s.gamma", prefix);
  return param (L, n, images ? 3 : 4, f, 1, t, 1, 0);
}

static void
build_res (Loader *L, VaeModule *m, const char *name, int in, int out)
{
  char p[96];
  m->kind = VAE_RES;
  m->in = in;
  m->out = out;
  g_strlcpy (m->name, name, sizeof m->name);
  g_snprintf (p, sizeof p, "%s.residual.0", name);
  m->gamma0 = load_gamma (L, p, in, FALSE);
  g_snprintf (p, sizeof p, "%s.residual.2", name);
  conv (L, &m->conv0, p, out, in, 3, 3, 3, FALSE);
  g_snprintf (p, sizeof p, "%s.residual.3", name);
  m->gamma1 = load_gamma (L, p, out, FALSE);
  g_snprintf (p, sizeof p, "%s.residual.6", name);
  conv (L, &m->conv1, p, out, out, 3, 3, 3, FALSE);
  if (in != out) {
    g_snprintf (p, sizeof p, "%s.shortcut", name);
    conv (L, &m->shortcut, p, out, in, 1, 1, 1, FALSE);
  }
}

static void
build_attn (Loader *L, VaeModule *m, const char *name, int c)
{
  char p[96];
  m->kind = VAE_ATTN;
  m->in = m->out = c;
  g_strlcpy (m->name, name, sizeof m->name);
  g_snprintf (p, sizeof p, "%s.norm", name);
  m->gamma0 = load_gamma (L, p, c, TRUE);
  g_snprintf (p, sizeof p, "%s.to_qkv", name);
  conv (L, &m->qkv, p, 3 * c, c, 1, 1, 1, TRUE);
  g_snprintf (p, sizeof p, "%s.proj", name);
  conv (L, &m->proj, p, c, c, 1, 1, 1, TRUE);
}

static void
build_resample (Loader *L, VaeModule *m, const char *name, VaeModKind kind, int c)
{
  char p[96];
  m->kind = kind;
  m->in = c;
  m->out = (kind == VAE_UP2D || kind == VAE_UP3D) ? c / 2 : c;
  g_strlcpy (m->name, name, sizeof m->name);
  g_snprintf (p, sizeof p, "%s.resample.1", name);
  conv (L, &m->resample, p, m->out, c, 1, 3, 3, TRUE);
  g_snprintf (p, sizeof p, "%s.time_conv", name);
  if (kind == VAE_DOWN3D)
    conv (L, &m->time_conv, p, c, c, 3, 1, 1, FALSE);
  else if (kind == VAE_UP3D)
    conv (L, &m->time_conv, p, 2 * c, c, 3, 1, 1, FALSE);
}

static int
mod_slots (const VaeModule *m)
{
  return m->kind == VAE_RES ? 2 : (m->kind == VAE_DOWN3D || m->kind == VAE_UP3D) ? 1 : 0;
}

/* Slots in forward order: conv_in, (middle, stages | stages, middle), head. */
static void
assign_slots (VaeSide *s, gboolean middle_first)
{
  int n = 0;
  s->conv_in_slot = n++;
  for (int pass = 0; pass < 2; pass++) {
    gboolean mid = middle_first ? pass == 0 : pass == 1;
    int from = mid ? s->n_stages : 0, to = mid ? s->n_stages + s->n_middle : s->n_stages;
    for (int i = from; i < to; i++) {
      s->mods[i].slot = mod_slots (&s->mods[i]) ? n : -1;
      n += mod_slots (&s->mods[i]);
    }
  }
  s->head_slot = n++;
  s->n_slots = n;
}

static void
build_middle (Loader *L, VaeSide *s, const char *side, int c)
{
  char name[64];
  VaeModule *m = s->mods + s->n_stages;
  g_snprintf (name, sizeof name, "%s.middle.0", side);
  build_res (L, &m[0], name, c, c);
  g_snprintf (name, sizeof name, "%s.middle.1", side);
  build_attn (L, &m[1], name, c);
  g_snprintf (name, sizeof name, "%s.middle.2", side);
  build_res (L, &m[2], name, c, c);
  s->n_middle = 3;
}

gboolean
vae_build (LaVae *vae, LaCheckpoint *ck, GRand *rng, GError **error)
{
  const LaVaeConfig *cfg = &vae->cfg;
  Loader L = { vae, ck, rng, error, FALSE };
  const int n = cfg->n_levels, nrb = cfg->num_res_blocks;
  int dims[LA_VAE_MAX_LEVELS + 1];
  char name[64];

  /* Encoder. */
  VaeSide *e = &vae->enc;
  dims[0] = cfg->dim;
  for (int i = 0; i < n; i++)
    dims[i + 1] = cfg->dim * cfg->dim_mult[i];
  e->mods = g_new0 (VaeModule, n * (nrb + 1) + 3);
  conv (&L, &e->conv_in, "encoder.conv1", dims[0], 3, 3, 3, 3, FALSE);
  int k = 0;
  for (int i = 0; i < n; i++) {
    int in = dims[i], out = dims[i + 1];
    for (int r = 0; r < nrb; r++, k++) {
      g_snprintf (name, sizeof name, "encoder.downsamples.%d", k);
      build_res (&L, &e->mods[k], name, in, out);
      in = out;
    }
    if (i != n - 1) {
      g_snprintf (name, sizeof name, "encoder.downsamples.%d", k);
      build_resample (&L, &e->mods[k], name,
                      cfg->temperal_downsample[i] ? VAE_DOWN3D : VAE_DOWN2D, out);
      k++;
    }
  }
  e->n_stages = k;
  build_middle (&L, e, "encoder", dims[n]);
  e->n_mods = k + 3;
  e->head_gamma = load_gamma (&L, "encoder.head.0", dims[n], FALSE);
  conv (&L, &e->head_conv, "encoder.head.2", 2 * cfg->z_dim, dims[n], 3, 3, 3, FALSE);
  assign_slots (e, FALSE);
  conv (&L, &vae->conv1, "conv1", 2 * cfg->z_dim, 2 * cfg->z_dim, 1, 1, 1, FALSE);
  conv (&L, &vae->conv2, "conv2", cfg->z_dim, cfg->z_dim, 1, 1, 1, FALSE);

  /* Decoder. */
  VaeSide *d = &vae->dec;
  dims[0] = cfg->dim * cfg->dim_mult[n - 1];
  for (int i = 0; i < n; i++)
    dims[i + 1] = cfg->dim * cfg->dim_mult[n - 1 - i];
  d->mods = g_new0 (VaeModule, n * (nrb + 2) + 3);
  conv (&L, &d->conv_in, "decoder.conv1", dims[0], cfg->z_dim, 3, 3, 3, FALSE);
  k = 0;
  for (int i = 0; i < n; i++) {
    int in = i > 0 ? dims[i] / 2 : dims[i], out = dims[i + 1];
    for (int r = 0; r < nrb + 1; r++, k++) {
      g_snprintf (name, sizeof name, "decoder.upsamples.%d", k);
      build_res (&L, &d->mods[k], name, in, out);
      in = out;
    }
    if (i != n - 1) {
      g_snprintf (name, sizeof name, "decoder.upsamples.%d", k);
      build_resample (&L, &d->mods[k], name,
                      cfg->temperal_downsample[n - 2 - i] ? VAE_UP3D : VAE_UP2D, out);
      k++;
    }
  }
  d->n_stages = k;
  build_middle (&L, d, "decoder", dims[0]);
  d->n_mods = k + 3;
  d->head_gamma = load_gamma (&L, "decoder.head.0", dims[n], FALSE);
  conv (&L, &d->head_conv, "decoder.head.2", 3, dims[n], 3, 3, 3, FALSE);
  assign_slots (d, TRUE);
  return !L.failed;
}

static void
conv_clear (VaeConv *c)
{
  g_clear_pointer (&c->w, la_tensor_unref);
  g_clear_pointer (&c->b, la_tensor_unref);
}

void
vae_side_clear (VaeSide *s)
{
  for (int i = 0; i < s->n_mods; i++) {
    VaeModule *m = &s->mods[i];
    g_clear_pointer (&m->gamma0, la_tensor_unref);
    g_clear_pointer (&m->gamma1, la_tensor_unref);
    conv_clear (&m->conv0);
    conv_clear (&m->conv1);
    conv_clear (&m->shortcut);
    conv_clear (&m->qkv);
    conv_clear (&m->proj);
    conv_clear (&m->resample);
    conv_clear (&m->time_conv);
  }
  g_clear_pointer (&s->mods, g_free);
  conv_clear (&s->conv_in);
  conv_clear (&s->head_conv);
  g_clear_pointer (&s->head_gamma, la_tensor_unref);
}

void
vae_state_init (VaeState *st, int n_slots)
{
  st->slots = g_new0 (VaeSlot, n_slots);
  st->n_slots = n_slots;
  st->idx = 0;
  st->chunk = 0;
}

void
vae_state_clear (VaeState *st)
{
  for (int i = 0; i < st->n_slots; i++)
    g_clear_pointer (&st->slots[i].t, la_tensor_unref);
  g_clear_pointer (&st->slots, g_free);
  st->n_slots = 0;
}

void
la_vae_norm_constants (const LaVaeConfig *cfg, float *mean, float *inv_std)
{
  for (int c = 0; c < cfg->z_dim; c++) {
    if (cfg->bf16_norm) {
      /* torch.tensor(mean/std, dtype=bf16); 1.0 / std in bf16 (rounded once). */
      float s = la_round_bf16 (cfg->std[c]);
      mean[c] = la_round_bf16 (cfg->mean[c]);
      inv_std[c] = la_round_bf16 (1.0f / s);
    } else {
      mean[c] = cfg->mean[c];
      inv_std[c] = 1.0f / cfg->std[c];
    }
  }
}

static LaTensor *
upload_f32 (LaBackend *be, const float *v, int n)
{
  int64_t s[1] = { n };
  g_autoptr (LaTensor) h = la_tensor_new_from_f32 (1, s, v);
  LaTensor *t = la_alloc (be, LA_DTYPE_F32, 1, s);
  la_copy (be, t, h);
  return t;
}

LaVae *
la_vae_new (LaBackend *be, LaCheckpoint *ck, const LaVaeConfig *cfg, GError **error)
{
  g_return_val_if_fail (be && ck && cfg, NULL);
  if (cfg->n_levels < 2 || cfg->n_levels > LA_VAE_MAX_LEVELS || cfg->dim <= 0 || cfg->z_dim <= 0
      || cfg->z_dim > 64 || cfg->num_res_blocks < 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "VAE config: bad sizes (dim %d, z_dim %d, %d levels, num_res_blocks %d)",
                 cfg->dim, cfg->z_dim, cfg->n_levels, cfg->num_res_blocks);
    return NULL;
  }
  /* A backend that does not implement an op the VAE uses is an error, not a crash. */
  static const char *const need[] = {
    "copy", "fill", "conv3d", "matmul", "softmax", "unary", "binary", "channel_rms_norm",
    "copy4d", "upsample2x", "latent_norm", "clamp",
  };
  for (guint i = 0; i < G_N_ELEMENTS (need); i++)
    if (!la_backend_supports (be, need[i])) {
      g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                   "VAE: backend '%s' does not implement the '%s' op", la_backend_get_name (be), need[i]);
      return NULL;
    }
  for (int i = 0; i < cfg->n_levels; i++)
    if (cfg->dim_mult[i] < 1) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "VAE config: dim_mult[%d] = %d must be >= 1",
                   i, cfg->dim_mult[i]);
      return NULL;
    }
  LaVae *vae = g_new0 (LaVae, 1);
  vae->be = la_backend_ref (be);
  vae->cfg = *cfg;
  if (!vae_build (vae, ck, NULL, error)) {
    g_prefix_error (error, "VAE weights: ");
    la_vae_free (vae);
    return NULL;
  }
  float mean[64], inv[64], zeros[64], ones[64];
  la_vae_norm_constants (cfg, mean, inv);
  for (int c = 0; c < cfg->z_dim; c++) {
    zeros[c] = 0.0f;
    ones[c] = 1.0f;
  }
  vae->mean = upload_f32 (be, mean, cfg->z_dim);
  vae->inv_std = upload_f32 (be, inv, cfg->z_dim);
  vae->zeros = upload_f32 (be, zeros, cfg->z_dim);
  vae->ones = upload_f32 (be, ones, cfg->z_dim);
  return vae;
}

void
la_vae_free (LaVae *vae)
{
  if (!vae)
    return;
  vae_side_clear (&vae->enc);
  vae_side_clear (&vae->dec);
  conv_clear (&vae->conv1);
  conv_clear (&vae->conv2);
  g_clear_pointer (&vae->mean, la_tensor_unref);
  g_clear_pointer (&vae->inv_std, la_tensor_unref);
  g_clear_pointer (&vae->zeros, la_tensor_unref);
  g_clear_pointer (&vae->ones, la_tensor_unref);
  la_backend_unref (vae->be);
  g_free (vae);
}

const LaVaeConfig *
la_vae_get_config (LaVae *vae)
{
  return &vae->cfg;
}

void
la_vae_set_tap (LaVae *vae, LaVaeTapFunc func, gpointer user_data)
{
  vae->tap = func;
  vae->tap_data = user_data;
}

LaCheckpoint *
la_vae_random_weights (const LaVaeConfig *cfg, guint64 seed)
{
  LaVae tmp = { 0 };
  tmp.cfg = *cfg;
  guint32 s[2] = { (guint32) seed, (guint32) (seed >> 32) };
  GRand *rng = g_rand_new_with_seed_array (s, 2);
  LaCheckpoint *ck = la_checkpoint_new ();
  vae_build (&tmp, ck, rng, NULL);
  g_rand_free (rng);
  vae_side_clear (&tmp.enc);
  vae_side_clear (&tmp.dec);
  return ck;
}

guint64
la_vae_resident_bytes (LaVae *vae)
{
  return vae->resident_bytes;
}
