/* dit-session.c — the streaming loop (docs/design/model.md §3–§4, docs/design/streaming.md).
 *
 * A session owns 4 KV caches (one per denoising step: "timestep forcing").
 * Per cache and layer, one K and one V buffer [Nc + C, D]: rows [0, Nc) are
 * the sink (ref + FramePack motion tokens, prefilled at t = 0; the V rows are
 * stored as is, the K rows are rewritten on every call from the un-roped
 * cond_k at the rolled ref position), rows [Nc, Nc + C) the ring of
 * C = (infer_frames/4)·fsl tokens holding roped keys at absolute positions.
 *
 * Step call for cache i at absolute latent frame n (current_start = n·fsl):
 *   slot = current_start mod C; active = current_start + L in clip 0, C after.
 *   sink ref position 30 + max(0, n − (30 − d)), d in [4, 30] per call.
 * Block: x = noise; for i in 0..3: x += (σ_{i+1} − σ_i)·DiT_i(x, t_i).
 *
 * A block stays on the backend: the latent and the audio features arrive
 * in one upload (packed on the host into one staging buffer, copied into one
 * backend "inbox" whose views are s->xd and s->audio_d; a latent already on
 * the backend is copied in there, so only the audio goes up), the audio is
 * encoded once, and every step (patchify, RoPE tables, blocks, head,
 * unpatchify, Euler) is backend ops with no host round trip and no
 * synchronisation; the latent comes back once at the end.  The time
 * embeddings of the 4 scheduled timesteps are made at session creation; the
 * RoPE tables keep their spatial columns and get their temporal ones from
 * the rope_table op.
 *
 * Step graphs (backends with la_graph_supported: CUDA).  A step is the same
 * ops on the same tensors every block; what changes is values, not
 * addresses: the RoPE temporal columns (frame n, rolled ref position R: two
 * small rope_table ops run eagerly before the graph) and the ring position —
 * the row the call's K/V go to (Nc + slot) and the key rows attention reads
 * (Nc + active).  Those two are I32s in the inbox (s->ring_row, s->n_keys),
 * written on the host and uploaded WITH the block's inputs (no extra
 * upload), and read by the ops when they execute (copy_rows_at,
 * attention_n).  So a graph depends on the cache index only: the first time
 * step i runs it runs eagerly (warming the allocator and the GEMM algorithm
 * caches), the second time (block 1) it is captured and launched, and every
 * later block, clip 0 included, launches it: 4 graphs per session.
 * Pointers stay put: the latent is always s->xd, the audio tokens are copied
 * into session-owned s->a_tok / s->a_glob, the time embeddings of the
 * scheduled t are fixed tensors.
 */
#include <math.h>
#include <string.h>
#include "dit-internal.h"
#include "la-ops.h"

#define N_STEPS 4
#define INBOX_POS 4                              /* f32 slots of the inbox holding the ring position */

typedef struct {
  LaTensor **k_all, **v_all, **cond_k;           /* per layer */
} DitCache;

/* e [F, D] and e0 [F, 6, D] of one timestep. */
typedef struct {
  float t;
  LaTensor *e, *e0;
} TimeEmb;

struct _LaDitSession {
  LaDitModel *m;
  LaBackend *be;
  LaDitSessionParams p;
  int D, HD, F, gh, gw, fsl, L, Nc;
  gint64 C;
  DitCache cache[N_STEPS];
  LaTensor **ctx_k, **ctx_v;                     /* per layer text K/V [text_len, D] */
  LaTensor *sink_tokens;                         /* [Nc, D] embedded ref + motion tokens */
  LaTensor *x, *xs;                              /* hidden states [L, D] / [Nc, D] */
  LaTensor *freqs, *freqs_sink, *freqs_cond;     /* backend tables */
  LaTensor *freqs_cond_ref;                      /* view: the ref rows of freqs_cond */
  LaTensor *h_freqs_sink;                        /* host table */
  int nt_pairs;                                  /* temporal RoPE pairs per row */
  LaTensor *e0_zero;                             /* [1, 6, D] t = 0 projection */
  LaTensor *e, *feat, *tmpD, *h_feat;            /* time embedding scratch */
  TimeEmb temb[N_STEPS + 1];                     /* the 4 scheduled t, then any other */
  LaTensor *patches, *head_o, *head_mod;
  LaTensor *inbox, *inbox_h;                     /* backend / host staging [C·F·h·w | 4 | Lw·A·4F] */
  gint64 inbox_lw;                               /* the audio layer count it was made for */
  LaTensor *xd, *vel;                            /* backend latent (inbox view) / velocity [C, F, h, w] */
  LaTensor *audio_d, *audio_in;                  /* backend [Lw, A, 4F] (inbox view) / [Lw, A, P + 4F] */
  LaTensor *a_glob, *a_tok;                      /* the block's audio tokens [F, D] / [F, ntok, D] (fixed) */
  LaTensor *ring_row, *n_keys;                   /* I32 inbox views: Nc + slot, Nc + active of the block */
  LaGraph *graphs[N_STEPS];                      /* step i's graph, captured on its second run */
  gboolean ran_eagerly[N_STEPS];                 /* step i has run once (warm-up before a capture) */
  gboolean graphs_on;
  DitScratch sc_step, sc_sink;
  DitRopeGroup g_ref, g_mot[3];
  float timesteps[N_STEPS], sigmas[N_STEPS + 1];
  GRand *rng;
  GArray *d_queue;                               /* d values for the next calls (replay) */
  LaTensor *first_latent;                        /* [C, 1, h, w] for the sink refresh */
  gint64 blocks_done;
  LaDitDumpFunc dump;
  gpointer dump_user;
};

/* Whether this session holds the KV cache of step i (LaDitSessionParams.cache_mask). */
static inline gboolean
holds (const LaDitSession *s, int i)
{
  return i >= 0 && i < N_STEPS && (s->p.cache_mask == 0 || (s->p.cache_mask & (1u << i)));
}

void
la_dit_euler_schedule (int steps, double shift, int ntt, float *timesteps, float *sigmas)
{
  /* diffusers FlowMatchEulerDiscreteScheduler(shift): the training sigmas are
   * already shifted, so set_timesteps spans [1, shifted 1/ntt] and shifts again. */
  float s_min0 = 1.0f / ntt;
  float s_min = (float) (shift * s_min0 / (1 + (shift - 1) * s_min0));
  double t0 = 1.0 * ntt, t1 = (double) s_min * ntt;
  for (int i = 0; i < steps; i++) {
    double t = steps > 1 ? t0 + (t1 - t0) * i / (steps - 1) : t0;
    if (i == steps - 1 && steps > 1)
      t = t1;
    double s = t / ntt;
    float sf = (float) (shift * s / (1 + (shift - 1) * s));
    sigmas[i] = sf;
    timesteps[i] = sf * (float) ntt;
  }
  sigmas[steps] = 0.0f;
}

