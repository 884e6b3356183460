/* la-parallel.c — the CPU backend's loop threads: workers that sleep.
 *
 * Why not OpenMP: libgomp reads OMP_WAIT_POLICY once, in its load-time
 * constructor, before any code of ours can run (a constructor of ours that
 * sets it runs after libgomp's: checked, the spin count stays at its
 * default).  Left unset, every idle OpenMP thread spins some 300,000 rounds
 * after each parallel region, and the caller spins at the closing barrier.
 * On a shared host (two cores, another process busy) a spinning thread holds
 * the core that the thread with real work needs: the tiny model's session
 * set-up took 16 s with two threads against 0.7 s with one
 * (docs/performance.md).  Here a worker with nothing to do sleeps on the
 * pool's queue (a condition variable) and the caller sleeps on the job's.
 *
 * A job is cut into one contiguous range per thread, as OpenMP's static
 * schedule does; iterations are independent, so results do not depend on
 * the split.  The caller and the workers take ranges from an atomic counter:
 * a worker that starts after the last range is taken just leaves, so a
 * caller never waits for a busy pool to do work it could do itself.
 * Several threads (TPP stages, several elements) may run jobs at once; they
 * share the pool's workers, so the machine is not oversubscribed per caller.
 */
#include "la-parallel.h"

typedef struct {
  LaRangeFunc fn;
  gpointer data;
  int64_t n;
  int parts;
  gint next;                 /* next range to take (atomic) */
  int done;                  /* ranges finished, under lock */
  gint refs;                 /* the caller + each queued task (atomic) */
  GMutex lock;
  GCond cond;
} LaJob;

static gint n_threads;       /* 0 until set: all cores */
static guint split_jobs;
static GThreadPool *pool;
static GMutex pool_lock;

static void
job_unref (LaJob *job)
{
  if (!g_atomic_int_dec_and_test (&job->refs))
    return;
  g_mutex_clear (&job->lock);
  g_cond_clear (&job->cond);
  g_free (job);
}

static void
job_run (LaJob *job)
{
  int i;
  while ((i = g_atomic_int_add (&job->next, 1)) < job->parts) {
    int64_t begin = job->n * i / job->parts, end = job->n * (i + 1) / job->parts;
    job->fn (begin, end, job->data);
    g_mutex_lock (&job->lock);
    if (++job->done == job->parts)
      g_cond_signal (&job->cond);
    g_mutex_unlock (&job->lock);
  }
}

static void
worker (gpointer data, gpointer user_data)
{
  job_run (data);
  job_unref (data);
}

guint
la_parallel_split_jobs (void)
{
  return g_atomic_int_get (&split_jobs);
}

int
la_parallel_get_threads (void)
{
  int n = g_atomic_int_get (&n_threads);
  return n > 0 ? n : (int) g_get_num_processors ();
}

void
la_parallel_set_threads (int n)
{
  g_atomic_int_set (&n_threads, MAX (n, 0));
  g_mutex_lock (&pool_lock);
  if (pool)
    g_thread_pool_set_max_threads (pool, MAX (la_parallel_get_threads () - 1, 1), NULL);
  g_mutex_unlock (&pool_lock);
}

static GThreadPool *
get_pool (int workers)
{
  g_mutex_lock (&pool_lock);
  /* Shared (non-exclusive): threads start on demand and go back to GLib's
   * idle set, where they also sleep. */
  if (!pool)
    pool = g_thread_pool_new (worker, NULL, workers, FALSE, NULL);
  g_mutex_unlock (&pool_lock);
  return pool;
}

void
la_parallel_for (int64_t n, int64_t work, LaRangeFunc fn, gpointer data)
{
  int threads = la_parallel_get_threads ();
  if (n <= 0)
    return;
  if (threads <= 1 || n == 1 || work <= LA_PARALLEL_MIN_WORK) {
    fn (0, n, data);
    return;
  }
  LaJob *job = g_new0 (LaJob, 1);
  job->fn = fn;
  job->data = data;
  job->n = n;
  job->parts = (int) MIN ((int64_t) threads, n);
  job->refs = job->parts;
  g_mutex_init (&job->lock);
  g_cond_init (&job->cond);
  GThreadPool *p = get_pool (threads - 1);
  g_atomic_int_inc (&split_jobs);
  for (int i = 1; i < job->parts; i++)
    /* A worker that cannot be started leaves its task queued until one
     * can: the ranges are then all run here, so nothing waits on it. */
    g_thread_pool_push (p, job, NULL);
  job_run (job);
  g_mutex_lock (&job->lock);
  while (job->done < job->parts)
    g_cond_wait (&job->cond, &job->lock);
  g_mutex_unlock (&job->lock);
  job_unref (job);
}
