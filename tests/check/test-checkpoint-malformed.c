/* test-checkpoint-malformed.c — the catalogue of malformed checkpoint files,
 * for both readers (safetensors and torch.save zip).
 *
 * Every file is generated here from a good one: a small zip builder and a
 * pickle emitter make the torch files, a header writer the safetensors ones.
 * Each malformed file must give a GError in the LA_ERROR domain with the
 * expected code and a message naming the file — never a crash (run it under
 * valgrind or ASan).  Beyond the named cases, every truncation and every
 * single-byte corruption of the good files is opened too.
 */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "la-checkpoint-private.h"
#include "la-dit.h"
#include "la-audio.h"
#include <glib/gstdio.h>
#include <string.h>

static char *tmpdir;

/* ------------------------------------------------------------------------ */
/* Byte builders                                                            */

static void u16 (GByteArray *b, guint v) { guint8 x[2] = { v, v >> 8 }; g_byte_array_append (b, x, 2); }
static void u32 (GByteArray *b, guint32 v) { guint8 x[4] = { v, v >> 8, v >> 16, v >> 24 }; g_byte_array_append (b, x, 4); }
static void u64 (GByteArray *b, guint64 v) { u32 (b, (guint32) v); u32 (b, (guint32) (v >> 32)); }
static void raw (GByteArray *b, const void *p, gsize n) { g_byte_array_append (b, p, (guint) n); }
static void op (GByteArray *b, guint8 o) { g_byte_array_append (b, &o, 1); }

typedef struct {
  const char *name;
  const void *data;
  gsize       len;
  guint16     method, flags;
  gint64      size_delta;     /* added to the central directory's sizes */
  const char *central_name;   /* a different name in the central directory */
  gboolean    append;         /* add even when an entry of that name exists */
} ZEnt;

typedef struct {
  gint64   cd_off_delta;
  gboolean zip64;
} ZOpts;

static GByteArray *
build_zip (const ZEnt *e, int n, const ZOpts *o)
{
  GByteArray *b = g_byte_array_new (), *cd = g_byte_array_new ();
  for (int i = 0; i < n; i++) {
    guint32 off = b->len, crc = la_crc32 (0, e[i].data, e[i].len);
    gsize nl = strlen (e[i].name);
    u32 (b, 0x04034b50); u16 (b, 20); u16 (b, e[i].flags); u16 (b, e[i].method); u16 (b, 0); u16 (b, 0x21);
    u32 (b, crc); u32 (b, e[i].len); u32 (b, e[i].len); u16 (b, nl); u16 (b, 0);
    raw (b, e[i].name, nl);
    raw (b, e[i].data, e[i].len);
    const char *cn = e[i].central_name ? e[i].central_name : e[i].name;
    guint32 sz = (guint32) ((gint64) e[i].len + e[i].size_delta);
    u32 (cd, 0x02014b50); u16 (cd, 20); u16 (cd, 20); u16 (cd, e[i].flags); u16 (cd, e[i].method);
    u16 (cd, 0); u16 (cd, 0x21); u32 (cd, crc); u32 (cd, sz); u32 (cd, sz);
    u16 (cd, strlen (cn)); u16 (cd, 0); u16 (cd, 0); u16 (cd, 0); u16 (cd, 0); u32 (cd, 0); u32 (cd, off);
    raw (cd, cn, strlen (cn));
  }
  guint64 cd_off = b->len + (o ? o->cd_off_delta : 0);
  raw (b, cd->data, cd->len);
  if (o && o->zip64) {
    guint64 e64 = b->len;
    u32 (b, 0x06064b50); u64 (b, 44); u16 (b, 45); u16 (b, 45); u32 (b, 0); u32 (b, 0);
    u64 (b, n); u64 (b, n); u64 (b, cd->len); u64 (b, cd_off);
    u32 (b, 0x07064b50); u32 (b, 0); u64 (b, e64); u32 (b, 1);
  }
  u32 (b, 0x06054b50); u16 (b, 0); u16 (b, 0); u16 (b, n); u16 (b, n);
  u32 (b, cd->len); u32 (b, (guint32) cd_off); u16 (b, 0);
  g_byte_array_unref (cd);
  return b;
}

/* Pickle emitters. */
static void
p_str (GByteArray *b, const char *s, gssize n)
{
  if (n < 0)
    n = strlen (s);
  op (b, 'X');
  u32 (b, (guint32) n);
  raw (b, s, n);
}

