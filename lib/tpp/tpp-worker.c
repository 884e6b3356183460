/* tpp-worker.c — a TPP stage worker: serves pipeline stages of a head
 * process over TCP (tpp-wire.h), so that the 4 denoising steps can live in
 * other processes or on other machines (docs/tpp.md, "Stage workers").
 *
 * One connection is one stage of one stream: INIT builds a LaDitSession
 * holding only that stage's KV caches (the cache mask the head sends), each
 * BLOCK runs the stage's steps with la_dit_session_denoise_step exactly as
 * an in-process stage does (sink refresh first when asked; d given, or drawn
 * by replaying the sequential generator for all 4 steps), RESULT returns the
 * latent.  The session is freed when the head says BYE or goes away, and the
 * worker is ready for the next stream: the model stays loaded.
 *
 * The protocol carries no authentication: bind workers to a private
 * interface (the default address is the loopback).
 */
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include "la-tpp-pipeline.h"
#include <liveavatar/la-error.h>
#include "la-device.h"
#include "tpp-wire.h"

struct _LaTppWorker {
  LaDitModel       *model;
  /* la_tpp_worker_open: the worker owns its backend and model */
  LaBackend        *own_be;
  LaDitModel       *own_model;
  char             *digest, *backend, *config_json;
  GSocketListener  *listener;
  char             *address;      /* "tcp://HOST:PORT" actually bound */
  guint16           port;
  gint64            fault_block;   /* test hook: the step of this block fails (-1: never) */
  /* la_tpp_worker_start: la_tpp_worker_run on a thread until la_tpp_worker_free */
  GThread          *thread;
  GCancellable     *cancel;
  int               max_streams;
  LaTppWorkerLogFunc log;
  gpointer          log_user;
};

static gboolean
parse_listen (const char *address, char **host, guint16 *port, GError **error)
{
  const char *a = address && *address ? address : "127.0.0.1:0";
  if (g_str_has_prefix (a, "tcp://"))
    a += 6;
  const char *colon = strrchr (a, ':');
  g_autofree char *h = colon ? g_strndup (a, colon - a) : g_strdup ("127.0.0.1");
  const char *ps = colon ? colon + 1 : a;
  char *end = NULL;
  guint64 p = g_ascii_strtoull (ps, &end, 10);
  if (!*ps || *end || p > 65535) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "listen address '%s': expected [HOST:]PORT", address);
    return FALSE;
  }
  if (h[0] == '[' && h[strlen (h) - 1] == ']') {   /* [::1]:7000 */
    char *inner = g_strndup (h + 1, strlen (h) - 2);
    g_free (h);
    h = inner;
  }
  *host = g_steal_pointer (&h);
  *port = (guint16) p;
  return TRUE;
}

LaTppWorker *
la_tpp_worker_new (LaDitModel *model, const char *digest, const char *backend_name, const char *address,
                   GError **error)
{
  g_autofree char *host = NULL;
  guint16 port;
  if (!model) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "la_tpp_worker_new: no model");
    return NULL;
  }
  if (!parse_listen (address, &host, &port, error))
    return NULL;
  g_autoptr (GInetAddress) ia = g_inet_address_new_from_string (host);
  if (!ia) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "listen address '%s': '%s' is not a numeric IP address "
                 "(use 0.0.0.0 for every interface)", address, host);
    return NULL;
  }
  LaTppWorker *w = g_new0 (LaTppWorker, 1);
  w->model = model;
  w->digest = g_strdup (digest ? digest : "");
  w->backend = g_strdup (backend_name ? backend_name : "");
  w->fault_block = -1;
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (root, la_dit_config_to_json_object (la_dit_model_config (model)));
  w->config_json = json_to_string (root, FALSE);
  w->listener = g_socket_listener_new ();
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (ia, port);
  g_autoptr (GSocketAddress) eff = NULL;
  GError *e = NULL;
  if (!g_socket_listener_add_address (w->listener, sa, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &eff,
                                      &e)) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "cannot listen on %s: %s", address, e->message);
    g_error_free (e);
    la_tpp_worker_free (w);
    return NULL;
  }
  w->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (eff));
  w->address = g_strdup_printf (strchr (host, ':') ? "tcp://[%s]:%u" : "tcp://%s:%u", host, w->port);
  return w;
}