void
la_dit_session_params_init (LaDitSessionParams *p, int lat_h, int lat_w)
{
  memset (p, 0, sizeof *p);
  p->lat_h = lat_h;
  p->lat_w = lat_w;
  p->infer_frames = 48;
  p->frames_per_block = 3;
  p->audio_prefix = 1;     /* ≡ 73 (mod 4): bit-identical, 73x less conv work (docs/design/audio-path.md §5) */
  p->motion_latent_frames = DIT_FP_TOTAL;
  p->fixed_d = 0;
  p->d_seed = 420;
}

static void
dump (LaDitSession *s, const char *name, const LaTensor *t)
{
  if (s->dump)
    s->dump (name, t, s->dump_user);
}

/* TRUE if x is a latent [in_dim, T, h, w] (or [1, in_dim, T, h, w]) of
 * floats, T frames (any when T < 0; f32 only when it is updated in place). */
static gboolean
check_latent_frames (LaDitSession *s, const LaTensor *x, gboolean f32, int T, const char *who, const char *what,
                     GError **error)
{
  const LaDitConfig *c = &s->m->cfg;
  int off = x && x->ndim == 5 ? 1 : 0;
  if (!x || !la_dtype_is_float (x->dtype) || (f32 && x->dtype != LA_DTYPE_F32) ||
      (x->ndim != 4 && !(x->ndim == 5 && x->shape[0] == 1)) || x->shape[off] != c->in_dim ||
      (T >= 0 && x->shape[off + 1] != T) || x->shape[off + 1] < 1 || x->shape[off + 2] != s->p.lat_h ||
      x->shape[off + 3] != s->p.lat_w) {
    g_autofree char *got = x ? la_shape_to_string (x->ndim, x->shape) : g_strdup ("NULL");
    g_autofree char *tt = T >= 0 ? g_strdup_printf ("%d", T) : g_strdup ("T");
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "%s: %s must be a%s [%d, %s, %d, %d] latent, got %s %s",
                 who, what, f32 ? "n f32" : "", c->in_dim, tt, s->p.lat_h, s->p.lat_w, got,
                 x ? la_dtype_name (x->dtype) : "");
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_latent (LaDitSession *s, const LaTensor *x, gboolean f32, const char *who, const char *what, GError **error)
{
  return check_latent_frames (s, x, f32, s->F, who, what, error);
}

/* A backend f32 copy of a checked latent as [C, T, h, w] (the one upload of a host latent). */
static LaTensor *
latent_upload (LaDitSession *s, const LaTensor *x)
{
  int off = x->ndim == 5 ? 1 : 0;
  LaTensor *d = la_alloc (s->be, LA_DTYPE_F32, 4, x->shape + off);
  la_copy (s->be, d, x);
  return d;
}

/* ---- time and text embeddings ---- */

/* e [n, D] and e0 [n, 6D] for n copies of timestep t (sinusoid cos first, fp64). */
static void
time_embed (LaDitSession *s, float t, int n, LaTensor *e, LaTensor *e0)
{
  LaDitModel *m = s->m;
  int fd = m->cfg.freq_dim, half = fd / 2;
  float *f = la_tensor_f32 (s->h_feat);
  for (int k = 0; k < half; k++) {
    double ph = (double) t * pow (10000.0, -(double) k / half);
    for (int r = 0; r < n; r++) {
      f[r * fd + k] = (float) cos (ph);
      f[r * fd + half + k] = (float) sin (ph);
    }
  }
  g_autoptr (LaTensor) hf = dit_rows (s->h_feat, 0, n);
  g_autoptr (LaTensor) bf = dit_rows (s->feat, 0, n);
  g_autoptr (LaTensor) tmp = dit_rows (s->tmpD, 0, n);
  la_copy (s->be, bf, hf);
  la_linear (s->be, tmp, bf, m->tm0_w, m->tm0_b);
  la_unary (s->be, LA_UNARY_SILU, tmp, tmp);
  la_linear (s->be, e, tmp, m->tm2_w, m->tm2_b);
  la_unary (s->be, LA_UNARY_SILU, tmp, e);
  la_linear (s->be, e0, tmp, m->tp_w, m->tp_b);
}

static gboolean
text_embed (LaDitSession *s, const LaTensor *context, GError **error)
{
  LaDitModel *m = s->m;
  LaBackend *be = s->be;
  const LaDitConfig *c = &m->cfg;
  if (!context || context->ndim != 2 || context->shape[1] != c->text_dim || context->shape[0] > c->text_len ||
      context->shape[0] < 1) {
    g_autofree char *got = context ? la_shape_to_string (context->ndim, context->shape) : g_strdup ("NULL");
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "DiT session: text_context has shape %s, expected [L <= %d, %d]", got, c->text_len, c->text_dim);
    return FALSE;
  }
  /* zero rows appended to text_len before the MLP (pads become a constant row, attended) */
  int64_t sh[2] = { c->text_len, c->text_dim };
  g_autoptr (LaTensor) hctx = la_tensor_new (LA_DTYPE_F32, 2, sh);
  g_autoptr (LaTensor) top = dit_rows (hctx, 0, context->shape[0]);
  la_copy (be, top, context);
  g_autoptr (LaTensor) bctx = la_alloc (be, LA_DTYPE_F32, 2, sh);
  la_copy (be, bctx, hctx);
  LaDType act = s->p.act_dtype;
  g_autoptr (LaTensor) h1 = dit_alloc2t (be, act, c->text_len, s->D);
  g_autoptr (LaTensor) ctx = dit_alloc2t (be, act, c->text_len, s->D);
  la_linear (be, h1, bctx, m->te0_w, m->te0_b);
  la_unary (be, LA_UNARY_GELU_TANH, h1, h1);
  la_linear (be, ctx, h1, m->te2_w, m->te2_b);
  dump (s, "context_emb", ctx);
  for (int l = 0; l < c->num_layers; l++) {
    const DitBlockW *w = &m->blocks[l];
    if (!s->ctx_k[l]) {
      s->ctx_k[l] = dit_alloc2t (be, act, c->text_len, s->D);
      s->ctx_v[l] = dit_alloc2t (be, act, c->text_len, s->D);
    }
    la_linear (be, s->ctx_k[l], ctx, w->ck_w, w->ck_b);
    la_rms_norm (be, s->ctx_k[l], s->ctx_k[l], w->cnk, (float) c->eps);
    la_linear (be, s->ctx_v[l], ctx, w->cv_w, w->cv_b);
  }
  return TRUE;
}

/* ---- sink tokens (docs/design/model.md §4.1) ---- */

/* Sink rows [row0, row0 + ntok) = proj(patches of x with kernel k) + cond mask:
 * the stride = kernel Conv3d as patchify + one linear, on the backend. */
static void
embed_patches (LaDitSession *s, const LaTensor *x, const int k[3], const LaTensor *w, const LaTensor *b,
               const LaTensor *mask, gint64 row0)
{
  LaBackend *be = s->be;
  gint64 ntok = x->shape[1] / k[0] * (x->shape[2] / k[1]) * (x->shape[3] / k[2]);
  g_autoptr (LaTensor) p = dit_alloc2 (be, ntok, x->shape[0] * k[0] * k[1] * k[2]);
  la_patchify (be, p, x, k);
  g_autoptr (LaTensor) rows = dit_rows (s->sink_tokens, row0, ntok);
  la_linear (be, rows, p, w, b);
  la_binary (be, LA_BINARY_ADD, rows, rows, mask);
}