static void
p_int (GByteArray *b, gint64 v)
{
  if (v >= 0 && v < 256) {
    op (b, 'K');
    op (b, (guint8) v);
  } else if (v >= G_MININT32 && v <= G_MAXINT32) {
    op (b, 'J');
    u32 (b, (guint32) v);
  } else {
    op (b, 0x8a);
    op (b, 8);
    u64 (b, (guint64) v);
  }
}

static void
p_global (GByteArray *b, const char *mod, const char *name)
{
  op (b, 'c');
  raw (b, mod, strlen (mod));
  op (b, '\n');
  raw (b, name, strlen (name));
  op (b, '\n');
}

typedef struct {
  const char *key;
  gssize      key_len;            /* -1: strlen */
  const char *storage_type;
  const char *storage_key;
  gint64      numel;              /* storage numel */
  gint64      offset;
  int         ndim;
  gint64      size[8], stride[8];
  const char *rebuild_mod, *rebuild_name;
  const guint8 *inject;           /* raw opcodes spliced in before the final STOP */
  gsize       inject_len;
  gboolean    list_top;           /* save a list instead of a dict */
} PklSpec;

static const PklSpec good_pkl = {
  .key = "w", .key_len = -1, .storage_type = "FloatStorage", .storage_key = "0",
  .numel = 6, .offset = 0, .ndim = 2, .size = { 2, 3 }, .stride = { 3, 1 },
  .rebuild_mod = "torch._utils", .rebuild_name = "_rebuild_tensor_v2",
};

static GByteArray *
build_pickle (const PklSpec *s)
{
  GByteArray *b = g_byte_array_new ();
  op (b, 0x80); op (b, 2);
  if (s->list_top) {
    op (b, ']');
  } else {
    p_global (b, "collections", "OrderedDict");
    op (b, 'q'); op (b, 0);
    op (b, ')'); op (b, 'R');
    op (b, 'q'); op (b, 1);           /* memo 1: the dict */
  }
  op (b, '(');
  if (!s->list_top)
    p_str (b, s->key, s->key_len);
  p_global (b, s->rebuild_mod, s->rebuild_name);
  op (b, '(');
  op (b, '(');
  p_str (b, "storage", -1);
  p_global (b, "torch", s->storage_type);
  p_str (b, s->storage_key, -1);
  p_str (b, "cpu", -1);
  p_int (b, s->numel);
  op (b, 't');
  op (b, 'Q');
  p_int (b, s->offset);
  op (b, '(');
  for (int d = 0; d < s->ndim; d++)
    p_int (b, s->size[d]);
  op (b, 't');
  op (b, '(');
  for (int d = 0; d < s->ndim; d++)
    p_int (b, s->stride[d]);
  op (b, 't');
  op (b, 0x89);
  p_global (b, "collections", "OrderedDict");
  op (b, ')'); op (b, 'R');
  op (b, 't');
  op (b, 'R');
  op (b, s->list_top ? 'e' : 'u');
  if (s->inject)
    raw (b, s->inject, s->inject_len);
  op (b, '.');
  return b;
}

static const float six[6] = { 1, 2, 3, 4, 5, 6 };

