/* Conversions at the edges: NaN, inf, subnormals, ties to even, e4m3 saturation. */
#include <liveavatar/liveavatar.h>
#include <math.h>
#include <string.h>

static float u2f (uint32_t u) { float f; memcpy (&f, &u, 4); return f; }

static void
test_bf16 (void)
{
  g_assert_cmpuint (la_f32_to_bf16 (1.0f), ==, 0x3f80);
  /* 1 + 2^-8 is exactly between 1 and 1 + 2^-7: ties to even -> 1. */
  g_assert_cmpuint (la_f32_to_bf16 (1.0f + 0x1p-8f), ==, 0x3f80);
  /* 1 + 3*2^-8 is between 1+2^-7 (odd) and 1+2^-6 (even): ties to even -> up. */
  g_assert_cmpuint (la_f32_to_bf16 (1.0f + 3 * 0x1p-8f), ==, 0x3f82);
  g_assert_cmpuint (la_f32_to_bf16 (INFINITY), ==, 0x7f80);
  g_assert_cmpuint (la_f32_to_bf16 (-INFINITY), ==, 0xff80);
  g_assert_true (isnan (la_bf16_to_f32 (la_f32_to_bf16 (NAN))));
  /* Largest finite float rounds up to inf in bf16, as torch does. */
  g_assert_cmpuint (la_f32_to_bf16 (u2f (0x7f7fffff)), ==, 0x7f80);
  /* Subnormals keep their top bits. */
  g_assert_cmpfloat (la_bf16_to_f32 (la_f32_to_bf16 (u2f (0x00010000))), ==, u2f (0x00010000));
  g_assert_cmpfloat (la_round_bf16 (-0.0f), ==, -0.0f);
  g_assert_true (signbit (la_round_bf16 (-0.0f)));
}