/* ref tokens: patch_embedding + trainable_cond_mask[1] */
static gboolean
embed_ref (LaDitSession *s, const LaTensor *ref_latent, GError **error)
{
  const LaDitConfig *c = &s->m->cfg;
  if (!check_latent_frames (s, ref_latent, FALSE, 1, "DiT session", "ref_latent", error))
    return FALSE;
  g_autoptr (LaTensor) ref = latent_upload (s, ref_latent);
  const int k[3] = { 1, c->patch_size[1], c->patch_size[2] };
  embed_patches (s, ref, k, s->m->pe_w, s->m->pe_b, s->m->tcm[1], 0);
  return TRUE;
}

static gboolean
embed_sink (LaDitSession *s, const LaTensor *ref_latent, const LaTensor *motion, GError **error)
{
  LaDitModel *m = s->m;
  LaBackend *be = s->be;
  int C = m->cfg.in_dim, h = s->p.lat_h, w = s->p.lat_w;
  if (!motion) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "DiT session: motion_latents is NULL");
    return FALSE;
  }
  if (!check_latent_frames (s, motion, FALSE, -1, "DiT session", "motion_latents", error) ||
      !embed_ref (s, ref_latent, error))
    return FALSE;
  /* last 19 frames, front-padded with zero latents when fewer (official padd mode) */
  g_autoptr (LaTensor) mfull = latent_upload (s, motion);
  g_autoptr (LaTensor) mot = la_alloc (be, LA_DTYPE_F32, 4, (int64_t[]) { C, DIT_FP_TOTAL, h, w });
  int64_t T = mfull->shape[1], ov = MIN (T, DIT_FP_TOTAL);
  la_copy4d (be, mot, (int64_t[]) { 0, DIT_FP_TOTAL - ov, 0, 0 }, mfull, (int64_t[]) { 0, T - ov, 0, 0 },
             (int64_t[]) { C, ov, h, w });
  /* FramePack buckets, oldest first in time: 4x = M[0:16], 2x = M[16:18], post = M[18] */
  static const int t0[3] = { DIT_FP_4X + DIT_FP_2X, DIT_FP_4X, 0 };
  static const int tn[3] = { DIT_FP_POST, DIT_FP_2X, DIT_FP_4X };
  gint64 off = s->fsl;
  for (int b = 0; b < 3; b++) {
    const int *k = m->fp_k[b];
    g_autoptr (LaTensor) sub = la_alloc (be, LA_DTYPE_F32, 4, (int64_t[]) { C, tn[b], h, w });
    la_copy4d (be, sub, (int64_t[]) { 0, 0, 0, 0 }, mot, (int64_t[]) { 0, t0[b], 0, 0 },
               (int64_t[]) { C, tn[b], h, w });
    embed_patches (s, sub, k, m->fp_w[b], m->fp_b[b], m->tcm[2], off);
    off += tn[b] / k[0] * (h / k[1]) * (w / k[2]);
  }
  g_assert (off == s->Nc);
  return TRUE;
}

/* Sink RoPE table with the ref frame at temporal index ref_t. */
static void
sink_freqs (LaDitSession *s, gint64 ref_t, LaTensor *host, LaTensor *dev)
{
  float *f = la_tensor_f32 (host);
  s->g_ref.f[0] = ref_t;
  int n = dit_rope_fill_group (f, s->HD, &s->g_ref);
  for (int b = 0; b < 3; b++)
    n += dit_rope_fill_group (f + (gint64) n * s->HD, s->HD, &s->g_mot[b]);
  la_copy (s->be, dev, host);
}

/* e, e0 of timestep t into te (allocated on first use). */
static void
time_embed_into (LaDitSession *s, TimeEmb *te, float t)
{
  if (!te->e) {
    te->e = dit_alloc2 (s->be, s->F, s->D);
    te->e0 = dit_alloc3 (s->be, s->F, 6, s->D);
  }
  te->t = t;
  g_autoptr (LaTensor) e0v = dit_view (te->e0, 0, 2, (int64_t[]) { s->F, 6 * s->D });
  time_embed (s, t, s->F, te->e, e0v);
}

/* The embeddings of t: a scheduled timestep's are ready; any other t (a
 * replayed call) is embedded into the spare slot, with an upload. */
static const TimeEmb *
time_emb_for (LaDitSession *s, float t)
{
  for (int i = 0; i < N_STEPS; i++)
    if (s->temb[i].t == t)
      return &s->temb[i];
  TimeEmb *spare = &s->temb[N_STEPS];
  if (!spare->e || spare->t != t)
    time_embed_into (s, spare, t);
  return spare;
}

/* The step tables' constant columns, uploaded once: freqs gets the spatial
 * pairs of the noisy frames' grid, freqs_cond the sink table (only its ref
 * rows' temporal pairs move with the rolled position). */
static void
step_freqs_init (LaDitSession *s)
{
  g_autoptr (LaTensor) h = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { s->L, s->HD / 2, 2 });
  DitRopeGroup g = { 0 };
  gint64 fl[DIT_FP_4X] = { 0 };
  dit_rope_group_grid (&g, s->F, fl, s->gh, s->gh, s->gw, s->gw);
  dit_rope_fill_group (la_tensor_f32 (h), s->HD, &g);
  dit_rope_group_clear (&g);
  la_copy (s->be, s->freqs, h);
  la_copy (s->be, s->freqs_cond, s->freqs_sink);
}

static void
cache_alloc (LaDitSession *s, DitCache *c)
{
  int nl = s->m->cfg.num_layers;
  c->k_all = g_new0 (LaTensor *, nl);
  c->v_all = g_new0 (LaTensor *, nl);
  c->cond_k = g_new0 (LaTensor *, nl);
  for (int l = 0; l < nl; l++) {
    LaDType t = s->p.cache_dtype;
    c->k_all[l] = la_alloc (s->be, t, 2, (int64_t[]) { s->Nc + s->C, s->D });
    c->v_all[l] = la_alloc (s->be, t, 2, (int64_t[]) { s->Nc + s->C, s->D });
    c->cond_k[l] = la_alloc (s->be, t, 2, (int64_t[]) { s->Nc, s->D });
    la_fill (s->be, c->k_all[l], 0);
    la_fill (s->be, c->v_all[l], 0);
  }
}

static void
cache_free (LaDitSession *s, DitCache *c)
{
  if (!c->k_all)
    return;
  for (int l = 0; l < s->m->cfg.num_layers; l++) {
    la_tensor_unref (c->k_all[l]);
    la_tensor_unref (c->v_all[l]);
    la_tensor_unref (c->cond_k[l]);
  }
  g_free (c->k_all);
  g_free (c->v_all);
  g_free (c->cond_k);
}

/* Drops every captured step (before the tensors they use go). */
static void
graphs_clear (LaDitSession *s)
{
  for (int i = 0; i < N_STEPS; i++)
    if (s->graphs[i]) {
      la_graph_free (s->be, s->graphs[i]);
      s->graphs[i] = NULL;
    }
}

