/* mma.h — the emulated CUDA device (issue 15): nvcuda::wmma for 16×16×16
 * tiles with 16-bit (bf16, f16) inputs and an fp32 accumulator.
 *
 * Every lane holds the whole tile in fp32 (CUDA spreads it over the warp in
 * an unspecified layout, so code may only touch x[] elementwise, which works
 * the same here).  load_matrix_sync and store_matrix_sync are warp
 * rendezvous (every lane must arrive, with the same pointer and ldm) and
 * check CUDA's rules: a 256-bit aligned pointer, ldm a multiple of 8 for
 * 16-bit elements and of 4 for float.  mma_sync computes d = a·b + c with
 * fp32 fused multiply-adds in k order.
 */
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <type_traits>

extern "C" void la_emu_wmma_sync (int op, const void *ptr, unsigned ldm);
[[noreturn]] void la_emu_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  static_assert (M == 16 && N == 16 && K == 16, "only 16x16x16 WMMA tiles are emulated");
  static_assert (std::is_same<T, __nv_bfloat16>::value || std::is_same<T, __half>::value ||
                 std::is_same<T, float>::value, "WMMA element type not emulated");
  enum { num_elements = 256 };
  float x[256];   /* [row][col] of the logical tile */
};

template <typename T>
static inline void
la_emu_wmma_check (const char *what, const T *p, unsigned ldm)
{
  const unsigned mult = sizeof (T) == 2 ? 8 : 4;
  if (((uintptr_t) p) % 32)
    la_emu_fail ("%s: pointer %p is not 256-bit aligned", what, (const void *) p);
  if (ldm % mult || ldm < 16)
    la_emu_fail ("%s: ldm %u is not a multiple of %u elements of %zu bytes (or below 16)", what, ldm, mult,
                 sizeof (T));
}

template <typename Use, typename T, typename Layout>
inline void
load_matrix_sync (fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ldm)
{
  static_assert (!std::is_same<Use, accumulator>::value, "accumulator loads take a layout");
  la_emu_wmma_check ("wmma::load_matrix_sync", p, ldm);
  la_emu_wmma_sync (0, p, ldm);
  const bool row = std::is_same<Layout, row_major>::value;
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++)
      f.x[r * 16 + c] = (float) (row ? p[r * ldm + c] : p[c * ldm + r]);
}

inline void
load_matrix_sync (fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t layout)
{
  la_emu_wmma_check ("wmma::load_matrix_sync", p, ldm);
  la_emu_wmma_sync (0, p, ldm);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++)
      f.x[r * 16 + c] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

inline void
store_matrix_sync (float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t layout)
{
  la_emu_wmma_check ("wmma::store_matrix_sync", p, ldm);
  la_emu_wmma_sync (1, p, ldm);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++)
      (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * 16 + c];
}

template <typename Use, typename T, typename Layout>
inline void
fill_fragment (fragment<Use, 16, 16, 16, T, Layout> &f, float v)
{
  const float r = (float) T (v);   /* the element type's rounding */
  for (int i = 0; i < 256; i++)
    f.x[i] = r;
}

template <typename T, typename LA, typename LB>
inline void
mma_sync (fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
          const fragment<matrix_b, 16, 16, 16, T, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c)
{
  float acc[256];
  for (int i = 0; i < 256; i++)
    acc[i] = c.x[i];
  for (int r = 0; r < 16; r++)
    for (int k = 0; k < 16; k++) {
      const float av = a.x[r * 16 + k];
      for (int n = 0; n < 16; n++)
        acc[r * 16 + n] = fmaf (av, b.x[k * 16 + n], acc[r * 16 + n]);
    }
  for (int i = 0; i < 256; i++)
    d.x[i] = acc[i];
}

}  // namespace wmma
}  // namespace nvcuda
