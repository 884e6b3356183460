/* test-torchzip.c — the torch.save zip reader on files written by genuine
 * PyTorch (tests/data/tz-*.pth, from scripts/make-torch-fixtures.py), and
 * round trips through la_torchzip_write.
 *
 * The fixtures' values follow formulas (see the generator):
 *   float: v[i] = (i - numel/2) * 0.25;   int: v[i] = 3*i - 7
 * so this test needs neither Python nor torch.
 */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "la-checkpoint-private.h"
#include "la-synth.h"
#include <glib/gstdio.h>
#include <string.h>

static char *
data_path (const char *name)
{
  const char *dir = g_getenv ("LA_TEST_DATA");
  return dir ? g_build_filename (dir, name, NULL)
             : g_test_build_filename (G_TEST_DIST, "..", "data", name, NULL);
}

static LaCheckpoint *
open_fixture (const char *name)
{
  g_autofree char *p = data_path (name);
  GError *err = NULL;
  LaCheckpoint *ck = la_torchzip_open (p, &err);
  g_assert_no_error (err);
  g_assert_nonnull (ck);
  g_assert_cmpstr (la_checkpoint_path (ck), ==, p);
  return ck;
}

static LaTensor *
get (LaCheckpoint *ck, const char *name, LaDType dtype, int ndim, const int64_t *shape)
{
  LaTensor *t = la_checkpoint_get (ck, name);
  if (!t)
    g_error ("tensor '%s' missing", name);
  g_assert_cmpint (t->dtype, ==, dtype);
  g_assert_cmpint (t->ndim, ==, ndim);
  for (int d = 0; d < ndim; d++)
    g_assert_cmpint (t->shape[d], ==, shape[d]);
  return t;
}

/* Element i of any tensor, as a double. */
static double
at (const LaTensor *t, int64_t i)
{
  double v;
  la_convert (&v, LA_DTYPE_F64, (const guint8 *) t->data + i * la_dtype_size (t->dtype), t->dtype, 1);
  return v;
}

static void
check_formula (const LaTensor *t)
{
  int64_t n = la_tensor_numel (t);
  for (int64_t i = 0; i < n; i++) {
    double want = la_dtype_is_float (t->dtype) ? (double) (i - n / 2) * 0.25 : (double) (3 * i - 7);
    if (at (t, i) != want)
      g_error ("%s[%" G_GINT64_FORMAT "] = %g, want %g", la_tensor_get_name (t), i, at (t, i), want);
  }
}

static void
test_state_dict (gconstpointer fixture)
{
  LaCheckpoint *ck = open_fixture (fixture);
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 4);
  int64_t w0[] = { 4, 3 }, v4[] = { 4 };
  check_formula (get (ck, "0.weight", LA_DTYPE_F32, 2, w0));
  check_formula (get (ck, "0.bias", LA_DTYPE_F32, 1, v4));
  check_formula (get (ck, "1.weight", LA_DTYPE_F32, 1, v4));
  check_formula (get (ck, "1.bias", LA_DTYPE_F32, 1, v4));
  la_checkpoint_unref (ck);
}

static void
test_dtypes (gconstpointer fixture)
{
  LaCheckpoint *ck = open_fixture (fixture);
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 13);
  int64_t s23[] = { 2, 3 }, s35[] = { 3, 5 }, s4[] = { 4 }, s22[] = { 2, 2 }, s5[] = { 5 }, s3[] = { 3 };
  int64_t s03[] = { 0, 3 }, s5d[] = { 1, 2, 1, 2, 3 };
  check_formula (get (ck, "f32", LA_DTYPE_F32, 2, s23));
  check_formula (get (ck, "bf16", LA_DTYPE_BF16, 2, s35));
  check_formula (get (ck, "f16", LA_DTYPE_F16, 1, s4));
  check_formula (get (ck, "f64", LA_DTYPE_F64, 2, s22));
  check_formula (get (ck, "i64", LA_DTYPE_I64, 1, s5));
  check_formula (get (ck, "i32", LA_DTYPE_I32, 2, s23));
  check_formula (get (ck, "i16", LA_DTYPE_I16, 1, s3));
  check_formula (get (ck, "i8", LA_DTYPE_I8, 1, s3));
  check_formula (get (ck, "five_d", LA_DTYPE_F32, 5, s5d));
  const LaTensor *u8 = get (ck, "u8", LA_DTYPE_U8, 2, s23);
  for (int i = 0; i < 6; i++)
    g_assert_cmpint (((const guint8 *) u8->data)[i], ==, 40 * i);
  const LaTensor *b = get (ck, "bool", LA_DTYPE_BOOL, 1, s3);
  g_assert_cmpmem (b->data, 3, "\1\0\1", 3);
  const LaTensor *sc = get (ck, "scalar", LA_DTYPE_F32, 0, NULL);
  g_assert_cmpfloat (la_tensor_f32 (sc)[0], ==, 2.5f);
  g_assert_cmpint (la_tensor_numel (get (ck, "empty", LA_DTYPE_F32, 2, s03)), ==, 0);
  /* Zero-copy: torch aligns storages to 64 bytes in the file, and the map is page aligned. */
  g_assert_cmpuint ((guintptr) la_checkpoint_get (ck, "f32")->data % 64, ==, 0);
  la_checkpoint_unref (ck);
}

