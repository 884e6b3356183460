/* la-safetensors.c — safetensors reader (single and sharded) and writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data block; offsets are relative to the data block.
 * The header is validated completely before any tensor is exposed: every
 * entry well formed, offsets inside the data block, byte length equal to
 * numel x dtype size, no two tensors overlapping.
 */
#include "la-checkpoint.h"
#include "liveavatar/la-error.h"
#include "la-synth.h"
#include "la-json.h"
#include <json-glib/json-glib.h>
#include <string.h>
#include <stdio.h>
#include <errno.h>

#define MAX_HEADER (100u * 1024 * 1024)   /* the format's own limit */

typedef struct {
  const char *name;
  LaDType dtype;
  int ndim;
  int64_t shape[LA_TENSOR_MAX_DIMS];
  guint64 begin, end;
} Entry;

static gint
cmp_entry (gconstpointer a, gconstpointer b)
{
  const Entry *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static gboolean
parse_entry (const char *path, const char *name, JsonNode *node, guint64 data_len, Entry *e, GError **error)
{
#define FAIL(...) do { g_autofree char *m_ = g_strdup_printf (__VA_ARGS__); \
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: tensor '%s': %s", path, name, m_); return FALSE; } while (0)
  if (!JSON_NODE_HOLDS_OBJECT (node))
    FAIL ("entry is not a JSON object");
  JsonObject *o = json_node_get_object (node);
  JsonNode *dt = json_object_get_member (o, "dtype");
  JsonNode *sh = json_object_get_member (o, "shape");
  JsonNode *off = json_object_get_member (o, "data_offsets");
  if (!dt || !JSON_NODE_HOLDS_VALUE (dt) || json_node_get_value_type (dt) != G_TYPE_STRING)
    FAIL ("missing or non-string dtype");
  if (!la_dtype_from_name (json_node_get_string (dt), &e->dtype))
    FAIL ("unsupported dtype '%s'", json_node_get_string (dt));
  if (!sh || !JSON_NODE_HOLDS_ARRAY (sh))
    FAIL ("missing or non-array shape");
  JsonArray *sa = json_node_get_array (sh);
  guint nd = json_array_get_length (sa);
  if (nd > LA_TENSOR_MAX_DIMS)
    FAIL ("%u dimensions (at most %d supported)", nd, LA_TENSOR_MAX_DIMS);
  e->ndim = (int) nd;
  guint64 numel = 1;
  for (guint i = 0; i < nd; i++) {
    JsonNode *d = json_array_get_element (sa, i);
    if (!JSON_NODE_HOLDS_VALUE (d) || json_node_get_value_type (d) != G_TYPE_INT64)
      FAIL ("shape[%u] is not an integer", i);
    gint64 v = json_node_get_int (d);
    if (v < 0)
      FAIL ("shape[%u] = %" G_GINT64_FORMAT " is negative", i, v);
    e->shape[i] = v;
    if (v && numel > G_MAXUINT64 / (guint64) v)
      FAIL ("shape overflows");
    numel *= (guint64) v;
  }
  size_t esz = la_dtype_size (e->dtype);
  if (numel > G_MAXUINT64 / esz)
    FAIL ("shape overflows");
  if (!off || !JSON_NODE_HOLDS_ARRAY (off) || json_array_get_length (json_node_get_array (off)) != 2)
    FAIL ("data_offsets is not a [begin, end] pair");
  JsonArray *oa = json_node_get_array (off);
  for (guint i = 0; i < 2; i++) {
    JsonNode *d = json_array_get_element (oa, i);
    if (!JSON_NODE_HOLDS_VALUE (d) || json_node_get_value_type (d) != G_TYPE_INT64 || json_node_get_int (d) < 0)
      FAIL ("data_offsets[%u] is not a non-negative integer", i);
  }
  e->begin = (guint64) json_array_get_int_element (oa, 0);
  e->end = (guint64) json_array_get_int_element (oa, 1);
  if (e->end < e->begin || e->end > data_len)
    FAIL ("data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] outside the data block of %" G_GUINT64_FORMAT " bytes",
          e->begin, e->end, data_len);
  if (e->end - e->begin != numel * esz)
    FAIL ("%" G_GUINT64_FORMAT " bytes but shape x dtype needs %" G_GUINT64_FORMAT, e->end - e->begin, numel * esz);
  return TRUE;
#undef FAIL
}

LaCheckpoint *
la_safetensors_open (const char *path, GError **error)
{
  GError *e = NULL;
  GMappedFile *mf = g_mapped_file_new (path, FALSE, &e);
  if (!mf) {
    g_set_error (error, LA_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? LA_ERROR_NOT_FOUND : LA_ERROR_IO,
                 "%s: %s", path, e->message);
    g_error_free (e);
    return NULL;
  }
  GBytes *bytes = g_mapped_file_get_bytes (mf);
  g_mapped_file_unref (mf);
  gsize len;
  const guint8 *base = g_bytes_get_data (bytes, &len);
  LaCheckpoint *ck = NULL;
  JsonParser *parser = NULL;
  GArray *entries = NULL;

  if (len < 8) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: truncated (%zu bytes, no header length)", path, (size_t) len);
    goto out;
  }
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | base[i];
  if (hlen > MAX_HEADER || hlen > len - 8) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: header length %" G_GUINT64_FORMAT " exceeds the file (%zu bytes)",
                 path, hlen, (size_t) len);
    goto out;
  }
  const char *hdr = (const char *) base + 8;
  if (!g_utf8_validate (hdr, (gssize) hlen, NULL)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: header is not valid UTF-8", path);
    goto out;
  }
  if (!la_json_check_depth (hdr, hlen, LA_JSON_DEPTH_SAFETENSORS, path, error))
    goto out;
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, hdr, (gssize) hlen, &e)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: header is not JSON: %s", path, e->message);
    g_clear_error (&e);
    goto out;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: header is not a JSON object", path);
    goto out;
  }
  JsonObject *obj = json_node_get_object (root);
  guint64 data_len = len - 8 - hlen;
  const guint8 *data = base + 8 + hlen;
  entries = g_array_new (FALSE, FALSE, sizeof (Entry));
  GList *members = json_object_get_members (obj);
  gboolean ok = TRUE;
  for (GList *l = members; l && ok; l = l->next) {
    const char *name = l->data;
    if (strcmp (name, "__metadata__") == 0)
      continue;
    Entry en = { .name = name };
    ok = parse_entry (path, name, json_object_get_member (obj, name), data_len, &en, error);
    if (ok)
      g_array_append_val (entries, en);
  }
  g_list_free (members);
  if (!ok)
    goto out;
  g_array_sort (entries, cmp_entry);
  for (guint i = 1; i < entries->len; i++) {
    Entry *a = &g_array_index (entries, Entry, i - 1), *b = &g_array_index (entries, Entry, i);
    if (b->begin < a->end) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: tensors '%s' and '%s' overlap", path, a->name, b->name);
      goto out;
    }
  }
  ck = la_checkpoint_new ();
  la_checkpoint_set_path (ck, path);
  for (guint i = 0; i < entries->len; i++) {
    Entry *en = &g_array_index (entries, Entry, i);
    LaTensor *t = la_tensor_new_view (en->dtype, en->ndim, en->shape, bytes, (void *) (data + en->begin), LA_DEVICE_CPU, 0);
    la_checkpoint_add (ck, en->name, t);
    la_tensor_unref (t);
  }
