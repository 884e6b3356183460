/* la-weight-binder.h — how checkpoint tensors become resident weights, once.
 *
 * Every model loader binds its weights through one LaWeightBinder, so the
 * CPU and the CUDA backends take the same path and only the final device
 * call differs:
 *
 *   checkpoint tensor (a view of the mapped file)
 *     -> host tensor in the resident dtype      (skipped: CPU view, see below)
 *     -> LoRA merged in place, if the plan targets it (fp32, one rounding)
 *     -> CPU: that host tensor is the resident weight;
 *        CUDA: a bf16 linear through la_cuda_upload_weight when the backend
 *        is set to bf16/FP8 weights (FP8 for the eligible linears), else a
 *        copy in the resident dtype; the host tensor is dropped
 *     -> the checkpoint's pages of that tensor are handed back (release)
 *
 * Resident dtype.  A matrix used only as a `linear` weight keeps the
 * checkpoint's precision (bf16 stays bf16: half the memory of f32, and the
 * published DiT and umT5 are bf16); LA_WEIGHTS_F32 widens it (the golden
 * cases' setting), LA_WEIGHTS_BF16 narrows an f32 one.  Everything else —
 * biases, norm gains, modulation tables, conv kernels — is f32: it is under
 * 0.1 % of the bytes and the elementwise ops read f32.
 */
#pragma once
#include "liveavatar/la-weights.h"
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"
#include "la-model.h"

G_BEGIN_DECLS

typedef struct {
  LaBackend    *be;           /* borrowed */
  LaCheckpoint *ck;           /* borrowed: where names are looked up */
  LaWeights     weights;
  LaLoraPlan   *lora;         /* borrowed, NULL for none */
  gboolean      release;      /* the loader owns ck: drop each tensor from it once bound */
  guint64       bytes[LA_DTYPE_COUNT];   /* resident bytes bound so far, per dtype */
} LaWeightBinder;

void      la_weight_binder_init (LaWeightBinder *wb, LaBackend *be, LaCheckpoint *ck, LaWeights weights);
/* The resident dtype of checkpoint tensor `src` under wb's setting. */
LaDType   la_weight_binder_dtype (const LaWeightBinder *wb, const LaTensor *src, gboolean linear);
/* The resident copy of ck's tensor `name` (which must exist: callers check
 * its shape with la_checkpoint_require first), given shape (ndim, shape) of
 * the same element count, named `name`.  linear: used only as a `linear`
 * weight.  NULL with an error on a device failure or a non-float tensor. */
LaTensor *la_weight_bind (LaWeightBinder *wb, const char *name, gboolean linear, int ndim,
                          const int64_t *shape, GError **error);
guint64   la_weight_binder_total (const LaWeightBinder *wb);
/* What loaders call: ck's tensor `name`, required with shape (ndim, shape)
 * (la_checkpoint_require: a -1 matches any size; the error names the file
 * and the tensor), then bound at the shape it has. */
LaTensor *la_weight_require (LaWeightBinder *wb, const char *name, gboolean linear, int ndim,
                             const int64_t *shape, GError **error);

G_END_DECLS
