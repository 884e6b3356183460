/* la-emu-float.h — the 16- and 8-bit float types of cuda_bf16.h, cuda_fp16.h
 * and cuda_fp8.h with CUDA's conversion rules (sm_80+ device behaviour):
 *  - f32 -> bf16 / f16: round to nearest even; overflow -> ±inf; NaN -> the
 *    canonical 0x7fff; f16 subnormals rounded, not flushed;
 *  - f32 -> e4m3 (__nv_cvt_float_to_fp8): round to nearest even from the exact
 *    value; NaN -> 0x7f | sign; |x| beyond maxnorm + ulp/2 (464) -> ±448 with
 *    __NV_SATFINITE (inf included), NaN with __NV_NOSAT (e4m3 has no inf);
 *  - widening conversions are exact (e4m3 0x7f/0xff -> NaN).
 * No arithmetic operators: with implicit conversions both ways CUDA's own
 * operators are ambiguous against float, and the project computes in fp32.
 */
#pragma once
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#define LA_EMU_FLOAT_INLINE static inline
#else
#define LA_EMU_FLOAT_INLINE static inline
#endif

LA_EMU_FLOAT_INLINE uint32_t la_emu_f2u (float f) { uint32_t u; memcpy (&u, &f, 4); return u; }
LA_EMU_FLOAT_INLINE float la_emu_u2f (uint32_t u) { float f; memcpy (&f, &u, 4); return f; }

LA_EMU_FLOAT_INLINE uint16_t
la_emu_f32_to_bf16 (float f)
{
  uint32_t u = la_emu_f2u (f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return 0x7fff;
  u += 0x7fffu + ((u >> 16) & 1u);     /* RNE; a carry into the exponent is the right overflow to inf */
  return (uint16_t) (u >> 16);
}

LA_EMU_FLOAT_INLINE float la_emu_bf16_to_f32 (uint16_t h) { return la_emu_u2f ((uint32_t) h << 16); }

LA_EMU_FLOAT_INLINE uint16_t
la_emu_f32_to_f16 (float f)
{
  uint32_t u = la_emu_f2u (f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u)
    return 0x7fff;
  if (a >= 0x477ff000u)                /* >= 65520 rounds to inf (and inf itself) */
    return (uint16_t) (sign | 0x7c00u);
  if (a < 0x38800000u) {               /* below 2^-14: f16 subnormal (or zero) */
    if (a < 0x33000000u)               /* <= 2^-25: rounds to zero (2^-25 exactly is a tie to even 0) */
      return (uint16_t) sign;
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;          /* value = m · 2^(e-150); unit 2^-24 -> shift by (126 - e) */
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u)))
      r++;
    return (uint16_t) (sign | r);
  }
  uint32_t r = ((a - 0x38000000u) >> 13);  /* rebias 127 -> 15 */
  uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
    r++;
  return (uint16_t) (sign | r);
}

LA_EMU_FLOAT_INLINE float
la_emu_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f)
    return la_emu_u2f (sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    float v = (float) m * (1.0f / 16777216.0f);   /* m · 2^-24, exact */
    return sign ? -v : v;
  }
  return la_emu_u2f (sign | ((e + 112) << 23) | (m << 13));
}

/* e4m3 from f32; sat != 0 is __NV_SATFINITE */
LA_EMU_FLOAT_INLINE uint8_t
la_emu_f32_to_e4m3 (float f, int sat)
{
  uint32_t u = la_emu_f2u (f), a = u & 0x7fffffffu;
  uint8_t sign = (uint8_t) ((u >> 31) << 7);
  if (a > 0x7f800000u)
    return (uint8_t) (0x7fu | sign);
  if (a > 0x43e80000u)                 /* > 464 = maxnorm + ulp/2 (inf included) */
    return (uint8_t) ((sat ? 0x7eu : 0x7fu) | sign);
  if (a <= 0x3a800000u)                /* <= 2^-10 = min subnormal / 2: zero (tie to even) */
    return sign;
  uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
  uint32_t r;
  if (e >= 121) {                      /* >= 2^-6: normal; keep 3 mantissa bits */
    r = ((e - 120) << 3) | ((m >> 20) & 7u);
    uint32_t rem = m & 0xfffffu;
    if (rem > 0x80000u || (rem == 0x80000u && (r & 1u)))
      r++;                             /* 448 < |x| <= 464 rounds down to 448 (tie at 464 is even) */
  } else {                             /* subnormal: unit 2^-9 */
    uint32_t shift = 141 - e;          /* value = m · 2^(e-150) -> units of 2^-9 */
    r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u)))
      r++;
  }
  return (uint8_t) (r | sign);
}

LA_EMU_FLOAT_INLINE float
la_emu_e4m3_to_f32 (uint8_t b)
{
  uint32_t e = (b >> 3) & 0xfu, m = b & 7u;
  float v;
  if (e == 15 && m == 7)
    v = la_emu_u2f (0x7fc00000u);
  else if (e == 0)
    v = (float) m * (1.0f / 512.0f);
  else
    v = la_emu_u2f (((e + 120) << 23) | (m << 20));
  return (b & 0x80u) ? -v : v;
}
