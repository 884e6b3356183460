/* test-tokenizer.c — the SentencePiece tokenizer path (docs/design/text.md §2, §7) on
 * a small model trained here with the library's trainer: English, Chinese
 * punctuation (after cleaning), empty prompt -> [</s>], an over-long prompt
 * -> max_len-1 pieces + </s>, bad model file / bad UTF-8 errors. */
#include <glib/gstdio.h>
#include <liveavatar/liveavatar.h>
#include "la-text.h"

static char *tmpdir;
static LaTokenizer *tok;

static GArray *
enc (const char *prompt, int max_len)
{
  GError *e = NULL;
  g_autofree char *clean = la_text_clean (prompt, -1, &e);
  g_assert_no_error (e);
  GArray *ids = la_tokenizer_encode (tok, clean, max_len, &e);
  g_assert_no_error (e);
  return ids;
}

#define ID(a, i) g_array_index (a, gint32, i)

static void
test_special_ids (void)
{
  g_assert_cmpint (la_tokenizer_eos_id (tok), ==, 1);
  g_assert_cmpint (la_tokenizer_pad_id (tok), ==, 0);
}

static void
test_english (void)
{
  g_autoptr (GArray) ids = enc ("A cheerful dwarf stands in a forge.", 512);
  g_assert_cmpuint (ids->len, >=, 3);
  g_assert_cmpint (ID (ids, ids->len - 1), ==, 1);
  for (guint i = 0; i + 1 < ids->len; i++) {
    g_assert_cmpint (ID (ids, i), >, 2);   /* no pad/eos/unk inside */
    g_assert_cmpint (ID (ids, i), <, la_tokenizer_vocab_size (tok));
  }
  /* whitespace differences vanish in cleaning */
  g_autoptr (GArray) ids2 = enc ("  A cheerful\tdwarf\n stands in a   forge. ", 512);
  g_assert_cmpuint (ids2->len, ==, ids->len);
  g_assert_cmpmem (ids->data, ids->len * 4, ids2->data, ids2->len * 4);
}

static void
test_chinese_punct (void)
{
  /* full-width comma / exclamation fold to ASCII, so they tokenize like ASCII */
  g_autoptr (GArray) a = enc ("cat\uff0c dog\uff01", 512);
  g_autoptr (GArray) b = enc ("cat, dog!", 512);
  g_assert_cmpmem (a->data, a->len * 4, b->data, b->len * 4);
  /* unseen CJK characters still encode (as pieces or <unk>) and end with </s> */
  g_autoptr (GArray) c = enc ("\u4e00\u53ea\u732b\uff0c\u5750\u5728\u7a97\u53f0\u4e0a\u3002", 512);
  g_assert_cmpuint (c->len, >=, 2);
  g_assert_cmpint (ID (c, c->len - 1), ==, 1);
}

static void
test_empty (void)
{
  g_autoptr (GArray) ids = enc ("", 512);
  g_assert_cmpuint (ids->len, ==, 1);
  g_assert_cmpint (ID (ids, 0), ==, 1);
  g_autoptr (GArray) ids2 = enc (" \t\n", 512);
  g_assert_cmpuint (ids2->len, ==, 1);
}

static void
test_long (void)
{
  GString *s = g_string_new (NULL);
  for (int i = 0; i < 200; i++)
    g_string_append (s, "The robot answers questions politely and blinks its bright eyes. ");
  g_autoptr (GArray) full = enc (s->str, 1 << 20);
  g_assert_cmpuint (full->len, >, 600);
  g_autoptr (GArray) ids = enc (s->str, 512);
  g_assert_cmpuint (ids->len, ==, 512);      /* 511 pieces + </s> */
  g_assert_cmpint (ID (ids, 511), ==, 1);
  g_assert_cmpmem (ids->data, 511 * 4, full->data, 511 * 4);
  g_autoptr (GArray) ids7 = enc (s->str, 7);   /* any max_len */
  g_assert_cmpuint (ids7->len, ==, 7);
  g_assert_cmpint (ID (ids7, 6), ==, 1);
  g_string_free (s, TRUE);
}

static void
test_errors (void)
{
  GError *e = NULL;
  g_assert_null (la_tokenizer_encode (tok, "ab\xff", 512, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  g_assert_null (la_tokenizer_encode (tok, "ab", 0, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  g_assert_null (la_tokenizer_new_from_file ("/nonexistent/spiece.model", &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_clear_error (&e);
  g_autofree char *junk = g_build_filename (tmpdir, "junk.model", NULL);
  g_assert_true (g_file_set_contents (junk, "not a model", -1, NULL));
  g_assert_null (la_tokenizer_new_from_file (junk, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_FORMAT);
  g_clear_error (&e);
  g_unlink (junk);
}

/* prompt -> context through the whole path, on random encoder weights */
static void
test_encode_prompt (void)
{
  LaT5Config cfg = { la_tokenizer_vocab_size (tok), 16, 16, 32, 2, 2, 32, 128, 1e-6f };
  g_autoptr (LaCheckpoint) ck = la_t5_random_weights (&cfg, 4);
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  GError *e = NULL;
  g_autoptr (LaT5Encoder) t5 = la_t5_encoder_new (be, ck, NULL, &e);
  g_assert_no_error (e);
  int n = 0;
  g_autoptr (LaTensor) ctx = la_text_encode_prompt (t5, tok, "A \u201ccat\u201d\uff0c  sits.", 512, &n, &e);
  g_assert_no_error (e);
  g_autoptr (GArray) ids = enc ("A \"cat\", sits.", 512);
  g_assert_cmpint (n, ==, (int) ids->len);
  g_assert_cmpint (ctx->shape[0], ==, n);
  g_assert_cmpint (ctx->shape[1], ==, 16);
  g_autoptr (LaTensor) ref = la_t5_encode (t5, (gint32 *) ids->data, (int) ids->len, &e);
  g_assert_no_error (e);
  g_assert_cmpmem (ctx->data, la_tensor_nbytes (ctx), ref->data, la_tensor_nbytes (ref));
  g_autoptr (LaTensor) empty = la_text_encode_prompt (t5, tok, "", 512, &n, &e);
  g_assert_no_error (e);
  g_assert_cmpint (n, ==, 1);
  g_assert_null (la_text_encode_prompt (t5, tok, "bad \xc0 utf8", 512, &n, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GError *e = NULL;
  tmpdir = g_dir_make_tmp ("la-tok-XXXXXX", &e);
  g_assert_no_error (e);
  g_assert_true (la_tokenizer_train_tiny (tmpdir, 0, &e));
  g_assert_no_error (e);
  g_autofree char *model = g_build_filename (tmpdir, "spiece.model", NULL);
  tok = la_tokenizer_new_from_file (model, &e);
  g_assert_no_error (e);

  g_test_add_func ("/text/tokenizer/special-ids", test_special_ids);
  g_test_add_func ("/text/tokenizer/english", test_english);
  g_test_add_func ("/text/tokenizer/chinese-punct", test_chinese_punct);
  g_test_add_func ("/text/tokenizer/empty", test_empty);
  g_test_add_func ("/text/tokenizer/long", test_long);
  g_test_add_func ("/text/tokenizer/errors", test_errors);
  g_test_add_func ("/text/tokenizer/encode-prompt", test_encode_prompt);
  int rc = g_test_run ();
  la_tokenizer_free (tok);
  g_unlink (model);
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return rc;
}
