/* Resident weights: the CPU backend's bf16 linear, the LoRA merge straight
 * into a bf16 weight, the binder's dtype rule and the release of mapped
 * checkpoint pages. */
#include <liveavatar/liveavatar.h>
#include "la-ops.h"
#include "la-weight-binder.h"
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static LaTensor *
rand_tensor (GRand *r, LaDType dt, int rows, int cols, float scale)
{
  g_autoptr (LaTensor) f = la_tensor_new_v (LA_DTYPE_F32, rows, cols, -1);
  for (int64_t i = 0; i < la_tensor_numel (f); i++)
    la_tensor_f32 (f)[i] = (float) g_rand_double_range (r, -1, 1) * scale;
  return la_tensor_to_dtype (f, dt);
}

static double
rel_l2 (const LaTensor *a, const LaTensor *b)
{
  double num = 0, den = 0;
  for (int64_t i = 0; i < la_tensor_numel (a); i++) {
    double d = la_tensor_f32 (a)[i] - la_tensor_f32 (b)[i];
    num += d * d;
    den += (double) la_tensor_f32 (b)[i] * la_tensor_f32 (b)[i];
  }
  return sqrt (num / den);
}

/* y = x·w^T + b with w bf16 equals the f32 op on the widened w up to the
 * summation order: sizes chosen so the weight spans several panels. */
static void
test_linear_bf16 (void)
{
  g_autoptr (LaBackend) be = la_backend_cpu_new (0);
  GRand *r = g_rand_new_with_seed (3);
  const int M = 7, N = 600, K = 9000;       /* panel = 2^21 / 9000 -> 224 rows: 3 panels */
  g_autoptr (LaTensor) x = rand_tensor (r, LA_DTYPE_F32, M, K, 1);
  g_autoptr (LaTensor) wb = rand_tensor (r, LA_DTYPE_BF16, N, K, 0.01f);
  g_autoptr (LaTensor) wf = la_tensor_to_dtype (wb, LA_DTYPE_F32);
  g_autoptr (LaTensor) bias = la_tensor_new_v (LA_DTYPE_F32, N, -1);
  for (int i = 0; i < N; i++)
    la_tensor_f32 (bias)[i] = (float) i * 0.001f;
  g_autoptr (LaTensor) y16 = la_tensor_new_v (LA_DTYPE_F32, M, N, -1);
  g_autoptr (LaTensor) y32 = la_tensor_new_v (LA_DTYPE_F32, M, N, -1);
  la_linear (be, y16, x, wb, bias);
  la_linear (be, y32, x, wf, bias);
  double e = rel_l2 (y16, y32);
  g_assert_cmpfloat (e, <, 1e-6);
  /* a panel that went missing or was shifted would be far off, not 1e-6 */
  g_assert_cmpfloat (fabsf (la_tensor_f32 (y16)[M * N - 1] - la_tensor_f32 (y32)[M * N - 1]), <, 1e-4);

  /* matmul with a bf16 operand */
  g_autoptr (LaTensor) a = rand_tensor (r, LA_DTYPE_F32, 5, 33, 1);
  g_autoptr (LaTensor) b16 = rand_tensor (r, LA_DTYPE_BF16, 33, 9, 1);
  g_autoptr (LaTensor) b32 = la_tensor_to_dtype (b16, LA_DTYPE_F32);
  g_autoptr (LaTensor) c16 = la_tensor_new_v (LA_DTYPE_F32, 5, 9, -1);
  g_autoptr (LaTensor) c32 = la_tensor_new_v (LA_DTYPE_F32, 5, 9, -1);
  la_matmul (be, c16, a, b16, FALSE, FALSE, 1.f, 0.f);
  la_matmul (be, c32, a, b32, FALSE, FALSE, 1.f, 0.f);
  g_assert_cmpmem (c16->data, la_tensor_nbytes (c16), c32->data, la_tensor_nbytes (c32));
  g_rand_free (r);
}

/* The merge into a resident bf16 weight (panels of rows, fp32 sum, one
 * rounding) equals la_lora_merge on the widened f32 weight, rounded once. */
