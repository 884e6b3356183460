/* la-checkpoint.c — a name -> tensor table plus format detection. */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/mman.h>

struct _LaCheckpoint {
  gint ref_count;
  GHashTable *tensors;     /* char* -> LaTensor* */
  GHashTable *mapped;      /* names of the tensors that view a read-only file mapping */
  GPtrArray *names;        /* sorted cache, NULL when stale */
  char *path;
};

LaCheckpoint *
la_checkpoint_new (void)
{
  LaCheckpoint *ck = g_new0 (LaCheckpoint, 1);
  ck->ref_count = 1;
  ck->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) la_tensor_unref);
  ck->mapped = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  ck->path = g_strdup ("");
  return ck;
}

LaCheckpoint *
la_checkpoint_ref (LaCheckpoint *ck)
{
  g_atomic_int_inc (&ck->ref_count);
  return ck;
}

void
la_checkpoint_unref (LaCheckpoint *ck)
{
  if (!ck || !g_atomic_int_dec_and_test (&ck->ref_count))
    return;
  g_hash_table_unref (ck->tensors);
  g_hash_table_unref (ck->mapped);
  if (ck->names)
    g_ptr_array_unref (ck->names);
  g_free (ck->path);
  g_free (ck);
}

static void
invalidate_names (LaCheckpoint *ck)
{
  g_clear_pointer (&ck->names, g_ptr_array_unref);
}

void
la_checkpoint_add (LaCheckpoint *ck, const char *name, LaTensor *t)
{
  if (!t->name)
    la_tensor_set_name (t, name);
  g_hash_table_replace (ck->tensors, g_strdup (name), la_tensor_ref (t));
  g_hash_table_remove (ck->mapped, name);
  invalidate_names (ck);
}

gboolean
la_checkpoint_remove (LaCheckpoint *ck, const char *name)
{
  invalidate_names (ck);
  g_hash_table_remove (ck->mapped, name);
  return g_hash_table_remove (ck->tensors, name);
}

/* MADV_DONTNEED on pages of a read-only private file mapping that were
 * never written only unmaps them from this process (they stay in the page
 * cache; a later read faults them in again, same bytes), so this is safe
 * even if someone still holds a view.  Only whole pages inside the tensor
 * are touched. */
void
la_checkpoint_release (LaCheckpoint *ck, const char *name)
{
  LaTensor *t = la_checkpoint_get (ck, name);
  if (!t)
    return;
  if (g_hash_table_contains (ck->mapped, name)) {
    const uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t) t->data + page - 1) & ~(page - 1);
    uintptr_t b = ((uintptr_t) t->data + la_tensor_nbytes (t)) & ~(page - 1);
    if (b > a)
      madvise ((void *) a, b - a, MADV_DONTNEED);
  }
  la_checkpoint_remove (ck, name);
}

/* The readers' tensors are views into the file's mapping, except the few
 * that the torch reader had to copy (a view's data starts past the start of
 * its storage, which begins with the file's header). */
static LaCheckpoint *
mark_mapped (LaCheckpoint *ck)
{
  if (!ck)
    return NULL;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, ck->tensors);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const LaTensor *t = v;
    if (t->device == LA_DEVICE_CPU && t->storage && (const void *) t->data != g_bytes_get_data (t->storage, NULL))
      g_hash_table_add (ck->mapped, g_strdup (k));
  }
  return ck;
}

LaTensor *la_checkpoint_get (LaCheckpoint *ck, const char *name) { return g_hash_table_lookup (ck->tensors, name); }
guint la_checkpoint_size (LaCheckpoint *ck) { return g_hash_table_size (ck->tensors); }
const char *la_checkpoint_path (LaCheckpoint *ck) { return ck->path; }

void
la_checkpoint_set_path (LaCheckpoint *ck, const char *path)
{
  g_free (ck->path);
  ck->path = g_strdup (path);
}

