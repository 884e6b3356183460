/* la-tokenizer.cc — the umT5 tokenizer (docs/design/text.md §2) through libsentencepiece,
 * behind a C API (la-text.h).
 *
 * The reference is HF T5TokenizerFast(google/umt5-xxl) with
 * padding='max_length', max_length=512, truncation=True,
 * add_special_tokens=True:  ids = pieces + [</s>], the pieces cut to
 * max_length - 1 so that </s> is always kept.  Padding is left out here: the
 * encoder runs on the real tokens only.  spiece.model carries its own
 * normaliser (nmt_nfkc + whitespace handling), so the cleaned prompt is
 * passed through unchanged.
 */
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <memory>
#include <string>
#include <vector>

#include <liveavatar/la-error.h>   /* C headers with G_BEGIN_DECLS */
#include "la-text-private.h"

struct _LaTokenizer {
  sentencepiece::SentencePieceProcessor sp;
  int eos, pad;
};

extern "C" LaTokenizer *
la_tokenizer_new_from_file (const char *path, GError **error)
{
  if (!path) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer model path is NULL");
    return NULL;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "SentencePiece model %s not found", path);
    return NULL;
  }
  std::unique_ptr<LaTokenizer> tok (new LaTokenizer);
  auto st = tok->sp.Load (path);
  if (!st.ok ()) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: not a SentencePiece model (%s)", path,
                 st.ToString ().c_str ());
    return NULL;
  }
  /* T5 has no <s>; </s> and <pad> come from the model's trainer spec, and
   * from the piece names when the spec leaves them unset */
  tok->eos = tok->sp.eos_id ();
  if (tok->eos < 0)
    tok->eos = tok->sp.PieceToId ("</s>");
  tok->pad = tok->sp.pad_id ();
  if (tok->pad < 0)
    tok->pad = tok->sp.PieceToId ("<pad>");
  if (tok->eos < 0 || tok->eos == tok->sp.unk_id ()) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: the model has no </s> piece", path);
    return NULL;
  }
  return tok.release ();
}

extern "C" void
la_tokenizer_free (LaTokenizer *tok)
{
  delete tok;
}

extern "C" int la_tokenizer_eos_id (const LaTokenizer *tok) { return tok->eos; }
extern "C" int la_tokenizer_pad_id (const LaTokenizer *tok) { return tok->pad; }
extern "C" int la_tokenizer_vocab_size (const LaTokenizer *tok) { return tok->sp.GetPieceSize (); }

extern "C" GArray *
la_tokenizer_encode (LaTokenizer *tok, const char *text, int max_len, GError **error)
{
  if (!tok || !text) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer encode: NULL %s", tok ? "text" : "tokenizer");
    return NULL;
  }
  if (max_len < 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer encode: max_len %d < 1", max_len);
    return NULL;
  }
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer encode: text is not valid UTF-8");
    return NULL;
  }
  std::vector<int> pieces;
  auto st = tok->sp.Encode (text, &pieces);
  if (!st.ok ()) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "SentencePiece encode failed: %s", st.ToString ().c_str ());
    return NULL;
  }
  size_t keep = MIN (pieces.size (), (size_t) (max_len - 1));
  GArray *ids = g_array_sized_new (FALSE, FALSE, sizeof (gint32), keep + 1);
  for (size_t i = 0; i < keep; i++) {
    gint32 v = pieces[i];
    g_array_append_val (ids, v);
  }
  gint32 eos = tok->eos;
  g_array_append_val (ids, eos);
  return ids;
}

/* ---- training a small model (tests, tiny demo model) ---- */

namespace {
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator (const char *text) : lines_ (g_strsplit (text, "\n", -1)) { skip (); }
  ~LineIterator () override { g_strfreev (lines_); }
  bool done () const override { return lines_[i_] == NULL; }
  void Next () override { i_++; skip (); }
  const std::string &value () const override { cur_ = lines_[i_]; return cur_; }
  sentencepiece::util::Status status () const override { return sentencepiece::util::Status (); }
 private:
  void skip () { while (lines_[i_] && !lines_[i_][0]) i_++; }
  char **lines_;
  size_t i_ = 0;
  mutable std::string cur_;
};
}

