/* la-torchzip.c — PyTorch torch.save zip archives, read and written with no
 * Python.
 *
 * A torch.save file (torch >= 1.6) is a zip archive of STORED entries:
 *   <prefix>/data.pkl      a pickle program that rebuilds the saved object
 *   <prefix>/data/<key>    one raw little-endian storage per key
 *   <prefix>/version       "3\n" (and newer torch: byteorder, .data/...)
 * <prefix> is the archive's top folder ("archive", or the file's stem for
 * older torch).  Entries carry zip's data-descriptor flag, so sizes come from
 * the central directory, and torch always writes the zip64 end records.
 *
 * Reading: the file is memory-mapped; the zip structures are validated
 * completely (stored only, not encrypted, names without "..", every entry
 * inside the file and disjoint from the others); then data.pkl is
 * *interpreted* by a small stack machine that knows only the opcodes and
 * globals torch.save emits for a state dict:
 *   GLOBAL collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 *          torch._utils._rebuild_parameter, torch.<X>Storage, torch.Size
 *   BINPERSID ('storage', <X>Storage, key, location, numel) -> storage entry
 *   REDUCE    _rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 *                                hooks[, metadata]) -> tensor
 * torch.save's default is protocol 2; protocol 4 (pickle_protocol=4) adds
 * FRAME, SHORT_BINUNICODE, MEMOIZE and STACK_GLOBAL, which are accepted too.
 * Nothing is ever executed; any other opcode or global is an error.  A
 * contiguous tensor is a zero-copy view into the mapping; a strided one is
 * copied into a contiguous tensor.
 *
 * Which tensors come out: the unpickled object must be a dict.  While it
 * holds no tensor itself and exactly one of its values is a dict (e.g.
 * {"state_dict": {...}, "epoch": 3}), that inner dict is taken instead.
 * Then every tensor reachable through nested dicts is added under its key
 * path joined with "." ({"a": {"b": t}} -> "a.b"); values that are neither
 * dicts nor tensors (ints, None, lists) are skipped.  A repeated name keeps
 * the later tensor, as Python's dict would.
 *
 * Writing produces what torch.save(OrderedDict) produces: protocol 2 pickle,
 * STORED entries with 64-byte aligned data (padding in a local extra field,
 * id "FB" like torch), correct CRC-32, zip64 end records.
 */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "la-checkpoint-private.h"
#include "la-synth.h"
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <glib/gstdio.h>

/* ------------------------------------------------------------------------ */
/* Little-endian field access and CRC-32                                      */

static inline guint16 rd16 (const guint8 *p) { return (guint16) (p[0] | (p[1] << 8)); }
static inline guint32 rd32 (const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}
static inline guint64 rd64 (const guint8 *p) { return (guint64) rd32 (p) | ((guint64) rd32 (p + 4) << 32); }

