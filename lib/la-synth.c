/* la-synth.c — the shared zero mapping and the hole-leaving writer behind
 * generated full-width trees (see la-synth.h for the why). */
#include "la-synth.h"
#include <string.h>
#include <sys/mman.h>

gint64 la_synth_zero_from = G_MAXINT64;

/* 16 GiB of address space: the largest generated tensor is the umT5
 * embedding, 256384 x 4096 f32 = 4.2 GB.  PROT_READ makes a write through
 * a zero view a crash instead of a silent corruption. */
#define ZERO_MAP_BYTES ((gsize) 16 << 30)

static guint8 *zero_map;
static GBytes *zero_bytes;

static gpointer
map_zeros (gpointer unused)
{
  (void) unused;
  void *p = mmap (NULL, ZERO_MAP_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    g_error ("la_synth_zeros: cannot reserve %zu bytes of address space", ZERO_MAP_BYTES);
  zero_map = p;
  zero_bytes = g_bytes_new_static (p, ZERO_MAP_BYTES);
  return NULL;
}

LaTensor *
la_synth_zeros (LaDType dtype, int ndim, const int64_t *shape)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, map_zeros, NULL);
  guint64 n = la_dtype_size (dtype);
  for (int i = 0; i < ndim; i++)
    n *= (guint64) shape[i];
  if (n > ZERO_MAP_BYTES)
    g_error ("la_synth_zeros: %" G_GUINT64_FORMAT " bytes exceed the zero mapping", n);
  return la_tensor_new_view (dtype, ndim, shape, zero_bytes, zero_map, LA_DEVICE_CPU, 0);
}

gboolean
la_synth_is_zeros (const void *data, guint64 n)
{
  const guint8 *p = data;
  return zero_map && p >= zero_map && n <= ZERO_MAP_BYTES && (guint64) (p - zero_map) <= ZERO_MAP_BYTES - n;
}

static gboolean
all_zero (const guint8 *p, gsize n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

gboolean
la_write_sparse (FILE *f, const void *data, guint64 n)
{
  const gsize CH = 1 << 20;
  const guint8 *p = data;
  gboolean known_zero = la_synth_is_zeros (data, n);
  for (guint64 done = 0; done < n;) {
    gsize c = (gsize) MIN ((guint64) CH, n - done);
    gboolean last = done + c == n;
    if (known_zero || all_zero (p + done, c)) {
      /* A hole; the last byte is written so that the file reaches its size. */
      if (fseeko (f, (off_t) (last ? c - 1 : c), SEEK_CUR) != 0 || (last && fputc (0, f) == EOF))
        return FALSE;
    } else if (fwrite (p + done, 1, c, f) != c) {
      return FALSE;
    }
    done += c;
  }
  return TRUE;
}

void
la_synth_add_random (LaCheckpoint *ck, LaRng *r, const char *name, int ndim, const int64_t *shape,
                     double mean, double std, gboolean uniform)
{
  gint64 n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  if (la_synth_wants_zeros (n)) {
    g_autoptr (LaTensor) z = la_synth_zeros (LA_DTYPE_F32, ndim, shape);
    la_checkpoint_add (ck, name, z);
    return;
  }
  g_autoptr (LaTensor) t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  float *d = la_tensor_f32 (t);
  for (gint64 i = 0; i < n; i++)
    d[i] = (float) (mean + std * (uniform ? la_rng_uniform (r) : la_rng_normal (r)));
  la_checkpoint_add (ck, name, t);
}