extern "C" gboolean
la_tokenizer_train (const char *text, const char *model_path, int vocab_size, GError **error)
{
  if (!text || !model_path || vocab_size < 8) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer train: need text, a model path and vocab_size >= 8");
    return FALSE;
  }
  if (!g_utf8_validate (text, -1, NULL)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer train: text is not valid UTF-8");
    return FALSE;
  }
  /* T5's special ids: <pad>=0, </s>=1, <unk>=2, no <s> */
  std::string args = "--model_type=unigram --vocab_size=" + std::to_string (vocab_size) +
                     " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --character_coverage=1.0"
                     " --hard_vocab_limit=false --minloglevel=2 --num_threads=1";
  LineIterator it (text);
  std::string proto;
  auto st = sentencepiece::SentencePieceTrainer::Train (args, &it, &proto);
  if (!st.ok ()) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "SentencePiece training failed: %s", st.ToString ().c_str ());
    return FALSE;
  }
  GError *e = NULL;
  if (!g_file_set_contents (model_path, proto.data (), (gssize) proto.size (), &e)) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "cannot write %s: %s", model_path, e->message);
    g_error_free (e);
    return FALSE;
  }
  return TRUE;
}

static const char tiny_corpus[] =
  "A cheerful dwarf stands in a forge, hammering glowing metal on an anvil.\n"
  "Sparks fly around him as he laughs and talks to the camera.\n"
  "A fluffy orange cat sits on a sunny window sill and looks outside.\n"
  "The woman smiles warmly, speaking clearly with natural gestures.\n"
  "A man in a blue shirt explains the news in a quiet studio.\n"
  "The camera slowly moves closer while the person keeps talking.\n"
  "Soft light falls on her face; the background is slightly blurred.\n"
  "He nods, raises his eyebrows, and continues the story with a grin.\n"
  "A young girl sings a song in the garden, birds are flying overhead.\n"
  "The old wizard reads from a heavy book by candle light at night.\n"
  "Realistic style, high quality, detailed skin, natural expressions.\n"
  "She turns her head to the left and then looks back at the viewer.\n"
  "The robot answers questions politely and blinks its bright eyes.\n"
  "Two friends chat in a cozy cafe while rain taps on the window.\n"
  "A teacher talks about mountains, rivers, oceans and the weather.\n"
  "Numbers like 1, 2, 3, 10 and 100 appear; quotes \"like this\" and 'that'.\n";

extern "C" gboolean
la_tokenizer_train_tiny (const char *dir, int vocab_size, GError **error)
{
  if (!dir) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "tokenizer train: folder is NULL");
    return FALSE;
  }
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "cannot create folder %s", dir);
    return FALSE;
  }
  /* the trainer wants enough sentences: repeat the corpus a few times */
  GString *text = g_string_new (NULL);
  for (int i = 0; i < 4; i++)
    g_string_append (text, tiny_corpus);
  g_autofree char *path = g_build_filename (dir, "spiece.model", NULL);
  gboolean ok = la_tokenizer_train (text->str, path, vocab_size > 0 ? vocab_size : 200, error);
  g_string_free (text, TRUE);
  return ok;
}

/* ---- tokenizer.json: the HF Unigram export of the same model ----
 *
 * The published google/umt5-xxl folder carries both spiece.model and the
 * tokenizers-library export; the generated tree does too.  The export keeps
 * what decides the ids: every piece with its score, the unk id, the model's
 * own precompiled normaliser (read from the serialized ModelProto: field 3
 * normalizer_spec, its field 2 precompiled_charsmap), Metaspace pre-tokenising
 * with a prepended "▁", and "$A </s>" as post-processing.  We never read it. */

