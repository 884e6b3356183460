/* The engine session on the tiny generated model: frame accounting (48N-3
 * for N clips), determinism across audio chunkings, reset, EOS drain of a
 * partial block, and argument errors. */
#include <liveavatar/liveavatar.h>
#include <math.h>
#include <gio/gio.h>
#include <string.h>

static char *model_dir;

static guint8 *
make_image (int w, int h)
{
  guint8 *rgb = g_malloc ((gsize) w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      guint8 *p = rgb + ((gsize) y * w + x) * 3;
      p[0] = (guint8) (x * 255 / w);
      p[1] = (guint8) (y * 255 / h);
      p[2] = (guint8) ((x + y) & 0xff);
    }
  return rgb;
}

static float *
make_audio (gsize n)
{
  float *a = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    a[i] = 0.3f * sinf ((float) i * 0.05f) * sinf ((float) i * 0.0007f);
  return a;
}

static LaSession *
new_session_full (const char *devices, const guint8 *img, int sink_offset, gboolean sink_refresh, GError **error)
{
  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = model_dir;
  p.lora = model_dir;
  p.ref_rgb = img;
  p.ref_width = 96;
  p.ref_height = 160;
  p.ref_stride = 96 * 3;
  p.prompt = "a person talking";
  p.max_area = 64 * 128;
  p.sink_offset = sink_offset;
  p.sink_refresh = sink_refresh;
  p.n_threads = 1;
  p.devices = devices;
  return la_session_new (&p, error);
}

static LaSession *
new_session_img (const char *devices, const guint8 *img, gboolean sink_refresh, GError **error)
{
  return new_session_full (devices, img, 0, sink_refresh, error);
}

static LaSession *
new_session_on (const char *devices, int sink_offset, GError **error)
{
  static guint8 *img;
  if (!img)
    img = make_image (96, 160);
  return new_session_full (devices, img, sink_offset, TRUE, error);
}

static LaSession *
new_session (int sink_offset, GError **error)
{
  return new_session_on ("cpu", sink_offset, error);
}

/* Pushes audio[from, n) in chunks of `chunk` (pulling what is ready in
 * between: pushing may block on the bounded queue), ends the stream and
 * pulls every frame into `frames`. */
static void
finish_stream (LaSession *s, const float *audio, gsize from, gsize n, gsize chunk, GPtrArray *frames)
{
  GError *e = NULL;
  for (gsize off = from; off < n; off += chunk) {
    g_assert_true (la_session_push_audio (s, audio + off, MIN (chunk, n - off), &e));
    g_assert_no_error (e);
    LaFrame *f;
    while ((f = la_session_pull_frame (s, 0, &e)))
      g_ptr_array_add (frames, f);
    g_assert_no_error (e);
  }
  la_session_end_of_stream (s);
  LaFrame *f;
  while ((f = la_session_pull_frame (s, -1, &e)))
    g_ptr_array_add (frames, f);
  g_assert_no_error (e);
  g_assert_true (la_session_is_drained (s));
}

/* Pushes n samples in chunks of `chunk`, ends the stream, pulls every frame. */
static GPtrArray *
run_stream (LaSession *s, const float *audio, gsize n, gsize chunk)
{
  GPtrArray *frames = g_ptr_array_new_with_free_func ((GDestroyNotify) la_frame_unref);
  finish_stream (s, audio, 0, n, chunk, frames);
  return frames;
}

