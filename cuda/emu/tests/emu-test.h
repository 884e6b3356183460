/* emu-test.h — helpers shared by the emulated libraries' tests: device
 * buffers from host vectors, exact conversions, a child-process death check. */
#pragma once
#include <cuda_runtime.h>
#include <glib.h>
#include <cmath>
#include <vector>
#include "../emu-libs.h"

template <typename T>
static T *
to_dev (const std::vector<T> &h)
{
  void *d = nullptr;
  g_assert_cmpint (cudaMalloc (&d, h.size () * sizeof (T)), ==, cudaSuccess);
  cudaMemcpy (d, h.data (), h.size () * sizeof (T), cudaMemcpyHostToDevice);
  return (T *) d;
}

template <typename T>
static std::vector<T>
from_dev (const T *d, size_t n)
{
  std::vector<T> h (n);
  cudaMemcpy (h.data (), d, n * sizeof (T), cudaMemcpyDeviceToHost);
  return h;
}

/* A value of type t exactly representable: a small random multiple of 1/16. */
static inline float
rnd_val (GRand *r)
{
  return (float) g_rand_int_range (r, -48, 49) / 16.0f;
}

/* Host storage of n elements of type t (f32, f16, bf16) holding v. */
static inline std::vector<uint8_t>
pack (const std::vector<float> &v, cudaDataType_t t)
{
  std::vector<uint8_t> out (v.size () * la_emu_type_size (t));
  for (size_t i = 0; i < v.size (); i++)
    la_emu_store (out.data (), t, (int64_t) i, v[i]);
  return out;
}

static inline std::vector<float>
unpack (const std::vector<uint8_t> &b, cudaDataType_t t)
{
  std::vector<float> v (b.size () / la_emu_type_size (t));
  for (size_t i = 0; i < v.size (); i++)
    v[i] = la_emu_load (b.data (), t, (int64_t) i);
  return v;
}

/* |got − want| within one rounding of type t (plus f32 summation noise). */
static inline bool
close_to (double got, double want, cudaDataType_t t)
{
  const double ulp = t == CUDA_R_16BF ? 0x1p-8 : t == CUDA_R_16F ? 0x1p-11 : 0x1p-22;
  return std::isfinite (got) && std::fabs (got - want) <= ulp * std::fabs (want) + 1e-5;
}

/* Runs the current test's path again in a child process with `child`, which
 * must abort printing `pattern` (a GLib glob) on stderr. */
#define EXPECT_DEATH(pattern)                                      \
  do {                                                             \
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);   \
    g_test_trap_assert_failed ();                                  \
    g_test_trap_assert_stderr (pattern);                           \
  } while (0)
