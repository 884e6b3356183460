/* la-dit-audio.c — the DiT's audio conditioning (docs/design/audio-path.md §5, §6).
 *
 * Causal audio encoder (`casual_audio_encoder.*`), time-major:
 *   f[τ, c]  = Σ_ℓ A[ℓ, c, τ]·ω_ℓ / Σ_ℓ ω_ℓ,  ω = SiLU(weights)        layer mix
 *   CausalConv(k=3, s) = replicate-pad 2 steps on the left, valid conv
 *   local:  conv1_local(s1) -> [T, ntok, D/ntok] -> LN·SiLU -> conv2(s2) -> LN·SiLU
 *           -> conv3(s2) -> LN·SiLU -> [T', ntok, D] ++ padding_tokens -> [T', ntok+1, D]
 *   global: conv1_global(s1) -> LN·SiLU -> conv2 -> LN·SiLU -> conv3 -> LN·SiLU
 *           -> final_linear -> [T', D]          (same conv2/conv3 weights)
 *   every LN: no affine, eps 1e-6.
 * Audio injector j, per latent frame f (tokens x_f [fsl, D]):
 *   [shift | scale] = Linear_adain(SiLU(glob_f));  h = LN(x_f; 1e-5)·(1 + scale) + shift
 *   x_f += Wo·Attn(RMS(Wq h + bq), RMS(Wk tok_f + bk), Wv tok_f + bv) + bo
 *   (RMSNorm over the full width, eps 1e-6; heads = the DiT's; no RoPE, no mask, no gate)
 */
#include "la-dit-audio.h"
#include "la-audio-private.h"
#include "la-ops.h"
#include <math.h>

struct _LaCausalAudioEncoder {
  LaBackend *be;
  int L, A, D, Dg, D2, ntok;
  LaTensor *mix;                    /* [1, L]: ω_ℓ / Σ ω, folded at load */
  LaTensor *c1l_w, *c1l_b, *c1g_w, *c1g_b, *c2_w, *c2_b, *c3_w, *c3_b, *fl_w, *fl_b, *pad;
};

#define ENC "casual_audio_encoder."

LaCausalAudioEncoder *
la_causal_audio_encoder_new (LaBackend *be, LaCheckpoint *ck, int num_audio_token, GError **error)
{
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, LA_WEIGHTS_F32);
  return la_causal_audio_encoder_new_bound (&wb, num_audio_token, error);
}

LaCausalAudioEncoder *
la_causal_audio_encoder_new_bound (LaWeightBinder *wb, int num_audio_token, GError **error)
{
  LaBackend *be = wb->be;
  LaCheckpoint *ck = wb->ck;
  if (num_audio_token < 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "causal audio encoder: num_audio_token %d", num_audio_token);
    return NULL;
  }
  LaCausalAudioEncoder *e = g_new0 (LaCausalAudioEncoder, 1);
  e->be = la_backend_ref (be);
  e->ntok = num_audio_token;
  LaTensor *w = la_checkpoint_require (ck, ENC "weights", 4, (int64_t[]) { 1, -1, 1, 1 }, error);
  LaTensor *c1l = w ? la_checkpoint_require (ck, ENC "encoder.conv1_local.conv.weight", 3,
                                             (int64_t[]) { -1, -1, 3 }, error) : NULL;
  LaTensor *c1g = c1l ? la_checkpoint_require (ck, ENC "encoder.conv1_global.conv.weight", 3,
                                               (int64_t[]) { -1, -1, 3 }, error) : NULL;
  LaTensor *c2 = c1g ? la_checkpoint_require (ck, ENC "encoder.conv2.conv.weight", 3,
                                              (int64_t[]) { -1, -1, 3 }, error) : NULL;
  if (!c2)
    goto fail;
  e->L = (int) w->shape[1];
  e->D = (int) c1l->shape[0];
  e->A = (int) c1l->shape[1];
  e->Dg = (int) c1g->shape[0];
  e->D2 = (int) c2->shape[0];
  if ((int64_t) e->Dg * e->ntok != e->D) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "causal audio encoder: conv1_local has %d channels, conv1_global %d, num_audio_token %d "
                 "(need local = global · num_audio_token)", e->D, e->Dg, e->ntok);
    goto fail;
  }
  const int64_t D = e->D, A = e->A, Dg = e->Dg, D2 = e->D2;
