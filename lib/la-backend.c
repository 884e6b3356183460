/* la-backend.c — what every backend shares: refcounting, the sticky
 * error and the transfer statistics.  Ops cannot return errors (model code stays linear), so the first
 * failure since the last sync is kept here, whoever found it (a shape check
 * in la-ops.c, a CUDA call), and handed out by la_backend_sync(). */
#include "la-backend-impl.h"
#include <string.h>

void
la_backend_init (LaBackend *be, const LaBackendOps *ops, LaDeviceType device, int device_index,
                 int n_threads)
{
  be->ops = ops;
  be->device = device;
  be->device_index = device_index;
  be->ref_count = 1;
  be->n_threads = n_threads;
  be->error = NULL;
  g_mutex_init (&be->error_lock);
}

void
la_backend_record_error (LaBackend *be, LaErrorCode code, const char *format, ...)
{
  g_mutex_lock (&be->error_lock);
  if (!be->error) {
    va_list ap;
    va_start (ap, format);
    be->error = g_error_new_valist (LA_ERROR, code, format, ap);
    va_end (ap);
  }
  g_mutex_unlock (&be->error_lock);
}

gboolean
la_backend_holds (LaBackend *be, const LaTensor *t)
{
  return be->ops->resident ? be->ops->resident (be, t) : t->device == be->device;
}

LaTensor *
la_backend_adopt (LaBackend *be, LaTensor *host)
{
  return be->device == LA_DEVICE_CPU ? la_cpu_adopt (host) : host;
}

void
la_backend_count_copy (LaBackend *be, const LaTensor *dst, const LaTensor *src)
{
  gboolean d = la_backend_holds (be, dst), s = la_backend_holds (be, src);
  if (d == s)
    return;               /* host memcpy or a copy within the backend: no transfer */
  g_mutex_lock (&be->error_lock);
  if (d) {
    be->stats.uploads++;
    be->stats.upload_bytes += la_tensor_nbytes (src);
  } else {
    be->stats.downloads++;
    be->stats.download_bytes += la_tensor_nbytes (dst);
  }
  g_mutex_unlock (&be->error_lock);
}

void
la_backend_count_graph (LaBackend *be, gboolean capture)
{
  g_mutex_lock (&be->error_lock);
  if (capture)
    be->stats.graph_captures++;
  else
    be->stats.graph_launches++;
  g_mutex_unlock (&be->error_lock);
}

void
la_backend_get_stats (LaBackend *be, LaBackendStats *out)
{
  g_mutex_lock (&be->error_lock);
  *out = be->stats;
  g_mutex_unlock (&be->error_lock);
}

void
la_backend_reset_stats (LaBackend *be)
{
  g_mutex_lock (&be->error_lock);
  memset (&be->stats, 0, sizeof be->stats);
  g_mutex_unlock (&be->error_lock);
}

gboolean
la_backend_sync (LaBackend *be, GError **error)
{
  g_mutex_lock (&be->error_lock);
  be->stats.syncs++;
  g_mutex_unlock (&be->error_lock);
  if (be->ops->sync)
    be->ops->sync (be);
  g_mutex_lock (&be->error_lock);
  GError *e = g_steal_pointer (&be->error);
  g_mutex_unlock (&be->error_lock);
  if (e) {
    g_propagate_error (error, e);
    return FALSE;
  }
  return TRUE;
}

LaTensor *
la_alloc (LaBackend *be, LaDType t, int ndim, const int64_t *shape)
{
  return be->ops->alloc (be, t, ndim, shape);
}

const char *
la_backend_get_name (LaBackend *be)
{
  return be->ops->name;
}

LaDeviceType
la_backend_get_device (LaBackend *be)
{
  return be->device;
}

int
la_backend_get_device_index (LaBackend *be)
{
  return be->device_index;
}

int
la_backend_get_n_threads (LaBackend *be)
{
  return be->n_threads;
}

LaBackend *
la_backend_ref (LaBackend *be)
{
  g_atomic_int_inc (&be->ref_count);
  return be;
}

void
la_backend_unref (LaBackend *be)
{
  if (!be || !g_atomic_int_dec_and_test (&be->ref_count))
    return;
  g_clear_error (&be->error);
  g_mutex_clear (&be->error_lock);
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
