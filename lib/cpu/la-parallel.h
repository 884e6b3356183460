/* la-parallel.h — the CPU backend's loop threads (see la-parallel.c). */
#pragma once
#include <glib.h>
#include <stdint.h>

/* Work (elements touched) below which a loop stays on the calling thread:
 * waking a sleeping worker costs more than it saves. */
#define LA_PARALLEL_MIN_WORK 65536

/* fn handles iterations [begin, end) of a loop whose iterations are independent. */
typedef void (*LaRangeFunc) (int64_t begin, int64_t end, gpointer data);

/* Runs fn over [0, n) cut into one contiguous range per thread, on the
 * caller and the pool's workers, and returns when every range is done.
 * work <= LA_PARALLEL_MIN_WORK or one thread: fn (0, n, data) here. */
void la_parallel_for (int64_t n, int64_t work, LaRangeFunc fn, gpointer data);

/* Threads a loop uses, caller included (process-wide; default: all cores). */
void la_parallel_set_threads (int n);
int  la_parallel_get_threads (void);

/* Jobs cut into more than one range so far (lets tests check a loop split). */
guint la_parallel_split_jobs (void);
