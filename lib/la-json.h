/* la-json.h — JSON from untrusted files, guarded (internal).
 *
 * json-glib's parser recurses once per nesting level: a file of tens of
 * thousands of '[' overflows the stack before any check of ours runs.  Every
 * reader of a downloaded file (safetensors headers, the shard index,
 * config.json) first scans the text for its nesting depth — a linear scan
 * that skips string contents — and refuses anything deeper than its format
 * needs. */
#pragma once
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Depths the formats need: a safetensors header is {name: {shape: [..]}} (3);
 * the index is {weight_map: {..}, metadata: {..}} (2, one spare for metadata
 * values); HF/diffusers configs nest a few dicts (id2label, ...): 16 is ample. */
#define LA_JSON_DEPTH_SAFETENSORS 3
#define LA_JSON_DEPTH_INDEX       3
#define LA_JSON_DEPTH_CONFIG      16

/* FALSE (LA_ERROR_FORMAT naming `what` and the byte offset) when the JSON
 * text nests arrays/objects deeper than max_depth. */
gboolean    la_json_check_depth (const char *text, gsize len, int max_depth, const char *what, GError **error);

/* Reads `path`, checks its depth, parses it.  A missing file is
 * LA_ERROR_NOT_FOUND, anything else LA_ERROR_FORMAT; messages name the path. */
JsonParser *la_json_parse_file (const char *path, int max_depth, GError **error);

G_END_DECLS