static void
test_views (void)
{
  LaCheckpoint *ck = open_fixture ("tz-views.pth");
  int64_t s34[] = { 3, 4 }, s43[] = { 4, 3 }, s4[] = { 4 }, s3[] = { 3 }, s22[] = { 2, 2 };
  const LaTensor *base = get (ck, "base", LA_DTYPE_F32, 2, s34);
  check_formula (base);
  const float *bv = la_tensor_f32 (base);
  const LaTensor *tr = get (ck, "transposed", LA_DTYPE_F32, 2, s43);   /* stride (1, 4): copied */
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++)
      g_assert_cmpfloat (la_tensor_f32 (tr)[i * 3 + j], ==, bv[j * 4 + i]);
  const LaTensor *row = get (ck, "row1", LA_DTYPE_F32, 1, s4);          /* offset 4: a view */
  g_assert_true (row->data == (const void *) (bv + 4));
  const LaTensor *col = get (ck, "col2", LA_DTYPE_F32, 1, s3);          /* stride 4, offset 2 */
  for (int r = 0; r < 3; r++)
    g_assert_cmpfloat (la_tensor_f32 (col)[r], ==, bv[r * 4 + 2]);
  check_formula (get (ck, "param", LA_DTYPE_F32, 2, s22));              /* _rebuild_parameter */
  la_checkpoint_unref (ck);
}

static void
test_nested (void)
{
  LaCheckpoint *ck = open_fixture ("tz-nested.pth");
  /* {"state_dict": {"enc": {"w", "b"}, "x", "note", "layers"}, "epoch"} */
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 3);
  int64_t s22[] = { 2, 2 }, s2[] = { 2 }, s3[] = { 3 };
  check_formula (get (ck, "enc.w", LA_DTYPE_F32, 2, s22));
  check_formula (get (ck, "enc.b", LA_DTYPE_F32, 1, s2));
  check_formula (get (ck, "x", LA_DTYPE_BF16, 1, s3));
  la_checkpoint_unref (ck);
}

/* 40 tensors: torch's memo passes 256, so LONG_BINPUT appears. */
static void
test_many (void)
{
  LaCheckpoint *ck = open_fixture ("tz-many.pth");
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 40);
  int64_t s2[] = { 2 };
  for (int i = 0; i < 40; i++) {
    char name[32];
    g_snprintf (name, sizeof name, "blocks.%d.w", i);
    const LaTensor *t = get (ck, name, LA_DTYPE_F16, 1, s2);
    g_assert_cmpfloat (at (t, 0), ==, -0.25 + i);
    g_assert_cmpfloat (at (t, 1), ==, 0.0 + i);
  }
  la_checkpoint_unref (ck);
}