LaTppWorker *
la_tpp_worker_open (const char *model_dir, const char *lora, LaWeights weights, const char *device, int n_threads,
                    const char *address, GError **error)
{
  LaBackend *be = la_device_open (device ? device : "cpu", weights, n_threads, error);
  if (!be) {
    g_prefix_error (error, "stage worker: ");
    return NULL;
  }
  LaDitLoadInfo info;
  LaDitModel *m = la_dit_model_load_full (be, model_dir, lora, weights, &info, error);
  LaTppWorker *w = m ? la_tpp_worker_new (m, info.digest, la_backend_get_name (be), address, error) : NULL;
  if (!w) {
    la_dit_model_free (m);
    la_backend_unref (be);
    return NULL;
  }
  w->own_be = be;
  w->own_model = m;
  return w;
}

char *
la_tpp_worker_describe (LaTppWorker *w)
{
  const LaDitConfig *cfg = la_dit_model_config (w->model);
  return g_strdup_printf ("DiT dim %d, %d layers, weights %.12s", cfg->dim, cfg->num_layers, w->digest);
}

guint16
la_tpp_worker_get_port (LaTppWorker *w)
{
  return w->port;
}

const char *
la_tpp_worker_get_address (LaTppWorker *w)
{
  return w->address;
}

void
la_tpp_worker_set_fault_block (LaTppWorker *w, gint64 block)
{
  w->fault_block = block;
}

void
la_tpp_worker_free (LaTppWorker *w)
{
  if (!w)
    return;
  if (w->thread) {
    g_cancellable_cancel (w->cancel);
    g_thread_join (w->thread);
    g_object_unref (w->cancel);
  }
  if (w->listener) {
    g_socket_listener_close (w->listener);
    g_object_unref (w->listener);
  }
  g_free (w->address);
  g_free (w->digest);
  g_free (w->backend);
  g_free (w->config_json);
  la_dit_model_free (w->own_model);
  if (w->own_be)
    la_backend_unref (w->own_be);
  g_free (w);
}

typedef struct {
  LaTppWorker   *w;
  GInputStream  *in;
  GOutputStream *out;
  GCancellable  *cancel;        /* the worker's: interrupts every wait, writes included */
  char          *peer;
  char          *label;
  LaDitSession  *session;
  int            first_step, n_steps;
} Conn;

static gboolean
handle_init (Conn *k, TwMsg *m, GError **error)
{
  LaDitSessionParams p;
  guint32 stage = tw_get_u32 (m);
  k->label = tw_get_str (m);
  tw_get_params (m, &p);
  g_autoptr (LaTensor) ref = tw_get_tensor (m);
  g_autoptr (LaTensor) motion = tw_get_tensor (m);
  g_autoptr (LaTensor) ctx = tw_get_tensor (m);
  if (!tw_done (m, k->peer, error))
    return FALSE;
  /* the steps are the set bits of the mask, contiguous */
  guint mask = p.cache_mask;
  k->first_step = mask ? __builtin_ctz (mask) : -1;
  k->n_steps = mask ? __builtin_popcount (mask) : 0;
  if (!mask || mask >= 1u << LA_TPP_STEPS || mask != ((1u << k->n_steps) - 1) << k->first_step || !ref || !ctx) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "stage %u: bad INIT (steps mask 0x%x, ref %s, text %s)",
                 stage, mask, ref ? "given" : "missing", ctx ? "given" : "missing");
    return FALSE;
  }
  /* The session sizes its caches from these before it looks at the tensors:
   * check them against the tensors and sane bounds first, so that a
   * garbled INIT cannot make the worker allocate without limit. */
  int o = ref->ndim == 5 && ref->shape[0] == 1 ? 1 : 0;   /* [16, 1, h, w] or [1, 16, 1, h, w] */
  if (ref->ndim - o != 4 || ref->shape[o + 1] != 1 || ref->shape[o + 2] != p.lat_h || ref->shape[o + 3] != p.lat_w ||
      p.lat_h > 512 || p.lat_w > 512 || p.frames_per_block < 1 || p.frames_per_block > 64 || p.infer_frames < 1 ||
      p.infer_frames > 1200 || p.motion_latent_frames < 0 || p.motion_latent_frames > 1024 ||
      p.audio_prefix > 4097) {
    g_autofree char *shape = la_shape_to_string (ref->ndim, ref->shape);
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "stage %u: bad INIT: ref latent %s for latents %dx%d, "
                 "%d frames per block, %d per clip, %d motion frames, audio prefix %d", stage, shape, p.lat_h,
                 p.lat_w, p.frames_per_block, p.infer_frames, p.motion_latent_frames, p.audio_prefix);
    return FALSE;
  }
  k->session = la_dit_session_new (k->w->model, &p, ref, motion, ctx, error);
  return k->session != NULL;
}

