/* test-dit-audio.c — the DiT's causal audio encoder and injector (docs/design/audio-path.md
 * §5, §6) beyond the golden case: the receptive field of each latent
 * frame (docs/design/audio-path.md §5.2: perturbing block frame f changes latent frames {0,1}
 * for f <= 2, {0,1,2} for f = 3, {1,2} for 4 <= f <= 7, {2} for f >= 8), the
 * P ≡ 1 (mod 4) prefix equivalence for several P, other block lengths, and
 * shape errors.  Weights: the audio golden case's (sizes read from them). */
#include <liveavatar/liveavatar.h>
#include "audio/la-dit-audio.h"
#include <math.h>
#include <string.h>

static LaCheckpoint *
weights (void)
{
  const char *dir = g_getenv ("LA_GOLDEN_DIR");
  g_autofree char *p = g_build_filename (dir ? dir : "tests/golden", "audio", "weights.safetensors", NULL);
  g_autoptr (GError) e = NULL;
  LaCheckpoint *ck = la_safetensors_open (p, &e);
  g_assert_no_error (e);
  return ck;
}

/* prefix P copies of column 0, then the block */
static LaTensor *
prefixed (const float *blk, int L, int A, int T, int P)
{
  LaTensor *in = la_tensor_new_v (LA_DTYPE_F32, L, A, P + T, -1);
  for (int r = 0; r < L * A; r++)
    for (int t = 0; t < P + T; t++)
      la_tensor_f32 (in)[r * (P + T) + t] = blk[r * T + (t < P ? 0 : t - P)];
  return in;
}

