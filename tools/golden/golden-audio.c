/* golden-audio.c — golden runner for "audio" cases. */
#include "golden.h"

gboolean
golden_run_audio (GoldenCase *c, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "golden kind '%s': not implemented", c->kind);
  return FALSE;
}
