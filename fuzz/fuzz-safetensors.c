/* fuzz-safetensors.c — libFuzzer target for the safetensors reader (header
 * length, JSON header validation, offsets).  The reader maps a file, so the
 * input is written to one private temporary file per process.
 */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_input_file (data, size, ".safetensors");
  GError *err = NULL;
  LaCheckpoint *ck = la_safetensors_open (path, &err);
  fuzz_check_result (ck, err);
  if (ck)
    la_checkpoint_unref (ck);
  g_clear_error (&err);
  return 0;
}
