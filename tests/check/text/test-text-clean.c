/* test-text-clean.c — prompt cleaning (docs/design/text.md §1, §7): curly quotes,
 * full-width punctuation, double-escaped HTML, tabs/newlines, bad UTF-8.
 * Expected strings are what ftfy.fix_text + html.unescape x2 + whitespace
 * collapse give for these inputs. */
#include <liveavatar/liveavatar.h>
#include "la-text.h"

static void
check (const char *in, const char *want)
{
  GError *e = NULL;
  g_autofree char *got = la_text_clean (in, -1, &e);
  g_assert_no_error (e);
  if (g_strcmp0 (got, want) != 0)
    g_error ("clean(\"%s\") = \"%s\", expected \"%s\"", in, got, want);
}

static void
test_quotes (void)
{
  check ("\u201cHello,\u201d she said. It\u2019s \u2018fine\u2019.", "\"Hello,\" she said. It's 'fine'.");
}

static void
test_fullwidth (void)
{
  /* full-width comma/exclamation/colon/digits/letters and the ideographic space */
  check ("\u4f60\u597d\uff0c\u4e16\u754c\uff01\u3000\uff21\uff11\uff1a", "\u4f60\u597d,\u4e16\u754c! A1:");
  /* the ideographic full stop is not in the full-width block and stays */
  check ("\u4e00\u4e2a\u4eba\u3002", "\u4e00\u4e2a\u4eba\u3002");
}

static void
test_html (void)
{
  check ("Tom &amp;amp; Jerry", "Tom & Jerry");
  check ("a &lt;b&gt; &#65;&#x42; &quot;q&quot;", "a <b> AB \"q\"");
  /* html.unescape accepts legacy names without ';' */
  check ("fish &amp chips", "fish & chips");
  check ("&unknown; stays", "&unknown; stays");
}

static void
test_whitespace (void)
{
  check ("  a\tb\n\nc \r\n d\u00a0e  ", "a b c d e");
  check ("", "");
  check (" \t\n ", "");
}

static void
test_misc (void)
{
  check ("\ufb01ne \ufb02ow", "fine flow");              /* Latin ligatures */
  check ("e\u0301t\u00e9", "\u00e9t\u00e9");             /* NFC */
  check ("a\x01" "b\x7f" "c", "abc");                    /* control chars dropped */
  check ("\x1b[36;44mblue\x1b[0m sky", "blue sky");       /* terminal escapes */
  check ("doo&#133; I&#x92;m", "doo\u2026 I'm");           /* C1 refs as Windows-1252 */
}

static void
test_bad_utf8 (void)
{
  GError *e = NULL;
  char *s = la_text_clean ("abc\xff\xfe", -1, &e);
  g_assert_null (s);
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  s = la_text_clean ("\xc3", 1, &e);   /* truncated sequence */
  g_assert_null (s);
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/clean/quotes", test_quotes);
  g_test_add_func ("/text/clean/fullwidth", test_fullwidth);
  g_test_add_func ("/text/clean/html", test_html);
  g_test_add_func ("/text/clean/whitespace", test_whitespace);
  g_test_add_func ("/text/clean/misc", test_misc);
  g_test_add_func ("/text/clean/bad-utf8", test_bad_utf8);
  return g_test_run ();
}
