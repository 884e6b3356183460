/* golden-dit.c — golden runner for "dit_stream*" cases. */
#include "golden.h"

gboolean
golden_run_dit_stream (GoldenCase *c, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "golden kind '%s': not implemented", c->kind);
  return FALSE;
}