void
la_dit_session_free (LaDitSession *s)
{
  if (!s)
    return;
  graphs_clear (s);
  for (int i = 0; i < N_STEPS; i++)
    cache_free (s, &s->cache[i]);
  for (int l = 0; s->ctx_k && l < s->m->cfg.num_layers; l++) {
    if (s->ctx_k[l]) la_tensor_unref (s->ctx_k[l]);
    if (s->ctx_v[l]) la_tensor_unref (s->ctx_v[l]);
  }
  g_free (s->ctx_k);
  g_free (s->ctx_v);
  LaTensor **ts[] = { &s->sink_tokens, &s->x, &s->xs, &s->freqs, &s->freqs_sink, &s->freqs_cond,
                      &s->freqs_cond_ref, &s->h_freqs_sink, &s->e0_zero, &s->e, &s->feat, &s->tmpD, &s->h_feat,
                      &s->patches, &s->head_o, &s->head_mod, &s->xd, &s->vel, &s->audio_d,
                      &s->audio_in, &s->a_glob, &s->a_tok, &s->ring_row, &s->n_keys, &s->inbox, &s->inbox_h };
  for (guint i = 0; i < G_N_ELEMENTS (ts); i++)
    g_clear_pointer (ts[i], la_tensor_unref);
  for (int i = 0; i <= N_STEPS; i++) {
    g_clear_pointer (&s->temb[i].e, la_tensor_unref);
    g_clear_pointer (&s->temb[i].e0, la_tensor_unref);
  }
  dit_scratch_clear (&s->sc_step);
  dit_scratch_clear (&s->sc_sink);
  dit_rope_group_clear (&s->g_ref);
  for (int b = 0; b < 3; b++)
    dit_rope_group_clear (&s->g_mot[b]);
  if (s->rng)
    g_rand_free (s->rng);
  if (s->d_queue)
    g_array_unref (s->d_queue);
  g_clear_pointer (&s->first_latent, la_tensor_unref);
  if (s->be)
    la_backend_unref (s->be);
  g_free (s);
}

/* The sink K/V are a function of (ref, motion, prompt) only, identical for the
 * 4 caches: prefill cache 0 and copy (the official code runs it 4 times, docs/design/model.md §4.1). */
static gboolean
prefill_all (LaDitSession *s, GError **error)
{
  int first = 0;
  while (!holds (s, first))
    first++;
  if (!la_dit_session_sink_call (s, first, error))
    return FALSE;
  for (int i = first + 1; i < N_STEPS; i++)
    for (int l = 0; holds (s, i) && l < s->m->cfg.num_layers; l++) {
      g_autoptr (LaTensor) v0 = dit_rows (s->cache[first].v_all[l], 0, s->Nc);
      g_autoptr (LaTensor) vi = dit_rows (s->cache[i].v_all[l], 0, s->Nc);
      la_copy (s->be, s->cache[i].cond_k[l], s->cache[first].cond_k[l]);
      la_copy (s->be, vi, v0);
    }
  return la_backend_sync (s->be, error);
}

