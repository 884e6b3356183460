/* tpp-pipeline.c — the TPP stages: one thread per stage, blocks flowing
 * stage to stage through a transport (docs/design/tpp.md §4–§5).
 *
 * DiT stage k, per block b (message from link k):
 *   if b needs a sink refresh: rebuild own caches' sink (ref = given, or the
 *     stream's first clean latent frame, shared by the last DiT stage)
 *   d[0..3] = the block's d (given, or drawn by replaying the sequential
 *     generator: 4 draws per block on every stage, so each stage uses exactly
 *     the d the sequential loop would)
 *   for each own step i: x += (σ_{i+1} − σ_i)·DiT_i(x, t_i; own cache i, frame b·F, d[i])
 *   hand x to stage k + 1 (the output stage runs the output function instead).
 * Work item (b, k) needs (b, k−1) and (b−1, k): in steady state one block
 * leaves per single-stage time.  A failing stage records the first error
 * (named by stage and device) and aborts the transport, which wakes every
 * waiter: push/drain/finish then return that error, and nothing deadlocks.
 */
#include <string.h>
#include "tpp-remote.h"

typedef struct {
  LaTpp         *t;
  int            index;
  LaTppStagePlan plan;
  char          *label;          /* "stage 1 (cpu:1, steps 2-3)" */
  LaDitSession  *session;
  TppRemote     *remote;         /* the steps run in a stage worker (tpp-remote.c) */
  LaTensor      *stream_ref;     /* the stream's first clean latent frame, once known */
  GThread       *thread;
} Stage;

struct _LaTpp {
  LaTppConfig        cfg;
  LaDitSessionParams p;
  LaTppPlan          plan;
  int                n_stages, last_dit, bpc;
  Stage              st[LA_TPP_MAX_STAGES];
  TppTransport      *tr;
  GCancellable      *cancel;     /* cancelled on abort: unblocks remote stages' socket waits */
  LaDitConfig        dc;         /* the DiT's config (local model or stage workers) */
  GMutex             lock;
  GCond              cond;
  int                n_ready;
  GError            *error;      /* first failure */
  gint64             pushed, out, discard_below;
  gboolean           eos_sent, eos_out, stopped;
  const LaTensor    *init_ref, *init_motion, *init_ctx;   /* valid during la_tpp_new only */
  gint64             t0_us;
  double             block_dit_ms; /* dit_s of the block in the output callback */
  GArray            *events;
};

void
la_tpp_config_init (LaTppConfig *cfg)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->transport = LA_TPP_TRANSPORT_LOCAL;
  cfg->queue_depth = 2;
  cfg->fault_stage = -1;
}

static double
now_s (LaTpp *t)
{
  return (g_get_monotonic_time () - t->t0_us) * 1e-6;
}

static void
record_span (LaTpp *t, int stage, gint64 block, char what, double t0, double t1)
{
  if (!t->cfg.record_timeline)
    return;
  LaTppEvent e = { stage, block, what, t0, t1 };
  g_mutex_lock (&t->lock);
  g_array_append_val (t->events, e);
  g_mutex_unlock (&t->lock);
}

static void
record (LaTpp *t, int stage, gint64 block, char what, double t0)
{
  record_span (t, stage, block, what, t0, now_s (t));
}

/* First failure wins; every waiter wakes up. */
static void
fail (LaTpp *t, Stage *st, GError *err)
{
  g_mutex_lock (&t->lock);
  if (!t->error) {
    if (st)
      t->error = g_error_new (err->domain, err->code, "TPP %s: %s", st->label, err->message);
    else
      t->error = g_error_copy (err);
  }
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
  g_error_free (err);
  t->tr->vt->abort (t->tr);
  g_cancellable_cancel (t->cancel);
}

/* [16, 1, h, w] host copy of frame 0 of x [16, F, h, w]. */
static LaTensor *
first_frame (const LaTensor *x)
{
  gint64 C = x->shape[0], T = x->shape[1], hw = x->shape[2] * x->shape[3];
  LaTensor *r = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { C, 1, x->shape[2], x->shape[3] });
  for (gint64 c = 0; c < C; c++)
    memcpy (la_tensor_f32 (r) + c * hw, la_tensor_f32 (x) + c * T * hw, sizeof (float) * hw);
  return r;
}

