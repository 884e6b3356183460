/* la-json.c — the nesting-depth guard in front of json-glib (la-json.h). */
#include "la-json.h"
#include "liveavatar/la-error.h"

gboolean
la_json_check_depth (const char *text, gsize len, int max_depth, const char *what, GError **error)
{
  int depth = 0;
  gboolean in_str = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = text[i];
    if (in_str) {
      if (c == '\\')
        i++;                 /* the escaped byte cannot end the string */
      else if (c == '"')
        in_str = FALSE;
    } else if (c == '"') {
      in_str = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                     "%s: JSON nested deeper than %d levels (at byte %" G_GSIZE_FORMAT "); the format needs no more",
                     what, max_depth, i);
        return FALSE;
      }
    } else if (c == ']' || c == '}') {
      depth--;               /* unbalanced text is the parser's to report */
    }
  }
  return TRUE;
}

JsonParser *
la_json_parse_file (const char *path, int max_depth, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents (path, &text, &len, &e)) {
    g_set_error (error, LA_ERROR, g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? LA_ERROR_NOT_FOUND : LA_ERROR_IO,
                 "%s: %s", path, e->message);
    g_error_free (e);
    return NULL;
  }
  if (!la_json_check_depth (text, len, max_depth, path, error))
    return NULL;
  JsonParser *p = json_parser_new_immutable ();
  if (!json_parser_load_from_data (p, text, (gssize) len, &e)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: not valid JSON: %s", path, e->message);
    g_error_free (e);
    g_object_unref (p);
    return NULL;
  }
  return p;
}
