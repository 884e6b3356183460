/* The CPU backend's loop threads (lib/cpu/la-parallel.c): every iteration
 * runs exactly once whatever the split, ranges really run on two threads at
 * once, several callers can share the pool, and every op that cuts its loop
 * gives bit-identical results with one thread and with three. */
#include <liveavatar/liveavatar.h>
#include "cpu/la-parallel.h"
#include "la-ops.h"
#include <string.h>

typedef struct {
  gint *hits;
  gint64 offset;
} HitArgs;

static void
count_hits (int64_t begin, int64_t end, gpointer data)
{
  HitArgs *a = data;
  for (int64_t i = begin; i < end; i++)
    g_atomic_int_inc (&a->hits[i + a->offset]);
}

static void
test_each_once (void)
{
  const int64_t sizes[] = { 1, 2, 3, 7, 100, 65537, 100003 };
  for (int threads = 1; threads <= 5; threads++) {
    la_parallel_set_threads (threads);
    g_assert_cmpint (la_parallel_get_threads (), ==, threads);
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
      int64_t n = sizes[s];
      /* guard cells either side catch a range running past [0, n) */
      gint *hits = g_new0 (gint, n + 2);
      HitArgs a = { hits, 1 };
      la_parallel_for (n, G_MAXINT64, count_hits, &a);
      for (int64_t i = 0; i < n + 2; i++)
        if (hits[i] != (i >= 1 && i <= n))
          g_error ("threads %d, n %" G_GINT64_FORMAT ": cell %" G_GINT64_FORMAT " hit %d times",
                   threads, n, i - 1, hits[i]);
      g_free (hits);
    }
  }
  la_parallel_set_threads (0);
}

/* Range 0 waits for range 1 to start: only a second thread running at the
 * same time can let it go.  The wait is bounded so a broken pool fails
 * instead of hanging (the bound is a deadlock guard, not a timing). */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean second_started, timed_out;
  GThread *first, *second;
} Meet;

static void
meet (int64_t begin, int64_t end, gpointer data)
{
  Meet *m = data;
  g_mutex_lock (&m->lock);
  if (begin == 0) {
    m->first = g_thread_self ();
    gint64 until = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;
    while (!m->second_started)
      if (!g_cond_wait_until (&m->cond, &m->lock, until)) {
        m->timed_out = TRUE;
        break;
      }
  } else {
    m->second = g_thread_self ();
    m->second_started = TRUE;
    g_cond_signal (&m->cond);
  }
  g_mutex_unlock (&m->lock);
}

static void
test_two_threads_at_once (void)
{
  Meet m = { 0 };
  g_mutex_init (&m.lock);
  g_cond_init (&m.cond);
  la_parallel_set_threads (2);
  la_parallel_for (2, G_MAXINT64, meet, &m);
  g_assert_false (m.timed_out);
  g_assert_true (m.first != m.second);
  /* below the work threshold the loop stays on the caller */
  Meet s = { 0 };
  g_mutex_init (&s.lock);
  g_cond_init (&s.cond);
  s.second_started = TRUE;   /* range 0 must not wait: there is one range */
  la_parallel_for (2, LA_PARALLEL_MIN_WORK, meet, &s);
  g_assert_true (s.first == g_thread_self ());
  g_assert_null (s.second);
  la_parallel_set_threads (0);
  g_mutex_clear (&m.lock);
  g_cond_clear (&m.cond);
  g_mutex_clear (&s.lock);
  g_cond_clear (&s.cond);
}

static gpointer
caller_main (gpointer data)
{
  gint *hits = g_new0 (gint, 70000);
  HitArgs a = { hits, 0 };
  for (int j = 0; j < 200; j++)
    la_parallel_for (70000, G_MAXINT64, count_hits, &a);
  for (int i = 0; i < 70000; i++)
    if (hits[i] != 200)
      g_error ("concurrent callers: cell %d hit %d times (200 expected)", i, hits[i]);
  g_free (hits);
  return data;
}

/* TPP stages run jobs from several threads at once on one pool. */
static void
test_concurrent_callers (void)
{
  GThread *t[4];
  la_parallel_set_threads (3);
  for (int i = 0; i < 4; i++)
    t[i] = g_thread_new ("caller", caller_main, GINT_TO_POINTER (i + 1));
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (t[i])), ==, i + 1);
  la_parallel_set_threads (0);
}

static LaTensor *
rnd (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (int64_t i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) g_rand_double_range (r, -1, 1);
  return t;
}

typedef void (*OpRun) (LaBackend *be, LaTensor *y, LaTensor **in);

static void
same_with_threads (const char *what, LaBackend *be, OpRun run, LaTensor *y, LaTensor **in)
{
  g_autoptr (LaTensor) y1 = la_tensor_new (LA_DTYPE_F32, y->ndim, y->shape);
  la_parallel_set_threads (1);
  run (be, y1, in);
  la_parallel_set_threads (3);
  guint split0 = la_parallel_split_jobs ();
  run (be, y, in);
  la_parallel_set_threads (0);
  if (la_parallel_split_jobs () == split0)
    g_error ("%s: the case is too small to cut the loop", what);
  if (memcmp (y->data, y1->data, la_tensor_nbytes (y)) != 0)
    g_error ("%s: one thread and three threads differ", what);
}

