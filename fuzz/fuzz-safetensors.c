/* fuzz-safetensors.c — libFuzzer target for the safetensors reader (header
 * length, JSON header validation, offsets).  The reader maps a file, so the
 * input is written to one private temporary file per process.
 */
#include "liveavatar/la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "fuzz-common.h"
#include <glib/gstdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *path;
static int fd = -1;

static void
cleanup (void)
{
  if (path)
    g_unlink (path);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (fd < 0) {
    fd = g_file_open_tmp ("la-fuzz-XXXXXX.safetensors", &path, NULL);
    if (fd < 0)
      abort ();
    atexit (cleanup);
  }
  if (ftruncate (fd, 0) != 0 || pwrite (fd, data, size, 0) != (ssize_t) size)
    abort ();
  GError *err = NULL;
  LaCheckpoint *ck = la_safetensors_open (path, &err);
  fuzz_check_result (ck, err);
  if (ck)
    la_checkpoint_unref (ck);
  g_clear_error (&err);
  return 0;
}
