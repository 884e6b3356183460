/* la-lora.c — merging the Live-Avatar PEFT LoRA into the base weights.
 *
 *   W_merged = round_to_dtype(W) ( W + (alpha / r) · (B · A) )
 *
 * with A [r, in], B [out, r], the product in fp32 and one rounding into
 * W's dtype, as PEFT's merge_and_unload does on the GPU (docs/design/formats.md §5).
 * Targets follow PEFT's rule: the module name equals a target or ends with
 * "." + target.  Unlike the reference (load_state_dict(strict=False)), a
 * LoRA that leaves a target unmerged is an error, never a silent no-op.
 *
 * The model loaders merge through a plan, one target at a time, straight
 * into the resident weight as it is bound (la-weights.c): the fp32 sum is
 * formed a few rows at a time and rounded once into W's dtype, so no merged
 * copy of the model ever exists beside the resident one.
 */
#include "la-model.h"
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

typedef struct { LaTensor *a, *b; char *akey, *bkey; gboolean used; } Pair;

static void
pair_free (Pair *p)
{
  if (p->a) la_tensor_unref (p->a);
  if (p->b) la_tensor_unref (p->b);
  g_free (p->akey);
  g_free (p->bkey);
  g_free (p);
}

struct _LaLoraPlan {
  GHashTable *pairs;          /* base weight name ("blocks.0.ffn.0.weight") -> Pair */
  LaCheckpoint *lora;         /* set by la_lora_plan_set_release: merged pairs leave it */
  char *lora_path, *base_path;
  double alpha;
  LaLoraReport rep;
};

void
la_lora_plan_free (LaLoraPlan *p)
{
  if (!p)
    return;
  g_hash_table_unref (p->pairs);
  if (p->lora)
    la_checkpoint_unref (p->lora);
  g_free (p->lora_path);
  g_free (p->base_path);
  g_free (p);
}

LaLoraPlan *
la_lora_plan_new (LaCheckpoint *base, LaCheckpoint *lora, double alpha, GError **error)
{
  LaLoraPlan *plan = g_new0 (LaLoraPlan, 1);
  /* by module while collecting, re-keyed by weight name once complete */
  g_autoptr (GHashTable) mods = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  plan->pairs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) pair_free);
  plan->lora_path = g_strdup (la_checkpoint_path (lora));
  plan->base_path = g_strdup (la_checkpoint_path (base));
  plan->alpha = alpha > 0 ? alpha : 64.0;
  LaLoraReport *rep = &plan->rep;

  const char * const *keys = la_checkpoint_names (lora);
  for (int i = 0; keys[i]; i++) {
    char which;
    char *module = parse_lora_key (keys[i], &which);
    if (!module) {
      rep->n_extra++;
      g_message ("LoRA %s: ignoring non-LoRA tensor '%s'", la_checkpoint_path (lora), keys[i]);
      continue;
    }
    Pair *p = g_hash_table_lookup (mods, module);
    if (!p) {
      p = g_new0 (Pair, 1);
      g_hash_table_insert (mods, g_strdup (module), p);
      g_hash_table_insert (plan->pairs, g_strconcat (module, ".weight", NULL), p);
    }
    g_free (module);
    /* The pair holds its own refs: the LoRA file may be closed once planned. */
    if (which == 'A') {
      g_clear_pointer (&p->a, la_tensor_unref);
      p->a = la_tensor_ref (la_checkpoint_get (lora, keys[i]));
      g_free (p->akey);
      p->akey = g_strdup (keys[i]);
    } else {
      g_clear_pointer (&p->b, la_tensor_unref);
      p->b = la_tensor_ref (la_checkpoint_get (lora, keys[i]));
      g_free (p->bkey);
      p->bkey = g_strdup (keys[i]);
    }
  }

  /* Every target of the base must get a complete pair. */
  GString *missing = g_string_new (NULL);
  guint n_missing = 0;
  const char * const *names = la_checkpoint_names (base);
  for (int i = 0; names[i]; i++) {
    g_autofree char *module = target_of (base, names[i]);
    if (!module)
      continue;
    rep->n_targets++;
    Pair *p = g_hash_table_lookup (mods, module);
    if (!p || !p->a || !p->b) {
      if (n_missing++ < 6)
        g_string_append_printf (missing, "%s%s (%s)", n_missing > 1 ? ", " : "", module,
                                !p ? "no A/B" : !p->a ? "no lora_A" : "no lora_B");
    }
  }
  if (n_missing) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
                 "LoRA %s leaves %u of %u target layers of %s without a complete A/B pair: %s%s",
                 la_checkpoint_path (lora), n_missing, rep->n_targets, la_checkpoint_path (base),
                 missing->str, n_missing > 6 ? ", ..." : "");
    g_string_free (missing, TRUE);
    goto fail;
  }
  g_string_free (missing, TRUE);

  /* ...and every pair must have its target, with shapes that fit and one rank. */
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, plan->pairs);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    const char *wname = k;
    Pair *p = v;
    LaTensor *w = la_checkpoint_get (base, wname);
    g_autofree char *module = g_strndup (wname, strlen (wname) - strlen (".weight"));
    if (!w || w->ndim != 2 || !is_target_module (module)) {
      g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "LoRA %s: '%s' has no target layer '%s' in %s",
                   la_checkpoint_path (lora), p->akey ? p->akey : p->bkey, wname, la_checkpoint_path (base));
      goto fail;
    }
    int64_t out = w->shape[0], in = w->shape[1], r = p->a->shape[0];
    if (p->a->ndim != 2 || p->b->ndim != 2 || p->a->shape[1] != in || p->b->shape[0] != out ||
        p->b->shape[1] != r) {
      g_autofree char *ws = la_shape_to_string (w->ndim, w->shape);
      g_autofree char *as = la_shape_to_string (p->a->ndim, p->a->shape);
      g_autofree char *bs = la_shape_to_string (p->b->ndim, p->b->shape);
      g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "LoRA for '%s' %s: A '%s' %s and B '%s' %s do not fit",
                   wname, ws, p->akey, as, p->bkey, bs);
      goto fail;
    }
    if (rep->rank && r != rep->rank) {
      g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "LoRA %s: '%s' has rank %d, others %d",
                   la_checkpoint_path (lora), p->akey, (int) r, rep->rank);
      goto fail;
    }
    rep->rank = (int) r;
  }
  return plan;
