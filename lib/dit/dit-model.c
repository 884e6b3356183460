/* dit-model.c — binding the DiT weights (official key names, docs/design/model.md §2.1)
 * to a backend, and random weights with the same names/shapes for any
 * config (model generator, benches).
 *
 * Conv3d weights with stride = kernel are used as GEMM matrices
 * [D, C·kt·kh·kw] (the flattened PyTorch layout).  The cond_encoder only
 * contributes its bias: its input (pose) is all zeros in Live Avatar.
 */
#include <math.h>
#include <string.h>
#include "dit-internal.h"
#include "la-rng.h"
#include "la-synth.h"
#include "la-ops.h"

/* Requires `name` with `shape`, returns its resident copy (la-weights.h)
 * viewed as [rows, cols] when cols > 0 (else with its own shape); linear:
 * used only as a `linear` weight, so it may stay in the checkpoint's bf16. */
static LaTensor *
bind_as (LaDitModel *m, const char *name, int ndim, const int64_t *shape, gint64 rows, gint64 cols,
         gboolean linear, GError **error)
{
  LaTensor *t = la_checkpoint_require (m->wb->ck, name, ndim, shape, error);
  if (!t)
    return NULL;
  int64_t s2[2] = { rows, cols };
  int nd = cols > 0 ? (rows > 0 ? 2 : 1) : t->ndim;
  const int64_t *sh = cols > 0 ? (rows > 0 ? s2 : s2 + 1) : t->shape;
  int64_t own[LA_TENSOR_MAX_DIMS];
  memcpy (own, sh, sizeof (int64_t) * nd);    /* t may be released by the bind */
  LaTensor *r = la_weight_bind (m->wb, name, linear, nd, own, error);
  if (r)
    g_ptr_array_add (m->owned, r);
  return r;
}

static LaTensor *
bind (LaDitModel *m, const char *name, int ndim, const int64_t *shape, gint64 rows, gint64 cols, GError **error)
{
  return bind_as (m, name, ndim, shape, rows, cols, FALSE, error);
}

/* A matrix used as a `linear` weight. */
static LaTensor *
bind_lin (LaDitModel *m, const char *name, int ndim, const int64_t *shape, gint64 rows, gint64 cols, GError **error)
{
  return bind_as (m, name, ndim, shape, rows, cols, TRUE, error);
}

#define S(...) ((const int64_t[]) { __VA_ARGS__ })

/* A config/weights mismatch: the checkpoint holds item n (pattern % n) of a
 * list the config says has n items. */
static gboolean
none_past (LaCheckpoint *ck, const char *pattern, int n, const char *what, GError **error)
{
  char k[96];
  g_snprintf (k, sizeof k, pattern, n);
  if (!la_checkpoint_get (ck, k))
    return TRUE;
  g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "DiT weights %s: tensor '%s' exists but the config %s %d",
               la_checkpoint_path (ck), k, what, n);
  return FALSE;
}

static gboolean
bind_block (LaDitModel *m, int n, DitBlockW *b, GError **error)
{
  int D = m->D, F = m->cfg.ffn_dim;
  char k[128];
#define B2(field, suffix, r, c) \
  (g_snprintf (k, sizeof k, "blocks.%d.%s", n, suffix), (b->field = bind_lin (m, k, 2, S (r, c), r, c, error)) != NULL)
#define B1(field, suffix, c) \
  (g_snprintf (k, sizeof k, "blocks.%d.%s", n, suffix), (b->field = bind (m, k, 1, S (c), 0, c, error)) != NULL)
  if (!(g_snprintf (k, sizeof k, "blocks.%d.modulation", n),
        (b->modulation = bind (m, k, 3, S (1, 6, D), 6, D, error))))
    return FALSE;
  return B2 (sq_w, "self_attn.q.weight", D, D) && B1 (sq_b, "self_attn.q.bias", D) &&
         B2 (sk_w, "self_attn.k.weight", D, D) && B1 (sk_b, "self_attn.k.bias", D) &&
         B2 (sv_w, "self_attn.v.weight", D, D) && B1 (sv_b, "self_attn.v.bias", D) &&
         B2 (so_w, "self_attn.o.weight", D, D) && B1 (so_b, "self_attn.o.bias", D) &&
         B1 (snq, "self_attn.norm_q.weight", D) && B1 (snk, "self_attn.norm_k.weight", D) &&
         B1 (n3_w, "norm3.weight", D) && B1 (n3_b, "norm3.bias", D) &&
         B2 (cq_w, "cross_attn.q.weight", D, D) && B1 (cq_b, "cross_attn.q.bias", D) &&
         B2 (ck_w, "cross_attn.k.weight", D, D) && B1 (ck_b, "cross_attn.k.bias", D) &&
         B2 (cv_w, "cross_attn.v.weight", D, D) && B1 (cv_b, "cross_attn.v.bias", D) &&
         B2 (co_w, "cross_attn.o.weight", D, D) && B1 (co_b, "cross_attn.o.bias", D) &&
         B1 (cnq, "cross_attn.norm_q.weight", D) && B1 (cnk, "cross_attn.norm_k.weight", D) &&
         B2 (f1_w, "ffn.0.weight", F, D) && B1 (f1_b, "ffn.0.bias", F) &&
         B2 (f2_w, "ffn.2.weight", D, F) && B1 (f2_b, "ffn.2.bias", D);
#undef B1
#undef B2
}

