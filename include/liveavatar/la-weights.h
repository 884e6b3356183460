/* la-weights.h — the resident precision of a model's weights, as an
 * application chooses it (LaSessionParams.weights, la_tpp_worker_open).
 *
 * A matrix used only as a `linear` weight keeps the checkpoint's precision
 * by default (bf16 stays bf16: half the memory of f32, and the published
 * DiT and umT5 are bf16); LA_WEIGHTS_F32 widens it (the golden cases'
 * setting), LA_WEIGHTS_BF16 narrows an f32 one.  Everything else — biases,
 * norm gains, modulation tables, conv kernels — is f32 (lib/la-weight-binder.h).
 */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  LA_WEIGHTS_FILE = 0,    /* linear weights in the checkpoint's dtype (default) */
  LA_WEIGHTS_F32,         /* everything f32 (golden cases) */
  LA_WEIGHTS_BF16,        /* linear weights bf16 even from an f32 file */
  LA_WEIGHTS_FP8,         /* CUDA only: the DiT's eligible linears e4m3 with a per-tensor scale
                           * (la-cuda.h), every other linear bf16 */
} LaWeights;

/* "file", "f32", "bf16", "fp8" (NULL or "" = "file"); the error lists the choices. */
gboolean    la_weights_from_string (const char *s, LaWeights *out, GError **error);
const char *la_weights_to_string (LaWeights w);

G_END_DECLS
