/* la-text-encode.c — prompt -> context [L, dim] (docs/design/text.md): the cleaning,
 * tokenizer and encoder steps chained as T5EncoderModel.__call__ does, minus
 * the padding (the encoder runs on the L real tokens; the DiT pads later). */
#include <liveavatar/la-error.h>
#include "la-text-private.h"

LaTensor *
la_text_encode_prompt (LaT5Encoder *enc, LaTokenizer *tok, const char *prompt, int text_len,
                       int *n_tokens, GError **error)
{
  g_autofree char *clean = la_text_clean (prompt, -1, error);
  if (!clean)
    return NULL;
  g_autoptr (GArray) ids = la_tokenizer_encode (tok, clean, text_len > 0 ? text_len : 512, error);
  if (!ids)
    return NULL;
  if (n_tokens)
    *n_tokens = (int) ids->len;
  return la_t5_encode (enc, (const gint32 *) ids->data, (int) ids->len, error);
}
