/* golden-wav2vec2.c — golden runner for "wav2vec2" cases. */
#include "golden.h"

gboolean
golden_run_wav2vec2 (GoldenCase *c, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "golden kind '%s': not implemented", c->kind);
  return FALSE;
}