LaDitSession *
la_dit_session_new (LaDitModel *m, const LaDitSessionParams *p, const LaTensor *ref_latent,
                    const LaTensor *motion_latents, const LaTensor *text_context, GError **error)
{
  if (!m || !p) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_dit_session_new: model and params are required");
    return NULL;
  }
  const LaDitConfig *c = &m->cfg;
  int ph = c->patch_size[1], pw = c->patch_size[2];
  const char *bad = NULL;
  if (p->lat_h <= 0 || p->lat_w <= 0 || p->lat_h % 8 || p->lat_w % 8)
    bad = "lat_h and lat_w must be positive multiples of 8 (image sides multiples of 64; FramePack 4x tiles exactly)";
  else if (p->lat_h % ph || p->lat_w % pw)
    bad = "latent size not divisible by the patch size";
  else if (p->frames_per_block <= 0)
    bad = "frames_per_block must be > 0";
  else if (p->infer_frames <= 0 || p->infer_frames % (4 * p->frames_per_block))
    bad = "infer_frames must be a positive multiple of 4·frames_per_block (12)";
  else if (p->audio_prefix < 1 || p->audio_prefix % 4 != 1)
    bad = "audio_prefix must be ≡ 1 (mod 4)";
  else if (p->fixed_d != 0 && (p->fixed_d < 4 || p->fixed_d > 30))
    bad = "fixed_d must be 0 (random) or in [4, 30]";
  else if (p->cache_mask >= (1u << N_STEPS))
    bad = "cache_mask has bits above the 4 denoising steps";
  else if (p->cache_dtype != LA_DTYPE_F32 && p->cache_dtype != LA_DTYPE_BF16)
    bad = "cache_dtype must be f32 or bf16";
  else if (p->act_dtype != LA_DTYPE_F32 && p->act_dtype != LA_DTYPE_BF16)
    bad = "act_dtype must be f32 or bf16";
  else if ((p->cache_dtype == LA_DTYPE_BF16 || p->act_dtype == LA_DTYPE_BF16) &&
           la_backend_get_device (m->be) == LA_DEVICE_CPU)
    bad = "bf16 KV caches and activations need a backend with 16-bit activations (CUDA); the CPU ops read f32";
  if (bad) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "DiT session params: %s", bad);
    return NULL;
  }
  LaDitSession *s = g_new0 (LaDitSession, 1);
  s->m = m;
  s->be = la_backend_ref (m->be);
  s->p = *p;
  s->D = m->D;
  s->HD = m->HD;
  s->F = p->frames_per_block;
  s->gh = p->lat_h / ph;
  s->gw = p->lat_w / pw;
  s->fsl = s->gh * s->gw;
  s->L = s->F * s->fsl;
  s->C = (gint64) (p->infer_frames / 4) * s->fsl;
  /* sink: ref (fsl) + post (fsl at patch 2x2) + 2x + 4x tokens */
  int h = p->lat_h, w = p->lat_w;
  int n_post = (h / m->fp_k[0][1]) * (w / m->fp_k[0][2]);
  int n_2x = (DIT_FP_2X / m->fp_k[1][0]) * (h / m->fp_k[1][1]) * (w / m->fp_k[1][2]);
  int n_4x = (DIT_FP_4X / m->fp_k[2][0]) * (h / m->fp_k[2][1]) * (w / m->fp_k[2][2]);
  s->Nc = s->fsl + n_post + n_2x + n_4x;
  la_dit_euler_schedule (N_STEPS, 3.0, 1000, s->timesteps, s->sigmas);
  s->d_queue = g_array_new (FALSE, FALSE, sizeof (int));
  s->dump = p->dump;
  s->dump_user = p->dump_user;
  s->rng = g_rand_new_with_seed ((guint32) (p->d_seed ^ (p->d_seed >> 32)));

  /* RoPE groups of the sink (official rope_precompute grids, docs/design/model.md §3.5) */
  gint64 f1[1] = { DIT_REF_TIME };
  dit_rope_group_grid (&s->g_ref, 1, f1, s->gh, s->gh, s->gw, s->gw);
  {
    int start = 0;
    static const int bk[3] = { DIT_FP_POST, DIT_FP_2X, DIT_FP_4X };
    for (int b = 0; b < 3; b++) {
      const int *k = m->fp_k[b];
      start -= bk[b];                            /* -1, -3, -19 */
      int nt = bk[b] / k[0];
      gint64 fl[DIT_FP_4X];
      /* negative start: linspace(-f0, -T - f0 + 1, n), conjugated */
      dit_linspace_trunc (-start, -bk[b] - start + 1, nt, fl);
      for (int i = 0; i < nt; i++)
        fl[i] = -fl[i];
      dit_rope_group_grid (&s->g_mot[b], nt, fl, h / k[1], s->gh, w / k[2], s->gw);
    }
  }

  LaBackend *be = s->be;
  s->ctx_k = g_new0 (LaTensor *, c->num_layers);
  s->ctx_v = g_new0 (LaTensor *, c->num_layers);
  s->sink_tokens = dit_alloc2 (be, s->Nc, s->D);
  s->x = dit_alloc2 (be, s->L, s->D);
  s->xs = dit_alloc2 (be, s->Nc, s->D);
  s->freqs = dit_alloc3 (be, s->L, s->HD / 2, 2);
  s->freqs_sink = dit_alloc3 (be, s->Nc, s->HD / 2, 2);
  s->freqs_cond = dit_alloc3 (be, s->Nc, s->HD / 2, 2);
  s->freqs_cond_ref = dit_view (s->freqs_cond, 0, 3, (int64_t[]) { s->fsl, s->HD / 2, 2 });
  s->h_freqs_sink = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { s->Nc, s->HD / 2, 2 });
  s->nt_pairs = s->HD / 2 - 2 * (s->HD / 2 / 3);
  s->e0_zero = dit_alloc3 (be, 1, 6, s->D);
  s->e = dit_alloc2 (be, s->F, s->D);
  s->feat = dit_alloc2 (be, s->F, c->freq_dim);
  s->h_feat = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { s->F, c->freq_dim });
  s->tmpD = dit_alloc2 (be, s->F, s->D);
  int Kp = c->in_dim * ph * pw;
  s->patches = dit_alloc2 (be, s->L, Kp);
  s->head_o = dit_alloc2 (be, s->L, c->out_dim * ph * pw);
  s->head_mod = dit_alloc3 (be, s->F, 2, s->D);
  s->a_glob = dit_alloc2 (be, s->F, s->D);
  s->a_tok = dit_alloc3 (be, s->F, c->num_audio_token + 1, s->D);
  s->graphs_on = la_graph_supported (be) && !p->no_graphs && !p->dump &&
                 g_strcmp0 (g_getenv ("LA_DIT_GRAPHS"), "0") != 0;
  s->vel = la_alloc (be, LA_DTYPE_F32, 4, (int64_t[]) { c->out_dim, s->F, p->lat_h, p->lat_w });
  dit_scratch_init (&s->sc_step, be, s->L, s->D, c->ffn_dim, s->F, p->act_dtype);
  s->sc_step.kr = dit_alloc2t (be, p->cache_dtype, s->L, s->D);
  s->sc_step.vr = dit_alloc2t (be, p->cache_dtype, s->L, s->D);
  dit_scratch_init (&s->sc_sink, be, s->Nc, s->D, c->ffn_dim, 1, p->act_dtype);
  for (int i = 0; i < N_STEPS; i++)
    if (holds (s, i))
      cache_alloc (s, &s->cache[i]);

  /* t = 0 modulation of the sink tokens (zero_timestep) */
  {
    g_autoptr (LaTensor) e1 = dit_rows (s->e, 0, 1);
    g_autoptr (LaTensor) z = dit_view (s->e0_zero, 0, 2, (int64_t[]) { 1, 6 * s->D });
    time_embed (s, 0.0f, 1, e1, z);
  }
  /* the scheduled timesteps' embeddings, made as each step made them (F rows) */
  for (int i = 0; i < N_STEPS; i++)
    time_embed_into (s, &s->temb[i], s->timesteps[i]);
  sink_freqs (s, DIT_REF_TIME, s->h_freqs_sink, s->freqs_sink);
  step_freqs_init (s);
  if (!text_embed (s, text_context, error) || !embed_sink (s, ref_latent, motion_latents, error)) {
    la_dit_session_free (s);
    return NULL;
  }
  if (!prefill_all (s, error)) {
    la_dit_session_free (s);
    return NULL;
  }
  return s;
}

gboolean
la_dit_session_refresh_sink (LaDitSession *s, const LaTensor *ref_latent, const LaTensor *motion_latents,
                             GError **error)
{
  /* No new motion latents: the motion tokens in sink_tokens stay; only the
   * reference rows are re-embedded. */
  if (!(motion_latents ? embed_sink (s, ref_latent, motion_latents, error) : embed_ref (s, ref_latent, error)))
    return FALSE;
  return prefill_all (s, error);
}

/* The layers of one call on x, the sink prefill (a->sink) or a step (with
 * the audio injectors after their layers); dumps each layer's input/output. */
static gboolean
run_layers (LaDitSession *s, int cache, LaTensor *x, DitBlockArgs *a, DitScratch *sc, GError **error)
{
  char nm[64];
  for (int l = 0; l < s->m->cfg.num_layers; l++) {
    a->ctx_k = s->ctx_k[l];
    a->ctx_v = s->ctx_v[l];
    a->k_all = s->cache[cache].k_all[l];
    a->v_all = s->cache[cache].v_all[l];
    a->cond_k = s->cache[cache].cond_k[l];
    g_snprintf (nm, sizeof nm, "block%d.in", l);
    dump (s, nm, x);
    dit_block_forward (s->m, l, x, a, sc);
    g_snprintf (nm, sizeof nm, "block%d.out", l);
    dump (s, nm, x);
    if (a->sink)
      continue;
    int j = s->m->inject_of_layer[l];
    if (j >= 0 && !la_audio_injector_queue (s->m->ainj, j, x, a->n_frames, s->a_tok, s->a_glob, error))
      return FALSE;
    g_snprintf (nm, sizeof nm, "block%d.after_audio_inject", l);
    dump (s, nm, x);
  }
  return TRUE;
}

gboolean
la_dit_session_sink_call (LaDitSession *s, int cache, GError **error)
{
  if (!holds (s, cache)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "DiT sink call: cache index %d out of range or not held "
                 "(cache_mask 0x%x)", cache, s->p.cache_mask);
    return FALSE;
  }
  LaBackend *be = s->be;
  la_copy (be, s->xs, s->sink_tokens);
  DitBlockArgs a = { 0 };
  a.n_frames = 1;
  a.fsl = s->Nc;
  a.e0 = s->e0_zero;
  a.freqs = s->freqs_sink;
  a.Nc = s->Nc;
  a.sink = TRUE;
  dump (s, "rope_freqs", s->freqs_sink);
  if (!run_layers (s, cache, s->xs, &a, &s->sc_sink, error))
    return FALSE;
  return la_backend_sync (be, error);
}