static gboolean
needs_stream_ref (LaTpp *t)
{
  return t->p.refresh_sink_at_clip1;
}

static gboolean
run_dit (LaTpp *t, Stage *st, TppMsg *m, GError **error)
{
  double t0 = now_s (t);
  gboolean refresh = m->refresh || (t->p.refresh_sink_at_clip1 && m->block == t->bpc);
  if (refresh && !m->refresh_ref && !st->stream_ref &&
      !t->tr->vt->ref_share (t->tr, st->index, t->last_dit, &st->stream_ref, error))
    return FALSE;
  if (st->remote) {
    double rs = 0, ss = 0;
    if (!tpp_remote_run (st->remote, m, refresh, m->refresh_ref ? m->refresh_ref : st->stream_ref, &rs, &ss,
                         t->cancel, error))
      return FALSE;
    /* the worker's own timings; the rest of the round trip is transfer */
    double t1 = now_s (t);
    m->dit_s += ss;
    if (refresh)
      record_span (t, st->index, m->block, 'P', t1 - ss - rs, t1 - ss);
    record_span (t, st->index, m->block, 'S', refresh ? t1 - ss : t0, t1);
  } else {
    if (refresh) {
      if (!la_dit_session_refresh_sink (st->session, m->refresh_ref ? m->refresh_ref : st->stream_ref,
                                        m->refresh_motion, error))
        return FALSE;
      record (t, st->index, m->block, 'P', t0);
      t0 = now_s (t);
    }
    if (!la_dit_session_run_steps (st->session, m->block, st->plan.first_step, st->plan.n_steps,
                                   m->have_d ? m->d : NULL, m->x, m->audio, error))
      return FALSE;
    m->dit_s += now_s (t) - t0;
  }
  if (t->cfg.fault_stage == st->index && t->cfg.fault_block == m->block) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "injected fault at block %" G_GINT64_FORMAT, m->block);
    return FALSE;
  }
  if (!st->remote)
    record (t, st->index, m->block, 'S', t0);
  if (st->index == t->last_dit && m->block == 0)
    st->stream_ref = first_frame (m->x);
  return TRUE;
}

static gboolean
run_output (LaTpp *t, Stage *st, TppMsg *m, GError **error)
{
  double t0 = now_s (t);
  g_mutex_lock (&t->lock);
  gboolean discard = m->block < t->discard_below;
  t->block_dit_ms = m->dit_s * 1000.0;
  g_mutex_unlock (&t->lock);
  if (!discard && t->cfg.output && !t->cfg.output (m->block, m->x, t->cfg.output_user, error))
    return FALSE;
  if (t->cfg.fault_stage == st->index && t->cfg.fault_block == m->block) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "injected fault at block %" G_GINT64_FORMAT, m->block);
    return FALSE;
  }
  record (t, st->index, m->block, 'O', t0);
  g_mutex_lock (&t->lock);
  t->out = m->block + 1;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);
  return TRUE;
}

