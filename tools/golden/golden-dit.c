/* golden-dit.c — golden runner for "dit_stream*" cases (docs/design/streaming.md §3).
 *
 * Two passes over the case, both against the official recordings:
 *  (a) replay: every recorded call is run from its recorded inputs
 *      (callNN.x, t, audio slice, current_start, relative_dist) against our
 *      own KV caches, compared per call (callNN.out), per sink (cond cache)
 *      and, where recorded, per block intermediate;
 *  (b) stream: the whole stream from the initial inputs only (noise per clip,
 *      audio features, context, ref/motion latents, the per-call d), through
 *      la_dit_session_generate_block, compared per clip (clipR.latents), and
 *      the step-0 KV ring at the end (final_kv_cache1).  With --stages N
 *      the stream runs through N TPP stages (lib/tpp) with the same d per
 *      call; the refresh ref is the pipeline's own first clean frame.
 * Every size comes from case.json / the weights.
 */
#include <string.h>
#include "la-dit.h"
#include <liveavatar/la-tpp.h>
#include "golden.h"
#include "la-ops.h"
#include "la-tpp-pipeline.h"

typedef struct {
  GoldenCase *c;
  char prefix[32];
  int F;
} DumpCtx;

static LaTensor *
view (LaTensor *t, gint64 off, int ndim, const int64_t *shape)
{
  return la_tensor_new_view (t->dtype, ndim, shape, t->storage,
                             (char *) t->data + off * la_dtype_size (t->dtype), t->device, t->device_index);
}

static void
dump_cb (const char *name, const LaTensor *t, gpointer user)
{
  DumpCtx *d = user;
  if (!d->c->intermediates || !d->prefix[0])
    return;
  char full[128];
  g_snprintf (full, sizeof full, "%s%s", d->prefix, name);
  LaTensor *e = la_checkpoint_get (d->c->intermediates, full);
  if (!e)
    return;
  g_autoptr (LaTensor) h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (d->c->backend, h, t);
  if (g_str_has_prefix (name, "audio_encoder.")) {
    /* the reference keeps all T' frames; we compute only the block's last F */
    gint64 per = la_tensor_numel (e) / e->shape[0];
    int64_t s[1] = { per * d->F };
    g_autoptr (LaTensor) ev = view (e, (e->shape[0] - d->F) * per, 1, s);
    golden_compare (d->c, full, h, ev);
  } else if (!strcmp (name, "e0")) {
    /* reference [F, 6, 2, D] (noisy | zero); ours is the noisy half [F, 6, D] */
    gint64 D = e->shape[3], F = e->shape[0];
    g_autoptr (LaTensor) en = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { F, 6, D });
    const float *src = la_tensor_f32 (e);
    for (gint64 i = 0; i < F * 6; i++)
      memcpy (la_tensor_f32 (en) + i * D, src + i * 2 * D, sizeof (float) * D);
    golden_compare (d->c, full, h, en);
  } else {
    golden_compare (d->c, full, h, e);
  }
}

static LaTensor *
call_tensor (GoldenCase *c, LaCheckpoint *f, int idx, const char *what, GError **error)
{
  char k[64];
  g_snprintf (k, sizeof k, "call%02d.%s", idx, what);
  return golden_tensor (c, f, k, error);
}

/* audio_emb_bucket [1, L, A, N] columns [a0, a1) -> host [L, A, a1 - a0] */
static LaTensor *
audio_slice (LaTensor *bucket, int a0, int a1, GError **error)
{
  int off = bucket->ndim == 4 ? 1 : 0;
  gint64 L = bucket->shape[off], A = bucket->shape[off + 1], N = bucket->shape[off + 2];
  if (a0 < 0 || a1 > N || a1 <= a0) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "audio slice [%d, %d) outside the %" G_GINT64_FORMAT " columns", a0, a1, N);
    return NULL;
  }
  LaTensor *o = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { L, A, a1 - a0 });
  for (gint64 r = 0; r < L * A; r++)
    memcpy (la_tensor_f32 (o) + r * (a1 - a0), la_tensor_f32 (bucket) + r * N + a0, sizeof (float) * (a1 - a0));
  return o;
}

