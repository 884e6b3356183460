/* fuzz-safetensors.c — libFuzzer target for the safetensors reader (header
 * length, JSON header validation, offsets).  The reader maps a file, so the
 * input is written to one private temporary file per process.
 */
#include "liveavatar/la-checkpoint.h"
#include "liveavatar/la-error.h"
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
  if (ck) {
    const char *const *names = la_checkpoint_names (ck);
    uint8_t acc = 0;
    for (guint i = 0; i < la_checkpoint_size (ck); i++) {
      const LaTensor *t = la_checkpoint_get (ck, names[i]);
      for (size_t k = 0; k < la_tensor_nbytes (t); k++)
        acc ^= ((const uint8_t *) t->data)[k];
    }
    __asm__ volatile ("" : : "r" (acc));   /* keep the reads */
    la_checkpoint_unref (ck);
  } else if (!err || err->domain != LA_ERROR || !err->message[0]) {
    __builtin_trap ();
  }
  g_clear_error (&err);
  return 0;
}
