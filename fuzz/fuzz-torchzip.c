/* fuzz-torchzip.c — libFuzzer target for the torch.save zip reader: the zip
 * directory, the local headers and the pickle interpreter.  Input bytes are
 * a whole file, read through the in-memory entry point.  Every tensor that
 * comes out is read in full, so a view outside the input is caught by ASan.
 */
#include "liveavatar/la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "la-checkpoint-private.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GBytes *bytes = g_bytes_new (data, size);
  GError *err = NULL;
  LaCheckpoint *ck = la_torchzip_open_bytes (bytes, "fuzz.pth", &err);
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
    __builtin_trap ();   /* a failure must always come with an LA_ERROR */
  }
  g_clear_error (&err);
  g_bytes_unref (bytes);
  return 0;
}