static gpointer
stage_main (gpointer data)
{
  Stage *st = data;
  LaTpp *t = st->t;
  GError *err = NULL;
  TppTransport *tr = t->tr;
  /* init: own session (text K/V + sink prefill of own caches), in parallel with the other stages */
  if (st->plan.n_steps > 0) {
    LaDitSessionParams sp = t->p;
    sp.dump = NULL;
    sp.cache_mask = 0;
    for (int i = st->plan.first_step; i < st->plan.first_step + st->plan.n_steps; i++)
      sp.cache_mask |= 1u << i;
    double t0 = now_s (t);
    gboolean ok;
    if (st->remote)
      ok = tpp_remote_init (st->remote, st->index, st->label, &sp, t->init_ref, t->init_motion, t->init_ctx,
                            t->cancel, &err);
    else
      ok = (st->session = la_dit_session_new (t->cfg.devices[st->plan.device].model, &sp, t->init_ref,
                                              t->init_motion, t->init_ctx, &err)) != NULL;
    if (!ok) {
      fail (t, st, err);
      g_mutex_lock (&t->lock);
      t->n_ready++;
      g_cond_broadcast (&t->cond);
      g_mutex_unlock (&t->lock);
      return NULL;
    }
    record (t, st->index, -1, 'P', t0);
  }
  g_mutex_lock (&t->lock);
  t->n_ready++;
  g_cond_broadcast (&t->cond);
  g_mutex_unlock (&t->lock);

  for (;;) {
    TppMsg *m = tr->vt->recv (tr, st->index, &err);
    if (!m) {
      g_clear_error (&err);     /* aborted: whoever aborted recorded why */
      break;
    }
    if (m->kind == TPP_MSG_EOS) {
      if (st->plan.output) {
        g_mutex_lock (&t->lock);
        t->eos_out = TRUE;
        g_cond_broadcast (&t->cond);
        g_mutex_unlock (&t->lock);
        tpp_msg_free (m);
      } else if (!tr->vt->send (tr, st->index + 1, m, &err))
        g_clear_error (&err);
      break;
    }
    gint64 b = m->block;
    gboolean ok = st->plan.n_steps == 0 || run_dit (t, st, m, &err);
    if (ok && st->plan.output) {
      ok = run_output (t, st, m, &err);
      tpp_msg_free (m);
    } else if (ok) {
      ok = tr->vt->send (tr, st->index + 1, m, &err);
      /* a collective transport exchanges the stream's first frame at one fixed point: after block 0 */
      if (ok && b == 0 && tr->collective_ref && st->plan.n_steps > 0 && needs_stream_ref (t))
        ok = tr->vt->ref_share (tr, st->index, t->last_dit, &st->stream_ref, &err);
    } else
      tpp_msg_free (m);
    if (ok && b == 0 && st->index == t->last_dit && !tr->collective_ref)
      ok = tr->vt->ref_share (tr, st->index, t->last_dit, &st->stream_ref, &err);   /* in-process latch */
    if (!ok) {
      fail (t, st, err);
      break;
    }
  }
  return NULL;
}

static void
stop_threads (LaTpp *t)
{
  if (t->stopped)
    return;
  t->stopped = TRUE;
  t->tr->vt->abort (t->tr);
  g_cancellable_cancel (t->cancel);
  for (int k = 0; k < t->n_stages; k++)
    if (t->st[k].thread) {
      g_thread_join (t->st[k].thread);
      t->st[k].thread = NULL;
    }
}

void
la_tpp_free (LaTpp *t)
{
  if (!t)
    return;
  if (t->tr)
    stop_threads (t);
  for (int k = 0; k < t->n_stages; k++) {
    la_dit_session_free (t->st[k].session);
    tpp_remote_free (t->st[k].remote);
    g_clear_pointer (&t->st[k].stream_ref, la_tensor_unref);
    g_free (t->st[k].label);
  }
  if (t->tr)
    t->tr->vt->free (t->tr);
  g_clear_error (&t->error);
  g_array_unref (t->events);
  g_clear_object (&t->cancel);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->cond);
  g_free (t);
}

static gboolean
take_error (LaTpp *t, GError **error)
{
  /* call with t->lock held */
  if (t->error) {
    g_propagate_error (error, g_error_copy (t->error));
    return TRUE;
  }
  return FALSE;
}

/* "dim 48 (here 32), num_heads 3 (here 2)": the config.json members that differ. */
static char *
config_diff (const LaDitConfig *got, const LaDitConfig *want)
{
  g_autoptr (JsonObject) a = la_dit_config_to_json_object (got);
  g_autoptr (JsonObject) b = la_dit_config_to_json_object (want);
  GString *s = g_string_new (NULL);
  g_autoptr (GList) keys = json_object_get_members (a);
  for (GList *k = keys; k; k = k->next) {
    JsonNode *nb = json_object_get_member (b, k->data);
    g_autofree char *va = json_to_string (json_object_get_member (a, k->data), FALSE);
    g_autofree char *vb = nb ? json_to_string (nb, FALSE) : g_strdup ("none");
    if (strcmp (va, vb))
      g_string_append_printf (s, "%s%s %s (here %s)", s->len ? ", " : "", (char *) k->data, va, vb);
  }
  return g_string_free (s, FALSE);
}

/* Labels every stage, connects the stage workers and checks that they hold
 * the model this process expects (config and, when known, weights digest). */
