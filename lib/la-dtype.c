/* la-dtype.c — dtype table and scalar conversions (round to nearest even). */
#include "liveavatar/la-dtype.h"
#include <math.h>
#include <string.h>

static const struct { const char *name; size_t size; gboolean is_float; } dtype_info[LA_DTYPE_COUNT] = {
  [LA_DTYPE_F32]     = { "F32", 4, TRUE },
  [LA_DTYPE_BF16]    = { "BF16", 2, TRUE },
  [LA_DTYPE_F16]     = { "F16", 2, TRUE },
  [LA_DTYPE_F8_E4M3] = { "F8_E4M3", 1, TRUE },
  [LA_DTYPE_F64]     = { "F64", 8, TRUE },
  [LA_DTYPE_I64]     = { "I64", 8, FALSE },
  [LA_DTYPE_I32]     = { "I32", 4, FALSE },
  [LA_DTYPE_I16]     = { "I16", 2, FALSE },
  [LA_DTYPE_I8]      = { "I8", 1, FALSE },
  [LA_DTYPE_U8]      = { "U8", 1, FALSE },
  [LA_DTYPE_BOOL]    = { "BOOL", 1, FALSE },
};

size_t la_dtype_size (LaDType t) { return (unsigned) t < LA_DTYPE_COUNT ? dtype_info[t].size : 0; }
const char *la_dtype_name (LaDType t) { return (unsigned) t < LA_DTYPE_COUNT ? dtype_info[t].name : "?"; }
gboolean la_dtype_is_float (LaDType t) { return (unsigned) t < LA_DTYPE_COUNT && dtype_info[t].is_float; }

gboolean
la_dtype_from_name (const char *name, LaDType *out)
{
  for (int i = 0; i < LA_DTYPE_COUNT; i++)
    if (strcmp (name, dtype_info[i].name) == 0) {
      *out = (LaDType) i;
      return TRUE;
    }
  return FALSE;
}

static inline uint32_t f2u (float f) { uint32_t u; memcpy (&u, &f, 4); return u; }
static inline float u2f (uint32_t u) { float f; memcpy (&f, &u, 4); return f; }

float la_bf16_to_f32 (uint16_t h) { return u2f ((uint32_t) h << 16); }