#define LD(dst, nm, nd, ...) do { (dst) = la_weight_require (wb, ENC nm, FALSE, nd, (int64_t[]) { __VA_ARGS__ }, error); \
    if (!(dst)) goto fail; } while (0)
  LD (e->c1l_w, "encoder.conv1_local.conv.weight", 3, D, A, 3);
  LD (e->c1l_b, "encoder.conv1_local.conv.bias", 1, D);
  LD (e->c1g_w, "encoder.conv1_global.conv.weight", 3, Dg, A, 3);
  LD (e->c1g_b, "encoder.conv1_global.conv.bias", 1, Dg);
  LD (e->c2_w, "encoder.conv2.conv.weight", 3, D2, Dg, 3);
  LD (e->c2_b, "encoder.conv2.conv.bias", 1, D2);
  LD (e->c3_w, "encoder.conv3.conv.weight", 3, D, D2, 3);
  LD (e->c3_b, "encoder.conv3.conv.bias", 1, D);
  if (!(e->fl_w = la_weight_require (wb, ENC "encoder.final_linear.weight", TRUE, 2, (int64_t[]) { D, D }, error)))
    goto fail;
  LD (e->fl_b, "encoder.final_linear.bias", 1, D);
  LD (e->pad, "encoder.padding_tokens", 4, 1, 1, 1, D);
#undef LD
  {
    /* ω = SiLU(weights) / Σ SiLU(weights), on the host once. */
    g_autoptr (LaTensor) w32 = la_tensor_as_f32 (w);
    g_autoptr (LaTensor) mix = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { 1, e->L });
    float *m = la_tensor_f32 (mix), sum = 0.f;
    for (int l = 0; l < e->L; l++) {
      float v = la_tensor_f32 (w32)[l];
      m[l] = v / (1.f + expf (-v));
      sum += m[l];
    }
    for (int l = 0; l < e->L; l++)
      m[l] /= sum;
    e->mix = la_alloc (be, LA_DTYPE_F32, 2, mix->shape);
    la_copy (be, e->mix, mix);
  }
  return e;
fail:
  la_causal_audio_encoder_free (e);
  return NULL;
}

void
la_causal_audio_encoder_free (LaCausalAudioEncoder *e)
{
  if (!e)
    return;
  LaTensor **ts[] = { &e->mix, &e->c1l_w, &e->c1l_b, &e->c1g_w, &e->c1g_b, &e->c2_w, &e->c2_b,
                      &e->c3_w, &e->c3_b, &e->fl_w, &e->fl_b, &e->pad };
  for (guint i = 0; i < G_N_ELEMENTS (ts); i++)
    LA_AUDIO_CLEAR (*ts[i]);
  la_backend_unref (e->be);
  g_free (e);
}

/* LN (no affine, eps 1e-6) then SiLU, in place over the last dim. */
static void
ln_silu (LaBackend *be, LaTensor *x)
{
  la_layer_norm (be, x, x, NULL, NULL, 1e-6f);
  la_unary (be, LA_UNARY_SILU, x, x);
}

/* Causal conv (k = 3, replicate-pad 2 on the left) of a time-major x [T, B, C]. */
static LaTensor *
causal_conv (LaBackend *be, const LaTensor *x, int B, const LaTensor *w, const LaTensor *b, int stride)
{
  int64_t T = x->shape[0];
  int64_t To = (T + 2 - 3) / stride + 1;
  LaTensor *y = B > 1 ? la_alloc (be, LA_DTYPE_F32, 3, (int64_t[]) { To, B, w->shape[0] })
                      : la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { To, w->shape[0] });
  la_conv1d (be, y, x, w, b, stride, 2, 0, TRUE, 1, FALSE);
  return y;
}

