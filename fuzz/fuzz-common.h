/* fuzz-common.h — what the reader targets share: the input as a private
 * temporary file (for readers that take a path), and what they check once a
 * file opened or failed. */
#pragma once
#include <liveavatar/liveavatar.h>
#include "la-checkpoint.h"
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char *fuzz_path;
static int fuzz_fd = -1;

static void
fuzz_cleanup (void)
{
  if (fuzz_path)
    g_unlink (fuzz_path);
}

/* Writes the input over one temporary file named *suffix, made on first
 * use and removed at exit; returns its path. */
G_GNUC_UNUSED static const char *
fuzz_input_file (const uint8_t *data, size_t size, const char *suffix)
{
  if (fuzz_fd < 0) {
    g_autofree char *tmpl = g_strconcat ("la-fuzz-XXXXXX", suffix, NULL);
    fuzz_fd = g_file_open_tmp (tmpl, &fuzz_path, NULL);
    if (fuzz_fd < 0)
      abort ();
    atexit (fuzz_cleanup);
  }
  if (ftruncate (fuzz_fd, 0) != 0 || pwrite (fuzz_fd, data, size, 0) != (ssize_t) size)
    abort ();
  return fuzz_path;
}

/* A failure must come with a non-empty LA_ERROR; a success with none. */
static inline void
fuzz_check_error (gboolean ok, GError *err)
{
  if (ok ? err != NULL : (!err || err->domain != LA_ERROR || !err->message[0]))
    __builtin_trap ();
}

/* Reads every byte of every tensor (so the sanitizers see any bad view), or
 * traps when a failure did not come with a non-empty LA_ERROR. */
static inline void
fuzz_check_result (LaCheckpoint *ck, GError *err)
{
  if (ck) {
    const char *const *names = la_checkpoint_names (ck);
    uint8_t acc = 0;
    for (guint i = 0; i < la_checkpoint_size (ck); i++) {
      const LaTensor *t = la_checkpoint_get (ck, names[i]);
      for (size_t k = 0; k < la_tensor_nbytes (t); k++)
        acc ^= ((const uint8_t *) t->data)[k];
    }
    __asm__ volatile ("" : : "r" (acc));   /* keep the reads */
  } else {
    fuzz_check_error (FALSE, err);
  }
}
