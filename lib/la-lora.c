/* la-lora.c — merging the Live-Avatar PEFT LoRA into the base weights.
 *
 *   W_merged = round_to_dtype(W) ( W + (alpha / r) · (B · A) )
 *
 * with A [r, in], B [out, r], the product in fp32 and one rounding into
 * W's dtype, as PEFT's merge_and_unload does on the GPU (dit.md §2.2).
 * Targets follow PEFT's rule: the module name equals a target or ends with
 * "." + target.  Unlike the reference (load_state_dict(strict=False)), a
 * LoRA that leaves a target unmerged is an error, never a silent no-op.
 */
#include "liveavatar/la-model.h"
#include "liveavatar/la-error.h"
#include <cblas.h>
#include <string.h>
#include <math.h>

const char * const la_lora_targets[] = { "q", "k", "v", "o", "ffn.0", "ffn.2", NULL };

static gboolean
is_target_module (const char *module)
{
  for (int i = 0; la_lora_targets[i]; i++) {
    size_t lm = strlen (module), lt = strlen (la_lora_targets[i]);
    if (strcmp (module, la_lora_targets[i]) == 0 ||
        (lm > lt && module[lm - lt - 1] == '.' && strcmp (module + lm - lt, la_lora_targets[i]) == 0))
      return TRUE;
  }
  return FALSE;
}

/* The module of a base tensor the LoRA targets ("blocks.0.ffn.0" for the
 * 2-D "blocks.0.ffn.0.weight"), or NULL. */
static char *
target_of (LaCheckpoint *base, const char *name)
{
  if (!g_str_has_suffix (name, ".weight") || la_checkpoint_get (base, name)->ndim != 2)
    return NULL;
  char *module = g_strndup (name, strlen (name) - strlen (".weight"));
  if (!is_target_module (module))
    g_clear_pointer (&module, g_free);
  return module;
}

/* "base_model.model.blocks.0.self_attn.q.lora_A.default.weight" -> module
 * "blocks.0.self_attn.q", which 'A' or 'B'; NULL when not a LoRA key. */
static char *
parse_lora_key (const char *key, char *which)
{
  const char *k = g_str_has_prefix (key, "base_model.model.") ? key + strlen ("base_model.model.") : key;
  static const char *suffixes[] = { ".lora_A.default.weight", ".lora_A.weight", ".lora_B.default.weight", ".lora_B.weight" };
  for (int i = 0; i < 4; i++)
    if (g_str_has_suffix (k, suffixes[i])) {
      *which = i < 2 ? 'A' : 'B';
      return g_strndup (k, strlen (k) - strlen (suffixes[i]));
    }
  return NULL;
}

typedef struct { LaTensor *a, *b; const char *akey, *bkey; } Pair;

static gboolean
merge_one (LaCheckpoint *base, const char *wname, LaTensor *w, Pair *p, double scale, GError **error)
{
  int64_t out = w->shape[0], in = w->shape[1], r = p->a->shape[0];
  if (p->a->ndim != 2 || p->b->ndim != 2 || p->a->shape[1] != in || p->b->shape[0] != out || p->b->shape[1] != r) {
    g_autofree char *ws = la_shape_to_string (w->ndim, w->shape);
    g_autofree char *as = la_shape_to_string (p->a->ndim, p->a->shape);
    g_autofree char *bs = la_shape_to_string (p->b->ndim, p->b->shape);
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "LoRA for '%s' %s: A '%s' %s and B '%s' %s do not fit",
                 wname, ws, p->akey, as, p->bkey, bs);
    return FALSE;
  }
  g_autoptr (LaTensor) a = la_tensor_as_f32 (p->a);
  g_autoptr (LaTensor) b = la_tensor_as_f32 (p->b);
  g_autoptr (LaTensor) merged = la_tensor_to_dtype (w, LA_DTYPE_F32);
  /* merged += scale · B · A */
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) out, (int) in, (int) r, (float) scale,
               la_tensor_f32 (b), (int) r, la_tensor_f32 (a), (int) in, 1.0f, la_tensor_f32 (merged), (int) in);
  if (w->dtype == LA_DTYPE_F32) {
    la_checkpoint_add (base, wname, merged);
  } else {
    g_autoptr (LaTensor) back = la_tensor_to_dtype (merged, w->dtype);
    la_checkpoint_add (base, wname, back);
  }
  return TRUE;
}