/* Next field of a protobuf message; FALSE at the end or on malformed data. */
static bool
pb_next (const guint8 *&p, const guint8 *end, guint32 *field, const guint8 **val, guint64 *len)
{
  auto varint = [&] (guint64 *out) {
    guint64 v = 0;
    for (int s = 0; s < 64 && p < end; s += 7) {
      guint8 b = *p++;
      v |= (guint64) (b & 0x7f) << s;
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;
  };
  guint64 key;
  if (p >= end || !varint (&key))
    return false;
  *field = (guint32) (key >> 3);
  switch (key & 7) {
  case 0: *val = NULL; return varint (len);
  case 1: *val = p; *len = 8; break;
  case 5: *val = p; *len = 4; break;
  case 2:
    if (!varint (len) || *len > (guint64) (end - p))
      return false;
    *val = p;
    break;
  default: return false;
  }
  if (*len > (guint64) (end - p))
    return false;
  p += *len;
  return true;
}

static void
json_str (GString *s, const std::string &v)
{
  g_string_append_c (s, '"');
  for (unsigned char c : v) {
    if (c == '"' || c == '\\')
      g_string_append_printf (s, "\\%c", c);
    else if (c < 0x20)
      g_string_append_printf (s, "\\u%04x", c);
    else
      g_string_append_c (s, (char) c);
  }
  g_string_append_c (s, '"');
}

extern "C" gboolean
la_tokenizer_write_hf_json (LaTokenizer *tok, const char *path, GError **error)
{
  std::string proto = tok->sp.serialized_model_proto ();
  std::string charsmap;
  const guint8 *p = (const guint8 *) proto.data (), *end = p + proto.size (), *val;
  guint32 f;
  guint64 len;
  while (pb_next (p, end, &f, &val, &len))
    if (f == 3 && val) {
      const guint8 *q = val, *qe = val + len, *v2;
      guint32 f2;
      guint64 l2;
      while (pb_next (q, qe, &f2, &v2, &l2))
        if (f2 == 2 && v2)
          charsmap.assign ((const char *) v2, l2);
    }
  g_autofree char *b64 = g_base64_encode ((const guchar *) charsmap.data (), charsmap.size ());
  GString *s = g_string_new ("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
                             "  \"added_tokens\": [");
  const int special[3] = { tok->pad, tok->eos, tok->sp.unk_id () };
  for (int i = 0; i < 3; i++) {
    g_string_append_printf (s, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", special[i]);
    json_str (s, tok->sp.IdToPiece (special[i]));
    g_string_append (s, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                        "\"normalized\": false, \"special\": true}");
  }
  g_string_append_printf (s, "\n  ],\n  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
                             "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"%s\"}, "
                             "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \" {2,}\"}, \"content\": \" \"}]},\n"
                             "  \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
                             "\"prepend_scheme\": \"always\", \"split\": true},\n"
                             "  \"post_processor\": {\"type\": \"TemplateProcessing\", "
                             "\"single\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
                             "{\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}], "
                             "\"pair\": [], \"special_tokens\": {\"</s>\": {\"id\": \"</s>\", \"ids\": [%d], "
                             "\"tokens\": [\"</s>\"]}}},\n"
                             "  \"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
                             "\"prepend_scheme\": \"always\", \"split\": true},\n"
                             "  \"model\": {\"type\": \"Unigram\", \"unk_id\": %d, \"byte_fallback\": false, "
                             "\"vocab\": [", b64, tok->eos, tok->sp.unk_id ());
  for (int i = 0; i < tok->sp.GetPieceSize (); i++) {
    g_string_append (s, i ? ",\n    [" : "\n    [");
    json_str (s, tok->sp.IdToPiece (i));
    char num[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append_printf (s, ", %s]", g_ascii_dtostr (num, sizeof num, tok->sp.GetScore (i)));
  }
  g_string_append (s, "\n  ]}\n}\n");
  gboolean ok = g_file_set_contents (path, s->str, (gssize) s->len, error);
  g_string_free (s, TRUE);
  return ok;
}