static gboolean
handle_block (Conn *k, TwMsg *m, GError **error)
{
  gint64 block = tw_get_i64 (m);
  gboolean have_d = tw_get_u32 (m);
  int d[LA_TPP_STEPS];
  for (int i = 0; i < LA_TPP_STEPS; i++)
    d[i] = (int) tw_get_u32 (m);
  gboolean refresh = tw_get_u32 (m);
  g_autoptr (LaTensor) ref = tw_get_tensor (m);
  g_autoptr (LaTensor) motion = tw_get_tensor (m);
  g_autoptr (LaTensor) x = tw_get_tensor (m);
  g_autoptr (LaTensor) audio = tw_get_tensor (m);
  if (!tw_done (m, k->peer, error))
    return FALSE;
  for (int i = 0; have_d && i < LA_TPP_STEPS; i++)
    if (d[i] < 4 || d[i] > 30) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "block %" G_GINT64_FORMAT ": sink offset d[%d] = %d is "
                   "outside [4, 30]", block, i, d[i]);
      return FALSE;
    }
  if (!x || !audio || block < 0 || (refresh && !ref)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "block %" G_GINT64_FORMAT ": latent, audio or sink ref missing",
                 block);
    return FALSE;
  }
  gint64 t0 = g_get_monotonic_time ();
  if (refresh && !la_dit_session_refresh_sink (k->session, ref, motion, error))
    return FALSE;
  gint64 t1 = g_get_monotonic_time ();
  if (!la_dit_session_run_steps (k->session, block, k->first_step, k->n_steps, have_d ? d : NULL, x, audio,
                                 error))
    return FALSE;
  if (block == k->w->fault_block) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "injected fault at block %" G_GINT64_FORMAT, block);
    return FALSE;
  }
  gint64 t2 = g_get_monotonic_time ();
  GByteArray *b = g_byte_array_new ();
  tw_put_i64 (b, block);
  tw_put_f64 (b, (t1 - t0) * 1e-6);
  tw_put_f64 (b, (t2 - t1) * 1e-6);
  tw_put_tensor (b, x);
  gboolean ok = tw_send (k->out, TW_RESULT, b, k->peer, k->cancel, error);
  g_byte_array_unref (b);
  return ok;
}

/* Serves one stream on an accepted connection until BYE or close. */
static gboolean
serve (LaTppWorker *w, GSocketConnection *conn, GCancellable *c, GError **error)
{
  Conn k = { .w = w, .cancel = c };
  GSocket *sock = g_socket_connection_get_socket (conn);
  g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_socket_set_keepalive (sock, TRUE);
  g_autoptr (GSocketAddress) ra = g_socket_connection_get_remote_address (conn, NULL);
  g_autofree char *ip = ra ? g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (ra)))
                           : g_strdup ("?");
  k.peer = g_strdup_printf ("the pipeline head at %s:%u", ip,
                            ra ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (ra)) : 0);
  k.in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  k.out = g_io_stream_get_output_stream (G_IO_STREAM (conn));

  GByteArray *hello = g_byte_array_new ();
  tw_put_u32 (hello, TW_VERSION);
  tw_put_str (hello, w->config_json);
  tw_put_str (hello, w->digest);
  tw_put_str (hello, w->backend);
  gboolean ok = tw_send (k.out, TW_HELLO, hello, k.peer, c, error);
  g_byte_array_unref (hello);

  GError *e = NULL;
  while (ok) {
    TwMsg m;
    if (!tw_recv (k.in, &m, k.peer, c, &e)) {
      /* the head going away between messages ends the stream, it is not our failure */
      gboolean closed = e->domain == LA_ERROR && e->code == LA_ERROR_FAILED && strstr (e->message, "closed");
      if (!closed) {
        tw_send_error (k.out, e, k.peer, c, NULL);   /* a garbled header: say why before hanging up */
        g_propagate_error (error, g_steal_pointer (&e));
      }
      g_clear_error (&e);
      ok = closed;
      break;
    }
    gboolean done = FALSE;
    if (m.type == TW_BYE)
      done = TRUE;
    else if (m.type == TW_INIT && !k.session)
      ok = handle_init (&k, &m, &e) && tw_send (k.out, TW_READY, NULL, k.peer, c, &e);
    else if (m.type == TW_BLOCK && k.session)
      ok = handle_block (&k, &m, &e);
    else {
      g_set_error (&e, LA_ERROR, LA_ERROR_FORMAT, "%s sent %s %s", k.peer, tw_type_name (m.type),
                   k.session ? "after INIT" : "before INIT");
      ok = FALSE;
    }
    tw_msg_clear (&m);
    if (!ok) {
      /* tell the head why (its error names the stage and this worker), then end the stream */
      tw_send_error (k.out, e, k.peer, c, NULL);
      g_prefix_error (&e, "%s: ", k.label ? k.label : "stage worker");
      g_propagate_error (error, g_steal_pointer (&e));
    }
    if (done)
      break;
  }
  la_dit_session_free (k.session);
  g_free (k.label);
  g_free (k.peer);
  return ok;
}

