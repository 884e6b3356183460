/* la-device.c — device names and the backends they open (la-device.h). */
#include "la-device.h"
#include "liveavatar/la-cuda.h"
#include "liveavatar/la-error.h"
#include <string.h>

gboolean
la_device_parse (const char *name, int *cuda_ordinal)
{
  int ord = -1;
  if (!name)
    return FALSE;
  if (!strcmp (name, "cuda"))
    ord = 0;
  else if (g_str_has_prefix (name, "cuda:")) {
    char *end = NULL;
    gint64 n = g_ascii_strtoll (name + 5, &end, 10);
    if (!g_ascii_isdigit (name[5]) || *end || n > G_MAXINT)
      return FALSE;
    ord = (int) n;
  } else if (strcmp (name, "cpu"))
    return FALSE;
  if (cuda_ordinal)
    *cuda_ordinal = ord;
  return TRUE;
}

LaBackend *
la_device_open (const char *name, LaWeights weights, int n_threads, GError **error)
{
  int ord;
  if (!la_device_parse (name, &ord)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "device '%s': expected 'cpu' or 'cuda:N'", name ? name : "");
    return NULL;
  }
  if (ord < 0) {
    if (weights == LA_WEIGHTS_FP8) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "device '%s': weights 'fp8' need a CUDA device (the CPU "
                   "backend has no FP8 GEMM)", name);
      return NULL;
    }
    return la_backend_cpu_new (n_threads);
  }
  LaCudaWeights cw = weights == LA_WEIGHTS_FP8 ? LA_CUDA_WEIGHTS_FP8
                     : weights == LA_WEIGHTS_F32 ? LA_CUDA_WEIGHTS_F32 : LA_CUDA_WEIGHTS_BF16;
  LaBackend *be = la_backend_cuda_new (ord, error);
  if (!be || !la_cuda_set_weights (be, cw, error)) {
    g_prefix_error (error, "device '%s': ", name);
    g_clear_pointer (&be, la_backend_unref);
  }
  return be;
}
