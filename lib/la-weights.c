/* la-weights.c — binding checkpoint tensors as resident weights (see
 * la-weights.h for the path).  On the CPU a tensor that needs neither a
 * conversion nor a merge, from a checkpoint the caller keeps, stays a
 * zero-copy view (tests, golden cases); a loader that owns its checkpoint
 * (release) always takes its own copy, so the file's pages go back to the
 * kernel and a file replaced on disk cannot fault a running stream. */
#include "liveavatar/la-weights.h"
#include "liveavatar/la-cuda.h"
#include "liveavatar/la-error.h"
#include "la-ops.h"
#include "la-weight-binder.h"
#include <string.h>

static const char *names[] = { "file", "f32", "bf16", "fp8" };

gboolean
la_weights_from_string (const char *s, LaWeights *out, GError **error)
{
  if (!s || !*s) {
    *out = LA_WEIGHTS_FILE;
    return TRUE;
  }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (strcmp (s, names[i]) == 0) {
      *out = (LaWeights) i;
      return TRUE;
    }
  g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
               "weights '%s': expected 'file' (the checkpoint's precision), 'f32', 'bf16' or 'fp8' (CUDA)", s);
  return FALSE;
}

const char *
la_weights_to_string (LaWeights w)
{
  return (unsigned) w < G_N_ELEMENTS (names) ? names[w] : "?";
}

void
la_weight_binder_init (LaWeightBinder *wb, LaBackend *be, LaCheckpoint *ck, LaWeights weights)
{
  memset (wb, 0, sizeof *wb);
  wb->be = be;
  wb->ck = ck;
  wb->weights = weights;
}

LaDType
la_weight_binder_dtype (const LaWeightBinder *wb, const LaTensor *src, gboolean linear)
{
  if (!linear || wb->weights == LA_WEIGHTS_F32)
    return LA_DTYPE_F32;
  if (wb->weights == LA_WEIGHTS_BF16 || wb->weights == LA_WEIGHTS_FP8)
    return LA_DTYPE_BF16;     /* FP8 quantises the bf16 weight on the device */
  /* file: bf16 stays; anything else (f32, f16, ...) is read as f32 */
  return src->dtype == LA_DTYPE_BF16 ? LA_DTYPE_BF16 : LA_DTYPE_F32;
}

guint64
la_weight_binder_total (const LaWeightBinder *wb)
{
  guint64 n = 0;
  for (int i = 0; i < LA_DTYPE_COUNT; i++)
    n += wb->bytes[i];
  return n;
}

LaTensor *
la_weight_require (LaWeightBinder *wb, const char *name, gboolean linear, int ndim, const int64_t *shape,
                   GError **error)
{
  LaTensor *src = la_checkpoint_require (wb->ck, name, ndim, shape, error);
  if (!src)
    return NULL;
  int64_t own[LA_TENSOR_MAX_DIMS];   /* src may be released by the bind */
  memcpy (own, src->shape, sizeof own);
  return la_weight_bind (wb, name, linear, src->ndim, own, error);
}

/* A device backend (CUDA): a bf16 linear goes through la_cuda_upload_weight
 * when the backend is set to bf16 or FP8 weights (FP8 for the eligible
 * linears, docs/design/model.md §2.3, when the binder asks for FP8: only the
 * DiT's loader does, so umT5's similar names stay bf16); otherwise the tensor is copied up in its resident
 * dtype, so the checkpoint's precision holds whatever the backend's mode. */
static LaTensor *
upload (LaWeightBinder *wb, LaTensor *host, const char *name, gboolean linear, GError **error)
{
  LaBackend *be = wb->be;
  LaTensor *r;
  if (linear && host->dtype == LA_DTYPE_BF16 && la_cuda_get_weights (be) != LA_CUDA_WEIGHTS_F32) {
    r = la_cuda_upload_weight (be, host, wb->weights == LA_WEIGHTS_FP8 && la_cuda_fp8_eligible (name, host->ndim),
                               error);
  } else {
    r = la_alloc (be, host->dtype, host->ndim, host->shape);
    if (r)
      la_copy (be, r, host);
    if (!r || !la_backend_sync (be, error))
      g_clear_pointer (&r, la_tensor_unref);
  }
  if (r)
    la_tensor_set_name (r, name);
  else
    g_prefix_error (error, "weight '%s' of %s: ", name, la_checkpoint_path (wb->ck));
  return r;
}

LaTensor *
la_weight_bind (LaWeightBinder *wb, const char *name, gboolean linear, int ndim, const int64_t *shape,
                GError **error)
{
  LaTensor *src = la_checkpoint_get (wb->ck, name);
  g_return_val_if_fail (src != NULL, NULL);
  if (!la_dtype_is_float (src->dtype) || src->device != LA_DEVICE_CPU) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: tensor '%s' has dtype %s, expected a host float tensor",
                 la_checkpoint_path (wb->ck), name, la_dtype_name (src->dtype));
    return NULL;
  }
  const LaDType dt = la_weight_binder_dtype (wb, src, linear);
  const gboolean cpu = la_backend_get_device (wb->be) == LA_DEVICE_CPU;
  const gboolean merge = wb->lora && la_lora_plan_targets (wb->lora, name);
  if (merge && ndim != 2) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: LoRA target '%s' bound as a %d-D tensor",
                 la_checkpoint_path (wb->ck), name, ndim);
    return NULL;
  }
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    numel *= shape[i];
  if (ndim < 1 || ndim > LA_TENSOR_MAX_DIMS || numel != la_tensor_numel (src)) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "%s: tensor '%s' (%" G_GINT64_FORMAT " elements) bound as %d-D "
                 "with %" G_GINT64_FORMAT, la_checkpoint_path (wb->ck), name, la_tensor_numel (src), ndim, numel);
    return NULL;
  }
  LaTensor *r = NULL;
  LaTensor *host = NULL;
  if (src->dtype == dt && !wb->release && !merge)
    host = la_tensor_new_view (dt, ndim, shape, src->storage, src->data, LA_DEVICE_CPU, 0);
  else if (merge && src->dtype != dt) {
    /* The merge rounds into the checkpoint's dtype, as PEFT's merge does on
     * the bf16 model; the merged weight is then widened (or narrowed). */
    g_autoptr (LaTensor) tmp = la_tensor_new (src->dtype, ndim, shape);
    memcpy (tmp->data, src->data, la_tensor_nbytes (src));
    la_lora_plan_apply (wb->lora, name, tmp);
    host = la_tensor_new (dt, ndim, shape);
    la_convert (host->data, dt, tmp->data, tmp->dtype, (size_t) numel);
  } else {
    host = la_tensor_new (dt, ndim, shape);
    la_convert (host->data, dt, src->data, src->dtype, (size_t) numel);
    if (merge)
      la_lora_plan_apply (wb->lora, name, host);
  }
  la_tensor_set_name (host, name);
  if (cpu)
    r = la_backend_adopt (wb->be, g_steal_pointer (&host));   /* resident in place (copy statistics) */
  else {
    r = upload (wb, host, name, linear, error);
    g_clear_pointer (&host, la_tensor_unref);
  }
  if (r)
    wb->bytes[r->dtype] += la_tensor_nbytes (r);
  if (wb->release)
    la_checkpoint_release (wb->ck, name);
  return r;
}
