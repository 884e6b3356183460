/* dit-util.c — small tensor helpers for the DiT: row views and allocation
 * shorthands.  (The stride = kernel patch convs are the patchify op plus a
 * linear, la-backend-impl.h.) */
#include <string.h>
#include "dit-internal.h"
#include "la-ops.h"

LaTensor *
dit_view (const LaTensor *t, gint64 off, int ndim, const int64_t *shape)
{
  char *base = (char *) t->data + (size_t) off * la_dtype_size (t->dtype);
  return la_tensor_new_view (t->dtype, ndim, shape, t->storage, base, t->device, t->device_index);
}

LaTensor *
dit_rows (const LaTensor *t, gint64 r0, gint64 n)
{
  gint64 cols = t->shape[t->ndim - 1];
  int64_t shape[2] = { n, cols };
  return dit_view (t, r0 * cols, 2, shape);
}

LaTensor *
dit_alloc2t (LaBackend *be, LaDType dtype, gint64 a, gint64 b)
{
  int64_t s[2] = { a, b };
  return la_alloc (be, dtype, 2, s);
}

LaTensor *
dit_alloc2 (LaBackend *be, gint64 a, gint64 b)
{
  return dit_alloc2t (be, LA_DTYPE_F32, a, b);
}

LaTensor *
dit_alloc3 (LaBackend *be, gint64 a, gint64 b, gint64 c)
{
  int64_t s[3] = { a, b, c };
  return la_alloc (be, LA_DTYPE_F32, 3, s);
}
