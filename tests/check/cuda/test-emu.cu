/* test-emu.cu — the emulated CUDA device can fail (issue 15 item 4), and its
 * rules hold.  Built only with -Dcuda-emu=enabled, through the same rewrite as
 * the backend .cu files.  Each mutation is a kernel or host-side flag, so one binary runs
 * the correct and the mutated code; the death tests run in a subprocess and
 * check the emulator's message.
 *
 *  mutation                         how the emulator catches it
 *  removed __syncthreads            forward order: thread 0 reads a slot of
 *                                   shared memory no thread has written yet
 *                                   (0xff-filled per block: NaN) -> wrong sum;
 *                                   reverse order happens to hide this one
 *  off-by-one write (i <= n)        redzone after the exact allocation end,
 *                                   checked after the launch: abort naming
 *                                   the kernel and the argument
 *  off-by-one read / wrong ld       reads land in the redzone (0xff = NaN)
 *  missing stream sync              streams execute when the host waits: the
 *                                   host buffer still holds its old bytes
 *  host read of device memory       the arena is PROT_NONE between API calls
 */
#include <cuda_runtime.h>
#include <mma.h>
#include <cuda_fp8.h>
#include <glib.h>
#include <math.h>
#include <string.h>
#include "emu-exec.h"
extern "C" {
#include "liveavatar/la-dtype.h"
}

#define N 256

/* ---------------------------------------------------------------- kernels */

__global__ void
k_reduce (const float *x, float *out, int skip_sync)
{
  __shared__ float s[N];
  const int t = threadIdx.x;
  s[t] = x[t];
  if (!skip_sync)              /* uniform across the block: legal */
    __syncthreads ();
  for (int stride = N / 2; stride > 0; stride /= 2) {
    if (t < stride)
      s[t] += s[t + stride];
    __syncthreads ();
  }
  if (t == 0)
    *out = s[0];
}

__global__ void
k_scale (float *y, const float *x, int n, int off_by_one)
{
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; off_by_one ? i <= n : i < n; i += gridDim.x * blockDim.x)
    y[i] = 2.0f * x[i < n ? i : n - 1];
}

/* y[r][c] = x[c][r] for a 16x16 tile stored with leading dimension ld */
__global__ void
k_transpose (float *y, const float *x, int ld)
{
  const int r = threadIdx.x / 16, c = threadIdx.x % 16;
  y[r * 16 + c] = x[c * ld + r];
}

__global__ void
k_exit_early (float *y)
{
  if (threadIdx.x == 0)
    return;
  __syncthreads ();
  y[threadIdx.x] = 1.0f;
}

__global__ void
k_shfl_exited (float *y)
{
  if (threadIdx.x == 5)
    return;
  y[threadIdx.x] = __shfl_xor_sync (0xffffffffu, (float) threadIdx.x, 1);
}

__global__ void
k_sometimes_sync (float *y, int sync)
{
  if (sync)
    __syncthreads ();
  y[threadIdx.x] = 1.0f;
}

__global__ void
k_warp_sum (const float *x, float *y)
{
  float v = x[threadIdx.x];
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync (0xffffffffu, v, o);
  y[threadIdx.x] = v;
}

__global__ void
k_wmma (float *c, const __nv_bfloat16 *a, const __nv_bfloat16 *b, int lda)
{
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment (acc, 0.0f);
  wmma::load_matrix_sync (fa, a, lda);
  wmma::load_matrix_sync (fb, b, 16);
  wmma::mma_sync (acc, fa, fb, acc);
  wmma::store_matrix_sync (c, acc, 16, wmma::mem_row_major);
}

__global__ void
k_big_smem (float *y)
{
  extern __shared__ float big[];
  big[threadIdx.x] = (float) threadIdx.x;
  __syncthreads ();
  y[threadIdx.x] = big[blockDim.x - 1 - threadIdx.x];
}

/* ---------------------------------------------------------------- helpers */

static float *
upload (const float *h, int n)
{
  float *d = NULL;
  g_assert_cmpint (cudaMalloc ((void **) &d, (size_t) n * sizeof (float)), ==, cudaSuccess);
  g_assert_cmpint (cudaMemcpy (d, h, (size_t) n * sizeof (float), cudaMemcpyHostToDevice), ==, cudaSuccess);
  return d;
}

