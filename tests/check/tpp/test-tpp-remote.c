/* test-tpp-remote.c — TPP stages in stage workers (la_tpp_worker_*, the
 * protocol of lib/tpp/tpp-wire.h), tiny random DiT models, workers on
 * threads of this process listening on the loopback:
 *
 *  - exactness: pipelines mixing local and remote stages (1 to 5 devices,
 *    one to three workers) give, bit for bit, the sequential 4-cache loop,
 *    with generator d + the clip-1 refresh and with explicit d + an explicit
 *    refresh carrying new motion latents;
 *  - refusals at la_tpp_new, each naming the stage and the worker: nothing
 *    listening, another model config, other weights (digest), a peer that
 *    does not speak the protocol, malformed greetings, a remote device that
 *    would only hold the VAE;
 *  - a worker failing mid-stream stops the pipeline with the stage named,
 *    the worker survives for the next stream; shutdown mid-stream with
 *    remote stages never hangs (watchdog alarm);
 *  - la_tpp_worker_open loads a model folder itself: same weights digest as
 *    a head loading it, errors naming the folder or the address.
 */
#include <unistd.h>
#include "tpp-fixture.h"
#include "../../../lib/tpp/tpp-wire.h"      /* to play a hostile head */
#include "la-tpp-pipeline.h"
#include "la-model.h"

/* ---- a worker on a thread (la_tpp_worker_start), one stream at a time,
 * counting the streams that ended well or failed ---- */

typedef struct {
  LaTppWorker *w;
  gint streams_ok, streams_failed;
} Worker;

static void
count_stream (gboolean ok, const GError *error, gpointer user)
{
  Worker *wk = user;
  g_atomic_int_inc (ok ? &wk->streams_ok : &wk->streams_failed);
}

static Worker *
worker_start_n (LaDitModel *m, const char *digest, int max_streams)
{
  Worker *wk = g_new0 (Worker, 1);
  GError *e = NULL;
  wk->w = la_tpp_worker_new (m, digest, "cpu (test)", "127.0.0.1:0", &e);
  g_assert_no_error (e);
  g_assert_cmpuint (la_tpp_worker_get_port (wk->w), >, 0);
  g_assert_true (g_str_has_prefix (la_tpp_worker_get_address (wk->w), "tcp://127.0.0.1:"));
  la_tpp_worker_start (wk->w, max_streams, count_stream, wk);
  return wk;
}

static Worker *
worker_start (LaDitModel *m, const char *digest)
{
  return worker_start_n (m, digest, 1);
}

static void
worker_stop (Worker *wk)
{
  la_tpp_worker_free (wk->w);
  g_free (wk);
}

/* ---- pipeline runs ---- */

/* devs: "cpu" or a worker index "0".."2". */
static LaTpp *
make_tpp (Fx *f, const char *const *devs, int n, Worker **wk, const char *digest, Sink *sink, gboolean explicit,
          GError **e)
{
  LaTppConfig cfg;
  la_tpp_config_init (&cfg);
  cfg.n_devices = n;
  cfg.model_digest = digest;
  for (int i = 0; i < n; i++) {
    if (!strcmp (devs[i], "cpu"))
      cfg.devices[i].model = f->m[0];
    else
      cfg.devices[i].remote = la_tpp_worker_get_address (wk[atoi (devs[i])]->w);
  }
  cfg.output = collect;
  cfg.output_user = sink;
  cfg.record_timeline = TRUE;
  LaDitSessionParams p = f->p;
  p.refresh_sink_at_clip1 = !explicit;
  return la_tpp_new (&cfg, &p, f->ref, f->mot, f->ctx, e);
}

static gboolean
push_all (Fx *f, LaTpp *t, gboolean explicit, int n_blocks, GError **e)
{
  for (int b = 0; b < n_blocks; b++) {
    LaTppBlock blk = { .noise = f->noise[b], .audio = f->audio[b], .d = explicit ? explicit_d (b) : NULL };
    if (explicit && b == 2) {
      blk.refresh = TRUE;
      blk.refresh_motion = f->mot2;
    }
    if (!la_tpp_push (t, &blk, e))
      return FALSE;
  }
  return TRUE;
}