static gboolean
setup_stages (LaTpp *t, GError **error)
{
  const LaTppConfig *cfg = &t->cfg;
  gboolean have_dc = FALSE;
  for (int k = 0; k < t->n_stages; k++) {
    Stage *st = &t->st[k];
    st->t = t;
    st->index = k;
    st->plan = t->plan.stage[k];
    const LaTppDevice *dv = &cfg->devices[st->plan.device];
    g_autofree char *dev = dv->name ? g_strdup (dv->name)
                         : dv->remote ? g_strdup (dv->remote) : g_strdup_printf ("device %d", st->plan.device);
    if (st->plan.n_steps == 0)
      st->label = g_strdup_printf ("stage %d (%s, VAE)", k, dv->remote ? "this process" : dev);
    else if (st->plan.n_steps == 1)
      st->label = g_strdup_printf ("stage %d (%s, step %d)", k, dev, st->plan.first_step);
    else
      st->label = g_strdup_printf ("stage %d (%s, steps %d-%d)", k, dev, st->plan.first_step,
                                   st->plan.first_step + st->plan.n_steps - 1);
    if (st->plan.n_steps > 0 && dv->model && !have_dc) {
      t->dc = *la_dit_model_config (dv->model);
      have_dc = TRUE;
    }
  }
  for (int k = 0; k < t->n_stages; k++) {
    Stage *st = &t->st[k];
    const LaTppDevice *dv = &cfg->devices[st->plan.device];
    if (st->plan.n_steps == 0 || !dv->remote)
      continue;
    GError *e = NULL;
    if (!(st->remote = tpp_remote_connect (dv->remote, t->cancel, &e))) {
      g_propagate_prefixed_error (error, e, "TPP %s: ", st->label);
      return FALSE;
    }
    if (!have_dc) {
      t->dc = *tpp_remote_config (st->remote);
      have_dc = TRUE;
    }
    g_autofree char *diff = config_diff (tpp_remote_config (st->remote), &t->dc);
    const char *digest = tpp_remote_digest (st->remote);
    if (*diff) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "TPP %s: the stage worker serves another model (%s): "
                   "start it on the same model folder", st->label, diff);
      return FALSE;
    }
    if (cfg->model_digest && *cfg->model_digest && *digest && strcmp (digest, cfg->model_digest)) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "TPP %s: the stage worker holds other weights (digest "
                   "%.12s..., this process %.12s...): use the same checkpoint and LoRA on every host", st->label,
                   digest, cfg->model_digest);
      return FALSE;
    }
  }
  return TRUE;
}

LaTpp *
la_tpp_new (const LaTppConfig *cfg, const LaDitSessionParams *p, const LaTensor *ref_latent,
            const LaTensor *motion_latents, const LaTensor *text_context, GError **error)
{
  if (!cfg || !p) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_new: config and session params are required");
    return NULL;
  }
  LaTppPlan plan;
  if (!la_tpp_plan (cfg->n_devices, &plan, error))
    return NULL;
  for (int k = 0; k < plan.n_stages; k++) {
    const LaTppDevice *dv = &cfg->devices[plan.stage[k].device];
    if (plan.stage[k].n_steps > 0 && !dv->model && !dv->remote) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_new: device %d has no DiT model", plan.stage[k].device);
      return NULL;
    }
    if (dv->remote && cfg->transport == LA_TPP_TRANSPORT_NCCL) {
      g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "la_tpp_new: device %d (%s) is a stage worker; the NCCL "
                   "transport only joins GPUs of this process", plan.stage[k].device, dv->remote);
      return NULL;
    }
    if (dv->remote && plan.stage[k].n_steps == 0 && (k == 0 || plan.stage[k - 1].device != plan.stage[k].device)) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_new: device %d (%s) would only hold the VAE stage, "
                   "which runs in this process: list a local device last", plan.stage[k].device, dv->remote);
      return NULL;
    }
  }
  if (p->frames_per_block <= 0 || p->infer_frames <= 0 || p->infer_frames % (4 * p->frames_per_block)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_new: infer_frames %d is not a positive multiple "
                 "of 4·frames_per_block (%d)", p->infer_frames, p->frames_per_block);
    return NULL;
  }
  LaTpp *t = g_new0 (LaTpp, 1);
  t->cfg = *cfg;
  t->p = *p;
  t->plan = plan;
  t->n_stages = plan.n_stages;
  t->bpc = p->infer_frames / 4 / p->frames_per_block;
  for (int k = 0; k < plan.n_stages; k++)
    if (plan.stage[k].n_steps > 0)
      t->last_dit = k;
  g_mutex_init (&t->lock);
  g_cond_init (&t->cond);
  t->events = g_array_new (FALSE, FALSE, sizeof (LaTppEvent));
  t->t0_us = g_get_monotonic_time ();
  t->cancel = g_cancellable_new ();
  if (!setup_stages (t, error)) {
    la_tpp_free (t);
    return NULL;
  }
  if (cfg->transport == LA_TPP_TRANSPORT_NCCL)
    t->tr = tpp_transport_nccl_new (cfg, &plan, 16, p->frames_per_block, p->lat_h, p->lat_w, error);
  else
    t->tr = tpp_transport_local_new (plan.n_stages, cfg->queue_depth);
  if (!t->tr) {
    la_tpp_free (t);
    return NULL;
  }
  t->init_ref = ref_latent;
  t->init_motion = motion_latents;
  t->init_ctx = text_context;
  int started = 0;
  for (int k = 0; k < plan.n_stages; k++) {
    Stage *st = &t->st[k];
    char name[16];
    g_snprintf (name, sizeof name, "la-tpp-%d", k);
    GError *err = NULL;
    st->thread = g_thread_try_new (name, stage_main, st, &err);
    if (!st->thread) {
      fail (t, st, err);
      break;
    }
    started++;
  }
  /* wait for every started stage to finish its init (or for a failure) */
  g_mutex_lock (&t->lock);
  while (t->n_ready < started)              /* every init has finished with init_* */
    g_cond_wait (&t->cond, &t->lock);
  gboolean failed = take_error (t, error);
  g_mutex_unlock (&t->lock);
  t->init_ref = t->init_motion = t->init_ctx = NULL;
  if (failed) {
    la_tpp_free (t);
    return NULL;
  }
  return t;
}