uint16_t
la_f32_to_bf16 (float f)
{
  uint32_t u = f2u (f);
  if ((u & 0x7fffffffu) > 0x7f800000u)        /* NaN: keep it quiet and a NaN */
    return (uint16_t) ((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);             /* round to nearest, ties to even */
  return (uint16_t) (u >> 16);
}

float
la_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f)
    return u2f (sign | 0x7f800000u | (man << 13));
  if (exp == 0) {                               /* zero or subnormal: man * 2^-24 */
    float v = (float) man * 0x1p-24f;
    return sign ? -v : v;
  }
  return u2f (sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t
la_f32_to_f16 (float f)
{
  uint32_t u = f2u (f);
  uint16_t sign = (uint16_t) ((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u)
    return sign | 0x7e00;
  if (a >= 0x477ff000u)                         /* rounds to >= 65520: inf */
    return sign | 0x7c00;
  if (a < 0x38800000u) {                        /* below 2^-14: subnormal or zero */
    /* value = m * 2^-24 with m rounded to nearest even */
    float v = u2f (a) * 0x1p24f;
    float r = nearbyintf (v);                   /* default rounding mode: ties to even */
    return sign | (uint16_t) r;
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  return sign | (uint16_t) ((r - (112u << 23)) >> 13);
}

/* e4m3fn: bias 7, no infinities, S.1111.111 is NaN, max normal 448. */
float
la_e4m3_to_f32 (uint8_t v)
{
  int sign = v & 0x80, exp = (v >> 3) & 0xf, man = v & 7;
  float r;
  if (exp == 0xf && man == 7)
    return NAN;
  if (exp == 0)
    r = (float) man * 0x1p-9f;
  else
    r = ldexpf (1.0f + (float) man / 8.0f, exp - 7);
  return sign ? -r : r;
}

uint8_t
la_f32_to_e4m3 (float f)
{
  if (isnan (f))
    return 0x7f;
  uint8_t sign = signbit (f) ? 0x80 : 0;
  float a = fabsf (f);
  if (a >= 448.0f)                              /* saturate (the FP8 path clamps first) */
    return sign | 0x7e;
  if (a < 0x1p-6f) {                            /* subnormal: m * 2^-9 */
    float m = nearbyintf (a * 0x1p9f);
    return sign | (uint8_t) m;                  /* m == 8 is exactly the smallest normal */
  }
  int e;
  float fr = frexpf (a, &e);                    /* a = fr * 2^e, fr in [0.5, 1) */
  float m = nearbyintf ((fr * 2.0f - 1.0f) * 8.0f);
  int exp = e - 1 + 7;
  if (m >= 8.0f) { m = 0; exp++; }
  if (exp > 15 || (exp == 15 && m > 6))
    return sign | 0x7e;
  return sign | (uint8_t) (exp << 3) | (uint8_t) m;
}

static double
load_as_double (const void *src, LaDType t, size_t i)
{
  switch (t) {
    case LA_DTYPE_F32: return ((const float *) src)[i];
    case LA_DTYPE_BF16: return la_bf16_to_f32 (((const uint16_t *) src)[i]);
    case LA_DTYPE_F16: return la_f16_to_f32 (((const uint16_t *) src)[i]);
    case LA_DTYPE_F8_E4M3: return la_e4m3_to_f32 (((const uint8_t *) src)[i]);
    case LA_DTYPE_F64: return ((const double *) src)[i];
    case LA_DTYPE_I64: return (double) ((const int64_t *) src)[i];
    case LA_DTYPE_I32: return ((const int32_t *) src)[i];
    case LA_DTYPE_I16: return ((const int16_t *) src)[i];
    case LA_DTYPE_I8: return ((const int8_t *) src)[i];
    case LA_DTYPE_U8: case LA_DTYPE_BOOL: return ((const uint8_t *) src)[i];
    default: return 0;
  }
}

static void
store_double (void *dst, LaDType t, size_t i, double v)
{
  switch (t) {
    case LA_DTYPE_F32: ((float *) dst)[i] = (float) v; break;
    case LA_DTYPE_BF16: ((uint16_t *) dst)[i] = la_f32_to_bf16 ((float) v); break;
    case LA_DTYPE_F16: ((uint16_t *) dst)[i] = la_f32_to_f16 ((float) v); break;
    case LA_DTYPE_F8_E4M3: ((uint8_t *) dst)[i] = la_f32_to_e4m3 ((float) v); break;
    case LA_DTYPE_F64: ((double *) dst)[i] = v; break;
    case LA_DTYPE_I64: ((int64_t *) dst)[i] = (int64_t) v; break;
    case LA_DTYPE_I32: ((int32_t *) dst)[i] = (int32_t) v; break;
    case LA_DTYPE_I16: ((int16_t *) dst)[i] = (int16_t) v; break;
    case LA_DTYPE_I8: ((int8_t *) dst)[i] = (int8_t) v; break;
    case LA_DTYPE_U8: ((uint8_t *) dst)[i] = (uint8_t) v; break;
    case LA_DTYPE_BOOL: ((uint8_t *) dst)[i] = v != 0; break;
    default: break;
  }
}

void
la_convert (void *dst, LaDType dst_t, const void *src, LaDType src_t, size_t n)
{
  if (dst_t == src_t) {
    memmove (dst, src, n * la_dtype_size (src_t));
    return;
  }
  /* Fast paths for the conversions on the load path. */
  if (dst_t == LA_DTYPE_F32 && src_t == LA_DTYPE_BF16) {
    for (size_t i = 0; i < n; i++) ((float *) dst)[i] = la_bf16_to_f32 (((const uint16_t *) src)[i]);
    return;
  }
  if (dst_t == LA_DTYPE_BF16 && src_t == LA_DTYPE_F32) {
    for (size_t i = 0; i < n; i++) ((uint16_t *) dst)[i] = la_f32_to_bf16 (((const float *) src)[i]);
    return;
  }
  /* i64 values beyond 2^53 would lose precision through double. */
  if (dst_t == LA_DTYPE_I64 && !la_dtype_is_float (src_t) && src_t != LA_DTYPE_I64) {
    for (size_t i = 0; i < n; i++) ((int64_t *) dst)[i] = (int64_t) load_as_double (src, src_t, i);
    return;
  }
  for (size_t i = 0; i < n; i++)
    store_double (dst, dst_t, i, load_as_double (src, src_t, i));
}