gboolean
la_causal_audio_encoder_forward_dbg (LaCausalAudioEncoder *e, const LaTensor *in, LaTensor **out_global,
                                     LaTensor **out_local, LaCheckpoint *dbg, GError **error)
{
  LaBackend *be = e->be;
  if (!in || in->ndim != 3 || in->shape[0] != e->L || in->shape[1] != e->A || in->shape[2] < 1) {
    g_autofree char *s = in ? la_shape_to_string (in->ndim, in->shape) : g_strdup ("NULL");
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "causal audio encoder: audio_input is %s, expected [%d, %d, T>=1]", s, e->L, e->A);
    return FALSE;
  }
  const int64_t T = in->shape[2], D = e->D, ntok = e->ntok;
  g_autoptr (LaTensor) src = NULL;
  if (in->dtype != LA_DTYPE_F32 || in->device != la_backend_get_device (be)) {
    src = la_alloc (be, LA_DTYPE_F32, 3, in->shape);
    la_copy (be, src, in);
  } else
    src = la_audio_view (in, 0, 3, in->shape);

  /* Layer mix: [1, A·T] = ω [1, L] · A [L, A·T] -> channels-first [A, T]. */
  g_autoptr (LaTensor) a2 = la_audio_view (src, 0, 2, (int64_t[]) { e->L, e->A * T });
  g_autoptr (LaTensor) f = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { 1, e->A * T });
  la_matmul (be, f, e->mix, a2, FALSE, FALSE, 1.f, 0.f);
  g_autoptr (LaTensor) fcf = la_audio_view (f, 0, 2, (int64_t[]) { e->A, T });
  if (dbg) {
    /* time-major copy for the golden "weighted_feat" [T, A] */
    g_autoptr (LaTensor) h = la_tensor_new (LA_DTYPE_F32, 2, fcf->shape);
    la_copy (be, h, fcf);
    g_autoptr (LaTensor) tm = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { T, e->A });
    for (int64_t c = 0; c < e->A; c++)
      for (int64_t t = 0; t < T; t++)
        la_tensor_f32 (tm)[t * e->A + c] = la_tensor_f32 (h)[c * T + t];
    la_checkpoint_add (dbg, "audio_encoder.weighted_feat", tm);
  }

  /* Local branch: conv1_local (stride 1, causal) straight from the channels-first mix. */
  g_autoptr (LaTensor) l1 = la_alloc (be, LA_DTYPE_F32, 3, (int64_t[]) { T, ntok, e->Dg });
  la_conv1d (be, l1, fcf, e->c1l_w, e->c1l_b, 1, 2, 0, TRUE, 1, TRUE);
  ln_silu (be, l1);
  g_autoptr (LaTensor) l2 = causal_conv (be, l1, (int) ntok, e->c2_w, e->c2_b, 2);
  ln_silu (be, l2);
  g_autoptr (LaTensor) l3 = causal_conv (be, l2, (int) ntok, e->c3_w, e->c3_b, 2);
  ln_silu (be, l3);
  const int64_t To = l3->shape[0];
  LaTensor *loc = la_alloc (be, LA_DTYPE_F32, 3, (int64_t[]) { To, ntok + 1, D });
  g_autoptr (LaTensor) padv = la_audio_view (e->pad, 0, 2, (int64_t[]) { 1, D });
  for (int64_t t = 0; t < To; t++) {
    g_autoptr (LaTensor) dst = la_audio_view (loc, t * (ntok + 1) * D, 2, (int64_t[]) { ntok, D });
    g_autoptr (LaTensor) sr = la_audio_view (l3, t * ntok * D, 2, (int64_t[]) { ntok, D });
    g_autoptr (LaTensor) dp = la_audio_view (loc, (t * (ntok + 1) + ntok) * D, 2, (int64_t[]) { 1, D });
    la_copy (be, dst, sr);
    la_copy (be, dp, padv);
  }

  /* Global branch (same conv2 / conv3). */
  g_autoptr (LaTensor) g1 = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { T, e->Dg });
  la_conv1d (be, g1, fcf, e->c1g_w, e->c1g_b, 1, 2, 0, TRUE, 1, TRUE);
  ln_silu (be, g1);
  g_autoptr (LaTensor) g2 = causal_conv (be, g1, 1, e->c2_w, e->c2_b, 2);
  ln_silu (be, g2);
  g_autoptr (LaTensor) g3 = causal_conv (be, g2, 1, e->c3_w, e->c3_b, 2);
  ln_silu (be, g3);
  LaTensor *glob = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { To, D });
  la_linear (be, glob, g3, e->fl_w, e->fl_b);

  if (!la_backend_sync (be, error)) {
    la_tensor_unref (loc);
    la_tensor_unref (glob);
    return FALSE;
  }
  *out_global = glob;
  *out_local = loc;
  return TRUE;
}

gboolean
la_causal_audio_encoder_forward (LaCausalAudioEncoder *enc, const LaTensor *audio_input,
                                 LaTensor **out_global, LaTensor **out_local, GError **error)
{
  return la_causal_audio_encoder_forward_dbg (enc, audio_input, out_global, out_local, NULL, error);
}

/* ---- audio injector ---- */

typedef struct {
  LaTensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *nq, *nk, *ada_w, *ada_b;
} Injector;

struct _LaAudioInjector {
  LaBackend *be;
  int n, heads, D;
  Injector *inj;
};

LaAudioInjector *
la_audio_injector_new (LaBackend *be, LaCheckpoint *ck, int n_inject, int num_heads, GError **error)
{
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, LA_WEIGHTS_F32);
  return la_audio_injector_new_bound (&wb, n_inject, num_heads, error);
}