static void
test_exact (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 16, 1, 5, 11);
  Worker *wk[3];
  for (int i = 0; i < 3; i++)
    wk[i] = worker_start (f.m[0], "same");
  const char *layouts[][5] = {
    { "0" },
    { "cpu", "0" },
    { "0", "cpu", "1" },
    { "0", "1", "2", "cpu" },
    { "cpu", "0", "cpu", "1", "cpu" },
    { "0", "1", "2", "cpu", "cpu" },
  };
  const int n_dev[] = { 1, 2, 3, 4, 5, 5 };
  for (int explicit = 0; explicit < 2; explicit++) {
    LaTensor *seq[8] = { 0 };
    sequential (&f, explicit, seq);
    for (guint l = 0; l < G_N_ELEMENTS (n_dev); l++) {
      Sink sink = { .fail_at = -1 };
      GError *e = NULL;
      LaTpp *t = make_tpp (&f, layouts[l], n_dev[l], wk, "same", &sink, explicit, &e);
      g_assert_no_error (e);
      g_assert_true (push_all (&f, t, explicit, f.n_blocks, &e));
      g_assert_no_error (e);
      g_assert_true (la_tpp_finish (t, &e));
      g_assert_no_error (e);
      int ne = 0;
      g_autofree LaTppEvent *ev = la_tpp_timeline (t, &ne);
      g_assert_cmpint (ne, >, f.n_blocks);
      for (int b = 0; b < f.n_blocks; b++) {
        g_assert_nonnull (sink.out[b]);
        if (memcmp (sink.out[b]->data, seq[b]->data, la_tensor_nbytes (seq[b])))
          g_error ("layout %u: block %d differs from the sequential loop", l, b);
      }
      g_print ("# %d devices (layout %u, %s): bit-identical\n", n_dev[l], l,
               explicit ? "explicit d + online refresh" : "generator d + clip-1 refresh");
      la_tpp_free (t);
      sink_clear (&sink);
    }
    for (int b = 0; b < f.n_blocks; b++)
      la_tensor_unref (seq[b]);
  }
  for (int i = 0; i < 3; i++) {
    g_assert_cmpint (g_atomic_int_get (&wk[i]->streams_failed), ==, 0);
    worker_stop (wk[i]);
  }
  fx_clear (&f);
}

static void
expect_new_fails (Fx *f, const char *const *devs, int n, Worker **wk, const char *digest, GQuark dom, int code,
                  const char *const *needles)
{
  Sink sink = { .fail_at = -1 };
  GError *e = NULL;
  LaTpp *t = make_tpp (f, devs, n, wk, digest, &sink, FALSE, &e);
  g_assert_null (t);
  g_assert_error (e, dom, code);
  for (int i = 0; needles[i]; i++)
    if (!strstr (e->message, needles[i]))
      g_error ("'%s' not in: %s", needles[i], e->message);
  g_print ("# refused: %s\n", e->message);
  g_clear_error (&e);
}

/* A server thread that accepts one connection and writes `reply` (then closes). */
typedef struct {
  GSocketListener *l;
  guint16 port;
  GBytes *reply;
  GThread *th;
} Fake;

static gpointer
fake_main (gpointer data)
{
  Fake *fk = data;
  GSocketConnection *c = g_socket_listener_accept (fk->l, NULL, NULL, NULL);
  if (c) {
    gsize n;
    const void *p = g_bytes_get_data (fk->reply, &n);
    g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (c)), p, n, NULL, NULL, NULL);
    g_io_stream_close (G_IO_STREAM (c), NULL, NULL);
    g_object_unref (c);
  }
  return NULL;
}

static Fake *
fake_start (const void *reply, gsize n)
{
  Fake *fk = g_new0 (Fake, 1);
  fk->l = g_socket_listener_new ();
  fk->port = g_socket_listener_add_any_inet_port (fk->l, NULL, NULL);
  fk->reply = g_bytes_new (reply, n);
  fk->th = g_thread_new ("fake", fake_main, fk);
  return fk;
}

static void
fake_stop (Fake *fk)
{
  g_thread_join (fk->th);
  g_socket_listener_close (fk->l);
  g_object_unref (fk->l);
  g_bytes_unref (fk->reply);
  g_free (fk);
}