out:
  if (entries)
    g_array_unref (entries);
  if (parser)
    g_object_unref (parser);
  g_bytes_unref (bytes);
  return ck;
}

LaCheckpoint *
la_safetensors_open_index (const char *index_json, GError **error)
{
  g_autoptr (JsonParser) parser = la_json_parse_file (index_json, LA_JSON_DEPTH_INDEX, error);
  if (!parser)
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *map = NULL;
  if (root && JSON_NODE_HOLDS_OBJECT (root)) {
    JsonNode *wm = json_object_get_member (json_node_get_object (root), "weight_map");
    if (wm && JSON_NODE_HOLDS_OBJECT (wm))
      map = json_node_get_object (wm);
  }
  if (!map) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: no \"weight_map\" object", index_json);
    return NULL;
  }
  g_autofree char *dir = g_path_get_dirname (index_json);
  g_autoptr (GHashTable) shards = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) la_checkpoint_unref);
  LaCheckpoint *ck = la_checkpoint_new ();
  la_checkpoint_set_path (ck, index_json);
  GList *members = json_object_get_members (map);
  GString *missing = g_string_new (NULL);
  guint n_missing = 0;
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    JsonNode *f = json_object_get_member (map, name);
    if (!JSON_NODE_HOLDS_VALUE (f) || json_node_get_value_type (f) != G_TYPE_STRING) {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: weight_map['%s'] is not a file name", index_json, name);
      goto fail;
    }
    const char *file = json_node_get_string (f);
    if (strchr (file, '/') || strcmp (file, "..") == 0 || file[0] == '\0') {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: weight_map['%s'] names '%s', not a file beside the index",
                   index_json, name, file);
      goto fail;
    }
    LaCheckpoint *shard = g_hash_table_lookup (shards, file);
    if (!shard) {
      g_autofree char *p = g_build_filename (dir, file, NULL);
      shard = la_safetensors_open (p, error);
      if (!shard)
        goto fail;
      g_hash_table_insert (shards, (gpointer) file, shard);
    }
    LaTensor *t = la_checkpoint_get (shard, name);
    if (!t) {
      if (n_missing++ < 8)
        g_string_append_printf (missing, "%s'%s' (in %s)", n_missing > 1 ? ", " : "", name, file);
      continue;
    }
    la_checkpoint_add (ck, name, t);
  }
  if (n_missing) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "%s: %u tensors of the weight_map are missing from their shards: %s%s",
                 index_json, n_missing, missing->str, n_missing > 8 ? ", ..." : "");
    goto fail;
  }
  g_list_free (members);
  g_string_free (missing, TRUE);
  return ck;
