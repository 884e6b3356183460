/* la-text-clean.c — prompt cleaning of wan_2_2/modules/tokenizers.py with
 * clean='whitespace' (docs/design/text.md §1):
 *
 *   text = ftfy.fix_text(text)
 *   text = html.unescape(html.unescape(text)).strip()
 *   text = re.sub(r'\s+', ' ', text).strip()
 *
 * ftfy.fix_text is reproduced for the fixes that matter for prompts typed
 * by a person (its mojibake detection `fix_encoding` is not): in ftfy's
 * order, ANSI terminal escapes removed, HTML entity unescape (only when the text has no '<', entities
 * ending in ';' only), C1 controls read as Windows-1252, Latin ligatures
 * (ﬁ -> fi), full-width -> half-width (U+FF01..U+FFEF by NFKC, U+3000 ->
 * space), quote uncurling, line breaks -> \n, control-character removal,
 * then NFC.  All Unicode work goes through GLib.
 */
#include <string.h>
#include <liveavatar/la-error.h>
#include "la-text-private.h"

/* ---------- html.unescape ---------- */

/* A subset of the HTML5 named references: the ones prompts use.  `legacy`
 * marks names html.unescape also accepts without the ';'. */
static const struct { const char *name; gunichar ch; gboolean legacy; } entities[] = {
  { "amp", '&', TRUE }, { "lt", '<', TRUE }, { "gt", '>', TRUE }, { "quot", '"', TRUE },
  { "apos", '\'', FALSE }, { "nbsp", 0xA0, TRUE }, { "copy", 0xA9, TRUE }, { "reg", 0xAE, TRUE },
  { "deg", 0xB0, TRUE }, { "middot", 0xB7, TRUE }, { "times", 0xD7, TRUE }, { "divide", 0xF7, TRUE },
  { "laquo", 0xAB, TRUE }, { "raquo", 0xBB, TRUE }, { "sect", 0xA7, TRUE }, { "para", 0xB6, TRUE },
  { "cent", 0xA2, TRUE }, { "pound", 0xA3, TRUE }, { "yen", 0xA5, TRUE }, { "iexcl", 0xA1, TRUE },
  { "iquest", 0xBF, TRUE }, { "plusmn", 0xB1, TRUE }, { "micro", 0xB5, TRUE },
  { "eacute", 0xE9, TRUE }, { "egrave", 0xE8, TRUE }, { "agrave", 0xE0, TRUE }, { "ccedil", 0xE7, TRUE },
  { "ouml", 0xF6, TRUE }, { "uuml", 0xFC, TRUE }, { "auml", 0xE4, TRUE }, { "szlig", 0xDF, TRUE },
  { "euro", 0x20AC, FALSE }, { "trade", 0x2122, FALSE }, { "hellip", 0x2026, FALSE },
  { "mdash", 0x2014, FALSE }, { "ndash", 0x2013, FALSE }, { "lsquo", 0x2018, FALSE },
  { "rsquo", 0x2019, FALSE }, { "ldquo", 0x201C, FALSE }, { "rdquo", 0x201D, FALSE },
  { "bull", 0x2022, FALSE }, { "emsp", 0x2003, FALSE }, { "ensp", 0x2002, FALSE },
  { "thinsp", 0x2009, FALSE }, { "hearts", 0x2665, FALSE }, { "larr", 0x2190, FALSE },
  { "rarr", 0x2192, FALSE },
};

