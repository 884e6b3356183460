/* vae-layers.c — the Wan2.1 VAE primitives on [C, T, H, W] tensors (docs/design/vae.md §2):
 *
 *  CausalConv3d  pad W by pw and H by ph (zeros) on both sides, and time by
 *                2·pt in FRONT only; with a cache, its 2 frames replace the
 *                front zeros.  The cache always holds the last 2 frames of
 *                [cache ++ x] (zero-initialised), which equals the
 *                reference's 1-frame-then-2-frame bookkeeping exactly.
 *  RMS_norm      x / max(‖x‖_C, 1e-12) · sqrt(C) · γ  (op channel_rms_norm).
 *  ResidualBlock shortcut(x) + CConv(SiLU(RMS(CConv(SiLU(RMS(x)))))).
 *  AttentionBlock per frame: x + proj(softmax(qᵀk/sqrt(C)) vᵀ), q,k,v = to_qkv(RMS(x)).
 *  Resample      down2d: pad (0,1,0,1), 3x3 stride 2; down3d: + time_conv
 *                stride 2 with the first-chunk pass-through (docs/design/vae.md §5);
 *                up2d: nearest x2 + 3x3 pad 1 (C → C/2); up3d: time_conv
 *                C → 2C interleaved into 2T frames, skipped on the first
 *                pass ("Rep"), then up2d.
 */
#include <math.h>
#include "vae-private.h"
#include "la-ops.h"

static const int STRIDE1[3] = { 1, 1, 1 };

LaTensor *
vae_alloc4 (LaBackend *be, int64_t c, int64_t t, int64_t h, int64_t w)
{
  int64_t s[4] = { c, t, h, w };
  return la_alloc (be, LA_DTYPE_F32, 4, s);
}

void
vae_tap (LaVae *vae, const char *name, int chunk, LaTensor *t)
{
  if (vae->tap)
    vae->tap (name, chunk, t, vae->tap_data);
}

/* t <- bf16(t): what storing an f32 result in a bf16 tensor does. */
void
vae_round_bf16 (LaBackend *be, LaTensor *t)
{
  LaTensor *h = la_alloc (be, LA_DTYPE_BF16, t->ndim, t->shape);
  la_copy (be, h, t);
  la_copy (be, t, h);
  la_tensor_unref (h);
}

void
vae_latent_norm_bf16 (LaVae *vae, LaTensor *z, gboolean encode)
{
  LaBackend *be = vae->be;
  if (encode) {
    vae_round_bf16 (be, z);
    la_latent_norm (be, z, z, vae->mean, vae->ones, TRUE);
    vae_round_bf16 (be, z);
    la_latent_norm (be, z, z, vae->zeros, vae->inv_std, TRUE);
  } else {
    la_latent_norm (be, z, z, vae->zeros, vae->inv_std, FALSE);
    vae_round_bf16 (be, z);
    la_latent_norm (be, z, z, vae->mean, vae->ones, FALSE);
  }
  vae_round_bf16 (be, z);
}

LaTensor *
vae_slice_frames (LaBackend *be, const LaTensor *x, int64_t t0, int64_t n)
{
  LaTensor *y = vae_alloc4 (be, x->shape[0], n, x->shape[2], x->shape[3]);
  int64_t yo[4] = { 0, 0, 0, 0 }, xo[4] = { 0, t0, 0, 0 };
  int64_t cnt[4] = { x->shape[0], n, x->shape[2], x->shape[3] };
  la_copy4d (be, y, yo, x, xo, cnt);
  return y;
}

/* [C, T_i, H, W] tensors (the passes of one call) -> one [C, sum T_i, H, W]. */
LaTensor *
vae_cat_frames (LaBackend *be, GPtrArray *parts)
{
  const LaTensor *first = parts->pdata[0];
  int64_t total = 0, at = 0;
  for (guint i = 0; i < parts->len; i++)
    total += ((const LaTensor *) parts->pdata[i])->shape[1];
  LaTensor *out = vae_alloc4 (be, first->shape[0], total, first->shape[2], first->shape[3]);
  for (guint i = 0; i < parts->len; i++) {
    const LaTensor *y = parts->pdata[i];
    int64_t yo[4] = { 0, at, 0, 0 }, zo[4] = { 0, 0, 0, 0 };
    int64_t cnt[4] = { y->shape[0], y->shape[1], y->shape[2], y->shape[3] };
    la_copy4d (be, out, yo, y, zo, cnt);
    at += y->shape[1];
  }
  return out;
}

