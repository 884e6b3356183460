/* cuda_fp16.h — the emulated CUDA device (issue 15): __half with CUDA's
 * conversions (la-emu-float.h). */
#pragma once
#include "la-emu-float.h"

typedef struct __half_raw { unsigned short x; } __half_raw;

#ifdef __cplusplus
struct __half {
  unsigned short __x;
  __half () = default;
  __half (float f) : __x (la_emu_f32_to_f16 (f)) {}
  __half (double f) : __x (la_emu_f32_to_f16 ((float) f)) {}
  __half (__half_raw r) : __x (r.x) {}
  operator float () const { return la_emu_f16_to_f32 (__x); }
  operator __half_raw () const { return __half_raw { __x }; }
};

static inline __half __float2half_rn (float f) { return __half (f); }
static inline __half __float2half (float f) { return __half (f); }
static inline float __half2float (__half h) { return la_emu_f16_to_f32 (h.__x); }
#endif