static float
reduce (int reverse, int skip_sync)
{
  float h[N], got = 0.0f;
  for (int i = 0; i < N; i++)
    h[i] = (float) (i % 7);
  float *x = upload (h, N), *out = NULL;
  cudaMalloc ((void **) &out, sizeof (float));
  la_emu_set_order (reverse);
  k_reduce<<<1, N>>> (x, out, skip_sync);
  g_assert_cmpint (cudaGetLastError (), ==, cudaSuccess);
  cudaMemcpy (&got, out, sizeof got, cudaMemcpyDeviceToHost);
  la_emu_set_order (-1);
  cudaFree (x);
  cudaFree (out);
  return got;
}

/* ------------------------------------------------------------------ tests */

static void
test_removed_syncthreads (void)
{
  float want = 0.0f;
  for (int i = 0; i < N; i++)
    want += (float) (i % 7);
  g_assert_cmpfloat (reduce (0, 0), ==, want);
  g_assert_cmpfloat (reduce (1, 0), ==, want);
  /* the mutation: forward order reads s[128] before thread 128 wrote it */
  float bad = reduce (0, 1);
  g_assert_true (isnan (bad) || bad != want);
}

static void
test_off_by_one_write (void)
{
  if (g_test_subprocess ()) {
    float h[100] = { 0 };
    float *x = upload (h, 100), *y = NULL;
    cudaMalloc ((void **) &y, 100 * sizeof (float));
    k_scale<<<1, 64>>> (y, x, 100, 1);
    cudaDeviceSynchronize ();
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*kernel k_scale wrote past the end of the 400-byte allocation passed as pointer argument 1*");
}

static void
test_correct_write_passes (void)
{
  float h[100], got[100];
  for (int i = 0; i < 100; i++)
    h[i] = (float) i;
  float *x = upload (h, 100), *y = NULL;
  cudaMalloc ((void **) &y, 100 * sizeof (float));
  k_scale<<<1, 64>>> (y, x, 100, 0);
  cudaMemcpy (got, y, sizeof got, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 100; i++)
    g_assert_cmpfloat (got[i], ==, 2.0f * i);
  cudaFree (x);
  cudaFree (y);
}

static void
test_wrong_ld (void)
{
  float h[256], got[256];
  for (int i = 0; i < 256; i++)
    h[i] = (float) i;
  float *x = upload (h, 256), *y = NULL;
  cudaMalloc ((void **) &y, sizeof got);
  k_transpose<<<1, 256>>> (y, x, 16);
  cudaMemcpy (got, y, sizeof got, cudaMemcpyDeviceToHost);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++)
      g_assert_cmpfloat (got[r * 16 + c], ==, h[c * 16 + r]);
  /* the mutation: ld 17 reads 15 elements past the end, into the redzone */
  k_transpose<<<1, 256>>> (y, x, 17);
  cudaMemcpy (got, y, sizeof got, cudaMemcpyDeviceToHost);
  int nan = 0;
  for (int i = 0; i < 256; i++)
    nan += isnan (got[i]);
  g_assert_cmpint (nan, >, 0);
  cudaFree (x);
  cudaFree (y);
}

static void
test_missing_stream_sync (void)
{
  float h[N], got[N];
  for (int i = 0; i < N; i++)
    h[i] = (float) i;
  float *x = upload (h, N), *y = NULL;
  cudaMalloc ((void **) &y, sizeof got);
  cudaStream_t s;
  g_assert_cmpint (cudaStreamCreateWithFlags (&s, cudaStreamNonBlocking), ==, cudaSuccess);
  for (int with_sync = 0; with_sync < 2; with_sync++) {
    memset (got, 0, sizeof got);
    k_scale<<<2, 64, 0, s>>> (y, x, N, 0);
    cudaMemcpyAsync (got, y, sizeof got, cudaMemcpyDeviceToHost, s);
    if (with_sync)
      cudaStreamSynchronize (s);
    /* the mutation (no sync): the host still sees its zeros */
    g_assert_cmpfloat (got[N - 1], ==, with_sync ? 2.0f * (N - 1) : 0.0f);
  }
  cudaStreamSynchronize (s);
  cudaStreamDestroy (s);
  cudaFree (x);
  cudaFree (y);
}

