/* fuzz-config.c — libFuzzer target for the config.json readers a user's
 * download feeds us (the DiT's diffusers config, wav2vec2's HF config):
 * nesting guard, defaults, type checks, cross-key checks.  Each reader
 * parses from a file, so the input goes to one private temporary file.
 */
#include "la-dit.h"
#include "la-audio.h"
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

/* A failure must come with a non-empty LA_ERROR; a success with none. */
static void
check (gboolean ok, GError *err)
{
  if (ok ? err != NULL : (!err || err->domain != LA_ERROR || !err->message[0]))
    __builtin_trap ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (fd < 0) {
    fd = g_file_open_tmp ("la-fuzz-XXXXXX.json", &path, NULL);
    if (fd < 0)
      abort ();
    atexit (cleanup);
  }
  if (ftruncate (fd, 0) != 0 || pwrite (fd, data, size, 0) != (ssize_t) size)
    abort ();
  GError *err = NULL;
  LaDitConfig dc;
  check (la_dit_config_from_json_file (&dc, path, &err), err);
  g_clear_error (&err);
  LaWav2Vec2Config wc;
  check (la_wav2vec2_config_load (path, &wc, &err), err);
  g_clear_error (&err);
  return 0;
}