/* Conv with kernel (kt, kh, kw): spatial zero padding ph/pw, and, when the
 * kernel is temporal (kt > 1) and a cache slot is given, kt-1 frames of
 * cached history in front (2·pt = kt − 1 for every temporal conv here).
 * Does not take x. */
LaTensor *
vae_conv (LaVae *vae, const VaeConv *cv, LaTensor *x, int ph, int pw, const int stride[3],
          VaeSlot *cache)
{
  LaBackend *be = vae->be;
  const int64_t C = x->shape[0], T = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t kt = cv->w->shape[2], kh = cv->w->shape[3], kw = cv->w->shape[4];
  const int64_t front = cache ? cache->t->shape[1] : 0;
  LaTensor *in = x;
  if (front || ph || pw) {
    in = vae_alloc4 (be, C, front + T, H + 2 * ph, W + 2 * pw);
    if (ph || pw)
      la_fill (be, in, 0.0f);
    int64_t yo[4] = { 0, front, ph, pw }, zo[4] = { 0, 0, 0, 0 }, cnt[4] = { C, T, H, W };
    la_copy4d (be, in, yo, x, zo, cnt);
    if (front) {
      int64_t yc[4] = { 0, 0, ph, pw }, cc[4] = { C, front, H, W };
      la_copy4d (be, in, yc, cache->t, zo, cc);
      /* New cache = last `front` frames of [cache ++ x]. */
      int64_t xo[4] = { 0, T, ph, pw };
      la_copy4d (be, cache->t, zo, in, xo, cc);
    }
  }
  const int64_t Ti = front + T, Hi = H + 2 * ph, Wi = W + 2 * pw;
  LaTensor *y = vae_alloc4 (be, cv->w->shape[0], (Ti - kt) / stride[0] + 1,
                            (Hi - kh) / stride[1] + 1, (Wi - kw) / stride[2] + 1);
  la_conv3d (be, y, in, cv->w, cv->b, stride);
  if (in != x)
    la_tensor_unref (in);
  return y;
}

LaTensor *
vae_norm_silu (LaVae *vae, const LaTensor *x, const LaTensor *gamma, gboolean silu)
{
  LaBackend *be = vae->be;
  LaTensor *y = la_alloc (be, LA_DTYPE_F32, x->ndim, x->shape);
  la_channel_rms_norm (be, y, x, gamma, 1e-12f);
  if (silu)
    la_unary (be, LA_UNARY_SILU, y, y);
  return y;
}

/* The slot for a temporal conv; allocated (zeros) at first use for this size. */
static VaeSlot *
slot (LaVae *vae, VaeState *st, int64_t c, int64_t frames, int64_t h, int64_t w)
{
  g_assert (st->idx < st->n_slots);
  VaeSlot *s = &st->slots[st->idx++];
  if (!s->t) {
    s->t = vae_alloc4 (vae->be, c, frames, h, w);
    la_fill (vae->be, s->t, 0.0f);
  }
  return s;
}

static LaTensor *
res_forward (LaVae *vae, VaeModule *m, LaTensor *x, VaeState *st)
{
  LaBackend *be = vae->be;
  const int64_t H = x->shape[2], W = x->shape[3];
  LaTensor *h = m->shortcut.w ? vae_conv (vae, &m->shortcut, x, 0, 0, STRIDE1, NULL)
                              : la_tensor_ref (x);
  LaTensor *t = vae_norm_silu (vae, x, m->gamma0, TRUE);
  LaTensor *u = vae_conv (vae, &m->conv0, t, 1, 1, STRIDE1, slot (vae, st, m->in, 2, H, W));
  la_tensor_unref (t);
  t = vae_norm_silu (vae, u, m->gamma1, TRUE);
  la_tensor_unref (u);
  u = vae_conv (vae, &m->conv1, t, 1, 1, STRIDE1, slot (vae, st, m->out, 2, H, W));
  la_tensor_unref (t);
  la_binary (be, LA_BINARY_ADD, u, u, h);
  la_tensor_unref (h);
  return u;
}

