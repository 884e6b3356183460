/* cuda_fp8.h — the emulated CUDA device (issue 15): e4m3 storage and
 * conversions with CUDA's rules (la-emu-float.h).  e5m2 is not emulated: its
 * types are not declared, so code using them does not compile. */
#pragma once
#include "la-emu-float.h"
#include "cuda_fp16.h"
#include "cuda_bf16.h"

typedef unsigned char __nv_fp8_storage_t;
typedef enum __nv_saturation_t { __NV_NOSAT = 0, __NV_SATFINITE = 1 } __nv_saturation_t;
typedef enum __nv_fp8_interpretation_t { __NV_E4M3 = 0, __NV_E5M2 = 1 } __nv_fp8_interpretation_t;

#ifdef __cplusplus
[[noreturn]] void la_emu_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static inline __nv_fp8_storage_t
__nv_cvt_float_to_fp8 (float x, __nv_saturation_t sat, __nv_fp8_interpretation_t interp)
{
  if (interp != __NV_E4M3)
    la_emu_fail ("__nv_cvt_float_to_fp8: only __NV_E4M3 is emulated");
  return la_emu_f32_to_e4m3 (x, sat == __NV_SATFINITE);
}

struct __nv_fp8_e4m3 {
  __nv_fp8_storage_t __x;
  __nv_fp8_e4m3 () = default;
  explicit __nv_fp8_e4m3 (float f) : __x (la_emu_f32_to_e4m3 (f, 1)) {}
  explicit __nv_fp8_e4m3 (double f) : __x (la_emu_f32_to_e4m3 ((float) f, 1)) {}
  explicit __nv_fp8_e4m3 (__half h) : __x (la_emu_f32_to_e4m3 ((float) h, 1)) {}
  explicit __nv_fp8_e4m3 (__nv_bfloat16 h) : __x (la_emu_f32_to_e4m3 ((float) h, 1)) {}
  explicit operator float () const { return la_emu_e4m3_to_f32 (__x); }
  explicit operator __half () const { return __half (la_emu_e4m3_to_f32 (__x)); }
  explicit operator __nv_bfloat16 () const { return __nv_bfloat16 (la_emu_e4m3_to_f32 (__x)); }
};
#endif
