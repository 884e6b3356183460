/* la-cuda-names.c — which DiT weights the FP8 mode quantises (docs/design/model.md §2.3): the 460 nn.Linear weights
 *   blocks.N.self_attn.{q,k,v,o}.weight, blocks.N.cross_attn.{q,k,v,o}.weight,
 *   blocks.N.ffn.{0,2}.weight, audio_injector.injector.J.{q,k,v,o}.weight,
 *   audio_injector.injector_adain_layers.J.linear.weight.
 * The official code replaces every Linear whose name does not contain
 * text_embedding, time_embedding, time_projection, head.head or
 * casual_audio_encoder.encoder.final_linear; listing the positives is the
 * same set for this model and cannot catch a conv, norm or modulation tensor
 * by accident.  Pure string work, compiled with or without CUDA. */
#include "liveavatar/la-cuda.h"
#include <stdlib.h>
#include <string.h>

/* s starts with a decimal number: returns the rest, or NULL. */
static const char *
skip_index (const char *s)
{
  if (*s < '0' || *s > '9')
    return NULL;
  while (*s >= '0' && *s <= '9')
    s++;
  return s;
}

gboolean
la_cuda_fp8_eligible (const char *name, int ndim)
{
  if (!name || ndim != 2 || !g_str_has_suffix (name, ".weight"))
    return FALSE;
  static const char *const block_tails[] = {
    ".self_attn.q.weight", ".self_attn.k.weight", ".self_attn.v.weight", ".self_attn.o.weight",
    ".cross_attn.q.weight", ".cross_attn.k.weight", ".cross_attn.v.weight", ".cross_attn.o.weight",
    ".ffn.0.weight", ".ffn.2.weight",
  };
  static const char *const inj_tails[] = { ".q.weight", ".k.weight", ".v.weight", ".o.weight" };
  const char *rest;
  if (g_str_has_prefix (name, "blocks.") && (rest = skip_index (name + strlen ("blocks.")))) {
    for (size_t i = 0; i < G_N_ELEMENTS (block_tails); i++)
      if (strcmp (rest, block_tails[i]) == 0)
        return TRUE;
    return FALSE;
  }
  if (g_str_has_prefix (name, "audio_injector.injector.") &&
      (rest = skip_index (name + strlen ("audio_injector.injector.")))) {
    for (size_t i = 0; i < G_N_ELEMENTS (inj_tails); i++)
      if (strcmp (rest, inj_tails[i]) == 0)
        return TRUE;
    return FALSE;
  }
  if (g_str_has_prefix (name, "audio_injector.injector_adain_layers.") &&
      (rest = skip_index (name + strlen ("audio_injector.injector_adain_layers."))))
    return strcmp (rest, ".linear.weight") == 0;
  return FALSE;
}
