/* fuzz-config.c — libFuzzer target for the config.json readers a user's
 * download feeds us (the DiT's diffusers config, wav2vec2's HF config):
 * nesting guard, defaults, type checks, cross-key checks.  Each reader
 * parses from a file, so the input goes to one private temporary file.
 */
#include "la-dit.h"
#include "la-audio.h"
#include "liveavatar/la-error.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_input_file (data, size, ".json");
  GError *err = NULL;
  LaDitConfig dc;
  fuzz_check_error (la_dit_config_from_json_file (&dc, path, &err), err);
  g_clear_error (&err);
  LaWav2Vec2Config wc;
  fuzz_check_error (la_wav2vec2_config_load (path, &wc, &err), err);
  g_clear_error (&err);
  return 0;
}