static void
test_lora_bf16_equals_f32_rounded (void)
{
  GRand *r = g_rand_new_with_seed (5);
  const int out = 700, in = 3000, rank = 16;   /* 1 M-element panels: 3 of them */
  g_autoptr (LaTensor) w16 = rand_tensor (r, LA_DTYPE_BF16, out, in, 0.05f);
  g_autoptr (LaTensor) a = rand_tensor (r, LA_DTYPE_BF16, rank, in, 0.02f);
  g_autoptr (LaTensor) b = rand_tensor (r, LA_DTYPE_BF16, out, rank, 0.5f);
  g_autoptr (LaCheckpoint) base16 = la_checkpoint_new ();
  g_autoptr (LaCheckpoint) base32 = la_checkpoint_new ();
  g_autoptr (LaCheckpoint) lora = la_checkpoint_new ();
  g_autoptr (LaTensor) w32 = la_tensor_to_dtype (w16, LA_DTYPE_F32);
  la_checkpoint_add (base16, "blocks.0.ffn.2.weight", w16);
  la_checkpoint_add (base32, "blocks.0.ffn.2.weight", w32);
  la_checkpoint_add (lora, "blocks.0.ffn.2.lora_A.default.weight", a);
  la_checkpoint_add (lora, "blocks.0.ffn.2.lora_B.default.weight", b);
  GError *e = NULL;

  g_assert_true (la_lora_merge (base32, lora, 64, NULL, &e));
  g_assert_no_error (e);
  g_autoptr (LaTensor) want = la_tensor_to_dtype (la_checkpoint_get (base32, "blocks.0.ffn.2.weight"), LA_DTYPE_BF16);

  g_autoptr (LaLoraPlan) plan = la_lora_plan_new (base16, lora, 64, &e);
  g_assert_no_error (e);
  g_assert_true (la_lora_plan_targets (plan, "blocks.0.ffn.2.weight"));
  g_assert_false (la_lora_plan_targets (plan, "blocks.0.ffn.2.bias"));
  LaLoraReport rep;
  g_assert_false (la_lora_plan_finish (plan, &rep, &e));       /* nothing merged yet */
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "blocks.0.ffn.2.weight"));
  g_clear_error (&e);
  g_autoptr (LaTensor) resident = la_tensor_to_dtype (w16, LA_DTYPE_BF16);
  g_assert_true (la_lora_plan_apply (plan, "blocks.0.ffn.2.weight", resident));
  g_assert_true (la_lora_plan_finish (plan, &rep, &e));
  g_assert_cmpint (rep.n_merged, ==, 1);
  g_assert_cmpint (rep.rank, ==, rank);
  g_assert_cmpmem (resident->data, la_tensor_nbytes (resident), want->data, la_tensor_nbytes (want));
  /* and the merge did change the weight */
  g_assert_cmpint (memcmp (resident->data, w16->data, la_tensor_nbytes (w16)), !=, 0);

  /* Through the binder: bf16 resident, and f32 resident (weights=f32), which
   * still rounds the merge into the file's bf16 before widening. */
  g_autoptr (LaBackend) be = la_backend_cpu_new (0);
  g_autoptr (LaTensor) want32 = la_tensor_to_dtype (want, LA_DTYPE_F32);
  for (int mode = 0; mode < 2; mode++) {
    g_autoptr (LaLoraPlan) p2 = la_lora_plan_new (base16, lora, 64, &e);
    g_assert_no_error (e);
    LaWeightBinder wb;
    la_weight_binder_init (&wb, be, base16, mode ? LA_WEIGHTS_F32 : LA_WEIGHTS_FILE);
    wb.lora = p2;
    g_autoptr (LaTensor) bound = la_weight_bind (&wb, "blocks.0.ffn.2.weight", TRUE, 2,
                                                 (int64_t[]) { out, in }, &e);
    g_assert_no_error (e);
    g_assert_true (la_lora_plan_finish (p2, NULL, &e));
    LaTensor *ref = mode ? want32 : want;
    g_assert_cmpint (bound->dtype, ==, ref->dtype);
    g_assert_cmpmem (bound->data, la_tensor_nbytes (bound), ref->data, la_tensor_nbytes (ref));
  }
  /* the caller's checkpoint is untouched (no release) */
  g_assert_true (la_checkpoint_get (base16, "blocks.0.ffn.2.weight") == w16);
  g_rand_free (r);
}