/* The audio features' shape: [layers, audio_dim, 4F]. */
static gboolean
check_audio (LaDitSession *s, const LaTensor *audio, const char *who, GError **error)
{
  const LaDitConfig *c = &s->m->cfg;
  int na = 4 * s->F;
  if (!audio || audio->ndim != 3 || audio->shape[1] != c->audio_dim || audio->shape[2] != na ||
      !la_dtype_is_float (audio->dtype)) {
    g_autofree char *got = audio ? la_shape_to_string (audio->ndim, audio->shape) : g_strdup ("NULL");
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "%s: audio features have shape %s, expected [layers, %d, %d] floats", who, got, c->audio_dim, na);
    return FALSE;
  }
  return TRUE;
}

/* The inbox for Lw audio layers: one backend allocation [latent | ring
 * position | audio] whose views are s->xd, s->ring_row / s->n_keys (I32,
 * two of 4 slots: the audio stays 16-byte aligned) and s->audio_d, and its
 * host twin.  The position sits between the two so that it joins either
 * one's upload.  Re-made (and the step graphs, which hold its addresses,
 * dropped) when Lw changes. */
static void
ensure_inbox (LaDitSession *s, gint64 Lw)
{
  if (s->inbox && s->inbox_lw == Lw)
    return;
  const LaDitConfig *c = &s->m->cfg;
  graphs_clear (s);
  LaTensor **ts[] = { &s->xd, &s->audio_d, &s->audio_in, &s->ring_row, &s->n_keys, &s->inbox, &s->inbox_h };
  for (guint i = 0; i < G_N_ELEMENTS (ts); i++)
    g_clear_pointer (ts[i], la_tensor_unref);
  int64_t lat[4] = { c->in_dim, s->F, s->p.lat_h, s->p.lat_w };
  int64_t au[3] = { Lw, c->audio_dim, 4 * s->F };
  gint64 n_lat = lat[0] * lat[1] * lat[2] * lat[3], n = n_lat + INBOX_POS + au[0] * au[1] * au[2];
  s->inbox = la_alloc (s->be, LA_DTYPE_F32, 1, &n);
  s->inbox_h = la_tensor_new (LA_DTYPE_F32, 1, &n);
  memset (s->inbox_h->data, 0, (size_t) n * sizeof (float));
  s->xd = dit_view (s->inbox, 0, 4, lat);
  int64_t one = 1;
  char *pos = (char *) s->inbox->data + (size_t) n_lat * sizeof (float);
  s->ring_row = la_tensor_new_view (LA_DTYPE_I32, 1, &one, s->inbox->storage, pos, s->inbox->device,
                                    s->inbox->device_index);
  s->n_keys = la_tensor_new_view (LA_DTYPE_I32, 1, &one, s->inbox->storage, pos + sizeof (int32_t),
                                  s->inbox->device, s->inbox->device_index);
  s->audio_d = dit_view (s->inbox, n_lat + INBOX_POS, 3, au);
  s->audio_in = la_alloc (s->be, LA_DTYPE_F32, 3, (int64_t[]) { Lw, c->audio_dim, s->p.audio_prefix + au[2] });
  s->inbox_lw = Lw;
}

/* Brings the block's inputs into the inbox: the latent x_in (NULL: s->xd
 * already holds it), the ring position of frame n (ring_pos) and the audio
 * features.  What comes from the host goes up in one copy: the position
 * always, packed with the latent and/or the audio when they come from the
 * host (alone, 16 bytes, when neither does); what is already on the backend
 * is copied there on the backend. */
static void
stage_inputs (LaDitSession *s, const LaTensor *x_in, const LaTensor *audio, gint64 slot, gint64 active)
{
  LaBackend *be = s->be;
  ensure_inbox (s, audio->shape[0]);
  gint64 n_lat = la_tensor_numel (s->xd), n = la_tensor_numel (s->inbox);
  int32_t pos[2] = { (int32_t) (s->Nc + slot), (int32_t) (s->Nc + active) };
  memcpy ((float *) s->inbox_h->data + n_lat, pos, sizeof pos);
  gboolean xh = x_in && !la_backend_holds (be, x_in), ah = !la_backend_holds (be, audio);
  if (xh) {
    g_autoptr (LaTensor) hx = dit_view (s->inbox_h, 0, s->xd->ndim, s->xd->shape);
    la_copy (be, hx, x_in);                        /* host to host: packing, no transfer */
  }
  if (ah) {
    g_autoptr (LaTensor) ha = dit_view (s->inbox_h, n_lat + INBOX_POS, 3, s->audio_d->shape);
    la_copy (be, ha, audio);
  }
  {
    gint64 lo = xh ? 0 : n_lat, hi = ah ? n : n_lat + INBOX_POS;
    g_autoptr (LaTensor) d = dit_view (s->inbox, lo, 1, (int64_t[]) { hi - lo });
    g_autoptr (LaTensor) h = dit_view (s->inbox_h, lo, 1, (int64_t[]) { hi - lo });
    la_copy (be, d, h);                            /* f32 to f32: the I32 bits go up as they are */
  }
  if (!xh && x_in && x_in->data != s->xd->data)
    la_copy (be, s->xd, x_in);
  if (!ah && audio->data != s->audio_d->data)
    la_copy (be, s->audio_d, audio);
}

/* Audio tokens of the block (P copies of column 0, then the block's columns,
 * docs/design/audio-path.md §5) through the causal audio encoder, once per
 * block, from s->audio_d: every step of the block reads s->a_glob / s->a_tok,
 * session-owned tensors (fixed addresses for the step graphs) that the
 * encoder's outputs are copied into. */
static gboolean
encode_audio (LaDitSession *s, const char *who, GError **error)
{
  LaBackend *be = s->be;
  const LaDitConfig *c = &s->m->cfg;
  int P = s->p.audio_prefix, na = 4 * s->F, F = s->F, D = s->D;
  gint64 rows = s->inbox_lw * c->audio_dim;
  {
    /* as [1, 1, rows, columns] boxes */
    g_autoptr (LaTensor) src = dit_view (s->audio_d, 0, 4, (int64_t[]) { 1, 1, rows, na });
    g_autoptr (LaTensor) dst = dit_view (s->audio_in, 0, 4, (int64_t[]) { 1, 1, rows, P + na });
    la_copy4d (be, dst, (int64_t[]) { 0, 0, 0, P }, src, (int64_t[]) { 0, 0, 0, 0 }, (int64_t[]) { 1, 1, rows, na });
    for (int j = 0; j < P; j++)
      la_copy4d (be, dst, (int64_t[]) { 0, 0, 0, j }, src, (int64_t[]) { 0, 0, 0, 0 }, (int64_t[]) { 1, 1, rows, 1 });
  }
  g_autoptr (LaTensor) aglob = NULL;
  g_autoptr (LaTensor) aloc = NULL;
  if (!la_causal_audio_encoder_forward (s->m->aenc, s->audio_in, &aglob, &aloc, error))
    return FALSE;
  int k0 = (P + 3) / 4, ntok = c->num_audio_token + 1;
  if (aglob->shape[0] != k0 + F || aloc->shape[0] != k0 + F) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "%s: audio encoder gave %" G_GINT64_FORMAT
                 " frames for %d inputs, expected %d", who, aglob->shape[0], P + na, k0 + F);
    return FALSE;
  }
  g_autoptr (LaTensor) gv = dit_view (aglob, (gint64) k0 * D, 2, (int64_t[]) { F, D });
  g_autoptr (LaTensor) tv = dit_view (aloc, (gint64) k0 * ntok * D, 3, (int64_t[]) { F, ntok, D });
  la_copy (be, s->a_glob, gv);
  la_copy (be, s->a_tok, tv);
  dump (s, "audio_encoder.out_global", s->a_glob);
  dump (s, "audio_encoder.out_local", s->a_tok);
  return TRUE;
}

