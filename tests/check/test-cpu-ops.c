/* CPU backend ops against naive double-precision references. */
#include <liveavatar/liveavatar.h>
#include "la-ops.h"
#include <math.h>
#include <string.h>

static LaBackend *be;

static LaTensor *
rnd (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (int64_t i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) g_rand_double_range (r, -1, 1);
  return t;
}

static void
assert_close (const float *a, const double *ref, int64_t n, double tol)
{
  for (int64_t i = 0; i < n; i++)
    if (fabs (a[i] - ref[i]) > tol * (1 + fabs (ref[i])))
      g_error ("element %" G_GINT64_FORMAT ": %g vs reference %g", i, a[i], ref[i]);
}

static void
test_linear (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (1);
  int64_t M = 7, K = 13, N = 5;
  g_autoptr (LaTensor) x = rnd (r, 2, (int64_t[]) { M, K });
  g_autoptr (LaTensor) w = rnd (r, 2, (int64_t[]) { N, K });
  g_autoptr (LaTensor) b = rnd (r, 1, (int64_t[]) { N });
  g_autoptr (LaTensor) y = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { M, N });
  la_linear (be, y, x, w, b);
  double ref[7 * 5];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = la_tensor_f32 (b)[j];
      for (int k = 0; k < K; k++)
        s += (double) la_tensor_f32 (x)[i * K + k] * la_tensor_f32 (w)[j * K + k];
      ref[i * N + j] = s;
    }
  assert_close (la_tensor_f32 (y), ref, M * N, 1e-5);
}

static void
test_attention (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (2);
  int H = 3, D = 4, Lq = 5, Lk = 9;
  g_autoptr (LaTensor) q = rnd (r, 2, (int64_t[]) { Lq, H * D });
  g_autoptr (LaTensor) k = rnd (r, 2, (int64_t[]) { Lk, H * D });
  g_autoptr (LaTensor) v = rnd (r, 2, (int64_t[]) { Lk, H * D });
  g_autoptr (LaTensor) bias = rnd (r, 3, (int64_t[]) { H, Lq, Lk });
  g_autoptr (LaTensor) o = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { Lq, H * D });
  float scale = 0.5f;
  la_attention (be, o, q, k, v, H, scale, bias);
  double ref[5 * 12];
  for (int h = 0; h < H; h++)
    for (int i = 0; i < Lq; i++) {
      double s[9], mx = -1e30, sum = 0;
      for (int j = 0; j < Lk; j++) {
        double d = 0;
        for (int c = 0; c < D; c++)
          d += (double) la_tensor_f32 (q)[i * H * D + h * D + c] * la_tensor_f32 (k)[j * H * D + h * D + c];
        s[j] = d * scale + la_tensor_f32 (bias)[(h * Lq + i) * Lk + j];
        mx = fmax (mx, s[j]);
      }
      for (int j = 0; j < Lk; j++)
        sum += (s[j] = exp (s[j] - mx));
      for (int c = 0; c < D; c++) {
        double acc = 0;
        for (int j = 0; j < Lk; j++)
          acc += s[j] / sum * la_tensor_f32 (v)[j * H * D + h * D + c];
        ref[i * H * D + h * D + c] = acc;
      }
    }
  assert_close (la_tensor_f32 (o), ref, Lq * H * D, 1e-5);
}

static void
test_conv3d (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (3);
  int Ci = 2, T = 4, H = 5, W = 6, Co = 3, kt = 2, kh = 3, kw = 2;
  int st[3] = { 1, 2, 2 };
  g_autoptr (LaTensor) x = rnd (r, 4, (int64_t[]) { Ci, T, H, W });
  g_autoptr (LaTensor) w = rnd (r, 5, (int64_t[]) { Co, Ci, kt, kh, kw });
  g_autoptr (LaTensor) b = rnd (r, 1, (int64_t[]) { Co });
  int To = (T - kt) / st[0] + 1, Ho = (H - kh) / st[1] + 1, Wo = (W - kw) / st[2] + 1;
  g_autoptr (LaTensor) y = la_alloc (be, LA_DTYPE_F32, 4, (int64_t[]) { Co, To, Ho, Wo });
  la_conv3d (be, y, x, w, b, st);
  double *ref = g_new0 (double, Co * To * Ho * Wo);
  for (int co = 0; co < Co; co++)
    for (int t = 0; t < To; t++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double s = la_tensor_f32 (b)[co];
          for (int c = 0; c < Ci; c++)
            for (int a = 0; a < kt; a++)
              for (int u = 0; u < kh; u++)
                for (int vv = 0; vv < kw; vv++)
                  s += (double) la_tensor_f32 (w)[(((co * Ci + c) * kt + a) * kh + u) * kw + vv] *
                       la_tensor_f32 (x)[((c * T + t * st[0] + a) * H + i * st[1] + u) * W + j * st[2] + vv];
          ref[((co * To + t) * Ho + i) * Wo + j] = s;
        }
  assert_close (la_tensor_f32 (y), ref, Co * To * Ho * Wo, 1e-5);
  g_free (ref);
}