static LaTensor *
host_f32 (const LaTensor *x, int want_ndim)
{
  LaTensor *h = la_tensor_to_dtype (x, LA_DTYPE_F32);
  if (want_ndim == 4 && h->ndim == 5 && h->shape[0] == 1) {
    LaTensor *v = la_tensor_reshape (h, 4, h->shape + 1, NULL);
    la_tensor_unref (h);
    h = v;
  }
  return h;
}

gboolean
la_tpp_push (LaTpp *t, const LaTppBlock *b, GError **error)
{
  g_mutex_lock (&t->lock);
  gboolean bad = take_error (t, error);
  if (!bad && t->eos_sent) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_push: the stream has ended (la_tpp_finish)");
    bad = TRUE;
  }
  gint64 block = t->pushed;
  g_mutex_unlock (&t->lock);
  if (bad)
    return FALSE;
  if (!b || !b->noise || !b->audio) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_push: block %" G_GINT64_FORMAT " needs noise and audio",
                 block);
    return FALSE;
  }
  if (b->refresh && !b->refresh_ref && block == 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_push: block 0 cannot refresh the sink from the "
                 "stream's first latent (it does not exist yet)");
    return FALSE;
  }
  if (b->refresh && !b->refresh_ref && t->tr->collective_ref && !needs_stream_ref (t)) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "la_tpp_push: with the NCCL transport a refresh from the "
                 "stream's first latent needs refresh_sink_at_clip1 (the frame is broadcast right after block 0)");
    return FALSE;
  }
  /* shapes are checked here so that a bad block is refused without stopping the pipeline */
  {
    const LaDitConfig *dc = &t->dc;
    const LaTensor *x = b->noise;
    int off = x->ndim == 5 && x->shape[0] == 1 ? 1 : 0;
    gboolean xok = x->ndim - off == 4 && x->shape[off] == dc->in_dim && x->shape[off + 1] == t->p.frames_per_block &&
                   x->shape[off + 2] == t->p.lat_h && x->shape[off + 3] == t->p.lat_w;
    gboolean aok = b->audio->ndim == 3 && b->audio->shape[1] == dc->audio_dim &&
                   b->audio->shape[2] == 4 * t->p.frames_per_block;
    if (!xok || !aok) {
      const LaTensor *bad = xok ? b->audio : x;
      g_autofree char *got = la_shape_to_string (bad->ndim, bad->shape);
      g_autofree char *want = xok ? g_strdup_printf ("[layers, %d, %d]", dc->audio_dim, 4 * t->p.frames_per_block)
                                  : g_strdup_printf ("[%d, %d, %d, %d]", dc->in_dim, t->p.frames_per_block,
                                                     t->p.lat_h, t->p.lat_w);
      g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "la_tpp_push: block %" G_GINT64_FORMAT " %s has shape %s, "
                   "expected %s", block, xok ? "audio" : "noise", got, want);
      return FALSE;
    }
  }
  for (int i = 0; b->d && i < LA_TPP_STEPS; i++)
    if (b->d[i] < 4 || b->d[i] > 30) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_push: d[%d] = %d is outside [4, 30]", i, b->d[i]);
      return FALSE;
    }
  TppMsg *m = g_new0 (TppMsg, 1);
  m->kind = TPP_MSG_BLOCK;
  m->block = block;
  m->x = host_f32 (b->noise, 4);
  m->audio = host_f32 (b->audio, 3);
  if (b->d) {
    m->have_d = TRUE;
    memcpy (m->d, b->d, sizeof m->d);
  }
  m->refresh = b->refresh;
  if (b->refresh && b->refresh_ref)
    m->refresh_ref = host_f32 (b->refresh_ref, 4);
  if (b->refresh && b->refresh_motion)
    m->refresh_motion = host_f32 (b->refresh_motion, 4);
  GError *err = NULL;
  if (!t->tr->vt->send (t->tr, 0, m, &err)) {
    g_mutex_lock (&t->lock);
    if (!take_error (t, error))
      g_propagate_error (error, g_steal_pointer (&err));
    g_mutex_unlock (&t->lock);
    g_clear_error (&err);
    return FALSE;
  }
  g_mutex_lock (&t->lock);
  t->pushed++;
  g_mutex_unlock (&t->lock);
  return TRUE;
}