/* frames [f0, f0 + n) of a [C, T, h, w] (or 5-D) latent -> host [C, n, h, w] */
static LaTensor *
frames (LaTensor *t, int f0, int n)
{
  int off = t->ndim == 5 ? 1 : 0;
  gint64 C = t->shape[off], T = t->shape[off + 1], hw = t->shape[off + 2] * t->shape[off + 3];
  LaTensor *o = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { C, n, t->shape[off + 2], t->shape[off + 3] });
  for (gint64 c = 0; c < C; c++)
    memcpy (la_tensor_f32 (o) + c * n * hw, la_tensor_f32 (t) + (c * T + f0) * hw, sizeof (float) * n * hw);
  return o;
}

static void
put_frames (LaTensor *dst, int f0, LaTensor *src)
{
  gint64 C = dst->shape[0], T = dst->shape[1], hw = dst->shape[2] * dst->shape[3], n = src->shape[1];
  for (gint64 c = 0; c < C; c++)
    memcpy (la_tensor_f32 (dst) + (c * T + f0) * hw, la_tensor_f32 (src) + c * n * hw, sizeof (float) * n * hw);
}

static const char *
jstr (JsonObject *o, const char *k)
{
  JsonNode *n = json_object_get_member (o, k);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_string (n) : NULL;
}

static gboolean
jnull (JsonObject *o, const char *k)
{
  JsonNode *n = json_object_get_member (o, k);
  return !n || JSON_NODE_HOLDS_NULL (n);
}

static void
compare_caches (GoldenCase *c, LaDitSession *s, int nl, const char *fmt, const char *kname, const char *vname)
{
  for (int l = 0; l < nl; l++)
    for (int kv = 0; kv < 2; kv++) {
      char k[96];
      g_snprintf (k, sizeof k, fmt, l, kv ? "v" : "k");
      LaTensor *e = la_checkpoint_get (c->outputs, k);
      if (!e)
        continue;
      g_autoptr (LaTensor) t = la_dit_session_cache_tensor (s, 0, l, kv ? vname : kname);
      g_autoptr (LaTensor) h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
      la_copy (c->backend, h, t);
      golden_compare (c, k, h, e);
    }
}

/* ---- walking the recorded calls of a whole-stream case ---- */

/* Consumes the sink records before a clip.  A sink refresh (group > 0, cache
 * 1: the online case) gives its motion latents and the ref it was made from
 * (borrowed; *label names the ref tensor); none leaves them NULL.  FALSE when
 * a tensor is missing. */
static gboolean
take_refresh (GoldenCase *c, JsonArray *calls, guint *ci, LaTensor **motion, LaTensor **ref, char *label,
              gsize label_size, GError **error)
{
  *motion = *ref = NULL;
  for (; *ci < json_array_get_length (calls); (*ci)++) {
    JsonObject *co = json_array_get_object_element (calls, *ci);
    if (g_strcmp0 (jstr (co, "kind"), "sink"))
      break;
    gint64 g = json_object_get_int_member (co, "sink_group");
    if (g > 0 && json_object_get_int_member (co, "kv_cache_id") == 1) {
      char k[64];
      g_snprintf (k, sizeof k, "sink%" G_GINT64_FORMAT ".motion_latents_last19", g);
      *motion = golden_tensor (c, c->inputs, k, error);
      g_snprintf (label, label_size, "sink%" G_GINT64_FORMAT ".ref_latents", g);
      *ref = *motion ? golden_tensor (c, c->inputs, label, error) : NULL;
      if (!*ref)
        return FALSE;
    }
  }
  return TRUE;
}

/* Consumes the next block's step records: their sink offsets d; returns how many (4). */
static int
take_block_d (JsonArray *calls, guint *ci, int ds[4])
{
  int nd = 0;
  while (*ci < json_array_get_length (calls) && nd < 4) {
    JsonObject *co = json_array_get_object_element (calls, (*ci)++);
    if (!g_strcmp0 (jstr (co, "kind"), "step"))
      ds[nd++] = (int) json_object_get_int_member (co, "relative_dist");
  }
  return nd;
}

