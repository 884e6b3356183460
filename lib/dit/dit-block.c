/* dit-block.c — one causal S2V transformer block, streaming branch
 * (docs/design/model.md §3.6; CausalWanS2VAttentionBlock.forward).
 *
 *   mod_f = blocks.n.modulation + e0[f]       = (sa, ca, ga, sf, cf, gf) per frame f
 *   u     = LN(x) · (1 + ca_f) + sa_f         (no-affine LayerNorm, eps from config)
 *   q,k   = RMSNorm_full(W u + b) ; v = Wv u + bv ; RoPE(q), RoPE(k)
 *   step : ring K/V[slot] = k, v ; keys = [RoPE(cond_k, rolled sink pos) | ring[0:active]]
 *          (slot and active come from backend memory: copy_rows_at, attention_n)
 *   sink : cond_k = k (un-roped), cond_v = v ; keys = RoPE(k) over the sink tokens only
 *   x    = x + (Wo softmax(q kᵀ/√hd) V + bo) · ga_f
 *   x    = x + CrossAttn(LN_affine_norm3(x), text K/V cached per prompt)
 *          (with bf16 activations the LN input is x rounded to bf16, as the official block does)
 *   x    = x + FFN_gelu_tanh(LN(x) · (1 + cf_f) + sf_f) · gf_f
 *
 * The K/V buffer of a layer holds the sink first and the ring after it, so
 * the keys of one call are a single contiguous row range (key order does not
 * matter to softmax attention).
 */
#include <math.h>
#include "dit-internal.h"
#include "la-ops.h"

void
dit_scratch_init (DitScratch *s, LaBackend *be, int L, int D, int ffn, int n_frames, LaDType act)
{
  /* u feeds the linears from the f32 norm/modulate region; the rest are
   * linear outputs, rounded to act as the reference's bf16 autocast does */
  s->u = dit_alloc2 (be, L, D);
  s->q = dit_alloc2t (be, act, L, D);
  s->k = dit_alloc2t (be, act, L, D);
  s->attn = dit_alloc2t (be, act, L, D);
  s->tmp = dit_alloc2t (be, act, L, D);
  s->hid = dit_alloc2t (be, act, L, ffn);
  s->mod = dit_alloc3 (be, n_frames, 6, D);
}

void
dit_scratch_clear (DitScratch *s)
{
  g_clear_pointer (&s->u, la_tensor_unref);
  g_clear_pointer (&s->q, la_tensor_unref);
  g_clear_pointer (&s->k, la_tensor_unref);
  g_clear_pointer (&s->attn, la_tensor_unref);
  g_clear_pointer (&s->tmp, la_tensor_unref);
  g_clear_pointer (&s->hid, la_tensor_unref);
  g_clear_pointer (&s->mod, la_tensor_unref);
  g_clear_pointer (&s->kr, la_tensor_unref);
  g_clear_pointer (&s->vr, la_tensor_unref);
}

static LaTensor *
modvec (LaTensor *mod, int f, int i, int D)
{
  int64_t s[1] = { D };
  return dit_view (mod, ((gint64) f * 6 + i) * D, 1, s);
}

/* y[frame f rows] = y · (1 + mod[f][i_scale]) + mod[f][i_shift] */
static void
modulate_frames (LaBackend *be, LaTensor *y, LaTensor *mod, int nf, int fsl, int i_shift, int i_scale, int D)
{
  for (int f = 0; f < nf; f++) {
    g_autoptr (LaTensor) rows = dit_rows (y, (gint64) f * fsl, fsl);
    g_autoptr (LaTensor) sh = modvec (mod, f, i_shift, D);
    g_autoptr (LaTensor) sc = modvec (mod, f, i_scale, D);
    la_modulate (be, rows, rows, sh, sc);
  }
}

/* x += y · mod[f][i_gate] per frame, the product formed in f32 in the
 * free f32 scratch u (the reference's fp32 autocast region: y may be bf16). */
static void
gated_add (LaBackend *be, LaTensor *x, const LaTensor *y, LaTensor *u, LaTensor *mod, int nf, int fsl, int i_gate,
           int D)
{
  for (int f = 0; f < nf; f++) {
    g_autoptr (LaTensor) yr = dit_rows (y, (gint64) f * fsl, fsl);
    g_autoptr (LaTensor) ur = dit_rows (u, (gint64) f * fsl, fsl);
    g_autoptr (LaTensor) g = modvec (mod, f, i_gate, D);
    la_binary (be, LA_BINARY_MUL, ur, yr, g);
  }
  la_binary (be, LA_BINARY_ADD, x, x, u);
}