fail:
  la_lora_plan_free (plan);
  return NULL;
}

/* Rows of W per pass: the fp32 working copy stays small (a few MiB) however
 * large the layer, so merging never holds a second full copy of a weight. */
#define MERGE_PANEL_ELEMS ((int64_t) 1 << 20)

gboolean
la_lora_plan_targets (LaLoraPlan *plan, const char *wname)
{
  return g_hash_table_contains (plan->pairs, wname);
}

gboolean
la_lora_plan_apply (LaLoraPlan *plan, const char *wname, LaTensor *w)
{
  Pair *p = g_hash_table_lookup (plan->pairs, wname);
  if (!p)
    return FALSE;
  g_return_val_if_fail (w->device == LA_DEVICE_CPU && w->ndim == 2 && w->shape[0] == p->b->shape[0] &&
                        w->shape[1] == p->a->shape[1], FALSE);
  const int64_t out = w->shape[0], in = w->shape[1], r = p->a->shape[0];
  const float scale = (float) (plan->alpha / (double) r);
  g_autoptr (LaTensor) a = la_tensor_as_f32 (p->a);
  g_autoptr (LaTensor) b = la_tensor_as_f32 (p->b);
  const int64_t rows = MAX (1, MIN (out, MERGE_PANEL_ELEMS / MAX (in, 1)));
  const size_t es = la_dtype_size (w->dtype);
  float *panel = w->dtype == LA_DTYPE_F32 ? NULL : g_malloc ((size_t) (rows * in) * sizeof (float));
  for (int64_t r0 = 0; r0 < out; r0 += rows) {
    int64_t n = MIN (rows, out - r0);
    char *wrow = (char *) w->data + (size_t) (r0 * in) * es;
    float *acc = panel ? panel : (float *) wrow;
    if (panel)
      la_convert (acc, LA_DTYPE_F32, wrow, w->dtype, (size_t) (n * in));
    /* acc += scale · B[r0:r0+n] · A in fp32, then one rounding into W's dtype */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) n, (int) in, (int) r, scale,
                 la_tensor_f32 (b) + r0 * r, (int) r, la_tensor_f32 (a), (int) in, 1.0f, acc, (int) in);
    if (panel)
      la_convert (wrow, w->dtype, acc, LA_DTYPE_F32, (size_t) (n * in));
  }
  g_free (panel);
  if (!p->used) {
    p->used = TRUE;
    plan->rep.n_merged++;
  }
  if (plan->lora) {
    la_checkpoint_release (plan->lora, p->akey);
    la_checkpoint_release (plan->lora, p->bkey);
  }
  return TRUE;
}

void
la_lora_plan_set_release (LaLoraPlan *plan, LaCheckpoint *lora)
{
  if (plan->lora)
    la_checkpoint_unref (plan->lora);
  plan->lora = lora ? la_checkpoint_ref (lora) : NULL;
}

gboolean
la_lora_plan_finish (LaLoraPlan *plan, LaLoraReport *report, GError **error)
{
  if (report)
    *report = plan->rep;
  if (plan->rep.n_merged == g_hash_table_size (plan->pairs))
    return TRUE;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, plan->pairs);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (!((Pair *) v)->used)
      break;
  g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND,
               "LoRA %s: %u of %u target layers were never merged (the model did not load '%s' of %s)",
               plan->lora_path, g_hash_table_size (plan->pairs) - plan->rep.n_merged,
               g_hash_table_size (plan->pairs), (const char *) k, plan->base_path);
  return FALSE;
}

gboolean
la_lora_merge (LaCheckpoint *base, LaCheckpoint *lora, double alpha, LaLoraReport *report, GError **error)
{
  LaLoraPlan *plan = la_lora_plan_new (base, lora, alpha, error);
  if (!plan) {
    if (report)
      memset (report, 0, sizeof *report);
    return FALSE;
  }
  /* A merged copy per target replaces the (mapped) original in `base`. */
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init (&it, plan->pairs);
  while (g_hash_table_iter_next (&it, &k, NULL)) {
    LaTensor *w = la_checkpoint_get (base, k);
    g_autoptr (LaTensor) merged = la_tensor_to_dtype (w, w->dtype);
    la_tensor_set_name (merged, k);
    la_lora_plan_apply (plan, k, merged);
    la_checkpoint_add (base, k, merged);
  }
  gboolean ok = la_lora_plan_finish (plan, report, error);
  la_lora_plan_free (plan);
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
