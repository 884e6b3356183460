/* fuzz-torchzip.c — libFuzzer target for the torch.save zip reader: the zip
 * directory, the local headers and the pickle interpreter.  Input bytes are
 * a whole file, read through the in-memory entry point.  Every tensor that
 * comes out is read in full, so a view outside the input is caught by ASan.
 */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "fuzz-common.h"
#include "la-checkpoint-private.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new (data, size);
  GError *err = NULL;
  LaCheckpoint *ck = la_torchzip_open_bytes (bytes, "fuzz.pth", &err);
  fuzz_check_result (ck, err);
  if (ck)
    la_checkpoint_unref (ck);
  g_clear_error (&err);
  g_bytes_unref (bytes);
  return 0;
}