static void
test_refusals (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 8, 1, 3, 21);
  /* nothing listening: a port that was just free */
  Worker *gone = worker_start (f.m[0], NULL);
  g_autofree char *gone_addr = g_strdup (la_tpp_worker_get_address (gone->w));
  worker_stop (gone);
  {
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = 2;
    cfg.devices[0].model = f.m[0];
    cfg.devices[1].remote = gone_addr;
    GError *e = NULL;
    g_assert_null (la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e));
    g_assert_error (e, LA_ERROR, LA_ERROR_DEVICE);
    g_assert_nonnull (strstr (e->message, "stage 1"));
    g_assert_nonnull (strstr (e->message, gone_addr));
    g_assert_nonnull (strstr (e->message, "cannot reach"));
    g_print ("# refused: %s\n", e->message);
    g_clear_error (&e);
  }
  /* another model: other width */
  LaDitConfig oc;
  tiny_config (&oc, 48, 3, 2);
  g_autoptr (LaCheckpoint) ock = la_dit_random_weights (&oc, 5);
  GError *e = NULL;
  LaDitModel *om = la_dit_model_new (f.be[0], &oc, ock, &e);
  g_assert_no_error (e);
  Worker *other = worker_start (om, "x");
  const char *d2[] = { "cpu", "0" };
  expect_new_fails (&f, d2, 2, &other, NULL, LA_ERROR, LA_ERROR_INVALID_ARG,
                    (const char *[]) { "stage 1", "another model", "dim 48 (here 32)", NULL });
  worker_stop (other);
  la_dit_model_free (om);
  /* same config, other weights */
  Worker *w = worker_start (f.m[0], "0123456789abcdef");
  expect_new_fails (&f, d2, 2, &w, "fedcba9876543210", LA_ERROR, LA_ERROR_INVALID_ARG,
                    (const char *[]) { "stage 1", "other weights", "0123456789ab", NULL });
  /* a worker serving its only stream (max_streams 1) makes the next head wait; it is told so */
  {
    Sink sink = { .fail_at = -1 };
    LaTpp *busy = make_tpp (&f, d2, 2, &w, NULL, &sink, FALSE, &e);
    g_assert_no_error (e);
    expect_new_fails (&f, d2, 2, &w, NULL, LA_ERROR, LA_ERROR_DEVICE,
                      (const char *[]) { "stage 1", "busy", "--streams", NULL });
    la_tpp_free (busy);
  }
  /* a remote device holding only the VAE (5 devices: device 4) */
  const char *d5[] = { "cpu", "cpu", "cpu", "cpu", "0" };
  expect_new_fails (&f, d5, 5, &w, NULL, LA_ERROR, LA_ERROR_INVALID_ARG,
                    (const char *[]) { "device 4", "VAE", NULL });
  worker_stop (w);
  /* peers that do not speak the protocol, or garble the greeting */
  struct { const char *reply; gsize n; const char *needle; } bad[] = {
    { "HTTP/1.0 400 Bad Request\r\n\r\n", 28, "does not speak" },
    { "LATW", 4, "closed the connection" },
    /* a HELLO whose body is shorter than its fields */
    { "LATW\x01\0\0\0\x06\0\0\0\0\0\0\0\x01\0\0\0\xff\xff", 22, "malformed HELLO" },
    /* a HELLO announcing 1 TiB */
    { "LATW\x01\0\0\0\0\0\0\0\0\x01\0\0", 16, "does not speak" },
    { "", 0, "closed the connection" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    Fake *fk = fake_start (bad[i].reply, bad[i].n);
    g_autofree char *addr = g_strdup_printf ("tcp://127.0.0.1:%u", fk->port);
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = 2;
    cfg.devices[0].model = f.m[0];
    cfg.devices[1].remote = addr;
    g_assert_null (la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e));
    g_assert_nonnull (e);
    g_assert_nonnull (strstr (e->message, "stage 1"));
    if (!strstr (e->message, bad[i].needle))
      g_error ("bad peer %u: '%s' not in: %s", i, bad[i].needle, e->message);
    g_print ("# bad peer %u: %s\n", i, e->message);
    g_clear_error (&e);
    fake_stop (fk);
  }
  fx_clear (&f);
}