/* The two temporal RoPE updates of a call at frame n with sink offset d:
 * noisy frames n..n+F-1; sink ref at 30 + max(0, n − (30 − d)).  Eager
 * even when the step is a graph (the values differ every block). */
static void
step_tables (LaDitSession *s, gint64 n, int d)
{
  la_rope_table (s->be, s->freqs, n, s->fsl, s->nt_pairs);
  gint64 R = MAX (0, n - (DIT_REF_TIME - d));
  la_rope_table (s->be, s->freqs_cond_ref, DIT_REF_TIME + R, s->fsl, s->nt_pairs);
}

/* Ring slot and active rows of a call at frame n (docs/design/model.md §4.2). */
static void
ring_pos (LaDitSession *s, gint64 n, gint64 *slot, gint64 *active)
{
  gint64 cs = n * s->fsl;
  if (cs >= s->C) {
    *slot = cs % s->C;
    *active = s->C;
  } else {
    *slot = cs;
    *active = cs + s->L;
  }
}

/* The body of one DiT call on the backend latent x [C, F, h, w] against
 * cache `cache`, tables already set: s->vel = DiT(x, t), with the block's
 * audio already encoded.  Only queues backend ops (no upload, download, sync
 * or host-visible state), so that it can be captured. */
static gboolean
step_body (LaDitSession *s, int cache, const LaTensor *x, const TimeEmb *te, GError **error)
{
  LaDitModel *m = s->m;
  LaBackend *be = s->be;
  const LaDitConfig *c = &m->cfg;
  int F = s->F, D = s->D;
  const int patch[3] = { 1, c->patch_size[1], c->patch_size[2] };

  /* ---- tokens: patch_embedding + cond_encoder bias + trainable_cond_mask[0] ---- */
  la_patchify (be, s->patches, x, patch);
  la_linear (be, s->x, s->patches, m->pe_w, m->pe_b);
  la_binary (be, LA_BINARY_ADD, s->x, s->x, m->cond_b);
  la_binary (be, LA_BINARY_ADD, s->x, s->x, m->tcm[0]);

  /* ---- time embedding, e [F, D], e0 [F, 6, D] ---- */
  dump (s, "e0", te->e0);
  dump (s, "rope_freqs", s->freqs);
  dump (s, "rope_freqs_cond", s->freqs_cond);

  DitBlockArgs a = { 0 };
  a.ring_row = s->ring_row;
  a.n_keys = s->n_keys;
  a.n_frames = F;
  a.fsl = s->fsl;
  a.e0 = te->e0;
  a.freqs = s->freqs;
  a.freqs_cond = s->freqs_cond;
  a.Nc = s->Nc;
  a.sink = FALSE;
  if (!run_layers (s, cache, s->x, &a, &s->sc_step, error))
    return FALSE;

  /* ---- head: LN(x)·(1 + scale_f) + shift_f, (shift, scale)_f = head.modulation + e[f] ---- */
  dump (s, "head.in", s->x);
  for (int f = 0; f < F; f++) {
    g_autoptr (LaTensor) hm_f = dit_view (s->head_mod, (gint64) f * 2 * D, 2, (int64_t[]) { 2, D });
    g_autoptr (LaTensor) e_f = dit_rows (te->e, f, 1);
    la_binary (be, LA_BINARY_ADD, hm_f, m->hm, e_f);
  }
  la_layer_norm (be, s->sc_step.u, s->x, NULL, NULL, (float) c->eps);
  for (int f = 0; f < F; f++) {
    g_autoptr (LaTensor) rows = dit_rows (s->sc_step.u, (gint64) f * s->fsl, s->fsl);
    g_autoptr (LaTensor) sh = dit_view (s->head_mod, (gint64) f * 2 * D, 1, (int64_t[]) { D });
    g_autoptr (LaTensor) sc = dit_view (s->head_mod, (gint64) f * 2 * D + D, 1, (int64_t[]) { D });
    la_modulate (be, rows, rows, sh, sc);
  }
  la_linear (be, s->head_o, s->sc_step.u, m->hh_w, m->hh_b);
  dump (s, "head.out", s->head_o);

  /* ---- unpatchify: v[c, f, ph·i + q, pw·j + r] = o[token (f, i, j)][(q·pw + r)·out + c] ---- */
  la_unpatchify (be, s->vel, s->head_o, patch);
  return TRUE;
}

/* Cache index, frame and sink offset of a step call in range. */
static gboolean
check_call (LaDitSession *s, const char *who, int cache, gint64 n, int d, GError **error)
{
  if (!holds (s, cache) || n < 0 || d < 4 || d > 30) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "%s: cache %d (0..3, held: mask 0x%x), frame %" G_GINT64_FORMAT
                 " (>= 0) or d %d ([4, 30]) out of range", who, cache, s->p.cache_mask, n, d);
    return FALSE;
  }
  return TRUE;
}

LaTensor *
la_dit_session_step_call (LaDitSession *s, int cache, const LaTensor *x, float t, const LaTensor *audio,
                          gint64 n, int d, GError **error)
{
  const char *who = "DiT step call";
  if (!check_call (s, who, cache, n, d, error) || !check_latent (s, x, FALSE, who, "x (noisy latents)", error) ||
      !check_audio (s, audio, who, error))
    return NULL;
  gint64 slot, active;
  ring_pos (s, n, &slot, &active);
  stage_inputs (s, x, audio, slot, active);
  if (!encode_audio (s, who, error))
    return NULL;
  step_tables (s, n, d);
  if (!step_body (s, cache, s->xd, time_emb_for (s, t), error))
    return NULL;
  LaTensor *v = la_tensor_new (LA_DTYPE_F32, 4, s->vel->shape);
  la_copy (s->be, v, s->vel);
  if (!la_backend_sync (s->be, error)) {
    la_tensor_unref (v);
    return NULL;
  }
  return v;
}

/* Step i of a block on s->xd, tables set: x += (σ_{i+1} − σ_i)·DiT_i(x, t_i),
 * the f32 axpy x + dt·v that both the sequential loop and the TPP stages
 * run, so that they round alike. */
static gboolean
euler_step (LaDitSession *s, int i, GError **error)
{
  if (!step_body (s, i, s->xd, &s->temb[i], error))
    return FALSE;
  la_axpy (s->be, s->xd, s->xd, s->sigmas[i + 1] - s->sigmas[i], s->vel);
  return TRUE;
}

/* Step i as a graph launch: captured the first time it comes after its
 * eager run (the ring position is read on the device, so one graph per
 * cache serves every block).  A capture the device refuses (end or
 * instantiation failing) turns graphs off for the session with a warning
 * and the step runs eagerly: nothing captured ran, and an op error would
 * come back from the eager run's sync. */
