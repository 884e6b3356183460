/* golden-vae.c — golden runner for "vae" cases. */
#include "golden.h"

gboolean
golden_run_vae (GoldenCase *c, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "golden kind '%s': not implemented", c->kind);
  return FALSE;
}