static LaTensor *
attn_forward (LaVae *vae, VaeModule *m, LaTensor *x)
{
  LaBackend *be = vae->be;
  const int64_t C = x->shape[0], T = x->shape[1], h = x->shape[2], w = x->shape[3], L = h * w;
  LaTensor *n = vae_norm_silu (vae, x, m->gamma0, FALSE);
  LaTensor *qkv = vae_conv (vae, &m->qkv, n, 0, 0, STRIDE1, NULL);   /* [3C, T, h, w] */
  la_tensor_unref (n);
  LaTensor *att = vae_alloc4 (be, C, T, h, w);
  LaTensor *part[3];
  for (int j = 0; j < 3; j++)
    part[j] = vae_alloc4 (be, C, 1, h, w);
  int64_t cl[2] = { C, L }, ll[2] = { L, L };
  LaTensor *s = la_alloc (be, LA_DTYPE_F32, 2, ll);
  LaTensor *p = la_alloc (be, LA_DTYPE_F32, 2, ll);
  LaTensor *o = vae_alloc4 (be, C, 1, h, w);
  LaTensor *q2 = la_tensor_reshape (part[0], 2, cl, NULL);
  LaTensor *k2 = la_tensor_reshape (part[1], 2, cl, NULL);
  LaTensor *v2 = la_tensor_reshape (part[2], 2, cl, NULL);
  LaTensor *o2 = la_tensor_reshape (o, 2, cl, NULL);
  const int64_t zo[4] = { 0, 0, 0, 0 }, cnt[4] = { C, 1, h, w };
  for (int64_t t = 0; t < T; t++) {
    for (int j = 0; j < 3; j++) {
      int64_t xo[4] = { j * C, t, 0, 0 };
      la_copy4d (be, part[j], zo, qkv, xo, cnt);
    }
    /* s[L, L] = qᵀ k / sqrt(C); o[C, L] = v · softmax(s)ᵀ — stays channel-first. */
    la_matmul (be, s, q2, k2, TRUE, FALSE, (float) (1.0 / sqrt ((double) C)), 0.0f);
    la_softmax (be, p, s);
    la_matmul (be, o2, v2, p, FALSE, TRUE, 1.0f, 0.0f);
    int64_t ao[4] = { 0, t, 0, 0 };
    la_copy4d (be, att, ao, o, zo, cnt);
  }
  LaTensor *y = vae_conv (vae, &m->proj, att, 0, 0, STRIDE1, NULL);
  la_binary (be, LA_BINARY_ADD, y, y, x);
  LaTensor *all[] = { q2, k2, v2, o2, o, s, p, att, qkv, part[0], part[1], part[2] };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    la_tensor_unref (all[i]);
  return y;
}

/* Per-frame 2-D part of a resample. */
static LaTensor *
spatial_resample (LaVae *vae, VaeModule *m, LaTensor *x)
{
  LaBackend *be = vae->be;
  const int64_t C = x->shape[0], T = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (m->kind == VAE_DOWN2D || m->kind == VAE_DOWN3D) {
    /* ZeroPad2d((0, 1, 0, 1)): one zero column right, one zero row bottom. */
    LaTensor *p = vae_alloc4 (be, C, T, H + 1, W + 1);
    la_fill (be, p, 0.0f);
    int64_t zo[4] = { 0, 0, 0, 0 }, cnt[4] = { C, T, H, W };
    la_copy4d (be, p, zo, x, zo, cnt);
    const int s2[3] = { 1, 2, 2 };
    LaTensor *y = vae_conv (vae, &m->resample, p, 0, 0, s2, NULL);
    la_tensor_unref (p);
    return y;
  }
  LaTensor *u = vae_alloc4 (be, C, T, 2 * H, 2 * W);
  la_upsample2x (be, u, x);
  LaTensor *y = vae_conv (vae, &m->resample, u, 1, 1, STRIDE1, NULL);
  la_tensor_unref (u);
  return y;
}

static LaTensor *
down3d_time (LaVae *vae, VaeModule *m, LaTensor *x, VaeState *st)
{
  LaBackend *be = vae->be;
  const int64_t C = x->shape[0], T = x->shape[1], H = x->shape[2], W = x->shape[3];
  g_assert (st->idx < st->n_slots);
  VaeSlot *s = &st->slots[st->idx++];
  if (!s->started) {
    /* First chunk: no time_conv at all; remember the last frame. */
    s->started = TRUE;
    s->t = vae_slice_frames (be, x, T - 1, 1);
    return la_tensor_ref (x);
  }
  /* Later chunks: [last stored frame ++ x], valid stride-2 temporal conv. */
  LaTensor *in = vae_alloc4 (be, C, 1 + T, H, W);
  int64_t zo[4] = { 0, 0, 0, 0 }, o1[4] = { 0, 1, 0, 0 };
  int64_t c1[4] = { C, 1, H, W }, cx[4] = { C, T, H, W };
  la_copy4d (be, in, zo, s->t, zo, c1);
  la_copy4d (be, in, o1, x, zo, cx);
  int64_t last[4] = { 0, T - 1, 0, 0 };
  la_copy4d (be, s->t, zo, x, last, c1);
  const int s2[3] = { 2, 1, 1 };
  LaTensor *y = vae_conv (vae, &m->time_conv, in, 0, 0, s2, NULL);
  la_tensor_unref (in);
  return y;
}