LaDitModel *
la_dit_model_new (LaBackend *be, const LaDitConfig *cfg, LaCheckpoint *ck, GError **error)
{
  if (!be || !cfg || !ck) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_dit_model_new: backend, config and weights are required");
    return NULL;
  }
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, LA_WEIGHTS_F32);
  return la_dit_model_new_bound (cfg, &wb, error);
}

LaDitModel *
la_dit_model_new_bound (const LaDitConfig *cfg, LaWeightBinder *wb, GError **error)
{
  LaBackend *be = wb ? wb->be : NULL;
  LaCheckpoint *ck = wb ? wb->ck : NULL;
  if (!be || !cfg || !ck) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_dit_model_new: backend, config and weights are required");
    return NULL;
  }
  if (!la_dit_config_validate (cfg, error))
    return NULL;
  LaDitModel *m = g_new0 (LaDitModel, 1);
  m->be = la_backend_ref (be);
  m->cfg = *cfg;
  m->wb = wb;
  m->owned = g_ptr_array_new_with_free_func ((GDestroyNotify) la_tensor_unref);
  int D = m->D = cfg->dim, H = m->H = cfg->num_heads;
  m->HD = D / H;
  int C = cfg->in_dim, ph = cfg->patch_size[1], pw = cfg->patch_size[2], T = cfg->text_dim, fd = cfg->freq_dim;
  int od = cfg->out_dim * ph * pw;
  static const int fpk[3][3] = { { 1, 2, 2 }, { 2, 4, 4 }, { 4, 8, 8 } };
  static const char *fpn[3] = { "frame_packer.proj", "frame_packer.proj_2x", "frame_packer.proj_4x" };
  gboolean ok =
      (m->pe_w = bind_lin (m, "patch_embedding.weight", 5, S (D, C, 1, ph, pw), D, C * ph * pw, error)) &&
      (m->pe_b = bind (m, "patch_embedding.bias", 1, S (D), 0, D, error)) &&
      la_checkpoint_require (ck, "cond_encoder.weight", 5, S (D, cfg->cond_dim, 1, ph, pw), error) &&
      (m->cond_b = bind (m, "cond_encoder.bias", 1, S (D), 0, D, error)) &&
      (m->te0_w = bind_lin (m, "text_embedding.0.weight", 2, S (D, T), D, T, error)) &&
      (m->te0_b = bind (m, "text_embedding.0.bias", 1, S (D), 0, D, error)) &&
      (m->te2_w = bind_lin (m, "text_embedding.2.weight", 2, S (D, D), D, D, error)) &&
      (m->te2_b = bind (m, "text_embedding.2.bias", 1, S (D), 0, D, error)) &&
      (m->tm0_w = bind_lin (m, "time_embedding.0.weight", 2, S (D, fd), D, fd, error)) &&
      (m->tm0_b = bind (m, "time_embedding.0.bias", 1, S (D), 0, D, error)) &&
      (m->tm2_w = bind_lin (m, "time_embedding.2.weight", 2, S (D, D), D, D, error)) &&
      (m->tm2_b = bind (m, "time_embedding.2.bias", 1, S (D), 0, D, error)) &&
      (m->tp_w = bind_lin (m, "time_projection.1.weight", 2, S (6 * D, D), 6 * D, D, error)) &&
      (m->tp_b = bind (m, "time_projection.1.bias", 1, S (6 * D), 0, 6 * D, error)) &&
      (m->hm = bind (m, "head.modulation", 3, S (1, 2, D), 2, D, error)) &&
      (m->hh_w = bind_lin (m, "head.head.weight", 2, S (od, D), od, D, error)) &&
      (m->hh_b = bind (m, "head.head.bias", 1, S (od), 0, od, error));
  LaTensor *tcm = ok ? bind (m, "trainable_cond_mask.weight", 2, S (3, D), 3, D, error) : NULL;
  if (ok && !tcm)
    ok = FALSE;
  for (int i = 0; ok && i < 3; i++)
    m->tcm[i] = dit_rows (tcm, i, 1), g_ptr_array_add (m->owned, m->tcm[i]);
  for (int i = 0; ok && i < 3; i++) {
    char k[96];
    memcpy (m->fp_k[i], fpk[i], sizeof fpk[i]);
    g_snprintf (k, sizeof k, "%s.weight", fpn[i]);
    int K = C * fpk[i][0] * fpk[i][1] * fpk[i][2];
    ok = (m->fp_w[i] = bind_lin (m, k, 5, S (D, C, fpk[i][0], fpk[i][1], fpk[i][2]), D, K, error)) != NULL;
    g_snprintf (k, sizeof k, "%s.bias", fpn[i]);
    ok = ok && (m->fp_b[i] = bind (m, k, 1, S (D), 0, D, error)) != NULL;
  }
  m->blocks = g_new0 (DitBlockW, cfg->num_layers);
  for (int n = 0; ok && n < cfg->num_layers; n++)
    ok = bind_block (m, n, &m->blocks[n], error);
  /* The checkpoint must not hold more blocks than the config says (config/weights mismatch). */
  if (ok)
    ok = none_past (ck, "blocks.%d.modulation", cfg->num_layers, "has num_layers =", error);
  m->inject_of_layer = g_new (int, cfg->num_layers);
  for (int n = 0; n < cfg->num_layers; n++)
    m->inject_of_layer[n] = -1;
  for (int j = 0; j < cfg->n_inject; j++)
    m->inject_of_layer[cfg->audio_inject_layers[j]] = j;
  /* the injector count against the config, before handing over */
  if (ok)
    ok = none_past (ck, "audio_injector.injector.%d.q.weight", cfg->n_inject, "lists audio_inject_layers:", error);
  if (ok)
    ok = (m->aenc = la_causal_audio_encoder_new_bound (wb, cfg->num_audio_token, error)) != NULL;
  if (ok)
    ok = (m->ainj = la_audio_injector_new_bound (wb, cfg->n_inject, cfg->num_heads, error)) != NULL;
  m->wb = NULL;                 /* the binder is the caller's; weights are all bound now */
  if (!ok) {
    la_dit_model_free (m);
    return NULL;
  }
  return m;
}