gboolean
la_tpp_worker_serve_one (LaTppWorker *w, GCancellable *cancel, GError **error)
{
  GError *e = NULL;
  GSocketConnection *conn = g_socket_listener_accept (w->listener, NULL, cancel, &e);
  if (!conn) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "stage worker on port %u: %s", w->port, e->message);
    g_error_free (e);
    return FALSE;
  }
  gboolean ok = serve (w, conn, cancel, error);
  g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  g_object_unref (conn);
  return ok;
}

/* ---- several streams at once ---- */

typedef struct {
  LaTppWorker        *w;
  GSocketConnection  *conn;
  GCancellable       *cancel;
  LaTppWorkerLogFunc  log;
  gpointer            user;
  GMutex             *lock;
  GCond              *cond;
  int                *active;
} StreamJob;

static gpointer
stream_main (gpointer data)
{
  StreamJob *j = data;
  GError *e = NULL;
  gboolean ok = serve (j->w, j->conn, j->cancel, &e);
  if (j->log && !g_cancellable_is_cancelled (j->cancel))
    j->log (ok, e, j->user);
  g_clear_error (&e);
  g_io_stream_close (G_IO_STREAM (j->conn), NULL, NULL);
  g_object_unref (j->conn);
  g_mutex_lock (j->lock);
  (*j->active)--;
  g_cond_broadcast (j->cond);
  g_mutex_unlock (j->lock);
  g_free (j);
  return NULL;
}

gboolean
la_tpp_worker_run (LaTppWorker *w, int max_streams, LaTppWorkerLogFunc log, gpointer user, GCancellable *cancel,
                   GError **error)
{
  GMutex lock;
  GCond cond;
  int active = 0;
  GPtrArray *threads = g_ptr_array_new ();
  gboolean ok = TRUE;
  g_mutex_init (&lock);
  g_cond_init (&cond);
  max_streams = MAX (max_streams, 1);
  while (ok) {
    /* a free slot first: further heads wait in the listen queue */
    g_mutex_lock (&lock);
    while (active >= max_streams && !g_cancellable_is_cancelled (cancel)) {
      gint64 until = g_get_monotonic_time () + G_TIME_SPAN_SECOND / 10;   /* re-check cancel */
      g_cond_wait_until (&cond, &lock, until);
    }
    g_mutex_unlock (&lock);
    if (g_cancellable_is_cancelled (cancel))
      break;
    GError *e = NULL;
    GSocketConnection *conn = g_socket_listener_accept (w->listener, NULL, cancel, &e);
    if (!conn) {
      if (!g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_set_error (error, LA_ERROR, LA_ERROR_IO, "stage worker on port %u: %s", w->port, e->message);
        ok = FALSE;
      }
      g_error_free (e);
      break;
    }
    StreamJob *j = g_new0 (StreamJob, 1);
    *j = (StreamJob) { w, conn, cancel, log, user, &lock, &cond, &active };
    g_mutex_lock (&lock);
    active++;
    g_mutex_unlock (&lock);
    g_ptr_array_add (threads, g_thread_new ("la-stage-stream", stream_main, j));
  }
  /* the streams end on the same cancellable */
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  g_ptr_array_unref (threads);
  g_mutex_clear (&lock);
  g_cond_clear (&cond);
  return ok;
}

static gpointer
background_main (gpointer data)
{
  LaTppWorker *w = data;
  GError *e = NULL;
  if (!la_tpp_worker_run (w, w->max_streams, w->log, w->log_user, w->cancel, &e) && w->log)
    w->log (FALSE, e, w->log_user);
  g_clear_error (&e);
  return NULL;
}

void
la_tpp_worker_start (LaTppWorker *w, int max_streams, LaTppWorkerLogFunc log, gpointer user)
{
  g_return_if_fail (!w->thread);
  w->max_streams = max_streams;
  w->log = log;
  w->log_user = user;
  w->cancel = g_cancellable_new ();
  w->thread = g_thread_new ("la-stage-worker", background_main, w);
}