static gboolean
euler_step_graph (LaDitSession *s, int i, GError **error)
{
  LaGraph *g = s->graphs[i];
  if (!g) {
    if (!la_graph_begin (s->be, error))      /* its sync may report an earlier op's error: not a refusal */
      return FALSE;
    gboolean ok = euler_step (s, i, error);
    GError *end_error = NULL;
    g = la_graph_end (s->be, &end_error);
    if (!ok) {
      g_clear_error (&end_error);
      la_graph_free (s->be, g);
      return FALSE;
    }
    if (!g) {
      g_warning ("DiT session: capturing step %d as a graph failed, running eagerly from now on: %s", i,
                 end_error->message);
      g_clear_error (&end_error);
      graphs_clear (s);
      s->graphs_on = FALSE;
      return euler_step (s, i, error);
    }
    s->graphs[i] = g;
  }
  return la_graph_launch (s->be, g, error);
}

/* Steps [first, first + n_steps) on s->xd, audio in s->audio_d: encoded
 * once, then each step eagerly or as a graph launch.  Queues only (the
 * encoder's closing sync aside); the caller syncs. */
static gboolean
run_on_backend (LaDitSession *s, const char *who, gint64 frame_n, int first, int n_steps, const int *d,
                GError **error)
{
  if (!encode_audio (s, who, error))
    return FALSE;
  for (int i = first; i < first + n_steps; i++) {
    step_tables (s, frame_n, d[i]);
    gboolean ok = s->graphs_on && s->ran_eagerly[i] ? euler_step_graph (s, i, error) : euler_step (s, i, error);
    if (!ok)
      return FALSE;
    s->ran_eagerly[i] = TRUE;
  }
  return TRUE;
}

/* Runs the steps: x_in (host or backend; NULL: already in s->xd) and the
 * audio come in through the inbox, the result goes to x_out (downloaded
 * when on the host; NULL: left in s->xd); one sync at the end. */
static gboolean
run_steps_on (LaDitSession *s, const char *who, gint64 frame_n, int first, int n_steps, const int *d,
              const LaTensor *x_in, LaTensor *x_out, const LaTensor *audio, GError **error)
{
  if (first < 0 || n_steps < 0 || first + n_steps > N_STEPS) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: steps %d..%d out of range 0..%d", who, first,
                 first + n_steps - 1, N_STEPS - 1);
    return FALSE;
  }
  for (int i = first; i < first + n_steps; i++)
    if (!check_call (s, who, i, frame_n, d[i], error))
      return FALSE;
  if ((x_out && !check_latent (s, x_out, TRUE, who, "x", error)) || !check_audio (s, audio, who, error))
    return FALSE;
  gint64 slot, active;
  ring_pos (s, frame_n, &slot, &active);
  stage_inputs (s, x_in, audio, slot, active);
  if (!run_on_backend (s, who, frame_n, first, n_steps, d, error)) {
    la_backend_sync (s->be, NULL);           /* drop what the queued ops may have recorded */
    return FALSE;
  }
  if (x_out)
    la_copy (s->be, x_out, s->xd);
  return la_backend_sync (s->be, error);
}

/* The d of a block's 4 steps: given, or 4 draws (on every TPP stage alike). */
static void
block_d (LaDitSession *s, const int *d_given, int *d)
{
  for (int i = 0; i < N_STEPS; i++)
    d[i] = d_given ? d_given[i] : la_dit_session_next_d (s);
}

/* The one step loop: the sequential generate_block, every TPP stage and
 * every stage worker run their steps of a block through here. */
gboolean
la_dit_session_run_steps (LaDitSession *s, gint64 block, int first_step, int n_steps, const int *d_given,
                          LaTensor *x, const LaTensor *audio, GError **error)
{
  int d[N_STEPS];
  block_d (s, d_given, d);
  return run_steps_on (s, "DiT steps", block * s->F, first_step, n_steps, d, x, x, audio, error);
}

LaTensor *
la_dit_session_generate_block (LaDitSession *s, const LaTensor *noise, const LaTensor *audio, GError **error)
{
  if (!check_latent (s, noise, FALSE, "DiT block", "noise", error))
    return NULL;
  gint64 blocks_per_clip = s->p.infer_frames / 4 / s->F;
  if (s->p.refresh_sink_at_clip1 && s->blocks_done == blocks_per_clip && s->first_latent &&
      !la_dit_session_refresh_sink (s, s->first_latent, NULL, error))
    return NULL;
  int d[N_STEPS];
  block_d (s, NULL, d);
  LaTensor *x = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { s->m->cfg.in_dim, s->F, s->p.lat_h, s->p.lat_w });
  if (!run_steps_on (s, "DiT block", s->blocks_done * s->F, 0, N_STEPS, d, noise, x, audio, error)) {
    la_tensor_unref (x);
    return NULL;
  }
  if (s->blocks_done == 0 && s->p.refresh_sink_at_clip1) {
    gint64 C = x->shape[0], T = x->shape[1], hw = x->shape[2] * x->shape[3];
    s->first_latent = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { C, 1, x->shape[2], x->shape[3] });
    for (gint64 c = 0; c < C; c++)
      memcpy (la_tensor_f32 (s->first_latent) + c * hw, la_tensor_f32 (x) + c * T * hw, sizeof (float) * hw);
  }
  s->blocks_done++;
  return x;
}

LaTensor *
la_dit_session_cache_tensor (LaDitSession *s, int cache, int layer, const char *what)
{
  if (!holds (s, cache) || layer < 0 || layer >= s->m->cfg.num_layers)
    return NULL;
  DitCache *c = &s->cache[cache];
  if (!strcmp (what, "cond_k"))
    return la_tensor_ref (c->cond_k[layer]);
  if (!strcmp (what, "cond_v"))
    return dit_rows (c->v_all[layer], 0, s->Nc);   /* caller unrefs */
  if (!strcmp (what, "k"))
    return dit_rows (c->k_all[layer], s->Nc, s->C);
  if (!strcmp (what, "v"))
    return dit_rows (c->v_all[layer], s->Nc, s->C);
  return NULL;
}

gint64
la_dit_session_blocks_done (LaDitSession *s)
{
  return s->blocks_done;
}

void
la_dit_session_queue_d (LaDitSession *s, const int *d, int n)
{
  for (int i = 0; i < n; i++)
    g_array_append_val (s->d_queue, d[i]);
}

int
la_dit_session_next_d (LaDitSession *s)
{
  if (s->d_queue->len) {
    int d = g_array_index (s->d_queue, int, 0);
    g_array_remove_index (s->d_queue, 0);
    return d;
  }
  return s->p.fixed_d > 0 ? s->p.fixed_d : g_rand_int_range (s->rng, 4, 31);
}

/* One step on x (on the backend, or on the host: uploaded and downloaded). */
gboolean
la_dit_session_denoise_step (LaDitSession *s, int step, LaTensor *x, const LaTensor *audio, gint64 frame_n, int d,
                             GError **error)
{
  int dd[N_STEPS] = { d, d, d, d };
  return run_steps_on (s, "DiT denoise step", frame_n, step, 1, dd, x, x, audio, error);
}