static LaTensor *
up3d_time (LaVae *vae, VaeModule *m, LaTensor *x, VaeState *st)
{
  LaBackend *be = vae->be;
  const int64_t C = x->shape[0], T = x->shape[1], H = x->shape[2], W = x->shape[3];
  g_assert (st->idx < st->n_slots);
  VaeSlot *s = &st->slots[st->idx];
  if (!s->started) {
    /* First pass: the slot becomes "Rep", the frames pass unchanged. */
    s->started = TRUE;
    st->idx++;
    return la_tensor_ref (x);
  }
  /* Afterwards an ordinary cached causal conv whose history starts at
   * zeros: the "Rep" frame never enters it (docs/design/vae.md §5). */
  VaeSlot *cs = slot (vae, st, C, 2, H, W);
  LaTensor *tc = vae_conv (vae, &m->time_conv, x, 0, 0, STRIDE1, cs);   /* [2C, T, H, W] */
  LaTensor *y = vae_alloc4 (be, C, 2 * T, H, W);
  int64_t cnt[4] = { C, 1, H, W };
  for (int64_t t = 0; t < T; t++)
    for (int j = 0; j < 2; j++) {
      int64_t yo[4] = { 0, 2 * t + j, 0, 0 }, xo[4] = { j * C, t, 0, 0 };
      la_copy4d (be, y, yo, tc, xo, cnt);
    }
  la_tensor_unref (tc);
  return y;
}

/* Takes x. */
LaTensor *
vae_module_forward (LaVae *vae, VaeModule *m, LaTensor *x, VaeState *st)
{
  LaTensor *y = NULL, *t;
  switch (m->kind) {
  case VAE_RES:
    y = res_forward (vae, m, x, st);
    break;
  case VAE_ATTN:
    y = attn_forward (vae, m, x);
    break;
  case VAE_DOWN2D:
  case VAE_UP2D:
    y = spatial_resample (vae, m, x);
    break;
  case VAE_DOWN3D:
    t = spatial_resample (vae, m, x);
    y = down3d_time (vae, m, t, st);
    la_tensor_unref (t);
    break;
  case VAE_UP3D:
    t = up3d_time (vae, m, x, st);
    y = spatial_resample (vae, m, t);
    la_tensor_unref (t);
    break;
  }
  la_tensor_unref (x);
  return y;
}

static LaTensor *
run_mods (LaVae *vae, VaeSide *side, int from, int to, LaTensor *x, VaeState *st,
          const char *tap_group)
{
  for (int i = from; i < to; i++) {
    x = vae_module_forward (vae, &side->mods[i], x, st);
    vae_tap (vae, side->mods[i].name, st->chunk, x);
  }
  if (tap_group)
    vae_tap (vae, tap_group, st->chunk, x);
  return x;
}

/* One chunk / pass through the encoder or decoder body (conv_in → ... →
 * head).  Takes x.  Decoder order: middle then stages; encoder: stages then
 * middle.  Taps "<prefix>.conv1", each module, "<prefix>.middle", "<prefix>.head". */
LaTensor *
vae_side_forward (LaVae *vae, VaeSide *side, const char *prefix, LaTensor *x, VaeState *st)
{
  char name[64];
  gboolean middle_first = side == &vae->dec;
  st->idx = 0;
  const int64_t H = x->shape[2], W = x->shape[3];
  LaTensor *y = vae_conv (vae, &side->conv_in, x, 1, 1, STRIDE1,
                          slot (vae, st, x->shape[0], 2, H, W));
  la_tensor_unref (x);
  g_snprintf (name, sizeof name, "%s.conv1", prefix);
  vae_tap (vae, name, st->chunk, y);
  g_snprintf (name, sizeof name, "%s.middle", prefix);
  if (middle_first) {
    y = run_mods (vae, side, side->n_stages, side->n_stages + side->n_middle, y, st, name);
    y = run_mods (vae, side, 0, side->n_stages, y, st, NULL);
  } else {
    y = run_mods (vae, side, 0, side->n_stages, y, st, NULL);
    y = run_mods (vae, side, side->n_stages, side->n_stages + side->n_middle, y, st, name);
  }
  LaTensor *t = vae_norm_silu (vae, y, side->head_gamma, TRUE);
  la_tensor_unref (y);
  y = vae_conv (vae, &side->head_conv, t, 1, 1, STRIDE1,
                slot (vae, st, t->shape[0], 2, t->shape[2], t->shape[3]));
  la_tensor_unref (t);
  g_snprintf (name, sizeof name, "%s.head", prefix);
  vae_tap (vae, name, st->chunk, y);
  return y;
}