static void
test_binder (void)
{
  LaWeights w;
  GError *e = NULL;
  g_assert_true (la_weights_from_string (NULL, &w, &e) && w == LA_WEIGHTS_FILE);
  g_assert_true (la_weights_from_string ("f32", &w, &e) && w == LA_WEIGHTS_F32);
  g_assert_true (la_weights_from_string ("bf16", &w, &e) && w == LA_WEIGHTS_BF16);
  g_assert_true (la_weights_from_string ("fp8", &w, &e) && w == LA_WEIGHTS_FP8);
  g_assert_false (la_weights_from_string ("fp16", &w, &e));
  g_assert_nonnull (strstr (e->message, "fp16"));
  g_clear_error (&e);

  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  g_autoptr (LaCheckpoint) ck = la_checkpoint_new ();
  GRand *r = g_rand_new_with_seed (9);
  g_autoptr (LaTensor) m16 = rand_tensor (r, LA_DTYPE_BF16, 4, 8, 1);
  g_autoptr (LaTensor) m32 = rand_tensor (r, LA_DTYPE_F32, 4, 8, 1);
  la_checkpoint_add (ck, "lin16", m16);
  la_checkpoint_add (ck, "lin32", m32);
  la_checkpoint_add (ck, "norm16", m16);
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, ck, LA_WEIGHTS_FILE);
  int64_t s2[2] = { 4, 8 }, s1[1] = { 32 };
  g_autoptr (LaTensor) a = la_weight_bind (&wb, "lin16", TRUE, 2, s2, &e);
  g_autoptr (LaTensor) b = la_weight_bind (&wb, "lin32", TRUE, 2, s2, &e);
  g_autoptr (LaTensor) c = la_weight_bind (&wb, "norm16", FALSE, 1, s1, &e);
  g_assert_no_error (e);
  g_assert_cmpint (a->dtype, ==, LA_DTYPE_BF16);     /* linear: the file's precision */
  g_assert_cmpint (b->dtype, ==, LA_DTYPE_F32);
  g_assert_cmpint (c->dtype, ==, LA_DTYPE_F32);      /* not a linear: f32 */
  g_assert_cmpint (c->ndim, ==, 1);
  g_assert_cmpfloat (la_tensor_f32 (c)[31], ==, la_bf16_to_f32 (((uint16_t *) m16->data)[31]));
  g_assert_cmpuint (wb.bytes[LA_DTYPE_BF16], ==, 64);
  g_assert_cmpuint (wb.bytes[LA_DTYPE_F32], ==, 2 * 128);
  la_weight_binder_init (&wb, be, ck, LA_WEIGHTS_F32);
  g_autoptr (LaTensor) d = la_weight_bind (&wb, "lin16", TRUE, 2, s2, &e);
  g_assert_cmpint (d->dtype, ==, LA_DTYPE_F32);
  g_assert_nonnull (la_checkpoint_get (ck, "lin16"));  /* no release: the caller's checkpoint */
  g_rand_free (r);
}

/* Releasing a mapped tensor removes it from the checkpoint, and a view that
 * someone still holds reads the same bytes afterwards (the pages come back
 * from the file). */
static void
test_release_mapped (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-weights-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "w.safetensors", NULL);
  GRand *r = g_rand_new_with_seed (1);
  g_autoptr (LaCheckpoint) ck = la_checkpoint_new ();
  g_autoptr (LaTensor) big = rand_tensor (r, LA_DTYPE_F32, 256, 1024, 1);   /* 1 MiB: whole pages */
  la_checkpoint_add (ck, "big", big);
  GError *e = NULL;
  g_assert_true (la_safetensors_write (path, ck, &e));
  g_autoptr (LaCheckpoint) rd = la_checkpoint_open (path, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) held = la_tensor_ref (la_checkpoint_get (rd, "big"));
  g_assert_cmpmem (held->data, la_tensor_nbytes (held), big->data, la_tensor_nbytes (big));
  la_checkpoint_release (rd, "big");
  g_assert_null (la_checkpoint_get (rd, "big"));
  g_assert_cmpmem (held->data, la_tensor_nbytes (held), big->data, la_tensor_nbytes (big));
  la_checkpoint_release (rd, "absent");
  g_unlink (path);
  g_rmdir (dir);
  g_rand_free (r);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/weights/linear-bf16", test_linear_bf16);
  g_test_add_func ("/weights/lora-bf16-equals-f32-rounded", test_lora_bf16_equals_f32_rounded);
  g_test_add_func ("/weights/binder", test_binder);
  g_test_add_func ("/weights/release-mapped", test_release_mapped);
  return g_test_run ();
}