static void
test_worker_fault_and_shutdown (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 8, 1, 6, 33);
  Worker *wk[2] = { worker_start (f.m[0], NULL), worker_start (f.m[0], NULL) };
  la_tpp_worker_set_fault_block (wk[1]->w, 3);
  const char *devs[] = { "0", "cpu", "1", "cpu" };
  Sink sink = { .fail_at = -1 };
  GError *e = NULL;
  LaTpp *t = make_tpp (&f, devs, 4, wk, NULL, &sink, FALSE, &e);
  g_assert_no_error (e);
  gboolean ok = push_all (&f, t, FALSE, f.n_blocks, &e) && la_tpp_finish (t, &e);
  g_assert_false (ok);
  g_assert_error (e, LA_ERROR, LA_ERROR_DEVICE);
  g_assert_nonnull (strstr (e->message, "stage 2"));
  g_assert_nonnull (strstr (e->message, la_tpp_worker_get_address (wk[1]->w)));
  g_assert_nonnull (strstr (e->message, "injected fault at block 3"));
  g_print ("# worker fault: %s\n", e->message);
  g_clear_error (&e);
  g_assert_null (sink.out[3]);      /* blocks still in flight at the fault are not delivered */
  la_tpp_free (t);
  sink_clear (&sink);
  /* the workers serve the next stream */
  la_tpp_worker_set_fault_block (wk[1]->w, -1);
  t = make_tpp (&f, devs, 4, wk, NULL, &sink, FALSE, &e);
  g_assert_no_error (e);
  g_assert_true (push_all (&f, t, FALSE, 3, &e));
  g_assert_true (la_tpp_finish (t, &e));
  g_assert_no_error (e);
  la_tpp_free (t);
  sink_clear (&sink);
  /* shutdown mid-stream, at several points */
  for (int n = 0; n <= 4; n++) {
    t = make_tpp (&f, devs, 4, wk, NULL, &sink, FALSE, &e);
    g_assert_no_error (e);
    g_assert_true (push_all (&f, t, FALSE, n, &e));
    if (n == 2)
      g_assert_true (la_tpp_drain (t, TRUE, &e));   /* flush, then stop */
    la_tpp_free (t);
    sink_clear (&sink);
  }
  for (int i = 0; i < 2; i++)
    worker_stop (wk[i]);
  fx_clear (&f);
}

/* la_tpp_worker_run: two pipelines through one worker at the same time,
 * each with its own caches in the worker, both exact. */
static void
test_concurrent_streams (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 8, 1, 5, 51);
  GError *e = NULL;
  Worker *wk = worker_start_n (f.m[0], NULL, 2);
  const char *addr = la_tpp_worker_get_address (wk->w);
  LaTensor *seq[2][16] = { { 0 } };
  sequential (&f, FALSE, seq[0]);
  sequential (&f, TRUE, seq[1]);
  Sink sink[2] = { { .fail_at = -1 }, { .fail_at = -1 } };
  LaTpp *t[2];
  for (int k = 0; k < 2; k++) {
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = 2;
    cfg.devices[0].model = f.m[0];
    cfg.devices[1].remote = addr;
    cfg.output = collect;
    cfg.output_user = &sink[k];
    LaDitSessionParams p = f.p;
    p.refresh_sink_at_clip1 = k == 0;
    t[k] = la_tpp_new (&cfg, &p, f.ref, f.mot, f.ctx, &e);
    g_assert_no_error (e);
  }
  /* interleaved: stream 0 (generator d, clip-1 refresh) and stream 1 (explicit d + online refresh) */
  for (int b = 0; b < f.n_blocks; b++)
    for (int k = 0; k < 2; k++) {
      LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b], .d = k ? explicit_d (b) : NULL };
      if (k && b == 2) {
        blk.refresh = TRUE;
        blk.refresh_motion = f.mot2;
      }
      g_assert_true (la_tpp_push (t[k], &blk, &e));
    }
  for (int k = 0; k < 2; k++) {
    g_assert_true (la_tpp_finish (t[k], &e));
    g_assert_no_error (e);
    for (int b = 0; b < f.n_blocks; b++)
      if (memcmp (sink[k].out[b]->data, seq[k][b]->data, la_tensor_nbytes (seq[k][b])))
        g_error ("concurrent stream %d: block %d differs from the sequential loop", k, b);
    la_tpp_free (t[k]);
    sink_clear (&sink[k]);
  }
  g_print ("# two concurrent streams through one worker: both bit-identical\n");
  /* the streams end when their heads say BYE; then stop the worker */
  while (g_atomic_int_get (&wk->streams_ok) < 2)
    g_usleep (1000);
  g_assert_cmpint (g_atomic_int_get (&wk->streams_failed), ==, 0);
  worker_stop (wk);
  for (int k = 0; k < 2; k++)
    for (int b = 0; b < f.n_blocks; b++)
      la_tensor_unref (seq[k][b]);
  fx_clear (&f);
}

/* ---- a hostile or broken head: the worker answers ERROR and goes on ---- */

