/* fuzz-common.h — what both reader targets check once a file opened or failed. */
#pragma once
#include <liveavatar/liveavatar.h>
#include <stdint.h>

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
  } else if (!err || err->domain != LA_ERROR || !err->message[0]) {
    __builtin_trap ();
  }
}