guint32
la_crc32 (guint32 crc, const void *data, gsize len)
{
  static guint32 table[256];
  static gsize init = 0;
  if (g_once_init_enter (&init)) {
    for (guint32 i = 0; i < 256; i++) {
      guint32 c = i;
      for (int k = 0; k < 8; k++)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    g_once_init_leave (&init, 1);
  }
  const guint8 *p = data;
  crc = ~crc;
  for (gsize i = 0; i < len; i++)
    crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

/* The register update for n zero bytes is linear over GF(2): M^n, with M the
 * 32x32 matrix of one zero byte (column i = the update of bit i), applied by
 * repeated squaring in O(32^2 log n). */
static guint32
gf2_apply (const guint32 *m, guint32 v)
{
  guint32 r = 0;
  for (int i = 0; v; i++, v >>= 1)
    if (v & 1)
      r ^= m[i];
  return r;
}

guint32
la_crc32_zeros (guint32 crc, guint64 n)
{
  guint32 m[32], sq[32];
  for (int i = 0; i < 32; i++) {
    guint32 c = 1u << i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    m[i] = c;
  }
  guint32 r = ~crc;
  for (; n; n >>= 1) {
    if (n & 1)
      r = gf2_apply (m, r);
    for (int i = 0; i < 32; i++)
      sq[i] = gf2_apply (m, m[i]);
    memcpy (m, sq, sizeof m);
  }
  return ~r;
}

/* ------------------------------------------------------------------------ */
/* Zip directory                                                            */

#define ZIP_LOCAL_SIG   0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_EOCD_SIG    0x06054b50u
#define ZIP64_EOCD_SIG  0x06064b50u
#define ZIP64_LOC_SIG   0x07064b50u

typedef struct {
  char   *name;
  guint64 local_off;   /* local header */
  guint64 data_off;    /* first data byte */
  guint64 size;        /* stored == uncompressed size */
  guint32 crc;
} ZipEntry;

typedef struct {
  const char   *file;      /* display name for messages */
  const guint8 *base;
  guint64       len;
  GBytes       *bytes;
  ZipEntry     *entries;
  guint         n_entries;
  GHashTable   *by_name;   /* name -> ZipEntry* */
  char         *prefix;    /* "<prefix>/" */
} Zip;

static void
zip_clear (Zip *z)
{
  for (guint i = 0; i < z->n_entries; i++)
    g_free (z->entries[i].name);
  g_free (z->entries);
  if (z->by_name)
    g_hash_table_unref (z->by_name);
  g_free (z->prefix);
}

static gboolean
fmt_error (GError **error, const Zip *z, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
static gboolean
fmt_error (GError **error, const Zip *z, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: %s", z->file, msg);
  g_free (msg);
  return FALSE;
}

/* A name is safe when it is relative, has no "." / ".." / empty components
 * and no backslashes or NULs (those would let an extracting tool escape the
 * folder; we never extract, but such an archive is not torch's). */
static gboolean
zip_name_ok (const char *name, gsize len)
{
  if (len == 0 || memchr (name, '\0', len) || memchr (name, '\\', len) || name[0] == '/')
    return FALSE;
  if (len >= 2 && name[1] == ':')
    return FALSE;
  gsize start = 0;
  for (gsize i = 0; i <= len; i++) {
    if (i == len || name[i] == '/') {
      gsize n = i - start;
      if ((n == 2 && name[start] == '.' && name[start + 1] == '.') ||
          (n == 1 && name[start] == '.') || (n == 0 && i != len))
        return FALSE;
      start = i + 1;
    }
  }
  return TRUE;
}

static int
cmp_local_off (gconstpointer a, gconstpointer b)
{
  const ZipEntry *x = *(ZipEntry * const *) a, *y = *(ZipEntry * const *) b;
  return x->local_off < y->local_off ? -1 : x->local_off > y->local_off;
}

/* Reads the zip64 extended-information extra field of a central header:
 * the 64-bit values present are exactly those whose 32-bit field is saturated. */
static gboolean
zip64_extra (Zip *z, const char *name, const guint8 *extra, guint extra_len,
             guint64 *usize, guint64 *csize, guint64 *off, GError **error)
{
  guint pos = 0;
  while (pos + 4 <= extra_len) {
    guint id = rd16 (extra + pos), n = rd16 (extra + pos + 2);
    if (pos + 4 + n > extra_len)
      return fmt_error (error, z, "entry '%s': extra field runs past its end", name);
    if (id == 0x0001) {
      const guint8 *p = extra + pos + 4;
      guint left = n;
      guint64 *want[3] = { usize, csize, off };
      for (int k = 0; k < 3; k++) {
        if (*want[k] != 0xFFFFFFFFu)
          continue;
        if (left < 8)
          return fmt_error (error, z, "entry '%s': zip64 extra field too short", name);
        *want[k] = rd64 (p);
        p += 8;
        left -= 8;
      }
      return TRUE;
    }
    pos += 4 + n;
  }
  return TRUE;
}

static gboolean
zip_parse (Zip *z, GError **error)
{
  const guint8 *b = z->base;
  guint64 len = z->len;
  if (len < 22)
    return fmt_error (error, z, "%" G_GUINT64_FORMAT " bytes is too short for a zip archive (truncated?)", len);

  /* End of central directory: the last 22+ bytes, before an optional comment. */
  gint64 eocd = -1;
  guint64 lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
  for (guint64 p = len - 22 + 1; p-- > lo;) {
    if (rd32 (b + p) == ZIP_EOCD_SIG && p + 22 + rd16 (b + p + 20) <= len) {
      eocd = (gint64) p;
      break;
    }
  }
  if (eocd < 0)
    return fmt_error (error, z, "no zip end-of-central-directory record (not a zip archive, or truncated)");
  const guint8 *e = b + eocd;
  if (rd16 (e + 4) != 0 || rd16 (e + 6) != 0)
    return fmt_error (error, z, "multi-disk zip archives are not supported");
  guint64 n_entries = rd16 (e + 10), cd_size = rd32 (e + 12), cd_off = rd32 (e + 16);
  guint64 cd_limit = (guint64) eocd;   /* the directory ends before this */

  /* zip64: a locator just before the EOCD points at the zip64 EOCD record. */
  if (eocd >= 20 && rd32 (b + eocd - 20) == ZIP64_LOC_SIG) {
    const guint8 *loc = b + eocd - 20;
    guint64 e64 = rd64 (loc + 8);
    if (rd32 (loc + 4) != 0 || rd32 (loc + 16) > 1)
      return fmt_error (error, z, "multi-disk zip64 archives are not supported");
    if (e64 > (guint64) eocd - 20 || (guint64) eocd - 20 - e64 < 56 || rd32 (b + e64) != ZIP64_EOCD_SIG)
      return fmt_error (error, z, "zip64 end-of-central-directory locator points outside the file");
    const guint8 *r = b + e64;
    if (rd32 (r + 16) != 0 || rd32 (r + 20) != 0)
      return fmt_error (error, z, "multi-disk zip64 archives are not supported");
    n_entries = rd64 (r + 32);
    cd_size = rd64 (r + 40);
    cd_off = rd64 (r + 48);
    cd_limit = e64;
  } else if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
    return fmt_error (error, z, "zip64 archive without its zip64 end-of-central-directory locator");
  }
  if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
    return fmt_error (error, z, "central directory (offset %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                      " bytes) lies outside the file", cd_off, cd_size);
  if (n_entries > cd_size / 46)
    return fmt_error (error, z, "central directory claims %" G_GUINT64_FORMAT " entries in %"
                      G_GUINT64_FORMAT " bytes", n_entries, cd_size);

  z->entries = g_new0 (ZipEntry, n_entries ? n_entries : 1);
  z->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  guint64 pos = cd_off, cd_end = cd_off + cd_size;
  for (guint64 i = 0; i < n_entries; i++) {
    if (cd_end - pos < 46 || rd32 (b + pos) != ZIP_CENTRAL_SIG)
      return fmt_error (error, z, "central directory entry %" G_GUINT64_FORMAT " is malformed", i);
    const guint8 *c = b + pos;
    guint flags = rd16 (c + 8), method = rd16 (c + 10);
    guint32 crc = rd32 (c + 16);
    guint64 csize = rd32 (c + 20), usize = rd32 (c + 24), off = rd32 (c + 42);
    guint nl = rd16 (c + 28), xl = rd16 (c + 30), kl = rd16 (c + 32);
    if (cd_end - pos - 46 < (guint64) nl + xl + kl)
      return fmt_error (error, z, "central directory entry %" G_GUINT64_FORMAT " runs past the directory", i);
    const char *nm = (const char *) c + 46;
    char *shown = g_utf8_make_valid (nm, nl);   /* for messages only */
    if (!zip_name_ok (nm, nl)) {
      fmt_error (error, z, "entry '%s': unsafe name (absolute, '..', '.', empty component or backslash)", shown);
      g_free (shown);
      return FALSE;
    }
    ZipEntry *ent = &z->entries[z->n_entries++];
    ent->name = g_strndup (nm, nl);
    g_free (shown);
    if (!g_utf8_validate (ent->name, -1, NULL))
      return fmt_error (error, z, "entry %" G_GUINT64_FORMAT ": name is not UTF-8", i);
    if (flags & 0x41)
      return fmt_error (error, z, "entry '%s' is encrypted", ent->name);
    if (method != 0)
      return fmt_error (error, z, "entry '%s' is compressed (method %u); only stored entries are supported",
                        ent->name, method);
    if (!zip64_extra (z, ent->name, c + 46 + nl, xl, &usize, &csize, &off, error))
      return FALSE;
    if (csize != usize)
      return fmt_error (error, z, "entry '%s': stored size %" G_GUINT64_FORMAT " differs from size %"
                        G_GUINT64_FORMAT, ent->name, csize, usize);
    /* Local header: its own name/extra lengths decide where the data starts. */
    if (off > cd_off || cd_off - off < 30 || rd32 (b + off) != ZIP_LOCAL_SIG)
      return fmt_error (error, z, "entry '%s': local header at %" G_GUINT64_FORMAT " is missing or outside the file",
                        ent->name, off);
    const guint8 *l = b + off;
    guint lnl = rd16 (l + 26), lxl = rd16 (l + 28);
    if (rd16 (l + 6) & 0x41)
      return fmt_error (error, z, "entry '%s' is encrypted", ent->name);
    if (rd16 (l + 8) != 0)
      return fmt_error (error, z, "entry '%s' is compressed (method %u); only stored entries are supported",
                        ent->name, rd16 (l + 8));
    guint64 data = off + 30 + lnl + lxl;
    if (data > cd_off || usize > cd_off - data)
      return fmt_error (error, z, "entry '%s': data (%" G_GUINT64_FORMAT " bytes at %" G_GUINT64_FORMAT
                        ") lies outside the file", ent->name, usize, data);
    if (lnl != nl || memcmp (l + 30, nm, nl) != 0)
      return fmt_error (error, z, "entry '%s': local header names another file", ent->name);
    ent->local_off = off;
    ent->data_off = data;
    ent->size = usize;
    ent->crc = crc;
    if (!g_hash_table_insert (z->by_name, ent->name, ent))
      return fmt_error (error, z, "entry '%s' appears twice", ent->name);
    pos += 46 + (guint64) nl + xl + kl;
  }

  /* Entries must not overlap: each one's data ends before the next header. */
  GPtrArray *order = g_ptr_array_sized_new (z->n_entries);
  for (guint i = 0; i < z->n_entries; i++)
    g_ptr_array_add (order, &z->entries[i]);
  g_ptr_array_sort (order, cmp_local_off);
  for (guint i = 1; i < order->len; i++) {
    const ZipEntry *p = order->pdata[i - 1], *q = order->pdata[i];
    if (p->data_off + p->size > q->local_off) {
      fmt_error (error, z, "entries '%s' and '%s' overlap", p->name, q->name);
      g_ptr_array_unref (order);
      return FALSE;
    }
  }
  g_ptr_array_unref (order);
  return TRUE;
}

/* The archive's top folder: the one entry named "<prefix>/data.pkl". */
static const ZipEntry *
zip_find_pickle (Zip *z, GError **error)
{
  const ZipEntry *found = NULL;
  for (guint i = 0; i < z->n_entries; i++) {
    const char *n = z->entries[i].name, *slash = strchr (n, '/');
    if (slash && slash != n && strcmp (slash, "/data.pkl") == 0) {
      if (found) {
        fmt_error (error, z, "two pickles ('%s' and '%s'); not a torch.save archive", found->name, n);
        return NULL;
      }
      found = &z->entries[i];
    }
  }
  if (!found) {
    fmt_error (error, z, "no '<prefix>/data.pkl' entry; not a torch.save archive");
    return NULL;
  }
  z->prefix = g_strndup (found->name, strlen (found->name) - strlen ("data.pkl"));
  return found;
}

/* ------------------------------------------------------------------------ */
/* Pickle values                                                            */

typedef enum {
  PV_NONE, PV_BOOL, PV_INT, PV_STR, PV_TUPLE, PV_LIST, PV_DICT,
  PV_GLOBAL, PV_STORAGE, PV_TENSOR,
} PvKind;

typedef enum {
  GL_ORDERED_DICT, GL_REBUILD_TENSOR_V2, GL_REBUILD_PARAMETER, GL_STORAGE, GL_TORCH_SIZE,
} GlobalKind;

typedef struct Pv Pv;
struct Pv {
  PvKind kind;
  gint64 i;            /* INT, BOOL */
  char *s;             /* STR (NUL-terminated, valid UTF-8) */
  GPtrArray *items;    /* TUPLE, LIST; DICT as key, value, key, value, ... */
  GlobalKind global;   /* GLOBAL */
  LaDType dtype;       /* GLOBAL storage type, STORAGE */
  const ZipEntry *entry; /* STORAGE */
  gint64 numel;        /* STORAGE */
  LaTensor *tensor;    /* TENSOR */
};

static const struct { const char *name; LaDType dtype; } storage_types[] = {
  { "FloatStorage", LA_DTYPE_F32 },     { "BFloat16Storage", LA_DTYPE_BF16 },
  { "HalfStorage", LA_DTYPE_F16 },      { "DoubleStorage", LA_DTYPE_F64 },
  { "LongStorage", LA_DTYPE_I64 },      { "IntStorage", LA_DTYPE_I32 },
  { "ShortStorage", LA_DTYPE_I16 },     { "CharStorage", LA_DTYPE_I8 },
  { "ByteStorage", LA_DTYPE_U8 },       { "BoolStorage", LA_DTYPE_BOOL },
  { "Float8_e4m3fnStorage", LA_DTYPE_F8_E4M3 },
};

typedef struct {
  Zip        *z;
  const char *pkl_name;
  GPtrArray  *arena;   /* every Pv, freed together */
  GPtrArray  *stack;
  GArray     *marks;   /* stack heights at each MARK */
  GHashTable *memo;    /* index -> Pv* */
  gsize       op_off;  /* offset of the current opcode, for messages */
  guint64     copied;  /* bytes gathered for strided tensors so far */
} Unpickler;

static void
pv_free (gpointer p)
{
  Pv *v = p;
  g_free (v->s);
  if (v->items)
    g_ptr_array_unref (v->items);
  if (v->tensor)
    la_tensor_unref (v->tensor);
  g_free (v);
}

static Pv *
pv_new (Unpickler *u, PvKind kind)
{
  Pv *v = g_new0 (Pv, 1);
  v->kind = kind;
  if (kind == PV_TUPLE || kind == PV_LIST || kind == PV_DICT)
    v->items = g_ptr_array_new ();
  g_ptr_array_add (u->arena, v);
  return v;
}

static gboolean
pk_error (Unpickler *u, GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF (4, 5);
static gboolean
pk_error (Unpickler *u, GError **error, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, LA_ERROR, code, "%s: %s at byte %" G_GSIZE_FORMAT ": %s",
               u->z->file, u->pkl_name, u->op_off, msg);
  g_free (msg);
  return FALSE;
}

/* The top of the stack above the last MARK, taken off it (pop) or not;
 * NULL with an error when there is none. */
static Pv *
top_above_mark (Unpickler *u, gboolean pop, GError **error)
{
  guint floor = u->marks->len ? g_array_index (u->marks, guint, u->marks->len - 1) : 0;
  if (u->stack->len <= floor) {
    pk_error (u, error, LA_ERROR_FORMAT, "pickle stack underflow");
    return NULL;
  }
  return pop ? g_ptr_array_steal_index (u->stack, u->stack->len - 1) : u->stack->pdata[u->stack->len - 1];
}

static Pv *
pop (Unpickler *u, GError **error)
{
  return top_above_mark (u, TRUE, error);
}

static Pv *
top (Unpickler *u, GError **error)
{
  return top_above_mark (u, FALSE, error);
}

/* Pops everything above the last MARK into a new TUPLE/LIST-like array. */
static gboolean
pop_mark (Unpickler *u, GPtrArray *into, GError **error)
{
  if (u->marks->len == 0)
    return pk_error (u, error, LA_ERROR_FORMAT, "no MARK on the pickle stack");
  guint h = g_array_index (u->marks, guint, u->marks->len - 1);
  g_array_set_size (u->marks, u->marks->len - 1);
  for (guint i = h; i < u->stack->len; i++)
    g_ptr_array_add (into, u->stack->pdata[i]);
  g_ptr_array_set_size (u->stack, h);
  return TRUE;
}

static const char *
pv_kind_name (const Pv *v)
{
  static const char *names[] = { "None", "bool", "int", "str", "tuple", "list", "dict",
                                 "global", "storage", "tensor" };
  return names[v->kind];
}

static gboolean
int_arg (Unpickler *u, const Pv *v, const char *what, gint64 *out, GError **error)
{
  if (v->kind != PV_INT && v->kind != PV_BOOL)
    return pk_error (u, error, LA_ERROR_FORMAT, "%s is a %s, not an int", what, pv_kind_name (v));
  *out = v->i;
  return TRUE;
}

/* persistent_load: ('storage', <X>Storage, key, location, numel). */
static Pv *
load_storage (Unpickler *u, const Pv *pid, GError **error)
{
  GPtrArray *it = pid->items;
  if (pid->kind != PV_TUPLE || it->len != 5 || ((Pv *) it->pdata[0])->kind != PV_STR ||
      strcmp (((Pv *) it->pdata[0])->s, "storage") != 0) {
    pk_error (u, error, LA_ERROR_UNSUPPORTED, "persistent id is not ('storage', type, key, location, numel)");
    return NULL;
  }
  const Pv *type = it->pdata[1], *key = it->pdata[2], *numel = it->pdata[4];
  if (type->kind != PV_GLOBAL || type->global != GL_STORAGE) {
    pk_error (u, error, LA_ERROR_FORMAT, "persistent id names no storage type");
    return NULL;
  }
  if (key->kind != PV_STR || numel->kind != PV_INT) {
    pk_error (u, error, LA_ERROR_FORMAT, "persistent id has a malformed key or numel");
    return NULL;
  }
  char *ename = g_strconcat (u->z->prefix, "data/", key->s, NULL);
  const ZipEntry *ent = g_hash_table_lookup (u->z->by_name, ename);
  if (!ent) {
    pk_error (u, error, LA_ERROR_FORMAT, "storage key '%s' has no entry '%s'", key->s, ename);
    g_free (ename);
    return NULL;
  }
  g_free (ename);
  guint64 esz = la_dtype_size (type->dtype);
  if (numel->i < 0 || (guint64) numel->i > ent->size / esz) {
    pk_error (u, error, LA_ERROR_FORMAT, "storage '%s' claims %" G_GINT64_FORMAT " %s elements but its entry holds %"
              G_GUINT64_FORMAT " bytes", key->s, numel->i, la_dtype_name (type->dtype), ent->size);
    return NULL;
  }
  Pv *s = pv_new (u, PV_STORAGE);
  s->dtype = type->dtype;
  s->entry = ent;
  s->numel = numel->i;
  s->s = g_strdup (key->s);
  return s;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 *                    backward_hooks[, metadata]) */
static Pv *
rebuild_tensor (Unpickler *u, const Pv *args, GError **error)
{
  GPtrArray *a = args->items;
  if (a->len != 6 && a->len != 7) {
    pk_error (u, error, LA_ERROR_FORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %u", a->len);
    return NULL;
  }
  const Pv *st = a->pdata[0], *size = a->pdata[2], *stride = a->pdata[3];
  gint64 offset = 0;
  if (st->kind != PV_STORAGE) {
    pk_error (u, error, LA_ERROR_FORMAT, "_rebuild_tensor_v2: first argument is a %s, not a storage", pv_kind_name (st));
    return NULL;
  }
  if (!int_arg (u, a->pdata[1], "storage offset", &offset, error))
    return NULL;
  if (size->kind != PV_TUPLE || stride->kind != PV_TUPLE || size->items->len != stride->items->len) {
    pk_error (u, error, LA_ERROR_FORMAT, "_rebuild_tensor_v2: size and stride are not tuples of one length");
    return NULL;
  }
  int ndim = (int) MIN (size->items->len, 1000u);
  if (ndim > LA_TENSOR_MAX_DIMS) {
    pk_error (u, error, LA_ERROR_UNSUPPORTED, "tensor in storage '%s' has %d dimensions (at most %d supported)",
              st->s, ndim, LA_TENSOR_MAX_DIMS);
    return NULL;
  }
  gint64 shape[LA_TENSOR_MAX_DIMS], strides[LA_TENSOR_MAX_DIMS];
  guint64 numel = 1, last = 0;   /* last element touched, relative to offset */
  for (int d = 0; d < ndim; d++) {
    if (!int_arg (u, size->items->pdata[d], "a size", &shape[d], error) ||
        !int_arg (u, stride->items->pdata[d], "a stride", &strides[d], error))
      return NULL;
    if (shape[d] < 0 || strides[d] < 0) {
      pk_error (u, error, LA_ERROR_FORMAT, "tensor in storage '%s' has a negative size or stride", st->s);
      return NULL;
    }
    if (!g_uint64_checked_mul (&numel, numel, (guint64) shape[d])) {
      pk_error (u, error, LA_ERROR_FORMAT, "tensor in storage '%s': element count overflows", st->s);
      return NULL;
    }
  }
  if (offset < 0) {
    pk_error (u, error, LA_ERROR_FORMAT, "tensor in storage '%s' has a negative offset", st->s);
    return NULL;
  }
  gsize esz = la_dtype_size (st->dtype);
  if (numel > 0) {
    for (int d = 0; d < ndim; d++) {
      guint64 span;
      if (!g_uint64_checked_mul (&span, (guint64) (shape[d] - 1), (guint64) strides[d]) ||
          !g_uint64_checked_add (&last, last, span)) {
        pk_error (u, error, LA_ERROR_FORMAT, "tensor in storage '%s': extent overflows", st->s);
        return NULL;
      }
    }
    if ((guint64) offset >= (guint64) st->numel || last >= (guint64) st->numel - (guint64) offset) {
      pk_error (u, error, LA_ERROR_FORMAT, "tensor at offset %" G_GINT64_FORMAT " of storage '%s' reaches element %"
                G_GUINT64_FORMAT " of %" G_GINT64_FORMAT, offset, st->s, (guint64) offset + last, st->numel);
      return NULL;
    }
  }
  /* Row-major strides; a dimension of size 1 may carry any stride. */
  gboolean contiguous = TRUE;
  gint64 expect = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    if (shape[d] != 1 && strides[d] != expect)
      contiguous = FALSE;
    expect *= shape[d] ? shape[d] : 1;
  }
  const guint8 *src = u->z->base + st->entry->data_off + (guint64) offset * esz;
  LaTensor *t;
  if (numel == 0) {
    t = la_tensor_new (st->dtype, ndim, shape);
  } else if (contiguous && ((guintptr) src % esz) == 0) {
    t = la_tensor_new_view (st->dtype, ndim, shape, u->z->bytes, (void *) src, LA_DEVICE_CPU, 0);
  } else {
    /* Strided (or misaligned): gather element by element into a new tensor.
     * Stride 0 could expand a tiny storage into terabytes; a state dict's
     * strided tensors are permutations of their storages, so all copies
     * together stay within twice the file (plus slack) or it is refused. */
    guint64 bytes = numel * esz;   /* numel <= storage numel unless strides repeat */
    if (numel > (guint64) st->numel || bytes > 2 * u->z->len + (1u << 20) - u->copied) {
      pk_error (u, error, LA_ERROR_UNSUPPORTED, "strided tensor in storage '%s' expands %" G_GINT64_FORMAT
                " elements to %" G_GUINT64_FORMAT, st->s, st->numel, numel);
      return NULL;
    }
    u->copied += bytes;
    t = la_tensor_new (st->dtype, ndim, shape);
    guint8 *dst = t->data;
    gint64 idx[LA_TENSOR_MAX_DIMS] = { 0 };
    for (guint64 n = 0; n < numel; n++) {
      guint64 e = 0;
      for (int d = 0; d < ndim; d++)
        e += (guint64) idx[d] * (guint64) strides[d];
      memcpy (dst + n * esz, src + e * esz, esz);
      for (int d = ndim - 1; d >= 0; d--) {
        if (++idx[d] < shape[d])
          break;
        idx[d] = 0;
      }
    }
  }
  Pv *v = pv_new (u, PV_TENSOR);
  v->tensor = t;
  return v;
}

static Pv *
reduce (Unpickler *u, const Pv *fn, const Pv *args, GError **error)
{
  if (fn->kind != PV_GLOBAL) {
    pk_error (u, error, LA_ERROR_FORMAT, "REDUCE calls a %s", pv_kind_name (fn));
    return NULL;
  }
  if (args->kind != PV_TUPLE) {
    pk_error (u, error, LA_ERROR_FORMAT, "REDUCE arguments are a %s, not a tuple", pv_kind_name (args));
    return NULL;
  }
  GPtrArray *a = args->items;
  switch (fn->global) {
  case GL_ORDERED_DICT:
    if (a->len != 0)
      break;
    return pv_new (u, PV_DICT);
  case GL_REBUILD_TENSOR_V2:
    return rebuild_tensor (u, args, error);
  case GL_REBUILD_PARAMETER:   /* (data, requires_grad, backward_hooks) -> data */
    if (a->len != 3 || ((Pv *) a->pdata[0])->kind != PV_TENSOR)
      break;
    return a->pdata[0];
  case GL_TORCH_SIZE:          /* torch.Size((a, b, ...)) -> the tuple */
    if (a->len != 1 || ((Pv *) a->pdata[0])->kind != PV_TUPLE)
      break;
    return a->pdata[0];
  case GL_STORAGE:
    break;
  }
  pk_error (u, error, LA_ERROR_UNSUPPORTED, "unsupported call of a %s with %u arguments",
            fn->global == GL_ORDERED_DICT ? "collections.OrderedDict" :
            fn->global == GL_REBUILD_PARAMETER ? "torch._utils._rebuild_parameter" :
            fn->global == GL_TORCH_SIZE ? "torch.Size" : "storage type", a->len);
  return NULL;
}

static Pv *
load_global (Unpickler *u, const char *mod, const char *name, GError **error)
{
  Pv *g = NULL;
  if (strcmp (mod, "collections") == 0 && strcmp (name, "OrderedDict") == 0) {
    g = pv_new (u, PV_GLOBAL);
    g->global = GL_ORDERED_DICT;
  } else if (strcmp (mod, "torch._utils") == 0 && strcmp (name, "_rebuild_tensor_v2") == 0) {
    g = pv_new (u, PV_GLOBAL);
    g->global = GL_REBUILD_TENSOR_V2;
  } else if (strcmp (mod, "torch._utils") == 0 && strcmp (name, "_rebuild_parameter") == 0) {
    g = pv_new (u, PV_GLOBAL);
    g->global = GL_REBUILD_PARAMETER;
  } else if (strcmp (mod, "torch") == 0 && strcmp (name, "Size") == 0) {
    g = pv_new (u, PV_GLOBAL);
    g->global = GL_TORCH_SIZE;
  } else if (strcmp (mod, "torch") == 0) {
    for (guint i = 0; i < G_N_ELEMENTS (storage_types); i++) {
      if (strcmp (name, storage_types[i].name) == 0) {
        g = pv_new (u, PV_GLOBAL);
        g->global = GL_STORAGE;
        g->dtype = storage_types[i].dtype;
      }
    }
  }
  if (!g) {
    char *m = g_utf8_make_valid (mod, -1), *n = g_utf8_make_valid (name, -1);
    pk_error (u, error, LA_ERROR_UNSUPPORTED, "global '%s.%s' is not allowed in a checkpoint", m, n);
    g_free (m);
    g_free (n);
  }
  return g;
}

/* Runs the pickle program; returns the object STOP leaves (owned by the arena). */
static Pv *
unpickle (Unpickler *u, const guint8 *p, gsize len, GError **error)
{
  gsize pos = 0;
#define NEED(n) do { if (len - pos < (gsize) (n)) { pk_error (u, error, LA_ERROR_FORMAT, "pickle truncated"); return NULL; } } while (0)
#define POP(v) Pv *v = pop (u, error); if (!v) return NULL
  for (;;) {
    u->op_off = pos;
    NEED (1);
    guint8 op = p[pos++];
    Pv *v = NULL;       /* pushed when set */
    switch (op) {
    case 0x80:          /* PROTO */
      NEED (1);
      if (p[pos] > 5)
        return pk_error (u, error, LA_ERROR_UNSUPPORTED, "pickle protocol %u", p[pos]), NULL;
      pos += 1;
      break;
    case 0x95:          /* FRAME: only a length hint */
      NEED (8);
      pos += 8;
      break;
    case '}': v = pv_new (u, PV_DICT); break;
    case ')': v = pv_new (u, PV_TUPLE); break;
    case ']': v = pv_new (u, PV_LIST); break;
    case 'N': v = pv_new (u, PV_NONE); break;
    case 0x88: case 0x89:   /* NEWTRUE, NEWFALSE */
      v = pv_new (u, PV_BOOL);
      v->i = op == 0x88;
      break;
    case '(':           /* MARK */
      g_array_append_val (u->marks, u->stack->len);
      break;
    case 'X': case 0x8c: {  /* BINUNICODE, SHORT_BINUNICODE */
      gsize n;
      if (op == 'X') {
        NEED (4);
        n = rd32 (p + pos);
        pos += 4;
      } else {
        NEED (1);
        n = p[pos++];
      }
      NEED (n);
      const char *s = (const char *) p + pos;
      if (!g_utf8_validate_len (s, n, NULL) || memchr (s, '\0', n))
        return pk_error (u, error, LA_ERROR_FORMAT, "string is not valid UTF-8"), NULL;
      v = pv_new (u, PV_STR);
      v->s = g_strndup (s, n);
      pos += n;
      break;
    }
    case 'K': NEED (1); v = pv_new (u, PV_INT); v->i = p[pos]; pos += 1; break;
    case 'M': NEED (2); v = pv_new (u, PV_INT); v->i = rd16 (p + pos); pos += 2; break;
    case 'J': NEED (4); v = pv_new (u, PV_INT); v->i = (gint32) rd32 (p + pos); pos += 4; break;
    case 0x8a: {        /* LONG1: n-byte little-endian two's complement */
      NEED (1);
      guint n = p[pos++];
      NEED (n);
      if (n > 8)
        return pk_error (u, error, LA_ERROR_UNSUPPORTED, "integer of %u bytes", n), NULL;
      guint64 x = 0;
      for (guint k = 0; k < n; k++)
        x |= (guint64) p[pos + k] << (8 * k);
      if (n > 0 && n < 8 && (p[pos + n - 1] & 0x80))
        x |= ~(guint64) 0 << (8 * n);  /* sign-extend */
      v = pv_new (u, PV_INT);
      v->i = (gint64) x;
      pos += n;
      break;
    }
    case 'q': case 'r': case 0x94: {    /* BINPUT, LONG_BINPUT, MEMOIZE */
      guint32 idx;
      if (op == 'q') { NEED (1); idx = p[pos]; pos += 1; }
      else if (op == 'r') { NEED (4); idx = rd32 (p + pos); pos += 4; }
      else idx = g_hash_table_size (u->memo);
      Pv *t = top (u, error);
      if (!t)
        return NULL;
      g_hash_table_insert (u->memo, GUINT_TO_POINTER (idx), t);
      break;
    }
    case 'h': case 'j': {   /* BINGET, LONG_BINGET */
      guint32 idx;
      if (op == 'h') { NEED (1); idx = p[pos]; pos += 1; }
      else { NEED (4); idx = rd32 (p + pos); pos += 4; }
      gpointer hit;
      if (!g_hash_table_lookup_extended (u->memo, GUINT_TO_POINTER (idx), NULL, &hit))
        return pk_error (u, error, LA_ERROR_FORMAT, "memo entry %u is unset", idx), NULL;
      v = hit;
      break;
    }
    case 't':           /* TUPLE */
      v = pv_new (u, PV_TUPLE);
      if (!pop_mark (u, v->items, error))
        return NULL;
      break;
    case 0x85: case 0x86: case 0x87: {   /* TUPLE1..3 */
      guint n = op - 0x84;
      v = pv_new (u, PV_TUPLE);
      Pv *tmp[3];
      for (guint k = 0; k < n; k++) {
        tmp[n - 1 - k] = pop (u, error);
        if (!tmp[n - 1 - k])
          return NULL;
      }
      for (guint k = 0; k < n; k++)
        g_ptr_array_add (v->items, tmp[k]);
      break;
    }
    case 'a': {         /* APPEND */
      POP (item);
      Pv *l = top (u, error);
      if (!l)
        return NULL;
      if (l->kind != PV_LIST)
        return pk_error (u, error, LA_ERROR_FORMAT, "APPEND to a %s", pv_kind_name (l)), NULL;
      g_ptr_array_add (l->items, item);
      break;
    }
    case 'e': case 'u': {   /* APPENDS, SETITEMS */
      GPtrArray *tmp = g_ptr_array_new ();
      if (!pop_mark (u, tmp, error)) {
        g_ptr_array_unref (tmp);
        return NULL;
      }
      Pv *c = top (u, error);
      gboolean ok = c && c->kind == (op == 'e' ? PV_LIST : PV_DICT) && (op == 'e' || tmp->len % 2 == 0);
      if (ok)
        for (guint k = 0; k < tmp->len; k++)
          g_ptr_array_add (c->items, tmp->pdata[k]);
      g_ptr_array_unref (tmp);
      if (!ok) {
        if (c)
          pk_error (u, error, LA_ERROR_FORMAT, "%s on a %s", op == 'e' ? "APPENDS" : "SETITEMS", pv_kind_name (c));
        return NULL;
      }
      break;
    }
    case 's': {         /* SETITEM */
      POP (val);
      POP (key);
      Pv *d = top (u, error);
      if (!d)
        return NULL;
      if (d->kind != PV_DICT)
        return pk_error (u, error, LA_ERROR_FORMAT, "SETITEM on a %s", pv_kind_name (d)), NULL;
      g_ptr_array_add (d->items, key);
      g_ptr_array_add (d->items, val);
      break;
    }
    case 'c': {         /* GLOBAL "module\nname\n" */
      const guint8 *nl1 = memchr (p + pos, '\n', len - pos);
      const guint8 *nl2 = nl1 ? memchr (nl1 + 1, '\n', len - (gsize) (nl1 + 1 - p)) : NULL;
      if (!nl2)
        return pk_error (u, error, LA_ERROR_FORMAT, "GLOBAL truncated"), NULL;
      if (memchr (p + pos, '\0', nl2 - (p + pos)))
        return pk_error (u, error, LA_ERROR_FORMAT, "GLOBAL name holds a NUL byte"), NULL;
      char *mod = g_strndup ((const char *) p + pos, nl1 - (p + pos));
      char *name = g_strndup ((const char *) nl1 + 1, nl2 - nl1 - 1);
      v = load_global (u, mod, name, error);
      g_free (mod);
      g_free (name);
      if (!v)
        return NULL;
      pos = nl2 + 1 - p;
      break;
    }
    case 0x93: {        /* STACK_GLOBAL (protocol 4): module and name from the stack */
      POP (name);
      POP (mod);
      if (mod->kind != PV_STR || name->kind != PV_STR)
        return pk_error (u, error, LA_ERROR_FORMAT, "STACK_GLOBAL needs two strings"), NULL;
      v = load_global (u, mod->s, name->s, error);
      if (!v)
        return NULL;
      break;
    }
    case 'R': {         /* REDUCE */
      POP (args);
      POP (fn);
      v = reduce (u, fn, args, error);
      if (!v)
        return NULL;
      break;
    }
    case 'Q': {         /* BINPERSID */
      POP (pid);
      v = load_storage (u, pid, error);
      if (!v)
        return NULL;
      break;
    }
    case 'b': {         /* BUILD: the state dict's _metadata; ignored */
      POP (state);
      Pv *obj = top (u, error);
      if (!obj)
        return NULL;
      if (obj->kind != PV_DICT)
        return pk_error (u, error, LA_ERROR_UNSUPPORTED, "BUILD on a %s", pv_kind_name (obj)), NULL;
      (void) state;
      break;
    }
    case '.': {         /* STOP */
      POP (result);
      return result;
    }
    default:
      return pk_error (u, error, LA_ERROR_UNSUPPORTED, "pickle opcode 0x%02x ('%c') is not supported",
                       op, g_ascii_isprint (op) ? op : '?'), NULL;
    }
    if (v)
      g_ptr_array_add (u->stack, v);
  }
#undef NEED
#undef POP
}

/* ------------------------------------------------------------------------ */
/* From the unpickled object to named tensors                                */

static gboolean
dict_has_tensor (const Pv *d)
{
  for (guint i = 1; i < d->items->len; i += 2)
    if (((Pv *) d->items->pdata[i])->kind == PV_TENSOR)
      return TRUE;
  return FALSE;
}

/* `budget` bounds the entries visited: one sub-dict shared under many keys
 * at every level would otherwise make the walk exponential. */
static gboolean
flatten (Zip *z, LaCheckpoint *ck, const Pv *d, const char *prefix, int depth, guint64 *budget,
         GError **error)
{
  if (depth > 32)
    return fmt_error (error, z, "dicts nested more than 32 deep (or a dict containing itself)");
  for (guint i = 0; i + 1 < d->items->len; i += 2) {
    const Pv *k = d->items->pdata[i], *v = d->items->pdata[i + 1];
    if ((*budget)-- == 0)
      return fmt_error (error, z, "the saved dicts share sub-dicts too often to flatten");
    if (v->kind != PV_TENSOR && v->kind != PV_DICT)
      continue;
    char *key = k->kind == PV_STR ? g_strdup (k->s) :
                k->kind == PV_INT ? g_strdup_printf ("%" G_GINT64_FORMAT, k->i) : NULL;
    if (!key)
      return fmt_error (error, z, "a dict key is a %s, not a string", pv_kind_name (k));
    char *name = prefix ? g_strconcat (prefix, ".", key, NULL) : g_strdup (key);
    g_free (key);
    gboolean ok = TRUE;
    if (v->kind == PV_TENSOR)
      la_checkpoint_add (ck, name, v->tensor);
    else
      ok = flatten (z, ck, v, name, depth + 1, budget, error);
    g_free (name);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

static LaCheckpoint *
tensors_from (Zip *z, const Pv *obj, guint64 n_values, GError **error)
{
  if (obj->kind != PV_DICT) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "%s: the saved object is a %s, not a dict of tensors",
                 z->file, pv_kind_name (obj));
    return NULL;
  }
  /* {"state_dict": {...}, "epoch": 3} -> the inner dict. */
  for (int depth = 0; depth < 32 && !dict_has_tensor (obj); depth++) {
    const Pv *only = NULL;
    guint n_dicts = 0;
    for (guint i = 1; i < obj->items->len; i += 2)
      if (((Pv *) obj->items->pdata[i])->kind == PV_DICT) {
        only = obj->items->pdata[i];
        n_dicts++;
      }
    if (n_dicts != 1)
      break;
    obj = only;
  }
  LaCheckpoint *ck = la_checkpoint_new ();
  la_checkpoint_set_path (ck, z->file);
  guint64 budget = 4 * n_values + 1024;
  if (!flatten (z, ck, obj, NULL, 0, &budget, error)) {
    la_checkpoint_unref (ck);
    return NULL;
  }
  return ck;
}

LaCheckpoint *
la_torchzip_open_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  Zip z = { 0 };
  gsize len = 0;
  z.file = display_name ? display_name : "(memory)";
  z.bytes = bytes;
  z.base = g_bytes_get_data (bytes, &len);
  z.len = len;
  LaCheckpoint *ck = NULL;

  /* torch.save before 1.6 wrote a bare pickle stream (protocol 2: 0x80 0x02). */
  if (len >= 2 && z.base[0] == 0x80 && z.base[1] <= 5) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "%s: legacy (pre-1.6) torch.save format; re-save it with a newer torch", z.file);
    return NULL;
  }
  if (!zip_parse (&z, error)) {
    zip_clear (&z);
    return NULL;
  }
  const ZipEntry *pkl = zip_find_pickle (&z, error);
  if (!pkl) {
    zip_clear (&z);
    return NULL;
  }
  const guint8 *pkl_data = z.base + pkl->data_off;
  if (la_crc32 (0, pkl_data, pkl->size) != pkl->crc) {
    fmt_error (error, &z, "entry '%s' fails its CRC-32 check", pkl->name);
    zip_clear (&z);
    return NULL;
  }
  char *bo_name = g_strconcat (z.prefix, "byteorder", NULL);
  const ZipEntry *bo = g_hash_table_lookup (z.by_name, bo_name);
  g_free (bo_name);
  if (bo && !(bo->size == 6 && memcmp (z.base + bo->data_off, "little", 6) == 0)) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "%s: entry '%s': only little-endian storages are supported",
                 z.file, bo->name);
    zip_clear (&z);
    return NULL;
  }

  Unpickler u = {
    .z = &z, .pkl_name = pkl->name,
    .arena = g_ptr_array_new_with_free_func (pv_free),
    .stack = g_ptr_array_new (),
    .marks = g_array_new (FALSE, FALSE, sizeof (guint)),
    .memo = g_hash_table_new (g_direct_hash, g_direct_equal),
  };
  Pv *obj = unpickle (&u, pkl_data, pkl->size, error);
  if (obj)
    ck = tensors_from (&z, obj, u.arena->len, error);
  g_hash_table_unref (u.memo);
  g_array_unref (u.marks);
  g_ptr_array_unref (u.stack);
  g_ptr_array_unref (u.arena);
  zip_clear (&z);
  return ck;
}

