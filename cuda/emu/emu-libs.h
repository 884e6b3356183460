/* emu-libs.h — what the emulated CUDA libraries (lib-cublas.cc,
 * lib-cublaslt.cc, lib-cudnn.cc) share: element loads/stores with CUDA's
 * conversion rules, and the reference GEMM that cuBLAS and cuBLASLt both
 * interpret their descriptors into.
 *
 * Conversions: bf16 and f16 stores round to nearest even (what
 * __float2bfloat16_rn / __float2half_rn do); e4m3 is load-only here (an FP8
 * output would need the D scale and amax, which no caller uses).  Loads of a
 * 16-bit or 8-bit value into f32 are exact, so products of two such values are
 * exact in f32 and only the accumulation order differs from a GPU's.
 */
#pragma once
#include <cstdint>
#include <cstring>
#include <library_types.h>

static inline float
la_emu_bf16_to_f32 (uint16_t h)
{
  uint32_t u = (uint32_t) h << 16;
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline uint16_t
la_emu_f32_to_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)   /* NaN: keep it a (quiet) NaN */
    return (uint16_t) ((u >> 16) | 0x40);
  return (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* f16 by hand rather than _Float16, which clang 14 (the fuzzing build) lacks on x86. */
static inline float
la_emu_f16_to_f32 (uint16_t h)
{
  const int e = (h >> 10) & 31, m = h & 1023;
  float f;
  if (e == 0)
    f = (float) m * 0x1p-24f;
  else if (e == 31)
    f = m ? __builtin_nanf ("") : __builtin_inff ();
  else
    f = __builtin_ldexpf ((float) (1024 + m), e - 25);
  return (h & 0x8000) ? -f : f;
}

/* Round to nearest even, subnormals kept, overflow to infinity. */
static inline uint16_t
la_emu_f32_to_f16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  const uint16_t sign = (uint16_t) ((u >> 16) & 0x8000);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u)
    return sign | 0x7e00;
  if (u >= 0x477ff000u)                 /* ≥ 65520 rounds to infinity */
    return sign | 0x7c00;
  if (u < 0x38800000u) {                /* below 2^-14: a subnormal, exact ·2^24 then RNE */
    float a;
    memcpy (&a, &u, 4);
    return sign | (uint16_t) __builtin_nearbyintf (a * 0x1p24f);
  }
  uint32_t v = u - 0x38000000u;         /* rebias 127 → 15 */
  v += 0x0fffu + ((v >> 13) & 1u);
  return sign | (uint16_t) (v >> 13);
}

/* e4m3 (OCP FP8, no infinities, S.1111.111 is NaN): bias 7, subnormals m·2^-9. */
static inline float
la_emu_e4m3_to_f32 (uint8_t v)
{
  const int e = (v >> 3) & 15, m = v & 7;
  float f;
  if (e == 15 && m == 7)
    f = __builtin_nanf ("");
  else if (e == 0)
    f = (float) m * 0x1p-9f;
  else
    f = __builtin_ldexpf (1.0f + (float) m / 8.0f, e - 7);
  return (v & 0x80) ? -f : f;
}

static inline size_t
la_emu_type_size (cudaDataType_t t)
{
  switch (t) {
  case CUDA_R_32F: return 4;
  case CUDA_R_16F: case CUDA_R_16BF: return 2;
  case CUDA_R_8F_E4M3: case CUDA_R_8F_E5M2: case CUDA_R_8I: case CUDA_R_8U: return 1;
  case CUDA_R_64F: case CUDA_C_32F: return 8;
  case CUDA_R_32I: case CUDA_C_16F: case CUDA_C_16BF: return 4;
  case CUDA_C_64F: return 16;
  }
  return 0;
}

const char *la_emu_type_name (cudaDataType_t t);

/* Only f32, f16, bf16 (load/store) and e4m3 (load) reach these. */
static inline float
la_emu_load (const void *p, cudaDataType_t t, int64_t i)
{
  switch (t) {
  case CUDA_R_32F: return ((const float *) p)[i];
  case CUDA_R_16F: return la_emu_f16_to_f32 (((const uint16_t *) p)[i]);
  case CUDA_R_16BF: return la_emu_bf16_to_f32 (((const uint16_t *) p)[i]);
  case CUDA_R_8F_E4M3: return la_emu_e4m3_to_f32 (((const uint8_t *) p)[i]);
  default: break;
  }
  __builtin_trap ();
}

static inline void
la_emu_store (void *p, cudaDataType_t t, int64_t i, float v)
{
  switch (t) {
  case CUDA_R_32F: ((float *) p)[i] = v; return;
  case CUDA_R_16F: ((uint16_t *) p)[i] = la_emu_f32_to_f16 (v); return;
  case CUDA_R_16BF: ((uint16_t *) p)[i] = la_emu_f32_to_bf16 (v); return;
  default: break;
  }
  __builtin_trap ();
}

/* One column-major operand: element (r, c) of batch b at
 * p[b·stride + (trans ? c + r·ld : r + c·ld)] as seen through op(). */
struct LaEmuOperand {
  const void *p;
  cudaDataType_t type;
  bool trans;
  int64_t ld, stride;
};

/* D = alpha · scale_a · scale_b · op(A)·op(B) + beta · C (+ bias[row]), f32
 * accumulation, one rounding into D's type.  C is not read when beta == 0
 * (BLAS rule: it may hold NaNs).  Scales and bias are device pointers read
 * when the work runs (nullptr: 1 / none). */
struct LaEmuGemm {
  int64_t m, n, k, batch;
  float alpha, beta;
  LaEmuOperand a, b, c;
  void *d;
  cudaDataType_t d_type;
  int64_t ldd, stride_d;
  const float *scale_a, *scale_b;
  const void *bias;
  cudaDataType_t bias_type;
};

/* Runs g now (call it from work enqueued with la_emu_enqueue). */
void la_emu_gemm_run (const LaEmuGemm &g);

/* Aborts (la_emu_check_device_range) unless every element that a
 * rows × cols column-major operand with this ld and batch stride can touch
 * lies in one live allocation. */
void la_emu_check_matrix (const char *what, const void *p, cudaDataType_t t, int64_t rows, int64_t cols,
                          int64_t ld, int64_t stride, int64_t batch);