gboolean
la_tpp_drain (LaTpp *t, gboolean discard, GError **error)
{
  g_mutex_lock (&t->lock);
  if (discard)
    t->discard_below = t->pushed;
  while (!t->error && t->out < t->pushed && !t->stopped)
    g_cond_wait (&t->cond, &t->lock);
  gboolean failed = take_error (t, error);
  if (!failed && t->out < t->pushed) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "la_tpp_drain: the pipeline was stopped");
    failed = TRUE;
  }
  g_mutex_unlock (&t->lock);
  return !failed;
}

gboolean
la_tpp_finish (LaTpp *t, GError **error)
{
  if (!la_tpp_drain (t, FALSE, error))
    return FALSE;
  g_mutex_lock (&t->lock);
  gboolean already = t->eos_sent;
  t->eos_sent = TRUE;
  g_mutex_unlock (&t->lock);
  if (!already) {
    TppMsg *m = g_new0 (TppMsg, 1);
    m->kind = TPP_MSG_EOS;
    GError *err = NULL;
    if (!t->tr->vt->send (t->tr, 0, m, &err))
      g_clear_error (&err);
  }
  g_mutex_lock (&t->lock);
  while (!t->error && !t->eos_out && !t->stopped)
    g_cond_wait (&t->cond, &t->lock);
  gboolean failed = take_error (t, error);
  g_mutex_unlock (&t->lock);
  if (failed)
    return FALSE;
  stop_threads (t);
  return TRUE;
}

const LaTppPlan *
la_tpp_get_plan (LaTpp *t)
{
  return &t->plan;
}

LaDitSession *
la_tpp_step_session (LaTpp *t, int step)
{
  for (int k = 0; k < t->n_stages; k++) {
    const LaTppStagePlan *p = &t->st[k].plan;
    if (step >= p->first_step && step < p->first_step + p->n_steps)
      return t->st[k].session;
  }
  return NULL;
}

double
la_tpp_get_block_dit_ms (LaTpp *t)
{
  g_mutex_lock (&t->lock);
  double ms = t->block_dit_ms;
  g_mutex_unlock (&t->lock);
  return ms;
}

gint64
la_tpp_blocks_out (LaTpp *t)
{
  g_mutex_lock (&t->lock);
  gint64 n = t->out;
  g_mutex_unlock (&t->lock);
  return n;
}

LaTppEvent *
la_tpp_timeline (LaTpp *t, int *n_events)
{
  g_mutex_lock (&t->lock);
  int n = t->events->len;
  LaTppEvent *e = g_memdup2 (t->events->data, sizeof (LaTppEvent) * MAX (n, 1));
  g_mutex_unlock (&t->lock);
  *n_events = n;
  return e;
}
