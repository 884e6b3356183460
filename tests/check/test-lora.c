/* LoRA merge: formula, key spellings, bf16 rounding, inventory errors. */
#include <liveavatar/liveavatar.h>
#include "la-model.h"
#include <math.h>
#include <string.h>

static LaTensor *
filled (LaDType dt, int rows, int cols, float base, float step)
{
  g_autoptr (LaTensor) f = la_tensor_new_v (LA_DTYPE_F32, rows, cols, -1);
  for (int i = 0; i < rows * cols; i++)
    la_tensor_f32 (f)[i] = base + step * (float) ((i * 7) % 11);
  return la_tensor_to_dtype (f, dt);
}

static LaCheckpoint *
make_base (LaDType dt)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  la_checkpoint_set_path (ck, "base");
  const char *targets[] = { "blocks.0.self_attn.q.weight", "blocks.0.cross_attn.o.weight",
                            "blocks.0.ffn.0.weight", "audio_injector.injector.0.k.weight" };
  for (int i = 0; i < 4; i++) {
    g_autoptr (LaTensor) w = filled (dt, 4, 6, 0.1f * i, 0.01f);
    la_checkpoint_add (ck, targets[i], w);
  }
  /* Not targets: 1-D, and Linears whose names do not match. */
  g_autoptr (LaTensor) n = la_tensor_new_v (dt, 6, -1);
  g_autoptr (LaTensor) t = filled (dt, 4, 6, 0, 1);
  la_checkpoint_add (ck, "blocks.0.self_attn.q.bias", n);
  la_checkpoint_add (ck, "time_embedding.0.weight", t);
  la_checkpoint_add (ck, "audio_injector.injector_adain_layers.0.linear.weight", t);
  return ck;
}

static LaCheckpoint *
make_lora (gboolean peft_prefix, const char *skip)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  la_checkpoint_set_path (ck, "lora");
  const char *mods[] = { "blocks.0.self_attn.q", "blocks.0.cross_attn.o", "blocks.0.ffn.0", "audio_injector.injector.0.k" };
  for (int i = 0; i < 4; i++) {
    g_autoptr (LaTensor) a = filled (LA_DTYPE_BF16, 2, 6, 0.5f, 0.125f);
    g_autoptr (LaTensor) b = filled (LA_DTYPE_BF16, 4, 2, -0.25f, 0.0625f);
    g_autofree char *ka = g_strdup_printf ("%s%s.lora_A%s.weight", peft_prefix ? "base_model.model." : "", mods[i], i % 2 ? ".default" : "");
    g_autofree char *kb = g_strdup_printf ("%s%s.lora_B%s.weight", peft_prefix ? "base_model.model." : "", mods[i], i % 2 ? ".default" : "");
    if (!skip || !g_str_has_prefix (ka + (peft_prefix ? 17 : 0), skip))
      la_checkpoint_add (ck, ka, a);
    la_checkpoint_add (ck, kb, b);
  }
  return ck;
}

static void
test_merge_f32 (void)
{
  g_autoptr (LaCheckpoint) base = make_base (LA_DTYPE_F32);
  g_autoptr (LaCheckpoint) lora = make_lora (TRUE, NULL);
  g_autoptr (LaTensor) before = la_tensor_to_dtype (la_checkpoint_get (base, "blocks.0.ffn.0.weight"), LA_DTYPE_F32);
  g_autoptr (LaTensor) adapt = la_tensor_to_dtype (la_checkpoint_get (base, "time_embedding.0.weight"), LA_DTYPE_F32);
  LaLoraReport rep;
  GError *e = NULL;
  g_assert_true (la_lora_merge (base, lora, 64, &rep, &e));
  g_assert_no_error (e);
  g_assert_cmpuint (rep.n_targets, ==, 4);
  g_assert_cmpuint (rep.n_merged, ==, 4);
  g_assert_cmpint (rep.rank, ==, 2);
  g_autoptr (LaTensor) a = la_tensor_as_f32 (la_checkpoint_get (lora, "base_model.model.blocks.0.ffn.0.lora_A.weight"));
  g_autoptr (LaTensor) b = la_tensor_as_f32 (la_checkpoint_get (lora, "base_model.model.blocks.0.ffn.0.lora_B.weight"));
  LaTensor *after = la_checkpoint_get (base, "blocks.0.ffn.0.weight");
  for (int o = 0; o < 4; o++)
    for (int i = 0; i < 6; i++) {
      double d = 0;
      for (int k = 0; k < 2; k++)
        d += (double) la_tensor_f32 (b)[o * 2 + k] * la_tensor_f32 (a)[k * 6 + i];
      double want = la_tensor_f32 (before)[o * 6 + i] + 64.0 / 2 * d;
      g_assert_cmpfloat_with_epsilon (la_tensor_f32 (after)[o * 6 + i], want, 1e-4);
    }
  /* Non-targets untouched. */
  g_assert_cmpmem (la_checkpoint_get (base, "time_embedding.0.weight")->data, 24 * 4, adapt->data, 24 * 4);
}

