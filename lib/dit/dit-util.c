/* dit-util.c — small tensor helpers for the DiT: row views, allocation
 * shorthands and the host im2col used for the stride = kernel patch convs
 * (patch_embedding and the FramePack projections are GEMMs over
 * K = C·kt·kh·kw, input order (c, kt, kh, kw), as PyTorch flattens a Conv3d
 * weight [D, C, kt, kh, kw]). */
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
dit_alloc2 (LaBackend *be, gint64 a, gint64 b)
{
  int64_t s[2] = { a, b };
  return la_alloc (be, LA_DTYPE_F32, 2, s);
}

LaTensor *
dit_alloc3 (LaBackend *be, gint64 a, gint64 b, gint64 c)
{
  int64_t s[3] = { a, b, c };
  return la_alloc (be, LA_DTYPE_F32, 3, s);
}

void
dit_patchify (float *out, const float *x, int C, int T, int Hh, int Ww, int kt, int kh, int kw)
{
  int nt = T / kt, nh = Hh / kh, nw = Ww / kw, K = C * kt * kh * kw;
  for (int t = 0; t < nt; t++)
    for (int i = 0; i < nh; i++)
      for (int j = 0; j < nw; j++) {
        float *o = out + ((gint64) (t * nh + i) * nw + j) * K;
        for (int c = 0; c < C; c++)
          for (int a = 0; a < kt; a++)
            for (int b = 0; b < kh; b++)
              for (int d = 0; d < kw; d++)
                *o++ = x[(((gint64) c * T + t * kt + a) * Hh + i * kh + b) * Ww + j * kw + d];
      }
}

LaTensor *
dit_to_host (LaBackend *be, const LaTensor *t)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, h, t);
  return h;
}