static void
test_frame_count (void)
{
  GError *e = NULL;
  g_autoptr (LaSession) s = new_session (10, &e);
  g_assert_no_error (e);
  int w, h;
  la_session_get_size (s, &w, &h);
  g_assert_cmpint (w % 64, ==, 0);
  g_assert_cmpint (h % 64, ==, 0);
  const int N = 2;                                  /* clips of 48 frames = 1.92 s */
  gsize n = (gsize) N * 48 * 640;
  g_autofree float *audio = make_audio (n);
  g_autoptr (GPtrArray) frames = run_stream (s, audio, n, 1600);
  g_assert_cmpuint (frames->len, ==, 48 * N - 3);
  for (guint i = 0; i < frames->len; i++) {
    LaFrame *f = frames->pdata[i];
    g_assert_cmpint (f->index, ==, i);
    g_assert_cmpint (f->pts_ns, ==, (gint64) (i + 3) * 40000000);
    g_assert_cmpint (f->width, ==, w);
  }
  LaSessionStats st;
  la_session_get_stats (s, &st);
  g_assert_cmpint (st.blocks_done, ==, 4 * N);
  g_assert_cmpint (st.audio_samples_in, ==, (gint64) n);
}

static void
test_determinism_and_reset (void)
{
  GError *e = NULL;
  g_autoptr (LaSession) s = new_session (7, &e);
  g_assert_no_error (e);
  gsize n = 30 * 640;                               /* 2.5 blocks: the last is padded */
  g_autofree float *audio = make_audio (n);
  g_autoptr (GPtrArray) a = run_stream (s, audio, n, 160);
  g_assert_cmpuint (a->len, ==, 3 * 12 - 3);
  la_session_reset (s);
  g_autoptr (GPtrArray) b = run_stream (s, audio, n, 4001);
  g_assert_cmpuint (b->len, ==, a->len);
  for (guint i = 0; i < a->len; i++) {
    LaFrame *x = a->pdata[i], *y = b->pdata[i];
    g_assert_cmpmem (x->rgb, (gsize) x->stride * x->height, y->rgb, (gsize) y->stride * y->height);
  }
  /* The picture is not constant (the model ran). */
  LaFrame *f = a->pdata[a->len - 1];
  gboolean varied = FALSE;
  for (int i = 3; i < f->stride * f->height && !varied; i++)
    varied = f->rgb[i] != f->rgb[0];
  g_assert_true (varied);
}

/* TPP (docs/design/tpp.md): the DiT steps as pipeline stages on CPU threads give the
 * same frames, bit for bit, as the sequential loop — across the clip-1 sink
 * refresh (5 blocks) and with random per-call sink offsets. */
static void
test_pipeline_stages_exact (void)
{
  GError *e = NULL;
  gsize n = 5 * 12 * 640 - 1000;
  g_autofree float *audio = make_audio (n);
  g_autoptr (LaSession) seq = new_session_on ("cpu", 0, &e);
  g_assert_no_error (e);
  g_autoptr (GPtrArray) a = run_stream (seq, audio, n, 3000);
  g_assert_cmpuint (a->len, ==, 5 * 12 - 3);
  const char *lists[] = { "cpu,cpu", "cpu,cpu,cpu,cpu,cpu" };
  for (guint l = 0; l < G_N_ELEMENTS (lists); l++) {
    g_autoptr (LaSession) tpp = new_session_on (lists[l], 0, &e);
    g_assert_no_error (e);
    g_autoptr (GPtrArray) b = run_stream (tpp, audio, n, 3000);
    g_assert_cmpuint (b->len, ==, a->len);
    for (guint i = 0; i < a->len; i++) {
      LaFrame *x = a->pdata[i], *y = b->pdata[i];
      g_assert_cmpint (x->pts_ns, ==, y->pts_ns);
      g_assert_cmpmem (x->rgb, (gsize) x->stride * x->height, y->rgb, (gsize) y->stride * y->height);
    }
  }
}

/* A liveavatar-stage worker process on the loopback; returns its address. */
static GSubprocess *
start_worker (const char *dir, char **address)
{
  const char *exe = g_getenv ("LA_STAGE");
  GError *e = NULL;
  GSubprocess *p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &e, exe ? exe : "liveavatar-stage", "--model",
                                     dir, "--lora", dir, "--listen", "127.0.0.1:0", "--threads", "1", NULL);
  g_assert_no_error (e);
  g_autoptr (GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (p));
  g_autofree char *line = g_data_input_stream_read_line (out, NULL, NULL, &e);
  g_assert_no_error (e);
  g_assert_nonnull (line);
  const char *at = strstr (line, "listening on ");
  g_assert_nonnull (at);
  *address = g_strdup (at + strlen ("listening on "));
  return p;
}