/* Windows-1252 for 0x80..0x9F (0 = undefined, kept as is). */
static const gunichar cp1252[32] = {
  0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
  0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

/* Python html._replace_charref for a numeric reference. */
static void
append_numeric (GString *out, guint64 num)
{
  if (num >= 0x80 && num <= 0x9F && cp1252[num - 0x80]) {
    g_string_append_unichar (out, cp1252[num - 0x80]);
    return;
  }
  if (num == 0 || (num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
    g_string_append_unichar (out, 0xFFFD);
    return;
  }
  /* html._invalid_codepoints are dropped */
  if ((num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) ||
      (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
    return;
  g_string_append_unichar (out, (gunichar) num);
}

/* Tries to decode one reference at s (s[0] == '&'); returns bytes consumed, 0 if none.
 * `need_semicolon`: ftfy's variant (entities must end in ';'). */
static size_t
unescape_one (const char *s, GString *out, gboolean need_semicolon)
{
  const char *p = s + 1;
  if (*p == '#') {
    p++;
    int base = 10;
    if (*p == 'x' || *p == 'X') {
      base = 16;
      p++;
    }
    const char *d = p;
    guint64 num = 0;
    while (g_ascii_isxdigit (*p) && (base == 16 || g_ascii_isdigit (*p))) {
      if (num < 0x110000)
        num = num * base + g_ascii_xdigit_value (*p);
      p++;
    }
    if (p == d || (need_semicolon && *p != ';'))
      return 0;
    if (*p == ';')
      p++;
    append_numeric (out, num);
    return p - s;
  }
  const char *e = p;
  while (g_ascii_isalnum (*e))
    e++;
  size_t n = e - p;
  if (n == 0)
    return 0;
  if (*e == ';')
    for (guint i = 0; i < G_N_ELEMENTS (entities); i++)
      if (strlen (entities[i].name) == n && strncmp (entities[i].name, p, n) == 0) {
        g_string_append_unichar (out, entities[i].ch);
        return e + 1 - s;
      }
  if (need_semicolon)
    return 0;
  /* html.unescape: the longest legacy name that prefixes the run */
  size_t best = 0;
  gunichar ch = 0;
  for (guint i = 0; i < G_N_ELEMENTS (entities); i++) {
    size_t l = strlen (entities[i].name);
    if (entities[i].legacy && l <= n && l > best && strncmp (entities[i].name, p, l) == 0) {
      best = l;
      ch = entities[i].ch;
    }
  }
  if (!best)
    return 0;
  g_string_append_unichar (out, ch);
  return 1 + best;
}

static char *
unescape (const char *text, gboolean need_semicolon)
{
  GString *out = g_string_sized_new (strlen (text));
  for (const char *s = text; *s;) {
    size_t used = *s == '&' ? unescape_one (s, out, need_semicolon) : 0;
    if (used)
      s += used;
    else
      g_string_append_c (out, *s++);
  }
  return g_string_free (out, FALSE);
}

char *
la_text_html_unescape (const char *text)
{
  return unescape (text, FALSE);
}

/* ---------- ftfy.fix_text subset ---------- */

static gboolean
is_ligature (gunichar c)
{
  return c == 0x132 || c == 0x133 || c == 0x149 || (c >= 0x1C4 && c <= 0x1CC) ||
         (c >= 0x1F1 && c <= 0x1F3) || (c >= 0xFB00 && c <= 0xFB06);
}

/* ftfy.chardata CONTROL_CHARS (removed by remove_control_chars). */
static gboolean
is_removed_control (gunichar c)
{
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC) ||
         (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE007F);
}

static void
append_nfkc (GString *out, gunichar c)
{
  char buf[8];
  int n = g_unichar_to_utf8 (c, buf);
  g_autofree char *k = g_utf8_normalize (buf, n, G_NORMALIZE_NFKC);
  g_string_append (out, k ? k : buf);
}

static char *
ftfy_fix_text (const char *text)
{
  g_autofree char *s0 = strchr (text, '<') ? g_strdup (text) : unescape (text, TRUE);
  GString *out = g_string_sized_new (strlen (s0));
  for (const char *p = s0; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    if (c == 0x1B && p[1] == '[') {   /* remove_terminal_escapes: ESC [ [0-9;]* [A-Za-z] */
      const char *q = p + 2;
      while (g_ascii_isdigit (*q) || *q == ';')
        q++;
      if (g_ascii_isalpha (*q)) {
        p = q;
        continue;
      }
    }
    if (c >= 0x80 && c <= 0x9F && cp1252[c - 0x80])   /* fix_c1_controls */
      c = cp1252[c - 0x80];
    if (is_ligature (c) || (c >= 0xFF01 && c <= 0xFFEF)) {   /* ligatures, width */
      append_nfkc (out, c);
      continue;
    }
    if (c == 0x3000)
      c = ' ';
    else if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))   /* uncurl_quotes */
      c = '\'';
    else if (c >= 0x201C && c <= 0x201F)
      c = '"';
    else if (c == '\r') {   /* fix_line_breaks: \r\n and \r -> \n */
      if (p[1] == '\n')
        p++;
      c = '\n';
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85)
      c = '\n';
    else if (is_removed_control (c))
      continue;
    g_string_append_unichar (out, c);
  }
  char *nfc = g_utf8_normalize (out->str, out->len, G_NORMALIZE_NFC);
  g_string_free (out, TRUE);
  return nfc;
}

/* Python's str.isspace (what re's \s matches on str). */
static gboolean
py_isspace (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

char *
la_text_clean (const char *text, gssize len, GError **error)
{
  if (!text) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "prompt is NULL");
    return NULL;
  }
  const char *end;
  if (!g_utf8_validate (text, len, &end)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "prompt is not valid UTF-8 (bad byte 0x%02x at offset %ld)",
                 (guint) (guchar) *end, (long) (end - text));
    return NULL;
  }
  if (len >= 0 && memchr (text, '\0', len)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "prompt contains a NUL byte");
    return NULL;
  }
  g_autofree char *copy = len >= 0 ? g_strndup (text, len) : g_strdup (text);
  g_autofree char *fixed = ftfy_fix_text (copy);
  g_autofree char *u1 = unescape (fixed, FALSE);
  g_autofree char *u2 = unescape (u1, FALSE);

  /* collapse \s+ to one space, strip both ends */
  GString *out = g_string_sized_new (strlen (u2));
  gboolean pending = FALSE;
  for (const char *p = u2; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    if (py_isspace (c)) {
      pending = out->len > 0;
      continue;
    }
    if (pending)
      g_string_append_c (out, ' ');
    pending = FALSE;
    g_string_append_unichar (out, c);
  }
  return g_string_free (out, FALSE);
}