static void
test_merge_bf16_rounds_once (void)
{
  g_autoptr (LaCheckpoint) base = make_base (LA_DTYPE_BF16);
  g_autoptr (LaCheckpoint) lora = make_lora (FALSE, NULL);
  g_autoptr (LaTensor) before = la_tensor_to_dtype (la_checkpoint_get (base, "blocks.0.self_attn.q.weight"), LA_DTYPE_F32);
  GError *e = NULL;
  g_assert_true (la_lora_merge (base, lora, 64, NULL, &e));
  LaTensor *after = la_checkpoint_get (base, "blocks.0.self_attn.q.weight");
  g_assert_cmpint (after->dtype, ==, LA_DTYPE_BF16);
  g_autoptr (LaTensor) a = la_tensor_as_f32 (la_checkpoint_get (lora, "blocks.0.self_attn.q.lora_A.weight"));
  g_autoptr (LaTensor) b = la_tensor_as_f32 (la_checkpoint_get (lora, "blocks.0.self_attn.q.lora_B.weight"));
  for (int o = 0; o < 4; o++)
    for (int i = 0; i < 6; i++) {
      float d = 0;
      for (int k = 0; k < 2; k++)
        d += la_tensor_f32 (b)[o * 2 + k] * la_tensor_f32 (a)[k * 6 + i];
      float want = la_round_bf16 (la_tensor_f32 (before)[o * 6 + i] + 32.0f * d);
      g_assert_cmpfloat (la_bf16_to_f32 (((uint16_t *) after->data)[o * 6 + i]), ==, want);
    }
}

static void
test_missing_pair (void)
{
  g_autoptr (LaCheckpoint) base = make_base (LA_DTYPE_F32);
  g_autoptr (LaCheckpoint) lora = make_lora (TRUE, "blocks.0.cross_attn.o");
  GError *e = NULL;
  g_assert_false (la_lora_merge (base, lora, 64, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "blocks.0.cross_attn.o (no lora_A)"));
  g_clear_error (&e);
}

static void
test_orphan_pair (void)
{
  g_autoptr (LaCheckpoint) base = make_base (LA_DTYPE_F32);
  g_autoptr (LaCheckpoint) lora = make_lora (TRUE, NULL);
  g_autoptr (LaTensor) a = filled (LA_DTYPE_F32, 2, 6, 0, 1);
  la_checkpoint_add (lora, "base_model.model.blocks.9.self_attn.v.lora_A.default.weight", a);
  GError *e = NULL;
  g_assert_false (la_lora_merge (base, lora, 64, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "blocks.9.self_attn.v.weight"));
  g_clear_error (&e);
}

static void
test_shape_mismatch (void)
{
  g_autoptr (LaCheckpoint) base = make_base (LA_DTYPE_F32);
  g_autoptr (LaCheckpoint) lora = make_lora (TRUE, NULL);
  g_autoptr (LaTensor) a = filled (LA_DTYPE_F32, 2, 5, 0, 1);
  la_checkpoint_add (lora, "base_model.model.blocks.0.ffn.0.lora_A.weight", a);
  GError *e = NULL;
  g_assert_false (la_lora_merge (base, lora, 64, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_assert_nonnull (strstr (e->message, "blocks.0.ffn.0.weight"));
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/lora/merge-f32", test_merge_f32);
  g_test_add_func ("/lora/merge-bf16-rounds-once", test_merge_bf16_rounds_once);
  g_test_add_func ("/lora/missing-pair", test_missing_pair);
  g_test_add_func ("/lora/orphan-pair", test_orphan_pair);
  g_test_add_func ("/lora/shape-mismatch", test_shape_mismatch);
  return g_test_run ();
}