/* ---- (b) through TPP stages (--stages N): same inputs, same per-call d ---- */

typedef struct {
  LaTensor **clips;
  int n_clips, bpc, F;
  LaTensor *first;
} TppOut;

static gboolean
tpp_collect (gint64 block, const LaTensor *clean, gpointer user, GError **error)
{
  TppOut *o = user;
  int r = (int) (block / o->bpc), b = (int) (block % o->bpc);
  if (r >= o->n_clips) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "TPP golden: unexpected block %" G_GINT64_FORMAT, block);
    return FALSE;
  }
  put_frames (o->clips[r], o->F * b, (LaTensor *) clean);
  if (block == 0)
    o->first = frames ((LaTensor *) clean, 0, 1);
  return TRUE;
}

static gboolean
stream_tpp (GoldenCase *c, LaDitModel *m, const LaDitSessionParams *p, int num_clips, JsonArray *calls,
            LaTensor *bucket, LaTensor *ref0, LaTensor *mot0, LaTensor *ctx, GError **error)
{
  LaTppConfig tc;
  la_tpp_config_init (&tc);
  tc.n_devices = c->stages;
  char names[LA_TPP_MAX_STAGES][16];
  if (c->stages > LA_TPP_MAX_STAGES) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "--stages %d: at most %d", c->stages, LA_TPP_MAX_STAGES);
    return FALSE;
  }
  for (int i = 0; i < c->stages; i++) {
    g_snprintf (names[i], sizeof names[i], "%s:%d", la_backend_get_name (c->backend), i);
    tc.devices[i].model = m;       /* one backend shared by every stage thread (CPU) */
    tc.devices[i].name = names[i];
  }
  /* --remote K: the last K of the devices holding DiT steps become stage
   * workers (same model, served by threads here), step 0 stays local when it can */
  LaTppWorker *lw[LA_TPP_MAX_STAGES] = { 0 };
  int n_dit = MIN (c->stages, LA_TPP_STEPS), n_lw = CLAMP (c->remote, 0, n_dit);
  for (int k = 0; k < n_lw; k++) {
    int i = n_dit - n_lw + k;
    if (!(lw[k] = la_tpp_worker_new (m, NULL, la_backend_get_name (c->backend), "127.0.0.1:0", error))) {
      while (k--)
        la_tpp_worker_free (lw[k]);
      return FALSE;
    }
    la_tpp_worker_start (lw[k], 1, NULL, NULL);
    tc.devices[i].remote = la_tpp_worker_get_address (lw[k]);
    tc.devices[i].name = NULL;
  }
  int F = p->frames_per_block, bpc = p->infer_frames / 4 / F;
  TppOut o = { g_new0 (LaTensor *, num_clips), num_clips, bpc, F, NULL };
  tc.output = tpp_collect;
  tc.output_user = &o;
  gboolean ok = FALSE;
  LaTensor *rg_seen[64] = { 0 };
  int n_rg = 0;
  LaTpp *t = la_tpp_new (&tc, p, ref0, mot0, ctx, error);
  if (!t)
    goto done;
  {
    LaTppPlan plan;
    la_tpp_plan (c->stages, &plan, NULL);
    g_autofree char *d = la_tpp_plan_describe (&plan);
    g_print (" stream: %d clips through %d TPP stages (%s)\n", num_clips, plan.n_stages, d);
  }
  guint ci = 0;
  for (int r = 0; r < num_clips; r++) {
    LaTensor *refresh_motion, *rg;
    char k[64];
    if (!take_refresh (c, calls, &ci, &refresh_motion, &rg, k, sizeof k, error))
      goto done;
    if (rg && n_rg < (int) G_N_ELEMENTS (rg_seen))
      rg_seen[n_rg++] = rg;   /* compared with our first clean frame at the end */
    g_snprintf (k, sizeof k, "noise.clip%d", r);
    LaTensor *noise = golden_tensor (c, c->inputs, k, error);
    if (!noise)
      goto done;
    o.clips[r] = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { noise->shape[0], noise->shape[1], noise->shape[2],
                                                                noise->shape[3] });
    for (int b = 0; b < bpc; b++) {
      int ds[4], nd = take_block_d (calls, &ci, ds);
      int a0 = r * p->infer_frames + 4 * F * b;
      g_autoptr (LaTensor) au = audio_slice (bucket, a0, a0 + 4 * F, error);
      g_autoptr (LaTensor) xn = au ? frames (noise, F * b, F) : NULL;
      if (!xn)
        goto done;
      LaTppBlock blk = { .noise = xn, .audio = au, .d = nd == 4 ? ds : NULL };
      if (b == 0 && refresh_motion) {
        blk.refresh = TRUE;              /* ref = the stream's first clean latent frame */
        blk.refresh_motion = refresh_motion;
      }
      if (!la_tpp_push (t, &blk, error))
        goto done;
    }
  }
  if (!la_tpp_drain (t, FALSE, error))
    goto done;
  for (int i = 0; i < n_rg; i++)
    golden_compare (c, "sink refresh ref (first clean latent frame)", o.first, rg_seen[i]);
  for (int r = 0; r < num_clips; r++) {
    char k[64];
    g_snprintf (k, sizeof k, "clip%d.latents", r);
    LaTensor *ecl = golden_tensor (c, c->outputs, k, error);
    if (!ecl)
      goto done;
    golden_compare (c, k, o.clips[r], ecl);
  }
  if (la_tpp_step_session (t, 0)) {
    g_print (" stream: final KV ring of step 0 (stage holding it)\n");
    compare_caches (c, la_tpp_step_session (t, 0), la_dit_model_config (m)->num_layers, "final_kv_cache1.layer%d.%s",
                    "k", "v");
  } else
    g_print (" stream: step 0 runs in a stage worker: its KV ring is not visible here\n");
  ok = la_tpp_finish (t, error);
