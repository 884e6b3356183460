/* tpp-remote.c — the head's side of a remote stage: a TPP stage whose DiT
 * steps run in a stage worker process (la_tpp_worker_*, tools/stage.c),
 * possibly on another machine, over one TCP connection (tpp-wire.h).
 *
 * The stage's thread stays in this process and acts as a proxy: it sends
 * each block (latent, audio features, d, refresh request) and waits for the
 * latent after the worker's steps.  So the pipeline's queues, ordering,
 * sink-frame latch, faults, flush and EOS are the same code for local and
 * remote stages, and exactness follows: the worker runs the same
 * la_dit_session_denoise_step calls on the same bytes.  Every wait takes the
 * pipeline's GCancellable, so an abort anywhere unblocks a proxy at once.
 */
#include "la-json.h"
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <liveavatar/la-error.h>
#include "tpp-remote.h"

struct _TppRemote {
  char              *addr;        /* "tcp://host:port", for messages */
  GSocketConnection *conn;
  GInputStream      *in;
  GOutputStream     *out;
  LaDitConfig        cfg;
  char              *digest, *backend;
};

#define CONNECT_TIMEOUT_S 10

static gboolean
read_hello (TppRemote *r, GCancellable *c, GError **error)
{
  TwMsg m;
  if (!tw_expect (r->in, &m, TW_HELLO, r->addr, c, error))
    return FALSE;
  guint32 version = tw_get_u32 (&m);
  g_autofree char *json = tw_get_str (&m);
  r->digest = tw_get_str (&m);
  r->backend = tw_get_str (&m);
  gboolean ok = tw_done (&m, r->addr, error);
  tw_msg_clear (&m);
  if (!ok)
    return FALSE;
  if (version != TW_VERSION) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "the stage worker at %s speaks protocol version %u, "
                 "this engine %u: run the same liveavatar version on every host", r->addr, version, TW_VERSION);
    return FALSE;
  }
  g_autoptr (JsonParser) jp = json_parser_new ();
  GError *e = NULL;
  /* From the network: the nesting is checked before json-glib recurses into it. */
  if (!la_json_check_depth (json, strlen (json), LA_JSON_DEPTH_CONFIG, "model config", &e) ||
      !json_parser_load_from_data (jp, json, -1, &e) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (jp)) ||
      !la_dit_config_from_json_object (&r->cfg, json_node_get_object (json_parser_get_root (jp)), &e)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "the stage worker at %s sent an unreadable model config: %s",
                 r->addr, e ? e->message : "not a JSON object");
    g_clear_error (&e);
    return FALSE;
  }
  return TRUE;
}

TppRemote *
tpp_remote_connect (const char *address, GCancellable *c, GError **error)
{
  TppRemote *r = g_new0 (TppRemote, 1);
  const char *hostport = g_str_has_prefix (address, "tcp://") ? address + 6 : address;
  r->addr = g_strdup_printf ("tcp://%s", hostport);
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_socket_client_set_timeout (client, CONNECT_TIMEOUT_S);
  g_socket_client_set_enable_proxy (client, FALSE);   /* stage links are direct, never via an HTTP proxy */
  GError *e = NULL;
  r->conn = g_socket_client_connect_to_host (client, hostport, 0, c, &e);
  if (!r->conn) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "cannot reach the stage worker at %s: %s (is liveavatar-stage "
                 "running there?)", r->addr, e->message);
    g_error_free (e);
    goto fail;
  }
  GSocket *sock = g_socket_connection_get_socket (r->conn);
  g_socket_set_option (sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);   /* one message per block: no Nagle delay */
  g_socket_set_keepalive (sock, TRUE);
  r->in = g_io_stream_get_input_stream (G_IO_STREAM (r->conn));
  r->out = g_io_stream_get_output_stream (G_IO_STREAM (r->conn));
  /* the greeting must come at once (a wrong service may never answer);
   * afterwards a block may take as long as the worker's device needs */
  gint64 t0 = g_get_monotonic_time ();
  if (!read_hello (r, c, error)) {
    if (g_get_monotonic_time () - t0 >= (CONNECT_TIMEOUT_S - 1) * G_USEC_PER_SEC)
      g_prefix_error (error, "no greeting from the stage worker within %d s (busy: it serves a bounded "
                      "number of streams at once, see liveavatar-stage --streams): ", CONNECT_TIMEOUT_S);
    goto fail;
  }
  g_socket_set_timeout (sock, 0);
  return r;