LaCheckpoint *
la_torchzip_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  GError *err = NULL;
  GMappedFile *mf = g_mapped_file_new (path, FALSE, &err);
  if (!mf) {
    g_set_error (error, LA_ERROR, g_error_matches (err, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? LA_ERROR_NOT_FOUND
                 : LA_ERROR_IO, "%s: %s", path, err->message);
    g_error_free (err);
    return NULL;
  }
  GBytes *bytes = g_mapped_file_get_bytes (mf);
  g_mapped_file_unref (mf);
  LaCheckpoint *ck = la_torchzip_open_bytes (bytes, path, error);
  g_bytes_unref (bytes);
  return ck;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */

guint64 la_torchzip_zip64_threshold = 0xFFFFFFFFu;

typedef struct {
  FILE       *f;
  const char *path;
  guint64     off;
  GArray     *central;   /* bytes of the central directory */
  guint       n;
  gboolean    failed;
} ZipWriter;

static void put16 (GArray *a, guint v) { guint8 b[2] = { v, v >> 8 }; g_array_append_vals (a, b, 2); }
static void put32 (GArray *a, guint32 v) { guint8 b[4] = { v, v >> 8, v >> 16, v >> 24 }; g_array_append_vals (a, b, 4); }
static void put64 (GArray *a, guint64 v) { put32 (a, (guint32) v); put32 (a, (guint32) (v >> 32)); }

static void
zw_raw (ZipWriter *w, const void *data, gsize n)
{
  if (!w->failed && n && !la_write_sparse (w->f, data, n))
    w->failed = TRUE;
  w->off += n;
}

/* One STORED entry whose data starts on a 64-byte boundary, as torch does. */
static void
zw_entry (ZipWriter *w, const char *name, const void *data, guint64 size)
{
  gsize nl = strlen (name);
  guint64 hdr = w->off;
  guint32 crc = 0;
  if (la_synth_is_zeros (data, size))
    crc = la_crc32_zeros (0, size);
  else for (guint64 done = 0; done < size;) {   /* la_crc32 takes gsize chunks */
    gsize chunk = (gsize) MIN (size - done, (guint64) 1 << 30);
    crc = la_crc32 (crc, (const guint8 *) data + done, chunk);
    done += chunk;
  }
  gboolean big = size >= la_torchzip_zip64_threshold;
  guint local_x = big ? 20 : 0;                 /* zip64 sizes in the local header */
  guint pad = (guint) ((64 - (hdr + 30 + nl + local_x + 4) % 64) % 64);
  GArray *h = g_array_new (FALSE, FALSE, 1);
  put32 (h, ZIP_LOCAL_SIG); put16 (h, big ? 45 : 20); put16 (h, 0x800); put16 (h, 0);
  put16 (h, 0); put16 (h, 0x21);                /* time 00:00, date 1980-01-01 */
  put32 (h, crc);
  put32 (h, big ? 0xFFFFFFFFu : (guint32) size); put32 (h, big ? 0xFFFFFFFFu : (guint32) size);
  put16 (h, (guint) nl); put16 (h, local_x + 4 + pad);
  g_array_append_vals (h, name, (guint) nl);
  if (big) { put16 (h, 0x0001); put16 (h, 16); put64 (h, size); put64 (h, size); }
  put16 (h, 0x4246); put16 (h, pad);            /* "FB": torch's alignment padding */
  for (guint i = 0; i < pad; i++) { guint8 zc = 'Z'; g_array_append_val (h, zc); }
  zw_raw (w, h->data, h->len);
  g_array_unref (h);
  zw_raw (w, data, size);

  /* Central header; 64-bit values go to a zip64 extra field when needed. */
  gboolean far = hdr >= la_torchzip_zip64_threshold;
  GArray *c = w->central;
  guint x = (big ? 16 : 0) + (far ? 8 : 0);
  put32 (c, ZIP_CENTRAL_SIG); put16 (c, 0x031E); put16 (c, (big || far) ? 45 : 20);
  put16 (c, 0x800); put16 (c, 0); put16 (c, 0); put16 (c, 0x21); put32 (c, crc);
  put32 (c, big ? 0xFFFFFFFFu : (guint32) size); put32 (c, big ? 0xFFFFFFFFu : (guint32) size);
  put16 (c, (guint) nl); put16 (c, x ? x + 4 : 0); put16 (c, 0); put16 (c, 0); put16 (c, 0);
  put32 (c, 0); put32 (c, far ? 0xFFFFFFFFu : (guint32) hdr);
  g_array_append_vals (c, name, (guint) nl);
  if (x) {
    put16 (c, 0x0001); put16 (c, x);
    if (big) { put64 (c, size); put64 (c, size); }
    if (far) put64 (c, hdr);
  }
  w->n++;
}

static void
zw_finish (ZipWriter *w, gboolean zip64_end)
{
  guint64 cd_off = w->off, cd_size = w->central->len;
  zw_raw (w, w->central->data, w->central->len);
  zip64_end = zip64_end || cd_off >= la_torchzip_zip64_threshold || w->n >= 0xFFFF;
  GArray *e = g_array_new (FALSE, FALSE, 1);
  if (zip64_end) {
    guint64 e64 = w->off;
    put32 (e, ZIP64_EOCD_SIG); put64 (e, 44); put16 (e, 0x031E); put16 (e, 45);
    put32 (e, 0); put32 (e, 0); put64 (e, w->n); put64 (e, w->n); put64 (e, cd_size); put64 (e, cd_off);
    put32 (e, ZIP64_LOC_SIG); put32 (e, 0); put64 (e, e64); put32 (e, 1);
  }
  gboolean sat = zip64_end && (cd_off >= la_torchzip_zip64_threshold || w->n >= 0xFFFF);
  put32 (e, ZIP_EOCD_SIG); put16 (e, 0); put16 (e, 0);
  put16 (e, sat ? 0xFFFF : w->n); put16 (e, sat ? 0xFFFF : w->n);
  put32 (e, sat ? 0xFFFFFFFFu : (guint32) cd_size); put32 (e, sat ? 0xFFFFFFFFu : (guint32) cd_off);
  put16 (e, 0);
  zw_raw (w, e->data, e->len);
  g_array_unref (e);
}

/* Pickle emitters (protocol 2). */
static void pk_op (GByteArray *p, guint8 op) { g_byte_array_append (p, &op, 1); }

static void
pk_int (GByteArray *p, gint64 v)
{
  guint8 b[9];
  if (v >= 0 && v < 256) {
    pk_op (p, 'K'); b[0] = (guint8) v; g_byte_array_append (p, b, 1);
  } else if (v >= 0 && v < 65536) {
    pk_op (p, 'M'); b[0] = (guint8) v; b[1] = (guint8) (v >> 8); g_byte_array_append (p, b, 2);
  } else if (v >= G_MININT32 && v <= G_MAXINT32) {
    pk_op (p, 'J');
    for (int k = 0; k < 4; k++) b[k] = (guint8) ((guint64) v >> (8 * k));
    g_byte_array_append (p, b, 4);
  } else {                        /* LONG1, 8 bytes two's complement */
    pk_op (p, 0x8a); b[0] = 8;
    for (int k = 0; k < 8; k++) b[k + 1] = (guint8) ((guint64) v >> (8 * k));
    g_byte_array_append (p, b, 9);
  }
}

static void
pk_str (GByteArray *p, const char *s)
{
  guint32 n = (guint32) strlen (s);
  guint8 b[4] = { n, n >> 8, n >> 16, n >> 24 };
  pk_op (p, 'X');
  g_byte_array_append (p, b, 4);
  g_byte_array_append (p, (const guint8 *) s, n);
}

static void
pk_global (GByteArray *p, const char *mod, const char *name)
{
  pk_op (p, 'c');
  g_byte_array_append (p, (const guint8 *) mod, (guint) strlen (mod));
  pk_op (p, '\n');
  g_byte_array_append (p, (const guint8 *) name, (guint) strlen (name));
  pk_op (p, '\n');
}

static void
pk_tuple_ints (GByteArray *p, int n, const gint64 *v)
{
  pk_op (p, '(');
  for (int i = 0; i < n; i++)
    pk_int (p, v[i]);
  pk_op (p, 't');
}

gboolean
la_torchzip_write_full (const char *path, LaCheckpoint *ck, gboolean zip64_end, GError **error)
{
  g_return_val_if_fail (path != NULL && ck != NULL, FALSE);
  const char *const *names = la_checkpoint_names (ck);
  guint n = la_checkpoint_size (ck);
  for (guint i = 0; i < n; i++) {
    const LaTensor *t = la_checkpoint_get (ck, names[i]);
    if (t->device != LA_DEVICE_CPU) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: tensor '%s' is not on the host", path, names[i]);
      return FALSE;
    }
    if (!g_utf8_validate (names[i], -1, NULL)) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: a tensor name is not UTF-8", path);
      return FALSE;
    }
  }

  /* data.pkl: OrderedDict([(name, _rebuild_tensor_v2(persid, 0, size, stride, False, OrderedDict())), ...]) */
  GByteArray *p = g_byte_array_new ();
  pk_op (p, 0x80); pk_op (p, 2);
  pk_global (p, "collections", "OrderedDict");
  pk_op (p, 'q'); pk_op (p, 0);                 /* memo 0: OrderedDict */
  pk_op (p, ')'); pk_op (p, 'R');
  if (n)
    pk_op (p, '(');
  for (guint i = 0; i < n; i++) {
    const LaTensor *t = la_checkpoint_get (ck, names[i]);
    const char *stype = NULL;
    for (guint k = 0; k < G_N_ELEMENTS (storage_types); k++)
      if (storage_types[k].dtype == t->dtype)
        stype = storage_types[k].name;
    gint64 stride[LA_TENSOR_MAX_DIMS], s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
      stride[d] = s;
      s *= t->shape[d];
    }
    char key[16];
    g_snprintf (key, sizeof key, "%u", i);
    pk_str (p, names[i]);
    if (i == 0) {                               /* memo 1: _rebuild_tensor_v2 */
      pk_global (p, "torch._utils", "_rebuild_tensor_v2");
      pk_op (p, 'q'); pk_op (p, 1);
    } else {
      pk_op (p, 'h'); pk_op (p, 1);
    }
    pk_op (p, '(');
    pk_op (p, '(');                             /* persistent id */
    pk_str (p, "storage");
    pk_global (p, "torch", stype);
    pk_str (p, key);
    pk_str (p, "cpu");
    pk_int (p, la_tensor_numel (t));
    pk_op (p, 't');
    pk_op (p, 'Q');
    pk_int (p, 0);
    pk_tuple_ints (p, t->ndim, t->shape);
    pk_tuple_ints (p, t->ndim, stride);
    pk_op (p, 0x89);                            /* requires_grad False */
    pk_op (p, 'h'); pk_op (p, 0); pk_op (p, ')'); pk_op (p, 'R');   /* OrderedDict() */
    pk_op (p, 't');
    pk_op (p, 'R');
  }
  if (n)
    pk_op (p, 'u');
  pk_op (p, '.');

  /* Write to a temporary name, renamed into place once complete. */
  char *tmp = g_strconcat (path, ".tmp", NULL);
  ZipWriter w = { .path = path, .central = g_array_new (FALSE, FALSE, 1) };
  w.f = g_fopen (tmp, "wb");
  if (!w.f) {
    int e = errno;
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: cannot create: %s", tmp, g_strerror (e));
    g_free (tmp);
    g_byte_array_unref (p);
    g_array_unref (w.central);
    return FALSE;
  }
  zw_entry (&w, "archive/data.pkl", p->data, p->len);
  zw_entry (&w, "archive/byteorder", "little", 6);
  for (guint i = 0; i < n; i++) {
    const LaTensor *t = la_checkpoint_get (ck, names[i]);
    char name[40];
    g_snprintf (name, sizeof name, "archive/data/%u", i);
    zw_entry (&w, name, t->data, la_tensor_nbytes (t));
  }
  zw_entry (&w, "archive/version", "3\n", 2);
  zw_finish (&w, zip64_end);
  g_byte_array_unref (p);
  g_array_unref (w.central);
  int e = 0;
  if (fclose (w.f) != 0 || w.failed)
    e = errno ? errno : EIO;
  if (e == 0 && g_rename (tmp, path) != 0)
    e = errno;
  if (e) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: write failed: %s", path, g_strerror (e));
    g_unlink (tmp);
  }
  g_free (tmp);
  return e == 0;
}

gboolean
la_torchzip_write (const char *path, LaCheckpoint *ck, GError **error)
{
  return la_torchzip_write_full (path, ck, TRUE, error);
}