static GSocketConnection *
raw_connect (Worker *wk, gboolean read_hello)
{
  g_autoptr (GSocketClient) c = g_socket_client_new ();
  g_socket_client_set_enable_proxy (c, FALSE);
  GError *e = NULL;
  const char *addr = la_tpp_worker_get_address (wk->w) + strlen ("tcp://");
  GSocketConnection *conn = g_socket_client_connect_to_host (c, addr, 0, NULL, &e);
  g_assert_no_error (e);
  if (read_hello) {
    TwMsg m;
    g_assert_true (tw_expect (g_io_stream_get_input_stream (G_IO_STREAM (conn)), &m, TW_HELLO, "worker", NULL, &e));
    tw_msg_clear (&m);
  }
  return conn;
}

/* Sends `type` with `body`, expects ERROR whose text contains `needle`. */
static void
expect_worker_error (Worker *wk, guint32 type, GByteArray *body, const char *needle)
{
  GSocketConnection *conn = raw_connect (wk, TRUE);
  GError *e = NULL;
  g_assert_true (tw_send (g_io_stream_get_output_stream (G_IO_STREAM (conn)), type, body, "worker", NULL, &e));
  TwMsg m;
  g_assert_false (tw_expect (g_io_stream_get_input_stream (G_IO_STREAM (conn)), &m, TW_READY, "worker", NULL, &e));
  g_assert_nonnull (e);
  if (!strstr (e->message, needle))
    g_error ("'%s' not in: %s", needle, e->message);
  g_print ("# worker refused %s: %s\n", tw_type_name (type), e->message);
  g_clear_error (&e);
  g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  g_object_unref (conn);
}

static GByteArray *
init_body (Fx *f, guint mask, int lat_h, int infer_frames, const LaTensor *ref)
{
  GByteArray *b = g_byte_array_new ();
  LaDitSessionParams p = f->p;
  p.cache_mask = mask;
  p.lat_h = lat_h;
  p.infer_frames = infer_frames;
  tw_put_u32 (b, 1);
  tw_put_str (b, "stage 1 (test)");
  tw_put_params (b, &p);
  tw_put_tensor (b, ref);
  tw_put_tensor (b, f->mot);
  tw_put_tensor (b, f->ctx);
  return b;
}

static void
test_hostile_head (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 8, 1, 3, 41);
  Worker *wk = worker_start (f.m[0], NULL);
  /* BLOCK before INIT */
  g_autoptr (GByteArray) blk = g_byte_array_new ();
  tw_put_i64 (blk, 0);
  expect_worker_error (wk, TW_BLOCK, blk, "BLOCK before INIT");
  /* steps that are not contiguous, a ref that does not match the latent
   * size, absurd clip length, a truncated INIT, a bad d */
  g_autoptr (GByteArray) b1 = init_body (&f, 0x5, 8, f.p.infer_frames, f.ref);
  expect_worker_error (wk, TW_INIT, b1, "steps mask 0x5");
  g_autoptr (GByteArray) b2 = init_body (&f, 0x3, 400, f.p.infer_frames, f.ref);
  expect_worker_error (wk, TW_INIT, b2, "bad INIT: ref latent [16, 1, 8, 8] for latents 400x8");
  g_autoptr (GByteArray) b3 = init_body (&f, 0x3, 8, 12 * 100000, f.ref);
  expect_worker_error (wk, TW_INIT, b3, "1200000 per clip");
  g_autoptr (GByteArray) b4 = init_body (&f, 0x3, 8, f.p.infer_frames, f.ref);
  g_byte_array_set_size (b4, b4->len - 7);
  expect_worker_error (wk, TW_INIT, b4, "malformed INIT");
  {
    GSocketConnection *conn = raw_connect (wk, TRUE);
    GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
    GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
    GError *e = NULL;
    g_autoptr (GByteArray) ok = init_body (&f, 0x3, 8, f.p.infer_frames, f.ref);
    TwMsg m;
    g_assert_true (tw_send (out, TW_INIT, ok, "worker", NULL, &e));
    g_assert_true (tw_expect (in, &m, TW_READY, "worker", NULL, &e));
    tw_msg_clear (&m);
    g_autoptr (GByteArray) bb = g_byte_array_new ();
    tw_put_i64 (bb, 0);
    tw_put_u32 (bb, 1);
    int d[4] = { 4, 31, 5, 6 };
    for (int i = 0; i < 4; i++)
      tw_put_u32 (bb, d[i]);
    tw_put_u32 (bb, 0);
    tw_put_tensor (bb, NULL);
    tw_put_tensor (bb, NULL);
    tw_put_tensor (bb, f.noise[0]);
    tw_put_tensor (bb, f.audio[0]);
    g_assert_true (tw_send (out, TW_BLOCK, bb, "worker", NULL, &e));
    g_assert_false (tw_expect (in, &m, TW_RESULT, "worker", NULL, &e));
    g_assert_nonnull (strstr (e->message, "d[1] = 31"));
    g_print ("# worker refused BLOCK: %s\n", e->message);
    g_clear_error (&e);
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    g_object_unref (conn);
  }
  /* garbage instead of a message */
  {
    GSocketConnection *conn = raw_connect (wk, TRUE);
    g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), "GET / HTTP/1.0\r\n\r\n",
                                              18, NULL, NULL, NULL));
    TwMsg m;
    GError *e = NULL;
    g_assert_false (tw_expect (g_io_stream_get_input_stream (G_IO_STREAM (conn)), &m, TW_READY, "worker", NULL, &e));
    g_assert_nonnull (strstr (e->message, "does not speak"));
    g_clear_error (&e);
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    g_object_unref (conn);
  }
  /* after all that, a real pipeline through the same worker is still exact */
  LaTensor *seq[8] = { 0 };
  sequential (&f, FALSE, seq);
  const char *devs[] = { "cpu", "0" };
  Sink sink = { .fail_at = -1 };
  GError *e = NULL;
  LaTpp *t = make_tpp (&f, devs, 2, &wk, NULL, &sink, FALSE, &e);
  g_assert_no_error (e);
  g_assert_true (push_all (&f, t, FALSE, f.n_blocks, &e) && la_tpp_finish (t, &e));
  for (int b = 0; b < f.n_blocks; b++) {
    g_assert_true (!memcmp (sink.out[b]->data, seq[b]->data, la_tensor_nbytes (seq[b])));
    la_tensor_unref (seq[b]);
  }
  la_tpp_free (t);
  sink_clear (&sink);
  g_assert_cmpint (g_atomic_int_get (&wk->streams_failed), ==, 7);
  worker_stop (wk);
  fx_clear (&f);
}