static void
test_legacy (void)
{
  g_autofree char *p = data_path ("tz-legacy.pth");
  GError *err = NULL;
  g_assert_null (la_torchzip_open (p, &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, p));
  g_clear_error (&err);
  /* la_checkpoint_open routes it to this reader too (not to safetensors). */
  g_assert_null (la_checkpoint_open (p, &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (err->message, "legacy"));
  g_clear_error (&err);
  g_assert_null (la_torchzip_open ("/nonexistent/x.pth", &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_clear_error (&err);
}

static void
test_checkpoint_open_dispatch (void)
{
  g_autofree char *p = data_path ("tz-state-dict-f32.pth");
  GError *err = NULL;
  LaCheckpoint *ck = la_checkpoint_open (p, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 4);
  la_checkpoint_unref (ck);
}

static void
assert_same (LaCheckpoint *a, LaCheckpoint *b)
{
  g_assert_cmpuint (la_checkpoint_size (a), ==, la_checkpoint_size (b));
  const char *const *names = la_checkpoint_names (a);
  for (guint i = 0; i < la_checkpoint_size (a); i++) {
    const LaTensor *x = la_checkpoint_get (a, names[i]), *y = la_checkpoint_get (b, names[i]);
    g_assert_nonnull (y);
    g_assert_cmpint (x->dtype, ==, y->dtype);
    g_assert_cmpint (x->ndim, ==, y->ndim);
    for (int d = 0; d < x->ndim; d++)
      g_assert_cmpint (x->shape[d], ==, y->shape[d]);
    g_assert_cmpmem (x->data, la_tensor_nbytes (x), y->data, la_tensor_nbytes (y));
    if (la_tensor_numel (y) > 0)   /* written 64-byte aligned, read zero-copy */
      g_assert_cmpuint ((guintptr) y->data % 64, ==, 0);
  }
}

static void
test_round_trip (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-torchzip-XXXXXX", NULL);
  g_assert_nonnull (dir);
  const char *fixtures[] = { "tz-dtypes.pth", "tz-views.pth", "tz-state-dict-f32.pth" };
  for (guint f = 0; f < G_N_ELEMENTS (fixtures); f++) {
    LaCheckpoint *src = open_fixture (fixtures[f]);
    /* Large element counts and names exercise BININT / BININT2 / long strings. */
    if (f == 0) {
      LaTensor *big = la_tensor_new_v (LA_DTYPE_U8, 70000, -1);
      for (int i = 0; i < 70000; i++)
        ((guint8 *) big->data)[i] = (guint8) (i * 7);
      g_autofree char *longname = g_strnfill (300, 'n');
      la_checkpoint_add (src, longname, big);
      la_checkpoint_add (src, "blocks.0.ffn.0.weight", big);
      la_tensor_unref (big);
    }
    for (int z64 = 0; z64 < 2; z64++) {
      g_autofree char *out = g_build_filename (dir, z64 ? "rt64.pth" : "rt.pth", NULL);
      GError *err = NULL;
      g_assert_true (la_torchzip_write_full (out, src, z64, &err));
      g_assert_no_error (err);
      LaCheckpoint *back = la_torchzip_open (out, &err);
      g_assert_no_error (err);
      assert_same (src, back);
      la_checkpoint_unref (back);
      if (g_getenv ("LA_TORCHZIP_KEEP")) {   /* for checking with torch.load by hand */
        g_autofree char *keep = g_strdup_printf ("%s/%s%s", g_getenv ("LA_TORCHZIP_KEEP"), fixtures[f], z64 ? "64" : "");
        g_assert_true (la_torchzip_write_full (keep, src, z64, NULL));
      }
      g_unlink (out);
    }
    la_checkpoint_unref (src);
  }
  /* An empty checkpoint is a valid (empty) OrderedDict. */
  g_autofree char *out = g_build_filename (dir, "empty.pth", NULL);
  LaCheckpoint *empty = la_checkpoint_new ();
  GError *err = NULL;
  g_assert_true (la_torchzip_write (out, empty, &err));
  LaCheckpoint *back = la_torchzip_open (out, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (la_checkpoint_size (back), ==, 0);
  la_checkpoint_unref (back);
  la_checkpoint_unref (empty);
  g_unlink (out);
  /* Unwritable destination: an error naming the path. */
  LaCheckpoint *one = open_fixture ("tz-state-dict-f32.pth");
  g_assert_false (la_torchzip_write ("/nonexistent-dir/x.pth", one, &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_IO);
  g_assert_nonnull (strstr (err->message, "/nonexistent-dir/x.pth"));
  g_clear_error (&err);
  la_checkpoint_unref (one);
  g_rmdir (dir);
}

/* The >4 GiB layout (zip64 sizes in local and central headers, zip64
 * offsets, saturated EOCD) exercised on a small file by lowering the threshold. */
static void
test_zip64_fields (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-torchzip-XXXXXX", NULL);
  g_autofree char *out = g_build_filename (dir, "z64.pth", NULL);
  LaCheckpoint *src = open_fixture ("tz-dtypes.pth");
  GError *err = NULL;
  la_torchzip_zip64_threshold = 0;
  gboolean ok = la_torchzip_write (out, src, &err);
  la_torchzip_zip64_threshold = 0xFFFFFFFFu;
  g_assert_no_error (err);
  g_assert_true (ok);
  LaCheckpoint *back = la_torchzip_open (out, &err);
  g_assert_no_error (err);
  assert_same (src, back);
  la_checkpoint_unref (back);
  if (g_getenv ("LA_TORCHZIP_KEEP")) {
    g_autofree char *keep = g_build_filename (g_getenv ("LA_TORCHZIP_KEEP"), "zip64-fields.pth", NULL);
    g_rename (out, keep);
  }
  la_checkpoint_unref (src);
  g_unlink (out);
  g_rmdir (dir);
}

static void
test_crc32 (void)
{
  g_assert_cmphex (la_crc32 (0, "123456789", 9), ==, 0xCBF43926u);   /* the standard check value */
  g_assert_cmphex (la_crc32 (la_crc32 (0, "1234", 4), "56789", 5), ==, 0xCBF43926u);
}

/* CRC of zero runs by matrix powers equals the byte loop, from any start. */
static void
test_crc32_zeros (void)
{
  static const guint8 zeros[70000];
  const guint64 lens[] = { 0, 1, 2, 7, 64, 4095, 65536, 69999 };
  const guint32 starts[] = { 0, 0x12345678u, la_crc32 (0, "abc", 3) };
  for (guint i = 0; i < G_N_ELEMENTS (lens); i++)
    for (guint k = 0; k < G_N_ELEMENTS (starts); k++)
      g_assert_cmphex (la_crc32_zeros (starts[k], lens[i]), ==, la_crc32 (starts[k], zeros, lens[i]));
}

/* Zero views (generated full-width weights) become holes in both formats and
 * read back as zeros next to ordinary tensors, with a CRC the zip holds. */
static void
test_sparse_zeros (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-sparse-XXXXXX", NULL);
  g_autoptr (LaCheckpoint) ck = la_checkpoint_new ();
  g_autoptr (LaTensor) z = la_synth_zeros (LA_DTYPE_BF16, 2, (int64_t[]) { 4096, 1024 });   /* 8 MiB */
  g_autoptr (LaTensor) r = la_tensor_new_v (LA_DTYPE_F32, 3, -1);
  for (int i = 0; i < 3; i++)
    la_tensor_f32 (r)[i] = (float) (i + 1);
  la_checkpoint_add (ck, "z", z);
  la_checkpoint_add (ck, "r", r);
  const char *names[] = { "w.safetensors", "w.pth" };
  for (int f = 0; f < 2; f++) {
    g_autofree char *p = g_build_filename (dir, names[f], NULL);
    GError *e = NULL;
    g_assert_true (f ? la_torchzip_write (p, ck, &e) : la_safetensors_write (p, ck, &e));
    g_assert_no_error (e);
    GStatBuf st;
    g_assert_cmpint (g_stat (p, &st), ==, 0);
    g_assert_cmpint (st.st_size, >, 8 << 20);
    g_assert_cmpint ((gint64) st.st_blocks * 512, <, 1 << 20);   /* holes, not 8 MiB of zeros */
    g_autoptr (LaCheckpoint) back = la_checkpoint_open (p, &e);
    g_assert_no_error (e);
    LaTensor *zb = la_checkpoint_get (back, "z");
    const guint8 *zd = zb->data;
    for (gsize i = 0; i < la_tensor_nbytes (zb); i++)
      if (zd[i])
        g_error ("%s: byte %" G_GSIZE_FORMAT " of the zero tensor is %u", names[f], i, zd[i]);
    g_assert_cmpfloat (la_tensor_f32 (la_checkpoint_get (back, "r"))[2], ==, 3.0f);
    g_unlink (p);
  }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/torchzip/crc32", test_crc32);
  g_test_add_func ("/torchzip/crc32-zeros", test_crc32_zeros);
  g_test_add_func ("/torchzip/sparse-zeros", test_sparse_zeros);
  g_test_add_data_func ("/torchzip/state-dict", "tz-state-dict-f32.pth", test_state_dict);
  g_test_add_data_func ("/torchzip/prefix-unaligned", "tz-prefix-unaligned.pth", test_state_dict);
  g_test_add_data_func ("/torchzip/dtypes", "tz-dtypes.pth", test_dtypes);
  /* pickle_protocol=4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL */
  g_test_add_data_func ("/torchzip/dtypes-protocol4", "tz-dtypes-proto4.pth", test_dtypes);
  g_test_add_func ("/torchzip/views", test_views);
  g_test_add_func ("/torchzip/nested", test_nested);
  g_test_add_func ("/torchzip/many", test_many);
  g_test_add_func ("/torchzip/legacy", test_legacy);
  g_test_add_func ("/torchzip/checkpoint-open", test_checkpoint_open_dispatch);
  g_test_add_func ("/torchzip/round-trip", test_round_trip);
  g_test_add_func ("/torchzip/zip64-fields", test_zip64_fields);
  return g_test_run ();
}