done:
  la_tpp_free (t);
  for (int k = 0; k < n_lw; k++)
    la_tpp_worker_free (lw[k]);
  for (int r = 0; r < num_clips; r++)
    g_clear_pointer (&o.clips[r], la_tensor_unref);
  g_free (o.clips);
  g_clear_pointer (&o.first, la_tensor_unref);
  return ok;
}

/* A --bf16 run that silently stayed f32 would pass the looser tolerance. */
static gboolean
session_precision_ok (GoldenCase *c, LaDitSession *s, GError **error)
{
  if (!c->bf16)
    return TRUE;
  g_autoptr (LaTensor) k0 = la_dit_session_cache_tensor (s, 0, 0, "k");
  if (!k0 || k0->dtype != LA_DTYPE_BF16) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "%s: --bf16 but the KV cache is %s", c->dir,
                 k0 ? la_dtype_name (k0->dtype) : "missing");
    return FALSE;
  }
  return TRUE;
}

gboolean
golden_run_dit_stream (GoldenCase *c, GError **error)
{
  LaBackend *be = c->backend;
  JsonObject *mc = golden_obj (c->obj, "model_config", error);
  JsonObject *pl = mc ? golden_obj (c->obj, "pipeline", error) : NULL;
  if (!pl)
    return FALSE;
  LaDitConfig cfg;
  if (!la_dit_config_from_json_object (&cfg, mc, error))
    return FALSE;
  /* --bf16: the product's GPU precision (bf16 resident linears, KV caches, activations) */
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, c->weights, c->bf16 ? LA_WEIGHTS_BF16 : LA_WEIGHTS_F32);
  LaDitModel *m = la_dit_model_new_bound (&cfg, &wb, error);
  if (!m)
    return FALSE;
  gboolean ok = FALSE;
  LaDitSession *s = NULL;
  DumpCtx dc = { c, "", 0 };
  int H = (int) golden_int (pl, "height", error), W = (int) golden_int (pl, "width", error);
  LaDitSessionParams p;
  la_dit_session_params_init (&p, H / 8, W / 8);
  p.infer_frames = (int) golden_int (pl, "infer_frames", error);
  p.frames_per_block = (int) golden_int (pl, "num_frames_per_block", error);
  p.audio_prefix = (int) golden_int (pl, "motion_frames", error);
  p.cache_dtype = p.act_dtype = c->bf16 ? LA_DTYPE_BF16 : LA_DTYPE_F32;
  int num_clips = (int) golden_int (pl, "num_clips", error);
  if (error && *error)
    goto out;
  p.dump = dump_cb;
  p.dump_user = &dc;
  dc.F = p.frames_per_block;
  int fsl = (p.lat_h / cfg.patch_size[1]) * (p.lat_w / cfg.patch_size[2]);

  /* scheduler table */
  {
    float ts[4], sg[5];
    la_dit_euler_schedule (4, 3.0, 1000, ts, sg);
    LaTensor *et = la_checkpoint_get (c->outputs, "scheduler.timesteps");
    LaTensor *es = la_checkpoint_get (c->outputs, "scheduler.sigmas");
    if (et && es) {
      g_autoptr (LaTensor) at = la_tensor_new_from_f32 (1, (int64_t[]) { 4 }, ts);
      g_autoptr (LaTensor) as = la_tensor_new_from_f32 (1, (int64_t[]) { 5 }, sg);
      golden_compare_tol (c, "scheduler.timesteps", at, et, 1e-4, 1e-7);
      golden_compare_tol (c, "scheduler.sigmas", as, es, 1e-7, 1e-7);
    }
  }

  LaTensor *ctx = golden_tensor (c, c->inputs, "text_context", error);
  LaTensor *ref0 = ctx ? golden_tensor (c, c->inputs, "sink0.ref_latents", error) : NULL;
  LaTensor *mot0 = ref0 ? golden_tensor (c, c->inputs, "sink0.motion_latents_last19", error) : NULL;
  LaTensor *bucket = mot0 ? golden_tensor (c, c->inputs, "audio_emb_bucket", error) : NULL;
  JsonArray *calls = bucket ? json_object_get_array_member (c->obj, "calls") : NULL;
  if (!calls)
    goto out;

  /* ---------------- (a) replay every recorded call ---------------- */
  g_print (" replay: %u recorded calls\n", json_array_get_length (calls));
  strcpy (dc.prefix, "call00.");
  s = la_dit_session_new (m, &p, ref0, mot0, ctx, error);
  if (!s || !session_precision_ok (c, s, error))
    goto out;
  compare_caches (c, s, cfg.num_layers, "call00.cond_cache.layer%d.%s", "cond_k", "cond_v");
  gint64 cur_group = 0;
  for (guint i = 0; i < json_array_get_length (calls); i++) {
    JsonObject *co = json_array_get_object_element (calls, i);
    int idx = (int) json_object_get_int_member (co, "idx");
    const char *kind = jstr (co, "kind");
    int cache = (int) json_object_get_int_member (co, "kv_cache_id") - 1;
    g_snprintf (dc.prefix, sizeof dc.prefix, "call%02d.", idx);
    if (!g_strcmp0 (kind, "sink")) {
      gint64 g = json_object_get_int_member (co, "sink_group");
      if (g != cur_group) {
        /* a new sink group: rebuild the sink of all 4 caches (the recorded calls do it cache by cache) */
        char k[64];
        g_snprintf (k, sizeof k, "sink%" G_GINT64_FORMAT ".ref_latents", g);
        LaTensor *rg = golden_tensor (c, c->inputs, k, error);
        g_snprintf (k, sizeof k, "sink%" G_GINT64_FORMAT ".motion_latents_last19", g);
        LaTensor *mg = rg ? golden_tensor (c, c->inputs, k, error) : NULL;
        if (!mg || !la_dit_session_refresh_sink (s, rg, mg, error))
          goto out;
        cur_group = g;
      }
      continue;
    }
    JsonArray *sl = json_object_get_array_member (co, "audio_input_slice");
    JsonArray *ta = json_object_get_array_member (co, "t");
    if (!sl || !ta || jnull (co, "relative_dist")) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: call %d lacks audio_input_slice/t/relative_dist", c->dir, idx);
      goto out;
    }
    g_autoptr (LaTensor) au = audio_slice (bucket, (int) json_array_get_int_element (sl, 0),
                                           (int) json_array_get_int_element (sl, 1), error);
    LaTensor *x = au ? call_tensor (c, c->inputs, idx, "x", error) : NULL;
    LaTensor *eo = x ? call_tensor (c, c->outputs, idx, "out", error) : NULL;
    if (!eo)
      goto out;
    gint64 cs = json_object_get_int_member (co, "current_start");
    int d = (int) json_object_get_int_member (co, "relative_dist");
    g_autoptr (LaTensor) v = la_dit_session_step_call (s, cache, x, (float) json_array_get_double_element (ta, 0), au,
                                                      cs / fsl, d, error);
    if (!v)
      goto out;
    char k[64];
    g_snprintf (k, sizeof k, "call%02d.out", idx);
    golden_compare (c, k, v, eo);
  }
  dc.prefix[0] = 0;
  g_print (" replay: final KV ring of step 0\n");
  compare_caches (c, s, cfg.num_layers, "final_kv_cache1.layer%d.%s", "k", "v");
  la_dit_session_free (s);
  s = NULL;

  /* ---------------- (b) the whole stream from the initial inputs ---------------- */
  if (c->stages > 0) {
    ok = stream_tpp (c, m, &p, num_clips, calls, bucket, ref0, mot0, ctx, error);
    goto out;
  }
  g_print (" stream: %d clips from the initial inputs\n", num_clips);
  s = la_dit_session_new (m, &p, ref0, mot0, ctx, error);
  if (!s || !session_precision_ok (c, s, error))
    goto out;
  {
    int F = p.frames_per_block, bpc = p.infer_frames / 4 / F;
    guint ci = 0;
    g_autoptr (LaTensor) first_latent = NULL;
    for (int r = 0; r < num_clips; r++) {
      /* sink refresh recorded before this clip's first step call? (online case) */
      LaTensor *mg, *rg;
      char k[64];
      if (!take_refresh (c, calls, &ci, &mg, &rg, k, sizeof k, error))
        goto out;
      if (rg) {
        /* the refreshed ref is the stream's first clean latent frame (ours) */
        golden_compare (c, k, first_latent, rg);
        if (!la_dit_session_refresh_sink (s, first_latent, mg, error))
          goto out;
      }
      g_snprintf (k, sizeof k, "noise.clip%d", r);
      LaTensor *noise = golden_tensor (c, c->inputs, k, error);
      g_snprintf (k, sizeof k, "clip%d.latents", r);
      LaTensor *ecl = noise ? golden_tensor (c, c->outputs, k, error) : NULL;
      if (!ecl)
        goto out;
      g_autoptr (LaTensor) clip = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { noise->shape[0], noise->shape[1],
                                                                                 noise->shape[2], noise->shape[3] });
      for (int b = 0; b < bpc; b++) {
        int ds[4], nd = take_block_d (calls, &ci, ds);
        la_dit_session_queue_d (s, ds, nd);
        int a0 = r * p.infer_frames + 4 * F * b;
        g_autoptr (LaTensor) au = audio_slice (bucket, a0, a0 + 4 * F, error);
        g_autoptr (LaTensor) xn = au ? frames (noise, F * b, F) : NULL;
        g_autoptr (LaTensor) lat = xn ? la_dit_session_generate_block (s, xn, au, error) : NULL;
        if (!lat)
          goto out;
        put_frames (clip, F * b, lat);
        if (!first_latent)
          first_latent = frames (lat, 0, 1);
      }
      golden_compare (c, k, clip, ecl);
    }
    g_print (" stream: final KV ring of step 0\n");
    compare_caches (c, s, cfg.num_layers, "final_kv_cache1.layer%d.%s", "k", "v");
  }
  ok = TRUE;
out:
  la_dit_session_free (s);
  la_dit_model_free (m);
  return ok;
}