static void
test_f16 (void)
{
  g_assert_cmpuint (la_f32_to_f16 (1.0f), ==, 0x3c00);
  g_assert_cmpuint (la_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmpuint (la_f32_to_f16 (65520.0f), ==, 0x7c00);     /* rounds to inf */
  g_assert_cmpuint (la_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmpuint (la_f32_to_f16 (0x1p-24f), ==, 0x0001);      /* smallest subnormal */
  g_assert_cmpuint (la_f32_to_f16 (0x1p-25f), ==, 0x0000);      /* tie -> even (0) */
  g_assert_cmpuint (la_f32_to_f16 (3 * 0x1p-25f), ==, 0x0002);  /* tie -> even (2) */
  g_assert_cmpuint (la_f32_to_f16 (1.0f + 0x1p-11f), ==, 0x3c00); /* tie -> even */
  g_assert_cmpuint (la_f32_to_f16 (1.0f + 3 * 0x1p-11f), ==, 0x3c02);
  g_assert_cmpfloat (la_f16_to_f32 (0x0001), ==, 0x1p-24f);
  g_assert_cmpfloat (la_f16_to_f32 (0x0400), ==, 0x1p-14f);
  g_assert_true (isinf (la_f16_to_f32 (0xfc00)) && la_f16_to_f32 (0xfc00) < 0);
  g_assert_true (isnan (la_f16_to_f32 (la_f32_to_f16 (NAN))));
  /* Every f16 value survives the round trip. */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
      continue;
    g_assert_cmpuint (la_f32_to_f16 (la_f16_to_f32 ((uint16_t) h)), ==, h);
  }
}

static void
test_e4m3 (void)
{
  g_assert_cmpfloat (la_e4m3_to_f32 (0x7e), ==, 448.0f);
  g_assert_cmpuint (la_f32_to_e4m3 (448.0f), ==, 0x7e);
  g_assert_cmpuint (la_f32_to_e4m3 (1000.0f), ==, 0x7e);       /* saturates */
  g_assert_cmpuint (la_f32_to_e4m3 (-1e30f), ==, 0xfe);
  g_assert_cmpuint (la_f32_to_e4m3 (INFINITY), ==, 0x7e);
  g_assert_true (isnan (la_e4m3_to_f32 (la_f32_to_e4m3 (NAN))));
  g_assert_cmpuint (la_f32_to_e4m3 (1.0f), ==, 0x38);
  g_assert_cmpfloat (la_e4m3_to_f32 (0x01), ==, 0x1p-9f);       /* smallest subnormal */
  g_assert_cmpuint (la_f32_to_e4m3 (0x1p-10f), ==, 0x00);       /* tie -> even (0) */
  g_assert_cmpuint (la_f32_to_e4m3 (3 * 0x1p-10f), ==, 0x02);   /* tie -> even (2) */
  g_assert_cmpuint (la_f32_to_e4m3 (1.0f + 1.0f / 16), ==, 0x38); /* tie between 1 and 1.125 -> 1 */
  g_assert_cmpuint (la_f32_to_e4m3 (1.0f + 3.0f / 16), ==, 0x3a); /* tie -> 1.25 (even) */
  g_assert_cmpuint (la_f32_to_e4m3 (7.0f * 0x1p-9f + 0x1p-10f), ==, 0x08); /* 7.5 ulp -> 8: smallest normal */
  /* Every finite e4m3 value survives the round trip. */
  for (int v = 0; v < 256; v++) {
    if ((v & 0x7f) == 0x7f)
      continue;
    g_assert_cmpuint (la_f32_to_e4m3 (la_e4m3_to_f32 ((uint8_t) v)), ==, v == 0x80 ? 0x80 : v);
  }
}

static void
test_convert (void)
{
  float src[4] = { 1.5f, -2.25f, 3e38f, 0.1f };
  uint16_t b[4];
  float back[4];
  la_convert (b, LA_DTYPE_BF16, src, LA_DTYPE_F32, 4);
  la_convert (back, LA_DTYPE_F32, b, LA_DTYPE_BF16, 4);
  g_assert_cmpfloat (back[0], ==, 1.5f);
  g_assert_cmpfloat (back[1], ==, -2.25f);
  g_assert_cmpfloat (back[3], ==, la_round_bf16 (0.1f));
  int64_t i64[2] = { 123456789012345LL, -7 };
  int64_t o64[2];
  la_convert (o64, LA_DTYPE_I64, i64, LA_DTYPE_I64, 2);
  g_assert_cmpint (o64[0], ==, 123456789012345LL);
  LaDType t;
  g_assert_true (la_dtype_from_name ("F8_E4M3", &t) && t == LA_DTYPE_F8_E4M3);
  g_assert_false (la_dtype_from_name ("F4", &t));
  g_assert_cmpuint (la_dtype_size (LA_DTYPE_BF16), ==, 2);
}

static void
test_tensor (void)
{
  g_autoptr (LaTensor) t = la_tensor_new_v (LA_DTYPE_F32, 2, 3, 4, -1);
  g_assert_cmpint (t->ndim, ==, 3);
  g_assert_cmpint (la_tensor_numel (t), ==, 24);
  GError *e = NULL;
  int64_t s2[2] = { 6, 4 };
  g_autoptr (LaTensor) v = la_tensor_reshape (t, 2, s2, &e);
  g_assert_no_error (e);
  g_assert_true (v->data == t->data);
  int64_t bad[2] = { 5, 5 };
  g_assert_null (la_tensor_reshape (t, 2, bad, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_clear_error (&e);
  int64_t want[3] = { 2, -1, 5 };
  g_assert_false (la_tensor_check_shape (t, 3, want, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dtype/bf16", test_bf16);
  g_test_add_func ("/dtype/f16", test_f16);
  g_test_add_func ("/dtype/e4m3", test_e4m3);
  g_test_add_func ("/dtype/convert", test_convert);
  g_test_add_func ("/tensor/basics", test_tensor);
  return g_test_run ();
}