void
la_dit_model_free (LaDitModel *m)
{
  if (!m)
    return;
  if (m->aenc)
    la_causal_audio_encoder_free (m->aenc);
  if (m->ainj)
    la_audio_injector_free (m->ainj);
  g_ptr_array_unref (m->owned);
  g_free (m->blocks);
  g_free (m->inject_of_layer);
  la_backend_unref (m->be);
  g_free (m);
}

const LaDitConfig *
la_dit_model_config (LaDitModel *m)
{
  return &m->cfg;
}

/* ---- random weights ---- */

LaCheckpoint *
la_dit_random_weights (const LaDitConfig *c, guint64 seed)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  LaRng r = { seed * 0x2545F4914F6CDD1Dull + 1 };
  int D = c->dim, F = c->ffn_dim, C = c->in_dim, ph = c->patch_size[1], pw = c->patch_size[2];
  int A = c->audio_dim, od = c->out_dim * ph * pw, q4 = D / 4;
  double sD = 1 / sqrt (D);
  char k[160];
#define W(name, sc, off, ...) la_synth_add_random (ck, &r, name, (int) (sizeof ((int64_t[]) { __VA_ARGS__ }) / sizeof (int64_t)), \
                                                   (const int64_t[]) { __VA_ARGS__ }, off, sc, FALSE)
  W ("patch_embedding.weight", 1 / sqrt (C * ph * pw), 0, D, C, 1, ph, pw);
  W ("patch_embedding.bias", 0.02, 0, D);
  W ("cond_encoder.weight", 1 / sqrt (c->cond_dim * ph * pw), 0, D, c->cond_dim, 1, ph, pw);
  W ("cond_encoder.bias", 0.02, 0, D);
  W ("text_embedding.0.weight", 1 / sqrt (c->text_dim), 0, D, c->text_dim);
  W ("text_embedding.0.bias", 0.02, 0, D);
  W ("text_embedding.2.weight", sD, 0, D, D);
  W ("text_embedding.2.bias", 0.02, 0, D);
  W ("time_embedding.0.weight", 1 / sqrt (c->freq_dim), 0, D, c->freq_dim);
  W ("time_embedding.0.bias", 0.02, 0, D);
  W ("time_embedding.2.weight", sD, 0, D, D);
  W ("time_embedding.2.bias", 0.02, 0, D);
  W ("time_projection.1.weight", sD, 0, 6 * D, D);
  W ("time_projection.1.bias", 0.02, 0, 6 * D);
  W ("head.modulation", sD, 0, 1, 2, D);
  W ("head.head.weight", sD, 0, od, D);
  W ("head.head.bias", 0.02, 0, od);
  W ("trainable_cond_mask.weight", 0.1, 0, 3, D);
  W ("frame_packer.proj.weight", 1 / sqrt (C * 4), 0, D, C, 1, 2, 2);
  W ("frame_packer.proj.bias", 0.02, 0, D);
  W ("frame_packer.proj_2x.weight", 1 / sqrt (C * 32), 0, D, C, 2, 4, 4);
  W ("frame_packer.proj_2x.bias", 0.02, 0, D);
  W ("frame_packer.proj_4x.weight", 1 / sqrt (C * 256), 0, D, C, 4, 8, 8);
  W ("frame_packer.proj_4x.bias", 0.02, 0, D);
  W ("casual_audio_encoder.weights", 0.1, 0, 1, 25, 1, 1);
  W ("casual_audio_encoder.encoder.conv1_local.conv.weight", 1 / sqrt (3 * A), 0, q4 * c->num_audio_token, A, 3);
  W ("casual_audio_encoder.encoder.conv1_local.conv.bias", 0.02, 0, q4 * c->num_audio_token);
  W ("casual_audio_encoder.encoder.conv1_global.conv.weight", 1 / sqrt (3 * A), 0, q4, A, 3);
  W ("casual_audio_encoder.encoder.conv1_global.conv.bias", 0.02, 0, q4);
  W ("casual_audio_encoder.encoder.conv2.conv.weight", 1 / sqrt (3 * q4), 0, 2 * q4, q4, 3);
  W ("casual_audio_encoder.encoder.conv2.conv.bias", 0.02, 0, 2 * q4);
  W ("casual_audio_encoder.encoder.conv3.conv.weight", 1 / sqrt (6 * q4), 0, D, 2 * q4, 3);
  W ("casual_audio_encoder.encoder.conv3.conv.bias", 0.02, 0, D);
  W ("casual_audio_encoder.encoder.final_linear.weight", sD, 0, D, D);
  W ("casual_audio_encoder.encoder.final_linear.bias", 0.02, 0, D);
  W ("casual_audio_encoder.encoder.padding_tokens", 1.0, 0, 1, 1, 1, D);
  static const char *lin[] = { "q", "k", "v", "o" };
  for (int n = 0; n < c->num_layers; n++) {
#define BK(fmt) (g_snprintf (k, sizeof k, "blocks.%d." fmt, n), k)
    W (BK ("modulation"), sD, 0, 1, 6, D);
    for (int a = 0; a < 2; a++)
      for (int i = 0; i < 4; i++) {
        const char *which = a ? "cross_attn" : "self_attn";
        g_snprintf (k, sizeof k, "blocks.%d.%s.%s.weight", n, which, lin[i]);
        W (k, sD, 0, D, D);
        g_snprintf (k, sizeof k, "blocks.%d.%s.%s.bias", n, which, lin[i]);
        W (k, 0.02, 0, D);
        if (i < 2) {
          g_snprintf (k, sizeof k, "blocks.%d.%s.norm_%s.weight", n, which, lin[i]);
          W (k, 0.05, 1, D);
        }
      }
    W (BK ("norm3.weight"), 0.05, 1, D);
    W (BK ("norm3.bias"), 0.02, 0, D);
    W (BK ("ffn.0.weight"), sD, 0, F, D);
    W (BK ("ffn.0.bias"), 0.02, 0, F);
    W (BK ("ffn.2.weight"), 1 / sqrt (F), 0, D, F);
    W (BK ("ffn.2.bias"), 0.02, 0, D);
#undef BK
  }
  for (int j = 0; j < c->n_inject; j++) {
    for (int i = 0; i < 4; i++) {
      g_snprintf (k, sizeof k, "audio_injector.injector.%d.%s.weight", j, lin[i]);
      W (k, sD, 0, D, D);
      g_snprintf (k, sizeof k, "audio_injector.injector.%d.%s.bias", j, lin[i]);
      W (k, 0.02, 0, D);
      if (i < 2) {
        g_snprintf (k, sizeof k, "audio_injector.injector.%d.norm_%s.weight", j, lin[i]);
        W (k, 0.05, 1, D);
      }
    }
    g_snprintf (k, sizeof k, "audio_injector.injector_adain_layers.%d.linear.weight", j);
    W (k, sD, 0, 2 * D, D);
    g_snprintf (k, sizeof k, "audio_injector.injector_adain_layers.%d.linear.bias", j);
    W (k, 0.02, 0, 2 * D);
  }
#undef W
  return ck;
}
