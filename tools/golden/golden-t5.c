/* golden-t5.c — golden runner for "t5" cases (umT5 encoder, docs/design/text.md §3).
 *
 * The case runs T5Encoder(ids, mask) on text_len ids of which the first
 * num_real_tokens are real.  We reproduce both what the reference computes
 * (encoder_out_full: all positions, padded keys masked; blockI.out) and what
 * the C runtime actually does (context: the real tokens only, no padding).
 * Sizes come from the weights and case.json, never from constants.
 */
#include "la-text.h"
#include "golden.h"
#include "la-ops.h"

typedef struct {
  GoldenCase *c;
  GError **error;
  gboolean ok;
} HookData;

static gboolean check (GoldenCase *c, LaCheckpoint *ref, const char *name, LaTensor *t,
                       GError **error);

static LaTensor *
to_host (LaBackend *be, LaTensor *t)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, h, t);
  return h;
}

static void
block_hook (int layer, LaTensor *x, gpointer user_data)
{
  HookData *d = user_data;
  if (!d->ok || !d->c->intermediates)
    return;
  char name[64];
  g_snprintf (name, sizeof name, "block%d.out", layer);
  if (!la_checkpoint_get (d->c->intermediates, name))
    return;
  g_autoptr (LaTensor) h = to_host (d->c->backend, x);
  if (!check (d->c, d->c->intermediates, name, h, d->error))
    d->ok = FALSE;
}

/* golden_check, but a mismatch is only counted (the run goes on so every
 * tensor is reported); FALSE only when the reference tensor is absent. */
static gboolean
check (GoldenCase *c, LaCheckpoint *ref, const char *name, LaTensor *t, GError **error)
{
  GError *e = NULL;
  golden_check (c, ref, name, t, &e);
  if (e) {
    g_propagate_error (error, e);
    return FALSE;
  }
  return TRUE;
}

/* Reads an integer id/mask tensor of any int dtype as gint32. */
static gint32 *
int_tensor (LaTensor *t, int *n)
{
  *n = (int) la_tensor_numel (t);
  gint32 *out = g_new (gint32, MAX (*n, 1));
  la_convert (out, LA_DTYPE_I32, t->data, t->dtype, *n);
  return out;
}

gboolean
golden_run_t5 (GoldenCase *c, GError **error)
{
  LaBackend *be = c->backend;
  JsonObject *mc = golden_obj (c->obj, "model_config", error);
  if (!mc)
    return FALSE;
  /* config: the sizes the weights must agree with; max_dist is not in the
   * case (the reference's T5RelativeEmbedding default, 128) */
  LaT5Config cfg = { 0 };
  cfg.vocab = (int) golden_int (mc, "vocab", error);
  cfg.dim = (int) golden_int (mc, "dim", error);
  cfg.dim_attn = (int) golden_int (mc, "dim_attn", error);
  cfg.dim_ffn = (int) golden_int (mc, "dim_ffn", error);
  cfg.num_heads = (int) golden_int (mc, "num_heads", error);
  cfg.num_layers = (int) golden_int (mc, "num_layers", error);
  cfg.num_buckets = (int) golden_int (mc, "num_buckets", error);
  if (error && *error)
    return FALSE;
  cfg.max_dist = json_object_has_member (mc, "max_dist") ? (int) golden_int (mc, "max_dist", error) : 128;
  cfg.eps = 1e-6f;
  if (json_object_has_member (mc, "shared_pos") && json_object_get_boolean_member (mc, "shared_pos"))
    g_print ("  note: shared_pos = true (one position table for all layers)\n");

  g_autoptr (LaT5Encoder) enc = la_t5_encoder_new (be, c->weights, &cfg, error);
  if (!enc)
    return FALSE;

  LaTensor *ids_t = golden_tensor (c, c->inputs, "ids", error);
  LaTensor *mask_t = ids_t ? golden_tensor (c, c->inputs, "mask", error) : NULL;
  if (!mask_t)
    return FALSE;
  int n_ids, n_mask;
  g_autofree gint32 *ids = int_tensor (ids_t, &n_ids);
  g_autofree gint32 *mask = int_tensor (mask_t, &n_mask);
  if (n_mask != n_ids) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "%s: ids has %d entries, mask %d", c->dir, n_ids, n_mask);
    return FALSE;
  }
  int n_real = 0;
  for (int i = 0; i < n_mask; i++)
    n_real += mask[i] != 0;

  /* 1. the reference computation: all positions with the key mask */
  HookData hd = { c, error, TRUE };
  g_autoptr (LaTensor) full = la_t5_encode_full (enc, ids, mask, n_ids, block_hook, &hd, error);
  if (!full || !hd.ok)
    return FALSE;
  g_autoptr (LaTensor) full_h = to_host (be, full);
  if (!check (c, c->outputs, "encoder_out_full", full_h, error))
    return FALSE;

  /* 2. the runtime's computation: the real tokens only (mask is a prefix) */
  g_autofree gint32 *real = g_new (gint32, MAX (n_real, 1));
  int r = 0;
  for (int i = 0; i < n_ids; i++)
    if (mask[i])
      real[r++] = ids[i];
  g_autoptr (LaTensor) ctx = la_t5_encode (enc, real, n_real, error);
  if (!ctx)
    return FALSE;
  g_autoptr (LaTensor) ctx_h = to_host (be, ctx);
  return check (c, c->outputs, "context", ctx_h, error);
}