static void
test_receptive_field (void)
{
  g_autoptr (LaCheckpoint) ck = weights ();
  g_autoptr (LaBackend) be = la_backend_cpu_new (1);
  LaTensor *w = la_checkpoint_get (ck, "casual_audio_encoder.weights");
  LaTensor *c1l = la_checkpoint_get (ck, "casual_audio_encoder.encoder.conv1_local.conv.weight");
  LaTensor *c1g = la_checkpoint_get (ck, "casual_audio_encoder.encoder.conv1_global.conv.weight");
  const int L = (int) w->shape[1], A = (int) c1l->shape[1], ntok = (int) (c1l->shape[0] / c1g->shape[0]);
  const int64_t D = c1l->shape[0];
  g_autoptr (GError) e = NULL;
  LaCausalAudioEncoder *enc = la_causal_audio_encoder_new (be, ck, ntok, &e);
  g_assert_no_error (e);
  const int T = 12, P = 73, first = (P + 3) / 4;
  float *blk = g_new (float, L * A * T);
  GRand *r = g_rand_new_with_seed (42);
  for (int i = 0; i < L * A * T; i++)
    blk[i] = (float) g_rand_double_range (r, -1, 1);
  g_autoptr (LaTensor) in0 = prefixed (blk, L, A, T, P);
  LaTensor *g0, *l0;
  g_assert_true (la_causal_audio_encoder_forward (enc, in0, &g0, &l0, &e));
  g_assert_cmpint (g0->shape[0], ==, (P + T + 3) / 4);
  g_assert_cmpint (l0->shape[1], ==, ntok + 1);
  for (int f = 0; f < T; f++) {
    float *b2 = g_memdup2 (blk, sizeof (float) * L * A * T);
    for (int rr = 0; rr < L * A; rr++)
      b2[rr * T + f] += 0.5f;
    g_autoptr (LaTensor) in = prefixed (b2, L, A, T, P);
    LaTensor *g1, *l1;
    g_assert_true (la_causal_audio_encoder_forward (enc, in, &g1, &l1, &e));
    for (int j = 0; j < 3; j++) {
      gboolean changed = FALSE;
      for (int64_t d = 0; d < D; d++)
        changed |= la_tensor_f32 (g0)[(first + j) * D + d] != la_tensor_f32 (g1)[(first + j) * D + d];
      gboolean want = f <= 2 ? j <= 1 : f == 3 ? TRUE : f <= 7 ? j >= 1 : j == 2;
      g_assert_cmpint (changed, ==, want);
    }
    la_tensor_unref (g1);
    la_tensor_unref (l1);
    g_free (b2);
  }
  /* P ≡ 1 (mod 4): the same three output frames for P = 1, 5, 9, 73 */
  for (int p = 1; p <= 9; p += 4) {
    g_autoptr (LaTensor) in = prefixed (blk, L, A, T, p);
    LaTensor *g1, *l1;
    g_assert_true (la_causal_audio_encoder_forward (enc, in, &g1, &l1, &e));
    const int fp = (p + 3) / 4;
    for (int j = 0; j < 3; j++)
      for (int64_t d = 0; d < D; d++)
        g_assert_cmpfloat (fabsf (la_tensor_f32 (g0)[(first + j) * D + d] - la_tensor_f32 (g1)[(fp + j) * D + d]), <=, 1e-5f);
    la_tensor_unref (g1);
    la_tensor_unref (l1);
  }
  /* wrong shape: error naming the argument */
  g_autoptr (LaTensor) bad = la_tensor_new_v (LA_DTYPE_F32, L + 1, A, 13, -1);
  LaTensor *gx = NULL, *lx = NULL;
  g_autoptr (GError) e2 = NULL;
  g_assert_false (la_causal_audio_encoder_forward (enc, bad, &gx, &lx, &e2));
  g_assert_error (e2, LA_ERROR, LA_ERROR_SHAPE);
  g_assert_nonnull (strstr (e2->message, "audio_input"));

  /* injector: finite, frame-local (changing frame 1's audio leaves frames 0 and 2 alone) */
  LaAudioInjector *inj = la_audio_injector_new (be, ck, 2, 3, &e);
  g_assert_no_error (e);
  const int F = 3, fsl = 8;
  g_autoptr (LaTensor) x = la_tensor_new_v (LA_DTYPE_F32, F * fsl, (int) D, -1);
  g_autoptr (LaTensor) x2 = la_tensor_new_v (LA_DTYPE_F32, F * fsl, (int) D, -1);
  for (int64_t i = 0; i < la_tensor_numel (x); i++)
    la_tensor_f32 (x)[i] = la_tensor_f32 (x2)[i] = (float) g_rand_double_range (r, -1, 1);
  g_autoptr (LaTensor) tok = la_tensor_new_v (LA_DTYPE_F32, F, ntok + 1, (int) D, -1);
  g_autoptr (LaTensor) tok2 = la_tensor_new_v (LA_DTYPE_F32, F, ntok + 1, (int) D, -1);
  g_autoptr (LaTensor) gl = la_tensor_new_v (LA_DTYPE_F32, F, (int) D, -1);
  for (int64_t i = 0; i < la_tensor_numel (tok); i++)
    la_tensor_f32 (tok)[i] = la_tensor_f32 (tok2)[i] = (float) g_rand_double_range (r, -1, 1);
  for (int64_t i = 0; i < la_tensor_numel (gl); i++)
    la_tensor_f32 (gl)[i] = (float) g_rand_double_range (r, -1, 1);
  for (int64_t i = 0; i < (ntok + 1) * D; i++)
    la_tensor_f32 (tok2)[(ntok + 1) * D + i] += 1.f;
  g_assert_true (la_audio_injector_apply (inj, 1, x, F, tok, gl, &e));
  g_assert_true (la_audio_injector_apply (inj, 1, x2, F, tok2, gl, &e));
  for (int f = 0; f < F; f++) {
    gboolean changed = FALSE;
    for (int64_t i = 0; i < fsl * D; i++) {
      g_assert_true (isfinite (la_tensor_f32 (x)[f * fsl * D + i]));
      changed |= la_tensor_f32 (x)[f * fsl * D + i] != la_tensor_f32 (x2)[f * fsl * D + i];
    }
    g_assert_cmpint (changed, ==, f == 1);
  }
  g_autoptr (GError) e3 = NULL;
  g_assert_false (la_audio_injector_apply (inj, 2, x, F, tok, gl, &e3));
  g_assert_error (e3, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_autoptr (GError) e4 = NULL;
  g_assert_false (la_audio_injector_apply (inj, 0, x, 5, tok, gl, &e4));
  g_assert_nonnull (e4);
  la_audio_injector_free (inj);
  g_rand_free (r);
  la_tensor_unref (g0);
  la_tensor_unref (l0);
  g_free (blk);
  la_causal_audio_encoder_free (enc);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/audio/dit-audio/receptive-field", test_receptive_field);
  return g_test_run ();
}