static void
test_host_read (void)
{
  if (g_test_subprocess ()) {
    float h[4] = { 1, 2, 3, 4 };
    float *d = upload (h, 4);
    volatile float v = d[1];     /* the bug: a device pointer read on the host */
    (void) v;
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*host code touched device memory at * byte 4 of a 16-byte allocation*");
}

static void
test_exited_thread_at_barrier (void)
{
  if (g_test_subprocess ()) {
    float *y = NULL;
    cudaMalloc ((void **) &y, 64 * sizeof (float));
    k_exit_early<<<1, 64>>> (y);
    cudaDeviceSynchronize ();
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*kernel k_exit_early: *__syncthreads*");
}

static void
test_exited_lane_at_shuffle (void)
{
  if (g_test_subprocess ()) {
    float *y = NULL;
    cudaMalloc ((void **) &y, 32 * sizeof (float));
    k_shfl_exited<<<1, 32>>> (y);
    cudaDeviceSynchronize ();
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*kernel k_shfl_exited: *exited*");
}

static void
test_loop_mode_barrier (void)
{
  if (g_test_subprocess ()) {
    float *y = NULL;
    cudaMalloc ((void **) &y, 64 * sizeof (float));
    k_sometimes_sync<<<1, 64>>> (y, 0);   /* no barrier: learnt as loop mode */
    cudaDeviceSynchronize ();
    k_sometimes_sync<<<1, 64>>> (y, 1);
    cudaDeviceSynchronize ();
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*kernel k_sometimes_sync reached __syncthreads in loop mode*");
}

static void
test_shuffles (void)
{
  float h[64], got[64];
  for (int i = 0; i < 64; i++)
    h[i] = (float) i;
  float *x = upload (h, 64), *y = NULL;
  cudaMalloc ((void **) &y, sizeof got);
  for (int reverse = 0; reverse < 2; reverse++) {
    la_emu_set_order (reverse);
    k_warp_sum<<<1, 64>>> (x, y);
    cudaMemcpy (got, y, sizeof got, cudaMemcpyDeviceToHost);
    for (int i = 0; i < 64; i++)
      g_assert_cmpfloat (got[i], ==, i < 32 ? 496.0f : 1520.0f);
  }
  la_emu_set_order (-1);
  cudaFree (x);
  cudaFree (y);
}

static void
test_wmma (void)
{
  __nv_bfloat16 ha[16 * 24], hb[256];
  float want[256], got[256];
  for (int i = 0; i < 16 * 24; i++)
    ha[i] = __float2bfloat16_rn ((float) (i % 5) - 2.0f);
  for (int i = 0; i < 256; i++)
    hb[i] = __float2bfloat16_rn ((float) (i % 3) * 0.5f);
  /* a row-major with ld 24, b col-major: b(k, n) = hb[n * 16 + k] */
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 16; n++) {
      float s = 0;
      for (int k = 0; k < 16; k++)
        s += __bfloat162float (ha[r * 24 + k]) * __bfloat162float (hb[n * 16 + k]);
      want[r * 16 + n] = s;
    }
  __nv_bfloat16 *a = NULL, *b = NULL;
  float *c = NULL;
  cudaMalloc ((void **) &a, sizeof ha);
  cudaMalloc ((void **) &b, sizeof hb);
  cudaMalloc ((void **) &c, sizeof got);
  cudaMemcpy (a, ha, sizeof ha, cudaMemcpyHostToDevice);
  cudaMemcpy (b, hb, sizeof hb, cudaMemcpyHostToDevice);
  k_wmma<<<1, 32>>> (c, a, b, 24);
  cudaMemcpy (got, c, sizeof got, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 256; i++)
    g_assert_cmpfloat (got[i], ==, want[i]);
  if (g_test_subprocess ()) {
    k_wmma<<<1, 32>>> (c, a, b, 20);   /* ldm 20: not a multiple of 8 */
    cudaDeviceSynchronize ();
    return;
  }
  cudaFree (a);
  cudaFree (b);
  cudaFree (c);
}

static void
test_wmma_ldm_rule (void)
{
  g_test_trap_subprocess ("/emu/wmma", 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*wmma::load_matrix_sync: ldm 20 is not a multiple of 8*");
}

static void
test_smem_optin_per_device (void)
{
  int n = 0;
  cudaGetDeviceCount (&n);
  g_assert_cmpint (n, ==, 2);
  float *y[2];
  for (int d = 0; d < 2; d++) {
    cudaSetDevice (d);
    cudaMalloc ((void **) &y[d], 1024 * sizeof (float));
  }
  const size_t smem = 64 * 1024;
  cudaSetDevice (0);
  k_big_smem<<<1, 1024, smem>>> (y[0]);
  g_assert_cmpint (cudaGetLastError (), ==, cudaErrorInvalidValue);   /* > 48 KB without the opt-in */
  g_assert_cmpint (cudaFuncSetAttribute (k_big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, (int) smem), ==,
                   cudaSuccess);
  k_big_smem<<<1, 1024, smem>>> (y[0]);
  g_assert_cmpint (cudaGetLastError (), ==, cudaSuccess);
  float got[1024];
  cudaMemcpy (got, y[0], sizeof got, cudaMemcpyDeviceToHost);
  g_assert_cmpfloat (got[0], ==, 1023.0f);
  /* the opt-in is per device: device 1 still refuses */
  cudaSetDevice (1);
  k_big_smem<<<1, 1024, smem>>> (y[1]);
  g_assert_cmpint (cudaGetLastError (), ==, cudaErrorInvalidValue);
  cudaFree (y[1]);
  cudaSetDevice (0);
  cudaFree (y[0]);
}

static void
test_conversions (void)
{
  /* CUDA's f32 -> bf16 / f16 / e4m3 against la_convert on a stride over all
   * float bit patterns (NaNs excepted: CUDA canonicalises them) */
  for (uint64_t u = 0; u < 0x100000000ull; u += 0x1013) {
    float f;
    uint32_t b = (uint32_t) u;
    memcpy (&f, &b, 4);
    if (isnan (f))
      continue;
    uint16_t bf, hf;
    uint8_t e8;
    la_convert (&bf, LA_DTYPE_BF16, &f, LA_DTYPE_F32, 1);
    la_convert (&hf, LA_DTYPE_F16, &f, LA_DTYPE_F32, 1);
    la_convert (&e8, LA_DTYPE_F8_E4M3, &f, LA_DTYPE_F32, 1);
    if (bf != __float2bfloat16_rn (f).__x || hf != __float2half_rn (f).__x ||
        e8 != __nv_cvt_float_to_fp8 (f, __NV_SATFINITE, __NV_E4M3))
      g_error ("%a (0x%08x): bf16 %04x/%04x f16 %04x/%04x e4m3 %02x/%02x", f, b, bf,
               __float2bfloat16_rn (f).__x, hf, __float2half_rn (f).__x, e8,
               __nv_cvt_float_to_fp8 (f, __NV_SATFINITE, __NV_E4M3));
  }
  g_assert_cmphex (__float2bfloat16_rn (NAN).__x, ==, 0x7fff);
  g_assert_cmphex (__float2half_rn (NAN).__x, ==, 0x7fff);
  g_assert_cmphex (__nv_cvt_float_to_fp8 (-NAN, __NV_SATFINITE, __NV_E4M3), ==, 0xff);
  g_assert_cmphex (__nv_cvt_float_to_fp8 (INFINITY, __NV_SATFINITE, __NV_E4M3), ==, 0x7e);
  g_assert_cmphex (__nv_cvt_float_to_fp8 (INFINITY, __NV_NOSAT, __NV_E4M3), ==, 0x7f);
  g_assert_cmphex (__nv_cvt_float_to_fp8 (464.0f, __NV_SATFINITE, __NV_E4M3), ==, 0x7e);
  g_assert_true (isnan ((float) __nv_fp8_e4m3 (NAN)));
}

int
main (int argc, char **argv)
{
  g_setenv ("LA_EMU_DEVICES", "2", TRUE);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/emu/removed-syncthreads", test_removed_syncthreads);
  g_test_add_func ("/emu/off-by-one-write", test_off_by_one_write);
  g_test_add_func ("/emu/correct-write", test_correct_write_passes);
  g_test_add_func ("/emu/wrong-ld", test_wrong_ld);
  g_test_add_func ("/emu/missing-stream-sync", test_missing_stream_sync);
  g_test_add_func ("/emu/host-read", test_host_read);
  g_test_add_func ("/emu/exited-thread-at-barrier", test_exited_thread_at_barrier);
  g_test_add_func ("/emu/exited-lane-at-shuffle", test_exited_lane_at_shuffle);
  g_test_add_func ("/emu/loop-mode-barrier", test_loop_mode_barrier);
  g_test_add_func ("/emu/shuffles", test_shuffles);
  g_test_add_func ("/emu/wmma", test_wmma);
  g_test_add_func ("/emu/wmma-ldm-rule", test_wmma_ldm_rule);
  g_test_add_func ("/emu/smem-optin-per-device", test_smem_optin_per_device);
  g_test_add_func ("/emu/conversions", test_conversions);
  return g_test_run ();
}
