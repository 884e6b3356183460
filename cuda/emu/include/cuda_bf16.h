/* cuda_bf16.h — the emulated CUDA device (issue 15): __nv_bfloat16 with
 * CUDA's conversions (la-emu-float.h). */
#pragma once
#include "la-emu-float.h"

typedef struct __nv_bfloat16_raw { unsigned short x; } __nv_bfloat16_raw;

#ifdef __cplusplus
struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16 () = default;
  __nv_bfloat16 (float f) : __x (la_emu_f32_to_bf16 (f)) {}
  __nv_bfloat16 (double f) : __x (la_emu_f32_to_bf16 ((float) f)) {}
  __nv_bfloat16 (__nv_bfloat16_raw r) : __x (r.x) {}
  operator float () const { return la_emu_bf16_to_f32 (__x); }
  operator __nv_bfloat16_raw () const { return __nv_bfloat16_raw { __x }; }
};

static inline __nv_bfloat16 __float2bfloat16_rn (float f) { return __nv_bfloat16 (f); }
static inline __nv_bfloat16 __float2bfloat16 (float f) { return __nv_bfloat16 (f); }
static inline float __bfloat162float (__nv_bfloat16 h) { return la_emu_bf16_to_f32 (h.__x); }
#endif