static void run_linear (LaBackend *be, LaTensor *y, LaTensor **in) { la_linear (be, y, in[0], in[1], in[2]); }
static void run_layer_norm (LaBackend *be, LaTensor *y, LaTensor **in) { la_layer_norm (be, y, in[0], in[1], in[2], 1e-6f); }
static void run_rms_norm (LaBackend *be, LaTensor *y, LaTensor **in) { la_rms_norm (be, y, in[0], in[1], 1e-6f); }
static void run_gelu (LaBackend *be, LaTensor *y, LaTensor **in) { la_unary (be, LA_UNARY_GELU_TANH, y, in[0]); }
static void run_mul (LaBackend *be, LaTensor *y, LaTensor **in) { la_binary (be, LA_BINARY_MUL, y, in[0], in[1]); }
static void run_axpy (LaBackend *be, LaTensor *y, LaTensor **in) { la_axpy (be, y, in[0], 0.5f, in[1]); }
static void run_modulate (LaBackend *be, LaTensor *y, LaTensor **in) { la_modulate (be, y, in[0], in[1], in[2]); }
static void run_softmax (LaBackend *be, LaTensor *y, LaTensor **in) { la_softmax (be, y, in[0]); }
static void run_attention (LaBackend *be, LaTensor *y, LaTensor **in) { la_attention (be, y, in[0], in[1], in[2], 2, 0.125f, NULL); }
static void run_conv3d (LaBackend *be, LaTensor *y, LaTensor **in) { la_conv3d (be, y, in[0], in[1], in[2], (int[]) { 1, 1, 1 }); }
static void run_rope (LaBackend *be, LaTensor *y, LaTensor **in) { la_rope (be, y, in[0], in[1], 2); }
static void run_channel_rms_norm (LaBackend *be, LaTensor *y, LaTensor **in) { la_channel_rms_norm (be, y, in[0], in[1], 1e-12f); }
static void run_upsample (LaBackend *be, LaTensor *y, LaTensor **in) { la_upsample2x (be, y, in[0]); }

static void
test_ops_split (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (7);
  /* OpenBLAS keeps one count for both runs: only our loops change split. */
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
#define T(...) rnd (r, G_N_ELEMENTS (((int64_t[]) { __VA_ARGS__ })), (int64_t[]) { __VA_ARGS__ })
#define Y(...) la_tensor_new (LA_DTYPE_F32, G_N_ELEMENTS (((int64_t[]) { __VA_ARGS__ })), (int64_t[]) { __VA_ARGS__ })
  struct {
    const char *name;
    OpRun run;
    LaTensor *y, *in[3];
  } c[] = {
    { "linear+bias", run_linear, Y (301, 257), { T (301, 33), T (257, 33), T (257) } },
    { "layer_norm", run_layer_norm, Y (301, 257), { T (301, 257), T (257), T (257) } },
    { "rms_norm", run_rms_norm, Y (301, 257), { T (301, 257), T (257) } },
    { "unary", run_gelu, Y (70001), { T (70001) } },
    { "binary", run_mul, Y (301, 257), { T (301, 257), T (257) } },
    { "axpy", run_axpy, Y (301, 257), { T (301, 257), T (257) } },
    { "modulate", run_modulate, Y (301, 257), { T (301, 257), T (257), T (257) } },
    { "softmax", run_softmax, Y (301, 257), { T (301, 257) } },
    { "attention", run_attention, Y (300, 16), { T (300, 16), T (301, 16), T (301, 16) } },
    { "conv3d", run_conv3d, Y (4, 1, 62, 62), { T (3, 3, 64, 64), T (4, 3, 3, 3, 3), T (4) } },
    { "rope", run_rope, Y (1001, 80), { T (1001, 80), T (1001, 20, 2) } },
    { "channel_rms_norm", run_channel_rms_norm, Y (4, 2, 99, 99), { T (4, 2, 99, 99), T (4) } },
    { "upsample2x", run_upsample, Y (3, 2, 198, 238), { T (3, 2, 99, 119) } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (c); i++) {
    same_with_threads (c[i].name, be, c[i].run, c[i].y, c[i].in);
    la_tensor_unref (c[i].y);
    for (int k = 0; k < 3; k++)
      if (c[i].in[k])
        la_tensor_unref (c[i].in[k]);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/parallel/each-iteration-once", test_each_once);
  g_test_add_func ("/parallel/two-threads-at-once", test_two_threads_at_once);
  g_test_add_func ("/parallel/concurrent-callers", test_concurrent_callers);
  g_test_add_func ("/parallel/ops-split-bit-identical", test_ops_split);
  return g_test_run ();
}