/* TPP stages in a stage worker process (docs/tpp.md, "Stage workers"): the
 * same frames, bit for bit; a worker holding other weights is refused at
 * setup; a worker killed mid-stream stops the stream with an error naming
 * the stage and the worker, without hanging. */
static void
test_stage_worker_process (void)
{
  GError *e = NULL;
  gsize n = 5 * 12 * 640 - 1000;
  g_autofree float *audio = make_audio (n);
  g_autoptr (LaSession) seq = new_session_on ("cpu", 0, &e);
  g_assert_no_error (e);
  g_autoptr (GPtrArray) a = run_stream (seq, audio, n, 3000);
  g_autofree char *addr = NULL;
  g_autoptr (GSubprocess) worker = start_worker (model_dir, &addr);
  g_autofree char *l1 = g_strdup_printf ("cpu,%s", addr);
  const char *lists[] = { addr, l1 };
  for (guint l = 0; l < G_N_ELEMENTS (lists); l++) {
    g_autoptr (LaSession) tpp = new_session_on (lists[l], 0, &e);
    g_assert_no_error (e);
    g_autoptr (GPtrArray) b = run_stream (tpp, audio, n, 3000);
    g_assert_cmpuint (b->len, ==, a->len);
    for (guint i = 0; i < a->len; i++) {
      LaFrame *x = a->pdata[i], *y = b->pdata[i];
      g_assert_cmpint (x->pts_ns, ==, y->pts_ns);
      g_assert_cmpmem (x->rgb, (gsize) x->stride * x->height, y->rgb, (gsize) y->stride * y->height);
    }
    g_print ("# devices=%s: %u frames bit-identical to devices=cpu\n", lists[l], b->len);
  }

  /* another tiny model (same config, other seed) behind a second worker */
  g_autofree char *other_dir = g_strconcat (model_dir, "-other", NULL);
  g_autofree char *cmd = g_strdup_printf ("'%s' --preset tiny --seed 4 --out '%s' >/dev/null 2>&1",
                                          g_getenv ("LA_MKMODEL"), other_dir);
  g_assert_cmpint (system (cmd), ==, 0);
  g_autofree char *other_addr = NULL;
  g_autoptr (GSubprocess) other = start_worker (other_dir, &other_addr);
  g_autofree char *l2 = g_strdup_printf ("cpu,%s", other_addr);
  g_assert_null (new_session_on (l2, 0, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_nonnull (strstr (e->message, other_addr));
  g_assert_nonnull (strstr (e->message, "other weights"));
  g_print ("# %s\n", e->message);
  g_clear_error (&e);
  g_subprocess_force_exit (other);

  /* the worker dies mid-stream */
  g_autoptr (LaSession) s = new_session_on (l1, 0, &e);
  g_assert_no_error (e);
  g_assert_true (la_session_push_audio (s, audio, 3 * 12 * 640, &e));
  LaFrame *f = la_session_pull_frame (s, -1, &e);   /* block 0 has passed the worker */
  g_assert_no_error (e);
  la_frame_unref (f);
  g_subprocess_force_exit (worker);
  g_assert_true (g_subprocess_wait (worker, NULL, NULL));
  gboolean failed = FALSE;
  for (gsize off = 3 * 12 * 640; off < n && !failed; off += 3000) {
    if (!la_session_push_audio (s, audio + off, MIN (3000, n - off), &e))
      failed = TRUE;
    while (!failed && (f = la_session_pull_frame (s, 0, &e)))
      la_frame_unref (f);
    failed = failed || e;
  }
  if (!failed) {
    la_session_end_of_stream (s);
    while ((f = la_session_pull_frame (s, -1, &e)))
      la_frame_unref (f);
  }
  g_assert_nonnull (e);
  g_assert_nonnull (strstr (e->message, "stage 1"));
  g_assert_nonnull (strstr (e->message, addr));
  g_print ("# worker killed: %s\n", e->message);
  g_clear_error (&e);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", other_dir);
  (void) !system (rm);
}

/* A second reference of the same size (so the same output size). */
static guint8 *
make_image2 (int w, int h)
{
  guint8 *rgb = make_image (w, h);
  for (int i = 0; i < w * h * 3; i++)
    rgb[i] = (guint8) (255 - rgb[i] + (i % 7) * 9);
  return rgb;
}

/* Generates `n` samples; after the first k blocks' frames are out (the
 * engine then waits for audio: block k needs 7680 more samples past the
 * 400 ms look-ahead), swaps the reference to `swap` (NULL: no swap). */
static GPtrArray *
run_swapped (LaSession *s, const float *audio, gsize n, int k, const guint8 *swap)
{
  GError *e = NULL;
  GPtrArray *frames = g_ptr_array_new_with_free_func ((GDestroyNotify) la_frame_unref);
  gsize first = (gsize) k * 7680 + 6400;
  g_assert_true (la_session_push_audio (s, audio, first, &e));
  while (frames->len < (guint) (9 + 12 * (k - 1))) {
    LaFrame *f = la_session_pull_frame (s, -1, &e);
    g_assert_no_error (e);
    g_assert_nonnull (f);
    g_ptr_array_add (frames, f);
  }
  if (swap) {
    g_assert_true (la_session_set_reference (s, swap, 96, 160, 96 * 3, &e));
    g_assert_no_error (e);
  }
  finish_stream (s, audio, first, n, 2000, frames);
  return frames;
}

static gboolean
same_frames (GPtrArray *a, GPtrArray *b, guint from, guint to)
{
  g_assert_cmpuint (a->len, ==, b->len);
  for (guint i = from; i < to && i < a->len; i++) {
    LaFrame *x = a->pdata[i], *y = b->pdata[i];
    g_assert_cmpint (x->pts_ns, ==, y->pts_ns);
    if (memcmp (x->rgb, y->rgb, (gsize) x->stride * x->height))
      return FALSE;
  }
  return TRUE;
}

/* Reference hot swap (la_session_set_reference) at block 2 of 6 (clip 1
 * starts at block 4, so the clip-1 sink refresh follows the swap). */
static void
test_reference_swap (void)
{
  GError *e = NULL;
  gsize n = 6 * 7680 - 1000;
  g_autofree float *audio = make_audio (n);
  g_autofree guint8 *img = make_image (96, 160);
  g_autofree guint8 *img2 = make_image2 (96, 160);
  const guint at = 9 + 12;            /* frames before the swap block */

  /* without the rolling-sink refresh, swapping in the same image changes
   * nothing: the sink is rebuilt identically, rings and decoder untouched */
  {
    g_autoptr (LaSession) a = new_session_img ("cpu", img, FALSE, &e);
    g_assert_no_error (e);
    g_autoptr (LaSession) b = new_session_img ("cpu", img, FALSE, &e);
    g_autoptr (GPtrArray) fa = run_swapped (a, audio, n, 2, NULL);
    g_autoptr (GPtrArray) fb = run_swapped (b, audio, n, 2, img);
    g_assert_true (same_frames (fa, fb, 0, fa->len));
    LaSessionStats st;
    la_session_get_stats (b, &st);
    g_assert_cmpint (st.reference_swaps, ==, 1);
  }
  /* another image: the frames before the swap are untouched, later ones
   * change; sequential and 2- and 5-stage TPP agree bit for bit */
  g_autoptr (LaSession) plain = new_session_img ("cpu", img, TRUE, &e);
  g_assert_no_error (e);
  g_autoptr (GPtrArray) f0 = run_swapped (plain, audio, n, 2, NULL);
  g_autoptr (LaSession) seq = new_session_img ("cpu", img, TRUE, &e);
  g_autoptr (GPtrArray) f1 = run_swapped (seq, audio, n, 2, img2);
  g_assert_cmpuint (f1->len, ==, 6 * 12 - 3);
  g_assert_true (same_frames (f0, f1, 0, at));
  guint changed = 0;
  for (guint i = at; i < f0->len; i++)
    changed += !same_frames (f0, f1, i, i + 1);
  g_assert_cmpuint (changed, >, (f0->len - at) / 2);
  LaSessionStats st;
  la_session_get_stats (seq, &st);
  g_assert_cmpint (st.reference_swaps, ==, 1);
  g_assert_false (st.sink_from_stream);    /* after the swap the sink stays the new image */
  const char *lists[] = { "cpu,cpu", "cpu,cpu,cpu,cpu,cpu" };
  for (guint l = 0; l < G_N_ELEMENTS (lists); l++) {
    g_autoptr (LaSession) tpp = new_session_img (lists[l], img, TRUE, &e);
    g_assert_no_error (e);
    g_autoptr (GPtrArray) f2 = run_swapped (tpp, audio, n, 2, img2);
    g_assert_true (same_frames (f1, f2, 0, f1->len));
    g_print ("# swap at block 2, devices=%s: bit-identical to devices=cpu\n", lists[l]);
  }
  /* a reset keeps the new image: the next stream is that of a session made with it */
  la_session_reset (seq);
  g_autoptr (GPtrArray) f3 = run_stream (seq, audio, n, 3000);
  g_autoptr (LaSession) fresh = new_session_img ("cpu", img2, TRUE, &e);
  g_autoptr (GPtrArray) f4 = run_stream (fresh, audio, n, 3000);
  g_assert_true (same_frames (f3, f4, 0, f3->len));
  /* a swap before any audio, then a reset (the element: property set in
   * READY, then READY->PAUSED): the stream is rebuilt on the new image */
  g_autoptr (LaSession) pend = new_session_img ("cpu", img, TRUE, &e);
  g_assert_true (la_session_set_reference (pend, img2, 96, 160, 96 * 3, &e));
  la_session_reset (pend);
  g_autoptr (GPtrArray) f5 = run_stream (pend, audio, n, 3000);
  g_assert_true (same_frames (f4, f5, 0, f4->len));
  /* bad arguments are refused without touching the stream */
  g_assert_false (la_session_set_reference (seq, img2, 96, 160, 10, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
}

/* Live scheduling on the real engine (la_session_set_deadline_func): blocks
 * whose first frame's deadline has passed are skipped whole while newer
 * audio is queued, through the TPP pipeline the session always runs.  The
 * frames that do come out keep index and pts in step (lip sync), and the
 * stream's end, which is on time, is intact. */
#define STALE_UNTIL_NS (G_GINT64_CONSTANT (1600) * 1000000)
typedef struct { LaSession *s; int calls; } DeadlineProbe;

static gint64
stale_then_on_time (gint64 pts_ns, gpointer data)
{
  DeadlineProbe *d = data;
  d->calls++;
  /* Answer once the engine has a block time to compare with (the first
   * block's frames are out), so which blocks skip does not depend on how
   * fast this machine is. */
  for (int i = 0; i < 6000; i++) {
    LaSessionStats st;
    la_session_get_stats (d->s, &st);
    if (st.ms_block_avg > 0)
      break;
    g_usleep (10000);
  }
  return pts_ns < STALE_UNTIL_NS ? -G_GINT64_CONSTANT (10000000000) : G_MAXINT64;
}

static void
live_skip_stale_on (const char *devices)
{
  GError *e = NULL;
  static guint8 *img;
  if (!img)
    img = make_image (96, 160);
  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = model_dir;
  p.ref_rgb = img;
  p.ref_width = 96;
  p.ref_height = 160;
  p.ref_stride = 96 * 3;
  p.max_area = 64 * 128;
  p.n_threads = 1;
  p.max_queue_ms = 10000;          /* the whole stream fits: one push */
  p.devices = devices;
  g_autoptr (LaSession) s = la_session_new (&p, &e);
  g_assert_no_error (e);
  DeadlineProbe d = { s, 0 };
  la_session_set_deadline_func (s, stale_then_on_time, &d);
  const int N = 2;
  gsize n = (gsize) N * 48 * 640;
  g_autofree float *audio = make_audio (n);
  /* One push: every later block is queued behind the stale ones. */
  g_autoptr (GPtrArray) frames = run_stream (s, audio, n, n);
  LaSessionStats st;
  la_session_get_stats (s, &st);
  g_assert_cmpint (d.calls, >, 0);
  g_assert_cmpint (st.blocks_skipped, >=, 1);
  g_assert_cmpint (st.blocks_done + st.blocks_skipped, ==, 4 * N);
  g_assert_cmpuint (frames->len, ==, 48 * N - 3 - 12 * st.blocks_skipped);
  gint64 prev = -1;
  for (guint i = 0; i < frames->len; i++) {
    LaFrame *f = frames->pdata[i];
    g_assert_cmpint (f->index, >, prev);
    g_assert_cmpint ((f->index - prev - 1) % 12, ==, 0);    /* jumps are whole blocks */
    g_assert_cmpint (f->pts_ns, ==, (f->index + 3) * 40000000);
    if (f->index != prev + 1)                               /* only stale blocks go */
      g_assert_cmpint (f->pts_ns - 12 * 40000000, <, STALE_UNTIL_NS);
    prev = f->index;
  }
  g_assert_cmpint (prev, ==, 48 * N - 4);                    /* the end is intact */
}

static void
test_live_skip_stale (void)
{
  live_skip_stale_on ("cpu");          /* one pipeline stage */
  live_skip_stale_on ("cpu,cpu,cpu");  /* blocks in flight in three stages */
}

static void
test_bad_arguments (void)
{
  GError *e = NULL;
  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = "/nonexistent";
  guint8 px[3] = { 1, 2, 3 };
  p.ref_rgb = px;
  p.ref_width = p.ref_height = 1;
  p.ref_stride = 3;
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "/nonexistent"));
  g_clear_error (&e);
  p.model_dir = model_dir;
  p.prompt = "bad \xff utf8";
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_nonnull (strstr (e->message, "UTF-8"));
  g_clear_error (&e);
  p.prompt = NULL;
  p.sink_offset = 31;
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  p.sink_offset = 0;
  p.devices = "tpu";
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  p.devices = "cpu,gpu";
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_assert_nonnull (strstr (e->message, "cpu,gpu"));
  g_clear_error (&e);
  p.devices = "cpu,tcp://nohostport";
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  const char *mk = g_getenv ("LA_MKMODEL");
  g_autofree char *tmp = g_dir_make_tmp ("la-session-XXXXXX", NULL);
  model_dir = g_build_filename (tmp, "tiny", NULL);
  g_autofree char *cmd = g_strdup_printf ("'%s' --preset tiny --seed 3 --out '%s' >/dev/null 2>&1", mk ? mk : "liveavatar-mkmodel", model_dir);
  if (system (cmd) != 0)
    g_error ("could not generate the tiny model (%s)", cmd);
  g_test_add_func ("/session/frame-count", test_frame_count);
  g_test_add_func ("/session/determinism-and-reset", test_determinism_and_reset);
  g_test_add_func ("/session/pipeline-stages-exact", test_pipeline_stages_exact);
  g_test_add_func ("/session/stage-worker-process", test_stage_worker_process);
  g_test_add_func ("/session/reference-swap", test_reference_swap);
  g_test_add_func ("/session/live-skip-stale", test_live_skip_stale);
  g_test_add_func ("/session/bad-arguments", test_bad_arguments);
  int r = g_test_run ();
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  (void) !system (rm);
  g_free (model_dir);
  return r;
}