void
dit_block_forward (LaDitModel *m, int layer, LaTensor *x, const DitBlockArgs *a, DitScratch *s)
{
  LaBackend *be = m->be;
  const DitBlockW *w = &m->blocks[layer];
  int D = m->D, H = m->H, nf = a->n_frames, fsl = a->fsl;
  float eps = (float) m->cfg.eps, scale = (float) (1.0 / sqrt ((double) m->HD));

  /* modulation + e0 (fp32, like the autocast region) */
  la_binary (be, LA_BINARY_ADD, s->mod, a->e0, w->modulation);

  /* ---- self-attention ---- */
  la_layer_norm (be, s->u, x, NULL, NULL, eps);
  modulate_frames (be, s->u, s->mod, nf, fsl, 0, 1, D);
  la_linear (be, s->q, s->u, w->sq_w, w->sq_b);
  la_rms_norm (be, s->q, s->q, w->snq, eps);
  la_rope (be, s->q, s->q, a->freqs, H);
  la_linear (be, s->k, s->u, w->sk_w, w->sk_b);
  la_rms_norm (be, s->k, s->k, w->snk, eps);
  if (a->sink) {
    g_autoptr (LaTensor) ks = dit_rows (a->k_all, 0, a->Nc);
    g_autoptr (LaTensor) vs = dit_rows (a->v_all, 0, a->Nc);
    la_copy (be, a->cond_k, s->k);                 /* stored without RoPE */
    la_rope (be, ks, s->k, a->freqs, H);
    la_linear (be, vs, s->u, w->sv_w, w->sv_b);
    la_attention (be, s->attn, s->q, ks, vs, H, scale, NULL);
  } else {
    /* K and V are made in step scratch of the cache's dtype (the same
     * roundings as writing the ring directly), then copied to the ring row
     * the backend holds; attention reads the leading key rows whose count
     * the backend holds.  No position is baked into the ops. */
    g_autoptr (LaTensor) ksink = dit_rows (a->k_all, 0, a->Nc);
    la_rope (be, s->kr, s->k, a->freqs, H);
    la_linear (be, s->vr, s->u, w->sv_w, w->sv_b);
    la_copy_rows_at (be, a->k_all, s->kr, a->ring_row);
    la_copy_rows_at (be, a->v_all, s->vr, a->ring_row);
    la_rope (be, ksink, a->cond_k, a->freqs_cond, H);  /* re-roped at the rolled position */
    la_attention_n (be, s->attn, s->q, a->k_all, a->v_all, H, scale, a->n_keys);
  }
  la_linear (be, s->tmp, s->attn, w->so_w, w->so_b);
  gated_add (be, x, s->tmp, s->u, s->mod, nf, fsl, 2, D);

  /* ---- text cross-attention (no mask: padded rows attended) ---- */
  if (s->attn->dtype != LA_DTYPE_F32) {
    /* the official block rounds this LayerNorm's input: norm3(x.to(bfloat16)) */
    la_copy (be, s->attn, x);
    la_layer_norm (be, s->u, s->attn, w->n3_w, w->n3_b, eps);
  } else
    la_layer_norm (be, s->u, x, w->n3_w, w->n3_b, eps);
  la_linear (be, s->q, s->u, w->cq_w, w->cq_b);
  la_rms_norm (be, s->q, s->q, w->cnq, eps);
  la_attention (be, s->attn, s->q, a->ctx_k, a->ctx_v, H, scale, NULL);
  la_linear (be, s->tmp, s->attn, w->co_w, w->co_b);
  la_binary (be, LA_BINARY_ADD, x, x, s->tmp);

  /* ---- FFN ---- */
  la_layer_norm (be, s->u, x, NULL, NULL, eps);
  modulate_frames (be, s->u, s->mod, nf, fsl, 3, 4, D);
  la_linear (be, s->hid, s->u, w->f1_w, w->f1_b);
  la_unary (be, LA_UNARY_GELU_TANH, s->hid, s->hid);
  la_linear (be, s->tmp, s->hid, w->f2_w, w->f2_b);
  gated_add (be, x, s->tmp, s->u, s->mod, nf, fsl, 5, D);
}