static void
test_norms (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (4);
  int R = 3, N = 8;
  g_autoptr (LaTensor) x = rnd (r, 2, (int64_t[]) { R, N });
  g_autoptr (LaTensor) w = rnd (r, 1, (int64_t[]) { N });
  g_autoptr (LaTensor) y = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { R, N });
  g_autoptr (LaTensor) z = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { R, N });
  la_layer_norm (be, y, x, NULL, NULL, 1e-6f);
  la_rms_norm (be, z, x, w, 1e-6f);
  double ref[24], refz[24];
  for (int i = 0; i < R; i++) {
    double m = 0, v = 0, ss = 0;
    for (int j = 0; j < N; j++)
      m += la_tensor_f32 (x)[i * N + j] / (double) N;
    for (int j = 0; j < N; j++) {
      double d = la_tensor_f32 (x)[i * N + j] - m;
      v += d * d / N;
      ss += (double) la_tensor_f32 (x)[i * N + j] * la_tensor_f32 (x)[i * N + j] / N;
    }
    for (int j = 0; j < N; j++) {
      ref[i * N + j] = (la_tensor_f32 (x)[i * N + j] - m) / sqrt (v + 1e-6);
      refz[i * N + j] = la_tensor_f32 (x)[i * N + j] / sqrt (ss + 1e-6) * la_tensor_f32 (w)[j];
    }
  }
  assert_close (la_tensor_f32 (y), ref, R * N, 1e-5);
  assert_close (la_tensor_f32 (z), refz, R * N, 1e-5);
  g_assert_true (la_backend_sync (be, NULL));
}

/* A shape the op cannot take is reported through the sticky error, naming
 * the op and the tensor, and the op does not run. */
static void
test_checked_wrappers (void)
{
  GError *e = NULL;
  g_autoptr (LaTensor) x = la_tensor_new_v (LA_DTYPE_F32, 3, 6, -1);
  g_autoptr (LaTensor) w = la_tensor_new_v (LA_DTYPE_F32, 4, 5, -1);
  g_autoptr (LaTensor) y = la_tensor_new_v (LA_DTYPE_F32, 3, 4, -1);
  la_tensor_set_name (w, "blocks.0.ffn.0.weight");
  for (int i = 0; i < 12; i++)
    la_tensor_f32 (y)[i] = 7.0f;
  la_linear (be, y, x, w, NULL);               /* K: x has 6, w has 5 */
  /* A second mismatch before the sync is not the one reported. */
  g_autoptr (LaTensor) q = la_tensor_new_v (LA_DTYPE_F32, 3, 6, -1);
  la_attention (be, q, q, q, q, 4, 1.0f, NULL);
  g_assert_false (la_backend_sync (be, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_assert_nonnull (strstr (e->message, "linear"));
  g_assert_nonnull (strstr (e->message, "blocks.0.ffn.0.weight"));
  g_assert_nonnull (strstr (e->message, "[4, 5]"));
  g_assert_null (strstr (e->message, "attention"));
  g_clear_error (&e);
  for (int i = 0; i < 12; i++)
    g_assert_cmpfloat (la_tensor_f32 (y)[i], ==, 7.0f);     /* the op did not run */
  g_assert_true (la_backend_sync (be, NULL));                /* reported once */

  la_attention (be, q, q, q, q, 4, 1.0f, NULL);              /* 6 does not split into 4 heads */
  g_assert_false (la_backend_sync (be, &e));
  g_assert_nonnull (strstr (e->message, "attention"));
  g_clear_error (&e);

  g_autoptr (LaTensor) ints = la_tensor_new_v (LA_DTYPE_I32, 3, 6, -1);
  la_tensor_set_name (ints, "token_ids");
  la_unary (be, LA_UNARY_SILU, q, ints);
  g_assert_false (la_backend_sync (be, &e));
  g_assert_nonnull (strstr (e->message, "unary"));
  g_assert_nonnull (strstr (e->message, "token_ids"));
  g_clear_error (&e);

  g_autoptr (LaTensor) a4 = la_tensor_new_v (LA_DTYPE_F32, 2, 2, 3, 3, -1);
  g_autoptr (LaTensor) b4 = la_tensor_new_v (LA_DTYPE_F32, 2, 2, 3, 3, -1);
  la_tensor_set_name (b4, "cache");
  la_copy4d (be, b4, (int64_t[]) { 0, 1, 0, 0 }, a4, (int64_t[]) { 0, 0, 0, 0 }, (int64_t[]) { 2, 2, 3, 3 });
  g_assert_false (la_backend_sync (be, &e));
  g_assert_nonnull (strstr (e->message, "copy4d"));
  g_assert_nonnull (strstr (e->message, "cache"));
  g_clear_error (&e);

  /* The same ops with agreeing shapes run. */
  g_autoptr (LaTensor) w6 = la_tensor_new_v (LA_DTYPE_F32, 4, 6, -1);
  la_linear (be, y, x, w6, NULL);
  la_attention (be, q, q, q, q, 3, 1.0f, NULL);
  g_assert_true (la_backend_sync (be, NULL));
  g_assert_cmpfloat (la_tensor_f32 (y)[0], ==, 0.0f);
}

static void
test_cuda_absent (void)
{
  GError *e = NULL;
  LaBackend *c = la_backend_cuda_new (0, &e);
  if (c) {
    la_backend_unref (c);
    g_test_skip ("a CUDA device is present");
    return;
  }
  g_assert_error (e, LA_ERROR, LA_ERROR_DEVICE);
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  be = la_backend_cpu_new (0);
  g_test_add_func ("/cpu/linear", test_linear);
  g_test_add_func ("/cpu/attention", test_attention);
  g_test_add_func ("/cpu/conv3d", test_conv3d);
  g_test_add_func ("/cpu/norms", test_norms);
  g_test_add_func ("/ops/bad-shape-is-a-sticky-error", test_checked_wrappers);
  g_test_add_func ("/cuda/absent-is-an-error", test_cuda_absent);
  int r = g_test_run ();
  la_backend_unref (be);
  return r;
}