LaAudioInjector *
la_audio_injector_new_bound (LaWeightBinder *wb, int n_inject, int num_heads, GError **error)
{
  LaBackend *be = wb->be;
  LaCheckpoint *ck = wb->ck;
  if (n_inject < 0 || num_heads < 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "audio injector: n_inject %d, num_heads %d",
                 n_inject, num_heads);
    return NULL;
  }
  LaAudioInjector *a = g_new0 (LaAudioInjector, 1);
  a->be = la_backend_ref (be);
  a->n = n_inject;
  a->heads = num_heads;
  a->inj = g_new0 (Injector, MAX (n_inject, 1));
  if (n_inject > 0) {
    LaTensor *q = la_checkpoint_require (ck, "audio_injector.injector.0.q.weight", 2, (int64_t[]) { -1, -1 }, error);
    if (!q)
      goto fail;
    a->D = (int) q->shape[0];
    if (a->D % num_heads) {
      g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "audio injector: width %d not divisible by %d heads",
                   a->D, num_heads);
      goto fail;
    }
  }
  const int64_t D = a->D;
  for (int j = 0; j < n_inject; j++) {
    Injector *I = &a->inj[j];
    struct { LaTensor **dst; const char *fmt; int nd; int64_t s0, s1; } t[] = {
      { &I->q_w, "audio_injector.injector.%d.q.weight", 2, D, D },
      { &I->q_b, "audio_injector.injector.%d.q.bias", 1, D, 0 },
      { &I->k_w, "audio_injector.injector.%d.k.weight", 2, D, D },
      { &I->k_b, "audio_injector.injector.%d.k.bias", 1, D, 0 },
      { &I->v_w, "audio_injector.injector.%d.v.weight", 2, D, D },
      { &I->v_b, "audio_injector.injector.%d.v.bias", 1, D, 0 },
      { &I->o_w, "audio_injector.injector.%d.o.weight", 2, D, D },
      { &I->o_b, "audio_injector.injector.%d.o.bias", 1, D, 0 },
      { &I->nq, "audio_injector.injector.%d.norm_q.weight", 1, D, 0 },
      { &I->nk, "audio_injector.injector.%d.norm_k.weight", 1, D, 0 },
      { &I->ada_w, "audio_injector.injector_adain_layers.%d.linear.weight", 2, 2 * D, D },
      { &I->ada_b, "audio_injector.injector_adain_layers.%d.linear.bias", 1, 2 * D, 0 },
    };
    for (guint i = 0; i < G_N_ELEMENTS (t); i++) {
      char name[128];
      g_snprintf (name, sizeof name, t[i].fmt, j);
      /* every 2-D tensor here is a linear weight */
      *t[i].dst = la_weight_require (wb, name, t[i].nd == 2, t[i].nd, (int64_t[]) { t[i].s0, t[i].s1 }, error);
      if (!*t[i].dst)
        goto fail;
    }
  }
  return a;
fail:
  la_audio_injector_free (a);
  return NULL;
}

void
la_audio_injector_free (LaAudioInjector *a)
{
  if (!a)
    return;
  for (int j = 0; j < a->n; j++) {
    LaTensor **p = (LaTensor **) &a->inj[j];
    for (guint i = 0; i < sizeof (Injector) / sizeof (LaTensor *); i++)
      LA_AUDIO_CLEAR (p[i]);
  }
  g_free (a->inj);
  la_backend_unref (a->be);
  g_free (a);
}