/* The public entry: a worker that loads the DiT of a model folder itself
 * serves the weights a head loading the same folder holds (same digest),
 * and its errors name the folder or the address. */
static void
test_open (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-tpp-open-XXXXXX", NULL);
  GError *e = NULL;
  g_assert_true (la_model_write_tiny (dir, 5, &e));
  g_assert_no_error (e);
  LaTppWorker *w = la_tpp_worker_open (dir, NULL, LA_WEIGHTS_FILE, NULL, 1, "127.0.0.1:0", &e);
  g_assert_no_error (e);
  g_assert_true (g_str_has_prefix (la_tpp_worker_get_address (w), "tcp://127.0.0.1:"));
  LaBackend *be = la_backend_cpu_new (1);
  LaDitLoadInfo info;
  LaDitModel *m = la_dit_model_load_full (be, dir, NULL, LA_WEIGHTS_FILE, &info, &e);
  g_assert_no_error (e);
  g_autofree char *want = g_strdup_printf ("DiT dim %d, %d layers, weights %.12s", info.cfg.dim, info.cfg.num_layers,
                                           info.digest);
  g_autofree char *got = la_tpp_worker_describe (w);
  g_assert_cmpstr (got, ==, want);
  la_dit_model_free (m);
  la_backend_unref (be);
  la_tpp_worker_free (w);

  g_autofree char *missing = g_build_filename (dir, "nothing-here", NULL);
  g_assert_null (la_tpp_worker_open (missing, NULL, LA_WEIGHTS_FILE, NULL, 1, "127.0.0.1:0", &e));
  g_assert_nonnull (e);
  g_assert_nonnull (strstr (e->message, "nothing-here"));
  g_clear_error (&e);
  g_assert_null (la_tpp_worker_open (dir, NULL, LA_WEIGHTS_FILE, NULL, 1, "localhost:7600", &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_nonnull (strstr (e->message, "localhost"));
  g_clear_error (&e);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  alarm (600);   /* watchdog: a deadlock fails the test instead of hanging CI */
  g_test_add_func ("/tpp-remote/exact", test_exact);
  g_test_add_func ("/tpp-remote/refusals", test_refusals);
  g_test_add_func ("/tpp-remote/worker-fault-and-shutdown", test_worker_fault_and_shutdown);
  g_test_add_func ("/tpp-remote/hostile-head", test_hostile_head);
  g_test_add_func ("/tpp-remote/concurrent-streams", test_concurrent_streams);
  g_test_add_func ("/tpp-remote/open", test_open);
  return g_test_run ();
}
