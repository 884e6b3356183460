/* la-torchzip.c — PyTorch torch.save zip reader/writer (being written by the torchzip helper). */
#include "liveavatar/la-checkpoint.h"
#include "liveavatar/la-error.h"

LaCheckpoint *
la_torchzip_open (const char *path, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "%s: torch zip reader not implemented yet", path);
  return NULL;
}

gboolean
la_torchzip_write (const char *path, LaCheckpoint *ck, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "%s: torch zip writer not implemented yet", path);
  return FALSE;
}