LaTensor *
la_checkpoint_require (LaCheckpoint *ck, const char *name, int ndim, const int64_t *shape, GError **error)
{
  LaTensor *t = la_checkpoint_get (ck, name);
  if (!t) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "tensor '%s' missing from %s", name,
                 ck->path[0] ? ck->path : "the checkpoint");
    return NULL;
  }
  if (ndim >= 0) {
    GError *e = NULL;
    if (!la_tensor_check_shape (t, ndim, shape, &e)) {
      g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "%s (in %s)", e->message, ck->path[0] ? ck->path : "the checkpoint");
      g_error_free (e);
      return NULL;
    }
  }
  return t;
}

static gint
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

const char * const *
la_checkpoint_names (LaCheckpoint *ck)
{
  if (!ck->names) {
    ck->names = g_ptr_array_new ();
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init (&it, ck->tensors);
    while (g_hash_table_iter_next (&it, &k, NULL))
      g_ptr_array_add (ck->names, k);
    g_ptr_array_sort (ck->names, cmp_str);
    g_ptr_array_add (ck->names, NULL);
  }
  return (const char * const *) ck->names->pdata;
}

static gboolean
is_zip (const char *path)
{
  unsigned char sig[4] = { 0 };
  FILE *f = fopen (path, "rb");
  if (!f)
    return FALSE;
  size_t n = fread (sig, 1, 4, f);
  fclose (f);
  return (n == 4 && sig[0] == 'P' && sig[1] == 'K' && sig[2] == 3 && sig[3] == 4) ||
         /* a pre-1.6 torch.save stream (PROTO 2, LONG1 of its 10-byte magic
          * number): the torch reader explains it.  As a safetensors length
          * these bytes would mean a header over 100 MiB, which is invalid. */
         (n == 4 && sig[0] == 0x80 && sig[1] == 2 && sig[2] == 0x8a && sig[3] == 10);
}

/* A folder: the DiT's sharded index, or a single safetensors / HF weight file. */
static LaCheckpoint *
open_folder (const char *dir, GError **error)
{
  static const char *candidates[] = {
    "diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json",
    "diffusion_pytorch_model.safetensors", "model.safetensors", "pytorch_model.bin", NULL,
  };
  for (int i = 0; candidates[i]; i++) {
    g_autofree char *p = g_build_filename (dir, candidates[i], NULL);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
      return la_checkpoint_open (p, error);
  }
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
               "%s: no weights found (looked for *.safetensors.index.json, *.safetensors, pytorch_model.bin)", dir);
  return NULL;
}

LaCheckpoint *
la_checkpoint_open (const char *path, GError **error)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return open_folder (path, error);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "%s: no such file", path);
    return NULL;
  }
  if (g_str_has_suffix (path, ".index.json"))
    return mark_mapped (la_safetensors_open_index (path, error));
  if (is_zip (path))
    return mark_mapped (la_torchzip_open (path, error));
  /* *.safetensors, or an unknown suffix: safetensors has no magic; try it,
   * its validation is strict. */
  return mark_mapped (la_safetensors_open (path, error));
}

char *
la_checkpoint_digest (LaCheckpoint *ck)
{
  const gsize sample = 64 * 1024;
  GChecksum *h = g_checksum_new (G_CHECKSUM_SHA256);
  for (const char * const *n = la_checkpoint_names (ck); *n; n++) {
    const LaTensor *t = la_checkpoint_get (ck, *n);
    g_autofree char *shape = la_shape_to_string (t->ndim, t->shape);
    g_autofree char *head = g_strdup_printf ("%s|%s|%s|", *n, la_dtype_name (t->dtype), shape);
    g_checksum_update (h, (const guchar *) head, -1);
    gsize nb = la_tensor_nbytes (t);
    if (t->device != LA_DEVICE_CPU)
      continue;                 /* checkpoints are host tensors; never read device memory here */
    const guchar *d = t->data;
    if (nb <= 2 * sample)
      g_checksum_update (h, d, nb);
    else {
      g_checksum_update (h, d, sample);
      g_checksum_update (h, d + nb - sample, sample);
    }
  }
  char *r = g_strdup (g_checksum_get_string (h));
  g_checksum_free (h);
  return r;
}