fail:
  tpp_remote_free (r);
  return NULL;
}

const LaDitConfig *
tpp_remote_config (TppRemote *r)
{
  return &r->cfg;
}

const char *
tpp_remote_digest (TppRemote *r)
{
  return r->digest;
}

const char *
tpp_remote_address (TppRemote *r)
{
  return r->addr;
}

gboolean
tpp_remote_init (TppRemote *r, int stage, const char *label, const LaDitSessionParams *p, const LaTensor *ref,
                 const LaTensor *motion, const LaTensor *ctx, GCancellable *c, GError **error)
{
  GByteArray *b = g_byte_array_new ();
  tw_put_u32 (b, stage);
  tw_put_str (b, label);
  tw_put_params (b, p);
  tw_put_tensor (b, ref);
  tw_put_tensor (b, motion);
  tw_put_tensor (b, ctx);
  gboolean ok = tw_send (r->out, TW_INIT, b, r->addr, c, error);
  g_byte_array_unref (b);
  TwMsg m;
  if (!ok || !tw_expect (r->in, &m, TW_READY, r->addr, c, error))
    return FALSE;
  ok = tw_done (&m, r->addr, error);
  tw_msg_clear (&m);
  return ok;
}

gboolean
tpp_remote_run (TppRemote *r, TppMsg *msg, gboolean refresh, const LaTensor *refresh_ref, double *refresh_s,
                double *step_s, GCancellable *c, GError **error)
{
  GByteArray *b = g_byte_array_new ();
  tw_put_i64 (b, msg->block);
  tw_put_u32 (b, msg->have_d);
  for (int i = 0; i < LA_TPP_STEPS; i++)
    tw_put_u32 (b, msg->have_d ? (guint32) msg->d[i] : 0);
  tw_put_u32 (b, refresh);
  tw_put_tensor (b, refresh ? refresh_ref : NULL);
  tw_put_tensor (b, refresh ? msg->refresh_motion : NULL);
  tw_put_tensor (b, msg->x);
  tw_put_tensor (b, msg->audio);
  gboolean ok = tw_send (r->out, TW_BLOCK, b, r->addr, c, error);
  g_byte_array_unref (b);
  TwMsg m;
  if (!ok || !tw_expect (r->in, &m, TW_RESULT, r->addr, c, error))
    return FALSE;
  gint64 block = tw_get_i64 (&m);
  *refresh_s = tw_get_f64 (&m);
  *step_s = tw_get_f64 (&m);
  LaTensor *x = tw_get_tensor (&m);
  ok = tw_done (&m, r->addr, error);
  tw_msg_clear (&m);
  if (ok && (block != msg->block || !x || x->ndim != msg->x->ndim ||
             memcmp (x->shape, msg->x->shape, sizeof (int64_t) * x->ndim))) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "the stage worker at %s answered block %" G_GINT64_FORMAT
                 " with block %" G_GINT64_FORMAT " or a latent of another shape", r->addr, msg->block, block);
    ok = FALSE;
  }
  if (!ok) {
    g_clear_pointer (&x, la_tensor_unref);
    return FALSE;
  }
  la_tensor_unref (msg->x);
  msg->x = x;
  return TRUE;
}

void
tpp_remote_free (TppRemote *r)
{
  if (!r)
    return;
  if (r->conn) {
    /* best effort: tell the worker the stream is over so it frees its caches
     * and waits for the next pipeline; never block on a dead peer */
    g_socket_set_timeout (g_socket_connection_get_socket (r->conn), 2);
    tw_send (r->out, TW_BYE, NULL, r->addr, NULL, NULL);
    g_io_stream_close (G_IO_STREAM (r->conn), NULL, NULL);
    g_object_unref (r->conn);
  }
  g_free (r->digest);
  g_free (r->backend);
  g_free (r->addr);
  g_free (r);
}
