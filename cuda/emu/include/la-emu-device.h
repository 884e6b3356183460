/* la-emu-device.h — the CUDA device language for the emulator, in plain C++:
 * built-in variables, qualifiers, barriers, warp shuffles and votes, atomics,
 * the bit-cast intrinsics and kernel launches.  Included by cuda_runtime.h in
 * C++; the .cu files reach it after cuda/emu/rewrite-cu.py has turned
 * `k<<<grid, block, shmem, stream>>>(args)` into `LA_EMU_LAUNCH(...)(k, args)`
 * and `extern __shared__ T name[]` into a pointer to the block's dynamic
 * shared memory.
 *
 * Model: every CUDA thread of a block runs as a fiber on one OS thread
 * (cuda/emu/exec.cc), so __syncthreads, __syncwarp and the warp collectives
 * are real rendezvous; `__shared__` variables are `static thread_local`, which
 * is per-block storage because a block's fibers all run on one OS thread and
 * a thread runs one block at a time.  The built-ins are thread-local and set
 * by the scheduler before it resumes a fiber.
 */
#pragma once
#include <cstdint>
#include <cstring>
#include <cmath>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3 (unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x (vx), y (vy), z (vz) {}
  constexpr dim3 (uint3 v) : x (v.x), y (v.y), z (v.z) {}
};

extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
static constexpr int warpSize = 32;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__ ((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__ ((aligned (n)))
#define __restrict__ __restrict
/* per-block storage: see the header comment */
#define __shared__ static thread_local
#define __constant__ static

/* ---------------------------------------------------- executor entry points */
extern "C" {
void la_emu_syncthreads (void);
/* A warp collective of the calling lane: op 0 syncwarp, 1 shfl (arg = source
 * lane), 2 shfl_xor (arg = lane mask), 3 shfl_up, 4 shfl_down (arg = delta),
 * 5 ballot, 6 any, 7 all (value = predicate).  Returns the value read. */
uint64_t la_emu_warp_op (unsigned int mask, int op, uint64_t value, int arg, int width);
void *la_emu_dyn_smem (void);
/* After each `__shared__` declaration (rewrite-cu.py): 0xff-fill it once per block. */
void la_emu_shared_poison (void *p, size_t bytes);
}

static __forceinline__ void __syncthreads (void) { la_emu_syncthreads (); }
static __forceinline__ void __syncwarp (unsigned int mask = 0xffffffffu) { (void) la_emu_warp_op (mask, 0, 0, 0, 32); }

template <typename T>
static __forceinline__ uint64_t la_emu_bits (T v)
{
  static_assert (sizeof (T) <= 8 && std::is_trivially_copyable<T>::value, "warp shuffle of a type over 8 bytes");
  uint64_t b = 0;
  std::memcpy (&b, &v, sizeof v);
  return b;
}
template <typename T>
static __forceinline__ T la_emu_from_bits (uint64_t b)
{
  T v;
  std::memcpy (&v, &b, sizeof v);
  return v;
}
template <typename T>
static __forceinline__ T __shfl_sync (unsigned int mask, T v, int src, int width = 32)
{ return la_emu_from_bits<T> (la_emu_warp_op (mask, 1, la_emu_bits (v), src, width)); }
template <typename T>
static __forceinline__ T __shfl_xor_sync (unsigned int mask, T v, int lane_mask, int width = 32)
{ return la_emu_from_bits<T> (la_emu_warp_op (mask, 2, la_emu_bits (v), lane_mask, width)); }
template <typename T>
static __forceinline__ T __shfl_up_sync (unsigned int mask, T v, unsigned int delta, int width = 32)
{ return la_emu_from_bits<T> (la_emu_warp_op (mask, 3, la_emu_bits (v), (int) delta, width)); }
template <typename T>
static __forceinline__ T __shfl_down_sync (unsigned int mask, T v, unsigned int delta, int width = 32)
{ return la_emu_from_bits<T> (la_emu_warp_op (mask, 4, la_emu_bits (v), (int) delta, width)); }
static __forceinline__ unsigned int __ballot_sync (unsigned int mask, int pred)
{ return (unsigned int) la_emu_warp_op (mask, 5, pred != 0, 0, 32); }
static __forceinline__ int __any_sync (unsigned int mask, int pred) { return (int) la_emu_warp_op (mask, 6, pred != 0, 0, 32); }
static __forceinline__ int __all_sync (unsigned int mask, int pred) { return (int) la_emu_warp_op (mask, 7, pred != 0, 0, 32); }

/* ------------------------------------------------------- bit casts, math */
static __forceinline__ unsigned int __float_as_uint (float f) { unsigned int u; std::memcpy (&u, &f, 4); return u; }
static __forceinline__ float __uint_as_float (unsigned int u) { float f; std::memcpy (&f, &u, 4); return f; }
static __forceinline__ int __float_as_int (float f) { int u; std::memcpy (&u, &f, 4); return u; }
static __forceinline__ float __int_as_float (int u) { float f; std::memcpy (&f, &u, 4); return f; }
static __forceinline__ long long __double_as_longlong (double d) { long long u; std::memcpy (&u, &d, 8); return u; }
static __forceinline__ double __longlong_as_double (long long u) { double d; std::memcpy (&d, &u, 8); return d; }
static __forceinline__ float __fdividef (float a, float b) { return a / b; }
static __forceinline__ float rsqrtf (float x) { return 1.0f / sqrtf (x); }
static __forceinline__ int __popc (unsigned int x) { return __builtin_popcount (x); }
static __forceinline__ int __clz (int x) { return x ? __builtin_clz ((unsigned) x) : 32; }
static __forceinline__ int __ffs (int x) { return __builtin_ffs (x); }

/* ------------------------------------------------------------ atomics
 * Real atomics: blocks of one grid may run on several OS threads. */
template <typename T>
static __forceinline__ T atomicAdd (T *p, T v) { return __atomic_fetch_add (p, v, __ATOMIC_RELAXED); }
static __forceinline__ float atomicAdd (float *p, float v)
{
  float old, next;
  __atomic_load (p, &old, __ATOMIC_RELAXED);
  do
    next = old + v;
  while (!__atomic_compare_exchange (p, &old, &next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
static __forceinline__ double atomicAdd (double *p, double v)
{
  double old, next;
  __atomic_load (p, &old, __ATOMIC_RELAXED);
  do
    next = old + v;
  while (!__atomic_compare_exchange (p, &old, &next, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
template <typename T>
static __forceinline__ T atomicSub (T *p, T v) { return __atomic_fetch_sub (p, v, __ATOMIC_RELAXED); }
template <typename T>
static __forceinline__ T atomicExch (T *p, T v) { return __atomic_exchange_n (p, v, __ATOMIC_RELAXED); }
template <typename T>
static __forceinline__ T atomicCAS (T *p, T cmp, T v)
{
  __atomic_compare_exchange_n (p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}
template <typename T>
static __forceinline__ T atomicMax (T *p, T v)
{
  static_assert (std::is_integral<T>::value, "atomicMax: integer types only, as in CUDA");
  T old = __atomic_load_n (p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n (p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
template <typename T>
static __forceinline__ T atomicMin (T *p, T v)
{
  static_assert (std::is_integral<T>::value, "atomicMin: integer types only, as in CUDA");
  T old = __atomic_load_n (p, __ATOMIC_RELAXED);
  while (old > v && !__atomic_compare_exchange_n (p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
static __forceinline__ void __threadfence (void) { __atomic_thread_fence (__ATOMIC_SEQ_CST); }
static __forceinline__ void __threadfence_block (void) { __atomic_thread_fence (__ATOMIC_SEQ_CST); }

/* ------------------------------------------------------------ launches */
namespace la_emu {

/* One launch, executed in stream order (runtime.cc): body runs the kernel
 * for the thread the executor has selected through the built-ins; ptrs are
 * the kernel's pointer arguments, each checked against the live device
 * allocations when the launch executes. */
void launch (const char *name, const void *kernel, dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
             std::function<void ()> body, std::vector<const void *> ptrs);

template <typename Tuple, size_t... I>
static void
collect_pointers (const Tuple &t, std::vector<const void *> &out, std::index_sequence<I...>)
{
  auto one = [&out] (const auto &v) {
    if constexpr (std::is_pointer<std::decay_t<decltype (v)>>::value)
      out.push_back ((const void *) v);
  };
  (one (std::get<I> (t)), ...);
}

struct Launch {
  const char *name;
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;
  Launch (const char *n, dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0)
    : name (n), grid (g), block (b), shmem (s), stream (st) {}
  /* The arguments are converted to the kernel's parameter types now (as a
   * launch does), and kept by value: a captured graph replays these values. */
  template <typename... P, typename... A>
  void operator() (void (*kernel) (P...), A &&...a) const
  {
    static_assert (sizeof... (P) == sizeof... (A), "kernel launched with the wrong number of arguments");
    auto args = std::make_shared<std::tuple<std::decay_t<P>...>> (std::forward<A> (a)...);
    std::vector<const void *> ptrs;
    collect_pointers (*args, ptrs, std::index_sequence_for<P...> ());
    launch (name, (const void *) kernel, grid, block, shmem, stream,
            [kernel, args] () { std::apply (kernel, *args); }, std::move (ptrs));
  }
};

}  // namespace la_emu

#define LA_EMU_LAUNCH(name, ...) ::la_emu::Launch (name, __VA_ARGS__)
