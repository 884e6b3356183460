/* la-backend.c — backend refcounting; the CUDA constructor when it is not built. */
#include "liveavatar/la-backend.h"
#include "liveavatar/la-error.h"

LaBackend *
la_backend_ref (LaBackend *be)
{
  g_atomic_int_inc (&be->ref_count);
  return be;
}

void
la_backend_unref (LaBackend *be)
{
  if (be && g_atomic_int_dec_and_test (&be->ref_count))
    be->ops->destroy (be);
}

#ifndef LA_HAVE_CUDA
LaBackend *
la_backend_cuda_new (int device_index, GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: this build has no CUDA backend", device_index);
  return NULL;
}
#endif
