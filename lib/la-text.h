/* la-text.h — the text path: prompt cleaning, SentencePiece tokenizer and
 * the umT5 encoder (docs/design/text.md).
 *
 *   prompt --la_text_clean--> cleaned UTF-8
 *          --la_tokenizer_encode--> ids = pieces + </s>  (at most max_len)
 *          --la_t5_encode--> context [L, dim]  (L = number of ids, no padding)
 *
 * The encoder runs on the L real tokens only: padded keys are masked in the
 * reference and the bias depends only on relative positions, so the first L
 * outputs of the padded computation are the same (docs/design/text.md §3).
 */
#pragma once
#include <glib.h>
#include "liveavatar/la-tensor.h"
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"
#include "liveavatar/la-weights.h"
#include "la-weight-binder.h"

G_BEGIN_DECLS

/* ---- 5.1 prompt cleaning (ftfy.fix_text subset + html.unescape x2 + whitespace) ---- */

/* NFC, C1-control repair, Latin ligatures, full-width -> half-width folding,
 * quote uncurling, line-break normalisation, control-char removal, HTML
 * unescape (ftfy's once when the text has no '<', then html.unescape twice),
 * whitespace runs -> one space, strip.  Invalid UTF-8 is LA_ERROR_INVALID_ARG.
 * Returns a newly allocated string. */
char *la_text_clean (const char *text, gssize len, GError **error);
/* html.unescape() (Python): named (common subset) and numeric references. */
char *la_text_html_unescape (const char *text);

/* ---- 5.2 tokenizer (libsentencepiece) ---- */

typedef struct _LaTokenizer LaTokenizer;

/* Loads a SentencePiece model file (e.g. google/umt5-xxl/spiece.model). */
LaTokenizer *la_tokenizer_new_from_file (const char *path, GError **error);
void         la_tokenizer_free (LaTokenizer *tok);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaTokenizer, la_tokenizer_free)
int          la_tokenizer_eos_id (const LaTokenizer *tok);
int          la_tokenizer_pad_id (const LaTokenizer *tok);
int          la_tokenizer_vocab_size (const LaTokenizer *tok);
/* ids = pieces(text) + [eos], pieces truncated to max_len - 1 (HF
 * T5TokenizerFast with truncation=True, max_length=max_len, add_special_tokens).
 * `text` must already be cleaned.  Empty text gives [eos].  Returns a new
 * array of gint32 (g_array_unref), NULL + GError on bad input. */
GArray      *la_tokenizer_encode (LaTokenizer *tok, const char *text, int max_len, GError **error);

/* Trains a tiny unigram SentencePiece model on a built-in English text with
 * T5's special ids (<pad>=0, </s>=1, <unk>=2, no <s>) and writes
 * `dir`/spiece.model.  vocab_size <= 0 picks a default (200). */
gboolean     la_tokenizer_train_tiny (const char *dir, int vocab_size, GError **error);
/* Same with caller text (one sentence per line) and an output path. */
gboolean     la_tokenizer_train (const char *text, const char *model_path, int vocab_size,
                                 GError **error);
/* Writes `path` as the HF tokenizers export of the loaded model (tokenizer.json:
 * Unigram pieces and scores, the model's precompiled normaliser, Metaspace,
 * "$A </s>"), as published next to spiece.model.  Nothing reads it back. */
gboolean     la_tokenizer_write_hf_json (LaTokenizer *tok, const char *path, GError **error);

/* ---- 5.3/5.4 umT5 encoder ---- */

typedef struct {
  int   vocab, dim, dim_attn, dim_ffn, num_heads, num_layers;
  int   num_buckets;    /* relative-position buckets (bidirectional: half per direction) */
  int   max_dist;       /* 128 */
  float eps;            /* T5 RMSNorm epsilon, 1e-6 */
  LaDType weight_dtype; /* dtype of the weights on the backend: LA_DTYPE_F32 (0, the
                           CPU backend's) or what a device backend's linear takes (BF16) */
} LaT5Config;

/* umT5-XXL: vocab 256384, dim 4096, 64 heads, 24 layers, ffn 10240, 32 buckets, 128. */
void la_t5_config_umt5_xxl (LaT5Config *cfg);

/* Bidirectional T5 bucket of rel = key - query (fp32 log as the reference). */
int  la_t5_relative_bucket (int rel, int num_buckets, int max_dist);

typedef struct _LaT5Encoder LaT5Encoder;

/* Builds the encoder from a state dict with the official key names
 * (models_t5_umt5-xxl-enc-bf16.pth or a safetensors copy).  Sizes come from
 * the weight shapes; `cfg` (may be NULL) supplies max_dist/eps and, when its
 * fields are > 0, sizes that must agree with the weights.  Weights are copied
 * to `be` as cfg->weight_dtype (f32 by default), except the token embedding which stays in `ck` (rows are
 * gathered on the host per prompt). */
LaT5Encoder *la_t5_encoder_new (LaBackend *be, LaCheckpoint *ck, const LaT5Config *cfg,
                                GError **error);
/* The same through a weight binder (la-weights.h), whose precision replaces
 * cfg->weight_dtype (the encoder's config reports the dtype used); with
 * release the bound tensors leave wb->ck (the embedding stays, mapped). */
LaT5Encoder *la_t5_encoder_new_bound (const LaT5Config *cfg, LaWeightBinder *wb, GError **error);
/* Same from a file: models_t5_umt5-xxl-enc-bf16.pth (torch zip) or a
 * safetensors file (la_checkpoint_open detects the format). */
LaT5Encoder *la_t5_encoder_new_from_file (LaBackend *be, const char *path, const LaT5Config *cfg,
                                          GError **error);
void         la_t5_encoder_free (LaT5Encoder *enc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaT5Encoder, la_t5_encoder_free)
const LaT5Config *la_t5_encoder_config (const LaT5Encoder *enc);

/* Called after each block with its output [L, dim] (for golden checks). */
typedef void (*LaT5BlockHook) (int layer, LaTensor *x, gpointer user_data);

/* ids [L] (L >= 1, every id < vocab) -> new backend tensor [L, dim].
 * With mask (n_ids ints, 1 = real, may be NULL) padded keys are excluded as in
 * the reference T5Encoder(ids, mask); without, all ids attend to each other. */
LaTensor *la_t5_encode_full (LaT5Encoder *enc, const gint32 *ids, const gint32 *mask, int n_ids,
                             LaT5BlockHook hook, gpointer user_data, GError **error);
/* The pipeline's call: ids are the real tokens only -> context [L, dim]. */
LaTensor *la_t5_encode (LaT5Encoder *enc, const gint32 *ids, int n_ids, GError **error);

/* The whole text path of one prompt: clean, tokenize (at most text_len ids,
 * 512 in the pipeline; <= 0 means 512), encode the real tokens ->
 * context [L, dim].  *n_tokens (may be NULL) receives L. */
LaTensor *la_text_encode_prompt (LaT5Encoder *enc, LaTokenizer *tok, const char *prompt,
                                 int text_len, int *n_tokens, GError **error);

/* Random weights with the official key names/shapes (.pth layout), f32,
 * deterministic for a seed; for the tiny demo model and benchmarks. */
LaCheckpoint *la_t5_random_weights (const LaT5Config *cfg, guint64 seed);

G_END_DECLS
