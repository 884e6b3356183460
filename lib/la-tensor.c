/* la-tensor.c — refcounted contiguous tensors over GBytes storage. */
#include "liveavatar/la-tensor.h"
#include "liveavatar/la-error.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static LaTensor *
tensor_alloc_header (LaDType dtype, int ndim, const int64_t *shape)
{
  g_return_val_if_fail (ndim >= 0 && ndim <= LA_TENSOR_MAX_DIMS, NULL);
  LaTensor *t = g_new0 (LaTensor, 1);
  t->ref_count = 1;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    t->shape[i] = shape[i];
  return t;
}

LaTensor *
la_tensor_new (LaDType dtype, int ndim, const int64_t *shape)
{
  LaTensor *t = tensor_alloc_header (dtype, ndim, shape);
  if (!t)
    return NULL;
  size_t n = la_tensor_nbytes (t);
  /* Zeroed and 64-byte aligned (SIMD loads, BLAS).  calloc, not
   * posix_memalign + memset: a large block comes from mmap already zero, so
   * its pages are not written twice (the memset was 11 % of the tiny
   * model's VAE set-up at 704x384, docs/performance.md). */
  void *raw = calloc (1, (n ? n : 64) + 64);
  if (!raw)
    g_error ("la_tensor_new: out of memory (%zu bytes)", n);
  void *data = (void *) (((uintptr_t) raw + 64) & ~(uintptr_t) 63);
  t->storage = g_bytes_new_with_free_func (data, n, free, raw);
  t->data = data;
  return t;
}

LaTensor *
la_tensor_new_v (LaDType dtype, ...)
{
  int64_t shape[LA_TENSOR_MAX_DIMS];
  int ndim = 0;
  va_list ap;
  va_start (ap, dtype);
  for (;;) {
    int d = va_arg (ap, int);
    if (d < 0)
      break;
    g_return_val_if_fail (ndim < LA_TENSOR_MAX_DIMS, NULL);
    shape[ndim++] = d;
  }
  va_end (ap);
  return la_tensor_new (dtype, ndim, shape);
}

LaTensor *
la_tensor_new_view (LaDType dtype, int ndim, const int64_t *shape, GBytes *storage,
                    void *data, LaDeviceType device, int device_index)
{
  LaTensor *t = tensor_alloc_header (dtype, ndim, shape);
  if (!t)
    return NULL;
  t->storage = g_bytes_ref (storage);
  t->data = data;
  t->device = device;
  t->device_index = device_index;
  return t;
}

LaTensor *
la_tensor_new_from_f32 (int ndim, const int64_t *shape, const float *src)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  if (t)
    memcpy (t->data, src, la_tensor_nbytes (t));
  return t;
}

LaTensor *
la_tensor_ref (LaTensor *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  g_atomic_int_inc (&t->ref_count);
  return t;
}

void
la_tensor_unref (LaTensor *t)
{
  if (!t || !g_atomic_int_dec_and_test (&t->ref_count))
    return;
  g_bytes_unref (t->storage);
  g_free (t->name);
  g_free (t);
}

int64_t
la_tensor_numel (const LaTensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

size_t la_tensor_nbytes (const LaTensor *t) { return (size_t) la_tensor_numel (t) * la_dtype_size (t->dtype); }

void
la_tensor_set_name (LaTensor *t, const char *name)
{
  g_free (t->name);
  t->name = g_strdup (name);
}

const char *la_tensor_get_name (const LaTensor *t) { return t->name ? t->name : "(unnamed)"; }

char *
la_shape_to_string (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

LaTensor *
la_tensor_reshape (LaTensor *t, int ndim, const int64_t *shape, GError **error)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  if (ndim < 0 || ndim > LA_TENSOR_MAX_DIMS || n != la_tensor_numel (t)) {
    g_autofree char *a = la_shape_to_string (t->ndim, t->shape);
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "tensor '%s': cannot reshape %s to %d dims with %" G_GINT64_FORMAT " elements",
                 la_tensor_get_name (t), a, ndim, n);
    return NULL;
  }
  LaTensor *v = la_tensor_new_view (t->dtype, ndim, shape, t->storage, t->data, t->device, t->device_index);
  if (t->name)
    v->name = g_strdup (t->name);
  return v;
}

LaTensor *
la_tensor_to_dtype (const LaTensor *t, LaDType dtype)
{
  g_return_val_if_fail (t->device == LA_DEVICE_CPU, NULL);
  LaTensor *r = la_tensor_new (dtype, t->ndim, t->shape);
  la_convert (r->data, dtype, t->data, t->dtype, (size_t) la_tensor_numel (t));
  if (t->name)
    r->name = g_strdup (t->name);
  return r;
}

LaTensor *
la_tensor_as_f32 (LaTensor *t)
{
  if (t->dtype == LA_DTYPE_F32 && t->device == LA_DEVICE_CPU)
    return la_tensor_ref (t);
  return la_tensor_to_dtype (t, LA_DTYPE_F32);
}

gboolean
la_tensor_check_shape (const LaTensor *t, int ndim, const int64_t *shape, GError **error)
{
  gboolean ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = shape[i] < 0 || shape[i] == t->shape[i];
  if (!ok) {
    g_autofree char *got = la_shape_to_string (t->ndim, t->shape);
    g_autofree char *want = la_shape_to_string (ndim, shape);
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "tensor '%s' has shape %s, expected %s (-1 = any)",
                 la_tensor_get_name (t), got, want);
  }
  return ok;
}