/* Queues injector j's ops on x; FALSE only for arguments that do not fit. */
static gboolean
inject (LaAudioInjector *a, int j, LaTensor *x, int n_frames, const LaTensor *audio_tok,
        const LaTensor *audio_glob, LaCheckpoint *dbg, const char *dbg_prefix, GError **error)
{
  LaBackend *be = a->be;
  const int64_t D = a->D;
  if (j < 0 || j >= a->n) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "audio injector: index %d out of 0..%d", j, a->n - 1);
    return FALSE;
  }
  if (!x || x->ndim != 2 || x->shape[1] != D || n_frames < 1 || x->shape[0] % n_frames) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "audio injector: x must be [n_frames·fsl, %" G_GINT64_FORMAT "] with n_frames = %d", D, n_frames);
    return FALSE;
  }
  if (!audio_tok || audio_tok->ndim < 2 || audio_tok->shape[audio_tok->ndim - 1] != D ||
      la_tensor_numel (audio_tok) % ((int64_t) n_frames * D)) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "audio injector: audio_tok must be [%d, ntok, %" G_GINT64_FORMAT "]",
                 n_frames, D);
    return FALSE;
  }
  if (!audio_glob || la_tensor_numel (audio_glob) != (int64_t) n_frames * D) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "audio injector: audio_glob must be [%d, %" G_GINT64_FORMAT "]",
                 n_frames, D);
    return FALSE;
  }
  const Injector *I = &a->inj[j];
  const int64_t F = n_frames, fsl = x->shape[0] / F, ntok = la_tensor_numel (audio_tok) / (F * D);

  g_autoptr (LaTensor) glob = la_audio_view (audio_glob, 0, 2, (int64_t[]) { F, D });
  g_autoptr (LaTensor) sg = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { F, D });
  la_unary (be, LA_UNARY_SILU, sg, glob);
  g_autoptr (LaTensor) tmb = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { F, 2 * D });
  la_linear (be, tmb, sg, I->ada_w, I->ada_b);

  g_autoptr (LaTensor) hn = la_alloc (be, LA_DTYPE_F32, 2, x->shape);
  for (int64_t f = 0; f < F; f++) {
    g_autoptr (LaTensor) xf = la_audio_view (x, f * fsl * D, 2, (int64_t[]) { fsl, D });
    g_autoptr (LaTensor) hf = la_audio_view (hn, f * fsl * D, 2, (int64_t[]) { fsl, D });
    g_autoptr (LaTensor) shift = la_audio_view (tmb, f * 2 * D, 1, (int64_t[]) { D });
    g_autoptr (LaTensor) scale = la_audio_view (tmb, f * 2 * D + D, 1, (int64_t[]) { D });
    la_layer_norm (be, hf, xf, NULL, NULL, 1e-5f);
    la_modulate (be, hf, hf, shift, scale);
  }
  if (dbg) {
    g_autofree char *n = g_strdup_printf ("%s.adain_out", dbg_prefix);
    la_audio_dbg (be, dbg, n, hn);
  }

  g_autoptr (LaTensor) tok = la_audio_view (audio_tok, 0, 2, (int64_t[]) { F * ntok, D });
  g_autoptr (LaTensor) q = la_alloc (be, LA_DTYPE_F32, 2, x->shape);
  g_autoptr (LaTensor) k = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { F * ntok, D });
  g_autoptr (LaTensor) v = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { F * ntok, D });
  la_linear (be, q, hn, I->q_w, I->q_b);
  la_rms_norm (be, q, q, I->nq, 1e-6f);
  la_linear (be, k, tok, I->k_w, I->k_b);
  la_rms_norm (be, k, k, I->nk, 1e-6f);
  la_linear (be, v, tok, I->v_w, I->v_b);
  const float sc = 1.0f / sqrtf ((float) (D / a->heads));
  for (int64_t f = 0; f < F; f++) {
    g_autoptr (LaTensor) qf = la_audio_view (q, f * fsl * D, 2, (int64_t[]) { fsl, D });
    g_autoptr (LaTensor) of = la_audio_view (hn, f * fsl * D, 2, (int64_t[]) { fsl, D });
    g_autoptr (LaTensor) kf = la_audio_view (k, f * ntok * D, 2, (int64_t[]) { ntok, D });
    g_autoptr (LaTensor) vf = la_audio_view (v, f * ntok * D, 2, (int64_t[]) { ntok, D });
    la_attention (be, of, qf, kf, vf, a->heads, sc, NULL);   /* hn reused as the output */
  }
  la_linear (be, q, hn, I->o_w, I->o_b);
  if (dbg) {
    g_autofree char *n = g_strdup_printf ("%s.cross_attn_out", dbg_prefix);
    la_audio_dbg (be, dbg, n, q);
  }
  la_axpy (be, x, x, 1.0f, q);
  return TRUE;
}

gboolean
la_audio_injector_apply_dbg (LaAudioInjector *a, int j, LaTensor *x, int n_frames, const LaTensor *audio_tok,
                             const LaTensor *audio_glob, LaCheckpoint *dbg, const char *dbg_prefix,
                             GError **error)
{
  return inject (a, j, x, n_frames, audio_tok, audio_glob, dbg, dbg_prefix, error) && la_backend_sync (a->be, error);
}

gboolean
la_audio_injector_queue (LaAudioInjector *inj, int j, LaTensor *x, int n_frames, const LaTensor *audio_tok,
                         const LaTensor *audio_glob, GError **error)
{
  return inject (inj, j, x, n_frames, audio_tok, audio_glob, NULL, NULL, error);
}

gboolean
la_audio_injector_apply (LaAudioInjector *inj, int j, LaTensor *x, int n_frames, const LaTensor *audio_tok,
                         const LaTensor *audio_glob, GError **error)
{
  return la_audio_injector_apply_dbg (inj, j, x, n_frames, audio_tok, audio_glob, NULL, NULL, error);
}