gboolean
la_lora_merge (LaCheckpoint *base, LaCheckpoint *lora, double alpha, LaLoraReport *report, GError **error)
{
  LaLoraReport rep = { 0 };
  gboolean ok = FALSE;
  g_autoptr (GHashTable) pairs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (alpha <= 0)
    alpha = 64.0;

  const char * const *keys = la_checkpoint_names (lora);
  for (int i = 0; keys[i]; i++) {
    char which;
    char *module = parse_lora_key (keys[i], &which);
    if (!module) {
      rep.n_extra++;
      g_message ("LoRA %s: ignoring non-LoRA tensor '%s'", la_checkpoint_path (lora), keys[i]);
      continue;
    }
    Pair *p = g_hash_table_lookup (pairs, module);
    if (!p) {
      p = g_new0 (Pair, 1);
      g_hash_table_insert (pairs, module, p);
    } else
      g_free (module);
    if (which == 'A') {
      p->a = la_checkpoint_get (lora, keys[i]);
      p->akey = keys[i];
    } else {
      p->b = la_checkpoint_get (lora, keys[i]);
      p->bkey = keys[i];
    }
  }

  /* Every target of the base must get a complete pair. */
  GString *missing = g_string_new (NULL);
  guint n_missing = 0;
  g_autoptr (GPtrArray) bases = g_ptr_array_new_with_free_func (g_free);
  const char * const *names = la_checkpoint_names (base);
  for (int i = 0; names[i]; i++) {
    g_autofree char *module = target_of (base, names[i]);
    if (!module)
      continue;
    rep.n_targets++;
    Pair *p = g_hash_table_lookup (pairs, module);
    if (!p || !p->a || !p->b) {
      if (n_missing++ < 6)
        g_string_append_printf (missing, "%s%s (%s)", n_missing > 1 ? ", " : "", module,
                                !p ? "no A/B" : !p->a ? "no lora_A" : "no lora_B");
      continue;
    }
    g_ptr_array_add (bases, g_strdup (names[i]));
  }
  if (n_missing) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
                 "LoRA %s leaves %u of %u target layers of %s without a complete A/B pair: %s%s",
                 la_checkpoint_path (lora), n_missing, rep.n_targets, la_checkpoint_path (base),
                 missing->str, n_missing > 6 ? ", ..." : "");
    g_string_free (missing, TRUE);
    return FALSE;
  }
  g_string_free (missing, TRUE);

  /* ...and every pair must have its target. */
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, pairs);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    g_autofree char *wname = g_strconcat (k, ".weight", NULL);
    LaTensor *w = la_checkpoint_get (base, wname);
    if (!w || w->ndim != 2 || !is_target_module (k)) {
      g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "LoRA %s: '%s' has no target layer '%s' in %s",
                   la_checkpoint_path (lora), ((Pair *) v)->akey ? ((Pair *) v)->akey : ((Pair *) v)->bkey,
                   wname, la_checkpoint_path (base));
      return FALSE;
    }
  }

  for (guint i = 0; i < bases->len; i++) {
    const char *wname = bases->pdata[i];
    g_autofree char *module = g_strndup (wname, strlen (wname) - strlen (".weight"));
    Pair *p = g_hash_table_lookup (pairs, module);
    int r = (int) p->a->shape[0];
    if (rep.rank && r != rep.rank) {
      g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "LoRA %s: '%s' has rank %d, others %d",
                   la_checkpoint_path (lora), p->akey, r, rep.rank);
      goto out;
    }
    rep.rank = r;
    if (!merge_one (base, wname, la_checkpoint_get (base, wname), p, alpha / r, error))
      goto out;
    rep.n_merged++;
  }
  ok = TRUE;
out:
  if (report)
    *report = rep;
  return ok;
}

LaCheckpoint *
la_lora_random (LaCheckpoint *base, int rank, guint64 seed)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  GRand *r = g_rand_new_with_seed ((guint32) (seed ^ (seed >> 32)));
  const char * const *names = la_checkpoint_names (base);
  for (int i = 0; names[i]; i++) {
    g_autofree char *module = target_of (base, names[i]);
    if (!module)
      continue;
    LaTensor *w = la_checkpoint_get (base, names[i]);
    int64_t out = w->shape[0], in = w->shape[1];
    g_autoptr (LaTensor) a = la_tensor_new_v (LA_DTYPE_BF16, rank, (int) in, -1);
    g_autoptr (LaTensor) b = la_tensor_new_v (LA_DTYPE_BF16, (int) out, rank, -1);
    /* Small enough that the merged model stays close to the base one. */
    for (int64_t j = 0; j < la_tensor_numel (a); j++)
      ((uint16_t *) a->data)[j] = la_f32_to_bf16 ((float) g_rand_double_range (r, -1, 1) / sqrtf ((float) in));
    for (int64_t j = 0; j < la_tensor_numel (b); j++)
      ((uint16_t *) b->data)[j] = la_f32_to_bf16 ((float) g_rand_double_range (r, -1, 1) * 0.01f);
    g_autofree char *ka = g_strconcat (module, ".lora_A.default.weight", NULL);
    g_autofree char *kb = g_strconcat (module, ".lora_B.default.weight", NULL);
    la_checkpoint_add (ck, ka, a);
    la_checkpoint_add (ck, kb, b);
  }
  g_rand_free (r);
  return ck;
}