/* A torch zip with one pickle and one 24-byte storage "archive/data/0". */
static GByteArray *
torch_zip (const PklSpec *s, const ZEnt *extra, int n_extra, const ZOpts *o)
{
  GByteArray *pkl = build_pickle (s ? s : &good_pkl);
  ZEnt e[8] = {
    { .name = "archive/data.pkl", .data = pkl->data, .len = pkl->len },
    { .name = "archive/data/0", .data = six, .len = sizeof six },
    { .name = "archive/version", .data = "3\n", .len = 2 },
  };
  int n = 3;
  for (int i = 0; i < n_extra; i++) {
    /* An extra entry with a known name replaces that entry. */
    int k = 0;
    while (k < n && (extra[i].append || strcmp (e[k].name, extra[i].name) != 0))
      k++;
    if (extra[i].name[0] == '-') {   /* "-name": drop the entry */
      for (int j = 0; j < n; j++)
        if (strcmp (e[j].name, extra[i].name + 1) == 0) {
          memmove (&e[j], &e[j + 1], (n - j - 1) * sizeof e[0]);
          n--;
        }
      continue;
    }
    ZEnt x = extra[i];
    if (k < n && !x.data) {          /* modify flags/method/sizes of an existing entry */
      x.data = e[k].data;
      x.len = e[k].len;
    }
    e[k] = x;
    if (k == n)
      n++;
  }
  GByteArray *z = build_zip (e, n, o);
  g_byte_array_unref (pkl);
  return z;
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                   */

typedef LaCheckpoint *(*OpenFn) (const char *path, GError **error);

static char *
write_tmp (const char *name, const void *data, gsize len)
{
  char *p = g_build_filename (tmpdir, name, NULL);
  GError *err = NULL;
  g_assert_true (g_file_set_contents (p, data, (gssize) len, &err));
  g_assert_no_error (err);
  return p;
}

/* Opens bytes written to a file; returns the error (NULL on success). */
static GError *
try_open (OpenFn fn, const char *name, const void *data, gsize len)
{
  g_autofree char *p = write_tmp (name, data, len);
  GError *err = NULL;
  LaCheckpoint *ck = fn (p, &err);
  if (ck) {
    g_assert_null (err);
    /* Touch every tensor's bytes: a view must lie inside the mapping. */
    const char *const *names = la_checkpoint_names (ck);
    guint8 acc = 0;
    for (guint i = 0; i < la_checkpoint_size (ck); i++) {
      const LaTensor *t = la_checkpoint_get (ck, names[i]);
      for (gsize k = 0; k < la_tensor_nbytes (t); k++)
        acc ^= ((const guint8 *) t->data)[k];
    }
    (void) acc;
    la_checkpoint_unref (ck);
  } else {
    g_assert_nonnull (err);
    g_assert_true (err->domain == LA_ERROR);
    if (!strstr (err->message, p))
      g_error ("message does not name the file %s: %s", p, err->message);
  }
  g_unlink (p);
  return err;
}

static void
expect (OpenFn fn, const char *what, GByteArray *bytes, int code, const char *needle)
{
  GError *err = try_open (fn, what, bytes->data, bytes->len);
  if (!err)
    g_error ("%s: opened without error", what);
  if (err->code != code)
    g_error ("%s: error code %d, want %d: %s", what, err->code, code, err->message);
  if (needle && !strstr (err->message, needle))
    g_error ("%s: message lacks '%s': %s", what, needle, err->message);
  if (g_test_verbose ())
    g_printerr ("  %-28s %s\n", what, err->message);
  g_error_free (err);
  g_byte_array_unref (bytes);
}

/* Every proper prefix must fail; every single-byte corruption must not crash. */
static void
torture (OpenFn fn, const char *what, const GByteArray *good, int truncated_code)
{
  GError *err = try_open (fn, what, good->data, good->len);
  g_assert_no_error (err);
  for (guint n = 0; n < good->len; n++) {
    err = try_open (fn, what, good->data, n);
    if (!err)
      g_error ("%s truncated to %u bytes opened without error", what, n);
    g_assert_cmpint (err->code, ==, truncated_code);
    g_clear_error (&err);
  }
  guint8 *copy = g_memdup2 (good->data, good->len);
  const guint8 flips[] = { 0xFF, 0x01, 0x80 };
  for (guint i = 0; i < good->len; i++)
    for (guint f = 0; f < G_N_ELEMENTS (flips); f++) {
      copy[i] ^= flips[f];
      g_clear_error (&err);
      err = try_open (fn, what, copy, good->len);
      copy[i] ^= flips[f];
    }
  g_clear_error (&err);
  g_free (copy);
}

/* ------------------------------------------------------------------------ */
/* torch.save zip                                                           */

static void
test_torchzip_good (void)
{
  for (int z64 = 0; z64 < 2; z64++) {
    ZOpts o = { .zip64 = z64 };
    GByteArray *z = torch_zip (NULL, NULL, 0, &o);
    g_autofree char *p = write_tmp ("good.pth", z->data, z->len);
    GError *err = NULL;
    LaCheckpoint *ck = la_torchzip_open (p, &err);
    g_assert_no_error (err);
    LaTensor *t = la_checkpoint_get (ck, "w");
    g_assert_nonnull (t);
    g_assert_cmpint (t->ndim, ==, 2);
    g_assert_cmpmem (t->data, 24, six, 24);
    la_checkpoint_unref (ck);
    /* The in-memory entry point reads the same bytes. */
    GBytes *bytes = g_bytes_new (z->data, z->len);
    ck = la_torchzip_open_bytes (bytes, "mem", &err);
    g_assert_no_error (err);
    g_assert_cmpuint (la_checkpoint_size (ck), ==, 1);
    la_checkpoint_unref (ck);
    g_bytes_unref (bytes);
    g_unlink (p);
    g_byte_array_unref (z);
  }
}

static void
test_torchzip_torture (void)
{
  ZOpts o = { .zip64 = TRUE };
  GByteArray *z = torch_zip (NULL, NULL, 0, &o);
  torture (la_torchzip_open, "torture.pth", z, LA_ERROR_FORMAT);
  g_byte_array_unref (z);
}

static GByteArray *
with_pkl (void (*edit) (PklSpec *))
{
  PklSpec s = good_pkl;
  edit (&s);
  return torch_zip (&s, NULL, 0, NULL);
}

static void e_missing_key (PklSpec *s) { s->storage_key = "7"; }
static void e_bad_global (PklSpec *s) { s->rebuild_mod = "os"; s->rebuild_name = "system"; }
static void e_bad_storage (PklSpec *s) { s->storage_type = "ComplexFloatStorage"; }
static void e_six_dims (PklSpec *s) { s->ndim = 6; for (int d = 0; d < 6; d++) s->size[d] = 1, s->stride[d] = 1; }
static void e_neg_size (PklSpec *s) { s->size[0] = -2; }
static void e_overflow (PklSpec *s) { s->size[0] = s->size[1] = (gint64) 1 << 40; }
static void e_offset (PklSpec *s) { s->offset = 1; }
static void e_neg_offset (PklSpec *s) { s->offset = -1; }
static void e_stride (PklSpec *s) { s->stride[0] = 4; }
static void e_huge_stride (PklSpec *s) { s->stride[0] = s->stride[1] = G_MAXINT64; }
static void e_numel (PklSpec *s) { s->numel = 7; s->size[1] = 3; }
static void e_utf8 (PklSpec *s) { s->key = "w\xff\xfe"; }
static void e_nul (PklSpec *s) { s->key = "w\0x"; s->key_len = 3; }
static void e_list_top (PklSpec *s) { s->list_top = TRUE; }
static void e_opcode (PklSpec *s) { static const guint8 x[] = { 'i' }; s->inject = x; s->inject_len = 1; }
static void e_opcode2 (PklSpec *s) { static const guint8 x[] = { 0xff }; s->inject = x; s->inject_len = 1; }
static void e_underflow (PklSpec *s) { static const guint8 x[] = { '0', '0', '0' }; s->inject = x; s->inject_len = 3; }
static void e_memo (PklSpec *s) { static const guint8 x[] = { 'h', 99 }; s->inject = x; s->inject_len = 2; }
/* d["d"] = d: a dict containing itself. */
static void e_cycle (PklSpec *s) { static const guint8 x[] = { 'X', 1, 0, 0, 0, 'd', 'h', 1, 's' }; s->inject = x; s->inject_len = 9; }
static void e_rebuild_param (PklSpec *s) { s->rebuild_name = "_rebuild_parameter"; }
static void e_long (PklSpec *s) { static const guint8 x[] = { 0x8a, 9, 1,2,3,4,5,6,7,8,9, '0' }; s->inject = x; s->inject_len = 12; }
static void e_broadcast (PklSpec *s) { s->size[0] = s->size[1] = 1 << 20; s->stride[0] = s->stride[1] = 0; }
static void e_global_nul (PklSpec *s)
{
  static const guint8 x[] = "ccollections\0x\nOrderedDict\n";
  s->inject = x;
  s->inject_len = sizeof x - 1;
}
/* d_n = {"a": d_(n-1), "b": d_(n-1)}, 30 levels, stored under "k": a DAG
 * whose tree has 2^30 leaves. */
static void
emit_shared (GByteArray *b, int n)
{
  op (b, '}');
  if (n > 0) {
    op (b, '(');
    p_str (b, "a", -1);
    emit_shared (b, n - 1);
    p_str (b, "b", -1);
    op (b, 'h'); op (b, (guint8) (10 + n - 1));
    op (b, 'u');
  }
  op (b, 'q'); op (b, (guint8) (10 + n));
}
static void
e_shared (PklSpec *s)
{
  static GByteArray *b;
  if (!b) {
    b = g_byte_array_new ();
    p_str (b, "k", -1);
    emit_shared (b, 30);
    op (b, 's');
  }
  s->inject = b->data;
  s->inject_len = b->len;
}
static void e_trunc_str (PklSpec *s) { static const guint8 x[] = { 'X', 0xff, 0xff, 0xff, 0x7f, 'a' }; s->inject = x; s->inject_len = 6; }

static void
test_torchzip_pickle (void)
{
  OpenFn fn = la_torchzip_open;
  expect (fn, "missing-storage.pth", with_pkl (e_missing_key), LA_ERROR_FORMAT, "'7'");
  expect (fn, "bad-global.pth", with_pkl (e_bad_global), LA_ERROR_UNSUPPORTED, "os.system");
  expect (fn, "bad-storage.pth", with_pkl (e_bad_storage), LA_ERROR_UNSUPPORTED, "ComplexFloatStorage");
  expect (fn, "six-dims.pth", with_pkl (e_six_dims), LA_ERROR_UNSUPPORTED, "6 dimensions");
  expect (fn, "neg-size.pth", with_pkl (e_neg_size), LA_ERROR_FORMAT, "negative");
  expect (fn, "numel-overflow.pth", with_pkl (e_overflow), LA_ERROR_FORMAT, "overflow");
  expect (fn, "offset-past.pth", with_pkl (e_offset), LA_ERROR_FORMAT, "storage '0'");
  expect (fn, "neg-offset.pth", with_pkl (e_neg_offset), LA_ERROR_FORMAT, "negative offset");
  expect (fn, "stride-past.pth", with_pkl (e_stride), LA_ERROR_FORMAT, "storage '0'");
  expect (fn, "stride-overflow.pth", with_pkl (e_huge_stride), LA_ERROR_FORMAT, "overflow");
  expect (fn, "numel-past-entry.pth", with_pkl (e_numel), LA_ERROR_FORMAT, "holds 24 bytes");
  expect (fn, "non-utf8-name.pth", with_pkl (e_utf8), LA_ERROR_FORMAT, "UTF-8");
  expect (fn, "nul-in-name.pth", with_pkl (e_nul), LA_ERROR_FORMAT, "UTF-8");
  expect (fn, "list-top.pth", with_pkl (e_list_top), LA_ERROR_UNSUPPORTED, "list");
  expect (fn, "opcode-inst.pth", with_pkl (e_opcode), LA_ERROR_UNSUPPORTED, "opcode 0x69");
  expect (fn, "opcode-ff.pth", with_pkl (e_opcode2), LA_ERROR_UNSUPPORTED, "opcode 0xff");
  expect (fn, "pop-opcode.pth", with_pkl (e_underflow), LA_ERROR_UNSUPPORTED, "opcode 0x30");
  expect (fn, "memo-unset.pth", with_pkl (e_memo), LA_ERROR_FORMAT, "memo");
  expect (fn, "dict-cycle.pth", with_pkl (e_cycle), LA_ERROR_FORMAT, "nested");
  expect (fn, "rebuild-param-args.pth", with_pkl (e_rebuild_param), LA_ERROR_UNSUPPORTED, "_rebuild_parameter");
  expect (fn, "long-9-bytes.pth", with_pkl (e_long), LA_ERROR_UNSUPPORTED, "9 bytes");
  expect (fn, "string-past-end.pth", with_pkl (e_trunc_str), LA_ERROR_FORMAT, "truncated");
  expect (fn, "stride0-broadcast.pth", with_pkl (e_broadcast), LA_ERROR_UNSUPPORTED, "expands");
  expect (fn, "global-nul.pth", with_pkl (e_global_nul), LA_ERROR_FORMAT, "NUL");
  expect (fn, "shared-subdicts.pth", with_pkl (e_shared), LA_ERROR_FORMAT, "share sub-dicts");

  /* A pickle that is only STOP: nothing on the stack. */
  GByteArray *stop = g_byte_array_new ();
  op (stop, '.');
  ZEnt only_stop[] = { { .name = "archive/data.pkl", .data = stop->data, .len = stop->len } };
  expect (fn, "stack-underflow.pth", torch_zip (NULL, only_stop, 1, NULL), LA_ERROR_FORMAT, "underflow");
  /* A pickle without STOP. */
  ZEnt no_stop[] = { { .name = "archive/data.pkl", .data = "\x80\x02}", .len = 3 } };
  expect (fn, "no-stop.pth", torch_zip (NULL, no_stop, 1, NULL), LA_ERROR_FORMAT, "truncated");
  g_byte_array_unref (stop);
}

static void
test_torchzip_zip (void)
{
  OpenFn fn = la_torchzip_open;
  ZEnt deflated[] = { { .name = "archive/data/0", .method = 8 } };
  expect (fn, "compressed.pth", torch_zip (NULL, deflated, 1, NULL), LA_ERROR_FORMAT, "archive/data/0");
  ZEnt encrypted[] = { { .name = "archive/data/0", .flags = 1 } };
  expect (fn, "encrypted.pth", torch_zip (NULL, encrypted, 1, NULL), LA_ERROR_FORMAT, "encrypted");
  ZEnt dotdot[] = { { .name = "archive/../../etc/passwd", .data = "x", .len = 1 } };
  expect (fn, "dotdot.pth", torch_zip (NULL, dotdot, 1, NULL), LA_ERROR_FORMAT, "unsafe name");
  ZEnt absolute[] = { { .name = "/archive/x", .data = "x", .len = 1 } };
  expect (fn, "absolute.pth", torch_zip (NULL, absolute, 1, NULL), LA_ERROR_FORMAT, "unsafe name");
  ZEnt backslash[] = { { .name = "archive\\..\\x", .data = "x", .len = 1 } };
  expect (fn, "backslash.pth", torch_zip (NULL, backslash, 1, NULL), LA_ERROR_FORMAT, "unsafe name");
  ZEnt no_pkl[] = { { .name = "-archive/data.pkl" } };
  expect (fn, "no-data-pkl.pth", torch_zip (NULL, no_pkl, 1, NULL), LA_ERROR_FORMAT, "data.pkl");
  ZEnt two_pkl[] = { { .name = "other/data.pkl", .data = "}.", .len = 2 } };
  expect (fn, "two-pickles.pth", torch_zip (NULL, two_pkl, 1, NULL), LA_ERROR_FORMAT, "two pickles");
  ZEnt no_storage[] = { { .name = "-archive/data/0" } };
  expect (fn, "storage-entry-missing.pth", torch_zip (NULL, no_storage, 1, NULL), LA_ERROR_FORMAT, "archive/data/0");
  /* data.pkl's central size reaches into the next entry's local header. */
  ZEnt overlap[] = { { .name = "archive/data/0", .size_delta = 8 } };
  expect (fn, "overlap.pth", torch_zip (NULL, overlap, 1, NULL), LA_ERROR_FORMAT, "overlap");
  ZEnt outside[] = { { .name = "archive/version", .size_delta = 1 << 20 } };
  expect (fn, "entry-outside.pth", torch_zip (NULL, outside, 1, NULL), LA_ERROR_FORMAT, "outside the file");
  ZEnt renamed[] = { { .name = "archive/version", .central_name = "archive/other" } };
  expect (fn, "name-mismatch.pth", torch_zip (NULL, renamed, 1, NULL), LA_ERROR_FORMAT, "another file");
  ZEnt dup[] = { { .name = "archive/data/0", .data = "x", .len = 1, .append = TRUE } };
  expect (fn, "duplicate.pth", torch_zip (NULL, dup, 1, NULL), LA_ERROR_FORMAT, "twice");
  ZEnt big_endian[] = { { .name = "archive/byteorder", .data = "big", .len = 3 } };
  expect (fn, "big-endian.pth", torch_zip (NULL, big_endian, 1, NULL), LA_ERROR_UNSUPPORTED, "little-endian");
  ZOpts cd_past = { .cd_off_delta = 1000 };
  expect (fn, "cd-past-end.pth", torch_zip (NULL, NULL, 0, &cd_past), LA_ERROR_FORMAT, "central directory");
  ZOpts cd_early = { .cd_off_delta = -3 };
  expect (fn, "cd-misplaced.pth", torch_zip (NULL, NULL, 0, &cd_early), LA_ERROR_FORMAT, "central directory");
  ZOpts cd64 = { .cd_off_delta = (gint64) 1 << 40, .zip64 = TRUE };
  expect (fn, "zip64-cd-past-end.pth", torch_zip (NULL, NULL, 0, &cd64), LA_ERROR_FORMAT, "central directory");

  /* A CRC mismatch in data.pkl (bit flip inside the pickle's GLOBAL text). */
  GByteArray *z = torch_zip (NULL, NULL, 0, NULL);
  guint8 *hit = memmem (z->data, z->len, "OrderedDict", 11);
  hit[0] = 'o';
  expect (fn, "pkl-crc.pth", z, LA_ERROR_FORMAT, "CRC");

  GByteArray *empty = g_byte_array_new ();
  expect (fn, "empty.pth", empty, LA_ERROR_FORMAT, "too short");
  GByteArray *junk = g_byte_array_new ();
  for (int i = 0; i < 100; i++)
    op (junk, (guint8) (i * 37));
  expect (fn, "junk.pth", junk, LA_ERROR_FORMAT, "end-of-central-directory");
}

/* ------------------------------------------------------------------------ */
/* safetensors                                                              */

static GByteArray *
st_file (const char *header, gsize data_len)
{
  GByteArray *b = g_byte_array_new ();
  u64 (b, strlen (header));
  raw (b, header, strlen (header));
  for (gsize i = 0; i < data_len; i++)
    op (b, (guint8) i);
  return b;
}

static GByteArray *
st_with_len (guint64 hlen)
{
  GByteArray *b = st_file ("{}", 0);
  for (int k = 0; k < 8; k++)
    b->data[k] = (guint8) (hlen >> (8 * k));
  return b;
}

static void
test_safetensors_catalogue (void)
{
  OpenFn fn = la_safetensors_open;
  const char *good = "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}}";
  GByteArray *g = st_file (good, 24);
  torture (fn, "torture.safetensors", g, LA_ERROR_FORMAT);
  g_byte_array_unref (g);

#define ST(name, hdr, n, code, needle) expect (fn, name ".safetensors", st_file (hdr, n), code, needle)
#define T1(spec) "{\"a\":" spec "}"
  expect (fn, "len-past-end.safetensors", st_with_len (1000), LA_ERROR_FORMAT, "exceeds");
  expect (fn, "len-huge.safetensors", st_with_len (G_MAXUINT64), LA_ERROR_FORMAT, "exceeds");
  expect (fn, "len-short.safetensors", st_with_len (1), LA_ERROR_FORMAT, "JSON");
  ST ("not-json", "{\"a\":", 0, LA_ERROR_FORMAT, "JSON");
  ST ("json-array", "[1,2,3]", 0, LA_ERROR_FORMAT, "object");
  ST ("json-string", "\"hello\"", 0, LA_ERROR_FORMAT, "object");
  ST ("entry-not-object", "{\"a\":5}", 0, LA_ERROR_FORMAT, "'a'");
  ST ("no-dtype", T1 ("{\"shape\":[1],\"data_offsets\":[0,4]}"), 4, LA_ERROR_FORMAT, "dtype");
  ST ("bad-dtype", T1 ("{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}"), 4, LA_ERROR_FORMAT, "Q7");
  ST ("shape-not-array", T1 ("{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}"), 4, LA_ERROR_FORMAT, "shape");
  ST ("shape-float", T1 ("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}"), 4, LA_ERROR_FORMAT, "shape");
  ST ("shape-negative", T1 ("{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}"), 4, LA_ERROR_FORMAT, "negative");
  ST ("shape-overflow", T1 ("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}"),
      4, LA_ERROR_FORMAT, "overflow");
  ST ("shape-overflow-size", T1 ("{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}"),
      4, LA_ERROR_FORMAT, "overflow");
  ST ("six-dims", T1 ("{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1],\"data_offsets\":[0,4]}"), 4, LA_ERROR_FORMAT, "dimensions");
  ST ("size-mismatch", T1 ("{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8]}"), 16, LA_ERROR_FORMAT, "'a'");
  ST ("offsets-past-end", T1 ("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}"), 8, LA_ERROR_FORMAT, "outside");
  ST ("offsets-reversed", T1 ("{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}"), 8, LA_ERROR_FORMAT, "outside");
  ST ("offsets-negative", T1 ("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}"), 8, LA_ERROR_FORMAT, "data_offsets");
  ST ("offsets-huge", T1 ("{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551615,0]}"),
      8, LA_ERROR_FORMAT, "'a'");
  ST ("offsets-one", T1 ("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}"), 8, LA_ERROR_FORMAT, "data_offsets");
  ST ("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, LA_ERROR_FORMAT, "overlap");
  ST ("non-utf8-name", "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, LA_ERROR_FORMAT, "UTF-8");
  GByteArray *t = st_file ("{}", 0);
  g_byte_array_set_size (t, 5);
  expect (fn, "truncated.safetensors", t, LA_ERROR_FORMAT, "truncated");
#undef T1
#undef ST
}

/* A lone surrogate escape or a NUL escape in a name must not yield a name
 * that is not UTF-8 or that silently differs; either an error or a valid name. */
static void
test_safetensors_escapes (void)
{
  const char *hdrs[] = {
    "{\"a\\udc80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
    "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
    ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"),   /* duplicate key */
  };
  for (guint i = 0; i < G_N_ELEMENTS (hdrs); i++) {
    GByteArray *b = st_file (hdrs[i], 4);
    g_autofree char *p = write_tmp ("escape.safetensors", b->data, b->len);
    GError *err = NULL;
    LaCheckpoint *ck = la_safetensors_open (p, &err);
    if (ck) {
      const char *const *names = la_checkpoint_names (ck);
      for (guint k = 0; k < la_checkpoint_size (ck); k++)
        g_assert_true (g_utf8_validate (names[k], -1, NULL));
      la_checkpoint_unref (ck);
    } else {
      g_assert_true (err->domain == LA_ERROR);
      g_assert_nonnull (strstr (err->message, p));
      g_error_free (err);
    }
    g_unlink (p);
    g_byte_array_unref (b);
  }
}

/* json-glib recurses once per level: 100,000 '[' overflow its stack.  Every
 * reader of a downloaded JSON file refuses nesting beyond its format first;
 * brackets inside strings (escaped quotes included) do not count. */
static char *
nested (int depth)
{
  GString *s = g_string_new (NULL);
  for (int i = 0; i < depth; i++)
    g_string_append_c (s, '[');
  for (int i = 0; i < depth; i++)
    g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static void
test_json_nesting (void)
{
  const int DEEP = 100000;
  g_autofree char *deep = nested (DEEP);
  g_autofree char *hdr = g_strdup_printf ("{\"a\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[0,4]}}", deep);
  expect (la_safetensors_open, "deep.safetensors", st_file (hdr, 4), LA_ERROR_FORMAT, "nested deeper than 3");
  /* one level more than the format has ([[1]] as a shape) */
  expect (la_safetensors_open, "depth4.safetensors",
          st_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", 4), LA_ERROR_FORMAT, "nested");
  /* brackets and an escaped quote inside a name are text, not nesting */
  GError *err = NULL;
  GByteArray *ok = st_file ("{\"[[[[\\\"[[[[{{{{\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
  err = try_open (la_safetensors_open, "brackets-in-name.safetensors", ok->data, ok->len);
  g_assert_no_error (err);
  g_byte_array_unref (ok);

  /* the shard index and the two config.json readers */
  g_autofree char *idx_text = g_strdup_printf ("{\"metadata\":%s,\"weight_map\":{}}", deep);
  g_autofree char *idx = write_tmp ("deep.safetensors.index.json", idx_text, strlen (idx_text));
  g_assert_null (la_safetensors_open_index (idx, &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_FORMAT);
  g_assert_nonnull (strstr (err->message, "nested deeper"));
  g_assert_nonnull (strstr (err->message, idx));
  g_clear_error (&err);
  g_autofree char *cfg_text = g_strdup_printf ("{\"dim\":96,\"id2label\":%s}", deep);
  g_autofree char *cfg = write_tmp ("config.json", cfg_text, strlen (cfg_text));
  LaDitConfig dc;
  g_assert_false (la_dit_config_from_json_file (&dc, cfg, &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_FORMAT);
  g_assert_nonnull (strstr (err->message, "nested deeper"));
  g_clear_error (&err);
  LaWav2Vec2Config wc;
  g_assert_false (la_wav2vec2_config_load (cfg, &wc, &err));
  g_assert_error (err, LA_ERROR, LA_ERROR_FORMAT);
  g_assert_nonnull (strstr (err->message, cfg));
  g_clear_error (&err);
  g_unlink (idx);
  g_unlink (cfg);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("la-malformed-XXXXXX", NULL);
  g_test_add_func ("/malformed/torchzip/good", test_torchzip_good);
  g_test_add_func ("/malformed/torchzip/zip", test_torchzip_zip);
  g_test_add_func ("/malformed/torchzip/pickle", test_torchzip_pickle);
  g_test_add_func ("/malformed/torchzip/torture", test_torchzip_torture);
  g_test_add_func ("/malformed/safetensors/catalogue", test_safetensors_catalogue);
  g_test_add_func ("/malformed/safetensors/escapes", test_safetensors_escapes);
  g_test_add_func ("/malformed/json-nesting", test_json_nesting);
  int rc = g_test_run ();
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return rc;
}