fail:
  g_list_free (members);
  g_string_free (missing, TRUE);
  la_checkpoint_unref (ck);
  return NULL;
}

/* JSON string body: quotes, backslashes and control bytes escaped, UTF-8 kept. */
static char *
json_escape (const char *s)
{
  GString *r = g_string_new (NULL);
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (r, "\\%c", *p);
    else if (*p < 0x20)
      g_string_append_printf (r, "\\u%04x", *p);
    else
      g_string_append_c (r, (char) *p);
  }
  return g_string_free (r, FALSE);
}

gboolean
la_safetensors_write (const char *path, LaCheckpoint *ck, GError **error)
{
  const char * const *names = la_checkpoint_names (ck);
  GString *h = g_string_new ("{");
  guint64 off = 0;
  for (int i = 0; names[i]; i++) {
    LaTensor *t = la_checkpoint_get (ck, names[i]);
    if (t->device != LA_DEVICE_CPU) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: tensor '%s' is not on the host", path, names[i]);
      g_string_free (h, TRUE);
      return FALSE;
    }
    g_autofree char *shape = la_shape_to_string (t->ndim, t->shape);
    g_autofree char *esc = json_escape (names[i]);
    guint64 n = la_tensor_nbytes (t);
    g_string_append_printf (h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
                            i ? "," : "", esc, la_dtype_name (t->dtype), shape, off, off + n);
    off += n;
  }
  g_string_append_c (h, '}');
  while ((h->len + 8) % 8)               /* keep the data block 8-aligned, as the reference writer does */
    g_string_append_c (h, ' ');
  FILE *f = fopen (path, "wb");
  if (!f) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: cannot create: %s", path, g_strerror (errno));
    g_string_free (h, TRUE);
    return FALSE;
  }
  guint8 len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (guint8) ((guint64) h->len >> (8 * i));
  gboolean ok = fwrite (len8, 1, 8, f) == 8 && fwrite (h->str, 1, h->len, f) == h->len;
  for (int i = 0; ok && names[i]; i++) {
    LaTensor *t = la_checkpoint_get (ck, names[i]);
    ok = la_write_sparse (f, t->data, la_tensor_nbytes (t));
  }
  ok = (fclose (f) == 0) && ok;
  g_string_free (h, TRUE);
  if (!ok)
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "%s: write failed: %s", path, g_strerror (errno));
  return ok;
}
