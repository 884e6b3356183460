/* test-emu-driver.cc — the emulated CUDA driver API (cuda/emu/driver.cc),
 * as GstCuda uses it:
 *  - dlopen ("libcuda.so.1") is the library this test is linked to (one
 *    instance, one arena), so GstCuda's symbols are the engine's;
 *  - devices, attributes, names; no current context -> INVALID_CONTEXT;
 *  - context stacks: cuCtxCreate makes current, push/pop select the device
 *    the runtime uses (a cudaMalloc after a push lands on that device);
 *    primary contexts are one handle per device;
 *  - pitched allocation and 2-D copies host -> device -> device -> host,
 *    bytes checked, padding between rows untouched; an async copy on a
 *    stream is not visible before cuStreamSynchronize; a runtime
 *    (cudaMalloc) pointer copies through the driver and back;
 *  - refusals: a device pointer said to be host memory, modules, an unknown
 *    host allocation; a 2-D copy running past its allocation aborts (child).
 */
#include <la-emu-driver.h>
#include <dlfcn.h>
#include <cstring>
#include "emu-test.h"
#include "../emu-internal.h"

#define OK(x) g_assert_cmpint ((x), ==, CUDA_SUCCESS)

static void
test_same_library (void)
{
  void *h = dlopen ("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  g_assert_nonnull (h);
  /* The names GstCuda 1.22's loader resolves. */
  const char *names[] = { "cuInit", "cuCtxCreate_v2", "cuCtxPushCurrent_v2", "cuCtxPopCurrent_v2",
                          "cuMemAllocPitch_v2", "cuMemcpy2DAsync_v2", "cuStreamDestroy", "cuLaunchKernel",
                          "cuGraphicsResourceGetMappedPointer_v2", "cuGLGetDevices_v2", "cudaMalloc" };
  for (const char *n : names)
    g_assert_nonnull (dlsym (h, n));
  g_assert_true (dlsym (h, "cuMemAlloc_v2") == (void *) cuMemAlloc_v2);
  dlclose (h);
}

static void
test_devices (void)
{
  int n = -1, v = -1;
  CUdevice d;
  char name[64];
  g_assert_cmpint (cuDeviceGetCount (&n), ==, CUDA_ERROR_NOT_INITIALIZED);
  OK (cuInit (0));
  OK (cuDeviceGetCount (&n));
  g_assert_cmpint (n, ==, 5);              /* LA_EMU_DEVICES of the test's env */
  OK (cuDeviceGet (&d, 4));
  g_assert_cmpint (d, ==, 4);
  g_assert_cmpint (cuDeviceGet (&d, 5), ==, CUDA_ERROR_INVALID_DEVICE);
  OK (cuDeviceGetAttribute (&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
  g_assert_cmpint (v, ==, 9);
  OK (cuDeviceGetAttribute (&v, CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, 1));
  g_assert_cmpint (v, >, 0);
  g_assert_cmpint (cuDeviceGetAttribute (&v, (CUdevice_attribute) 4000, 0), ==, CUDA_ERROR_INVALID_VALUE);
  OK (cuDeviceGetName (name, sizeof name, 2));
  g_assert_nonnull (strstr (name, "cuda-emu device 2"));
  OK (cuDeviceCanAccessPeer (&v, 0, 1));
  g_assert_cmpint (v, ==, 1);
  OK (cuDeviceCanAccessPeer (&v, 1, 1));
  g_assert_cmpint (v, ==, 0);
}

static void
test_contexts (void)
{
  CUcontext a, b, cur, popped, p0, p0b;
  CUdevice d;
  CUdeviceptr x = 0;
  int rt = -1;
  OK (cuInit (0));
  g_assert_cmpint (cuMemAlloc_v2 (&x, 64), ==, CUDA_ERROR_INVALID_CONTEXT);
  g_assert_cmpint (cuCtxPopCurrent_v2 (&popped), ==, CUDA_ERROR_INVALID_CONTEXT);
  OK (cuCtxCreate_v2 (&a, 0, 3));
  OK (cuCtxGetCurrent (&cur));
  g_assert_true (cur == a);
  OK (cuCtxCreate_v2 (&b, 0, 1));
  OK (cuCtxGetDevice (&d));
  g_assert_cmpint (d, ==, 1);
  OK (cuCtxPopCurrent_v2 (&popped));
  g_assert_true (popped == b);
  OK (cuCtxGetDevice (&d));
  g_assert_cmpint (d, ==, 3);
  cudaGetDevice (&rt);
  g_assert_cmpint (rt, ==, 3);              /* the runtime follows the context */
  OK (cuMemAlloc_v2 (&x, 64));
  g_assert_cmpint (la_emu_stream_device (nullptr), ==, 3);
  OK (cuMemFree_v2 (x));
  OK (cuCtxPushCurrent_v2 (b));
  OK (cuCtxGetDevice (&d));
  g_assert_cmpint (d, ==, 1);
  OK (cuCtxEnablePeerAccess (a, 0));
  OK (cuCtxPopCurrent_v2 (nullptr));
  OK (cuCtxDestroy_v2 (b));
  g_assert_cmpint (cuCtxPushCurrent_v2 (b), ==, CUDA_ERROR_INVALID_CONTEXT);
  OK (cuDevicePrimaryCtxRetain (&p0, 2));
  OK (cuDevicePrimaryCtxRetain (&p0b, 2));
  g_assert_true (p0 == p0b);
  g_assert_cmpint (cuCtxDestroy_v2 (p0), ==, CUDA_ERROR_INVALID_CONTEXT);
  OK (cuDevicePrimaryCtxRelease_v2 (2));
  OK (cuDevicePrimaryCtxRelease_v2 (2));
  OK (cuCtxPopCurrent_v2 (&popped));
  g_assert_true (popped == a);
  OK (cuCtxDestroy_v2 (a));
}

/* Host rows of w bytes, row r byte i = r * 7 + i. */
static std::vector<unsigned char>
pattern (size_t w, size_t h)
{
  std::vector<unsigned char> v (w * h);
  for (size_t r = 0; r < h; r++)
    for (size_t i = 0; i < w; i++)
      v[r * w + i] = (unsigned char) (r * 7 + i);
  return v;
}

static void
test_copies (void)
{
  const size_t W = 300, H = 17;
  CUcontext ctx;
  CUdeviceptr a, b;
  size_t pa = 0, pb = 0;
  CUstream s;
  OK (cuInit (0));
  OK (cuDevicePrimaryCtxRetain (&ctx, 1));
  OK (cuCtxPushCurrent_v2 (ctx));
  OK (cuMemAllocPitch_v2 (&a, &pa, W, H, 4));
  OK (cuMemAllocPitch_v2 (&b, &pb, W, H, 16));
  g_assert_cmpuint (pa % LA_EMU_PITCH_ALIGN, ==, 0);
  g_assert_cmpuint (pa, >=, W);
  g_assert_cmpint (cuMemAllocPitch_v2 (&a, &pa, W, H, 3), ==, CUDA_ERROR_INVALID_VALUE);

  std::vector<unsigned char> src = pattern (W, H), back (W * H, 0), pad (pb * H, 0);
  CUDA_MEMCPY2D c;
  memset (&c, 0, sizeof c);
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = src.data ();
  c.srcPitch = W;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = a;
  c.dstPitch = pa;
  c.WidthInBytes = W;
  c.Height = H;
  OK (cuMemcpy2D_v2 (&c));
  /* b: padding known, then rows from a (device -> device, async). */
  g_assert_cmpint (cudaMemset ((void *) (uintptr_t) b, 0xab, pb * H), ==, cudaSuccess);
  OK (cuStreamCreate (&s, CU_STREAM_NON_BLOCKING));
  memset (&c, 0, sizeof c);
  c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c.srcDevice = a;
  c.srcPitch = pa;
  c.dstMemoryType = CU_MEMORYTYPE_UNIFIED;
  c.dstDevice = b;
  c.dstPitch = pb;
  c.WidthInBytes = W;
  c.Height = H;
  OK (cuMemcpy2DAsync_v2 (&c, s));
  /* whole b, pitched, to the host on the same stream: queued, not done */
  memset (&c, 0, sizeof c);
  c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c.srcDevice = b;
  c.srcPitch = pb;
  c.dstMemoryType = CU_MEMORYTYPE_HOST;
  c.dstHost = pad.data ();
  c.dstPitch = pb;
  c.WidthInBytes = pb;
  c.Height = H;
  OK (cuMemcpy2DAsync_v2 (&c, s));
  g_assert_cmpint (pad[0], ==, 0);           /* before the sync: the old bytes */
  OK (cuStreamSynchronize (s));
  for (size_t r = 0; r < H; r++)
    for (size_t i = 0; i < pb; i++)
      if (pad[r * pb + i] != (i < W ? (unsigned char) (r * 7 + i) : 0xab))
        g_error ("row %zu byte %zu = %#x", r, i, pad[r * pb + i]);

  /* a window (x, y offsets) of a runtime allocation, through the driver */
  void *rt = nullptr;
  g_assert_cmpint (cudaMalloc (&rt, W * H), ==, cudaSuccess);
  memset (&c, 0, sizeof c);
  c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c.srcDevice = a;
  c.srcPitch = pa;
  c.srcXInBytes = 10;
  c.srcY = 2;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = (CUdeviceptr) (uintptr_t) rt;
  c.dstPitch = W;
  c.WidthInBytes = W - 10;
  c.Height = H - 2;
  OK (cuMemcpy2D_v2 (&c));
  g_assert_cmpint (cudaMemcpy (back.data (), rt, W * H, cudaMemcpyDeviceToHost), ==, cudaSuccess);
  for (size_t r = 0; r < H - 2; r++)
    for (size_t i = 0; i < W - 10; i++)
      g_assert_cmpint (back[r * W + i], ==, (unsigned char) ((r + 2) * 7 + i + 10));

  /* a device pointer declared as host memory */
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = (const void *) (uintptr_t) a;
  g_assert_cmpint (cuMemcpy2D_v2 (&c), ==, CUDA_ERROR_INVALID_VALUE);

  void *hp = nullptr;
  OK (cuMemAllocHost_v2 (&hp, 1000));
  OK (cuMemFreeHost (hp));
  g_assert_cmpint (cuMemFreeHost (back.data ()), ==, CUDA_ERROR_INVALID_VALUE);
  cudaFree (rt);
  OK (cuStreamDestroy (s));
  OK (cuMemFree_v2 (a));
  OK (cuMemFree_v2 (b));
  OK (cuCtxPopCurrent_v2 (nullptr));
  OK (cuDevicePrimaryCtxRelease_v2 (1));
}

static void
test_not_emulated (void)
{
  CUmodule m;
  const char *str = nullptr;
  OK (cuInit (0));
  g_assert_cmpint (cuModuleLoadData (&m, "// ptx"), ==, CUDA_ERROR_NOT_SUPPORTED);
  OK (cuGetErrorString (CUDA_ERROR_NOT_SUPPORTED, &str));
  g_assert_nonnull (strstr (str, "cuda-emu"));
  OK (cuGetErrorName (CUDA_ERROR_INVALID_CONTEXT, &str));
  g_assert_cmpstr (str, ==, "CUDA_ERROR_INVALID_CONTEXT");
}

static void
death_overrun (void)
{
  if (g_test_subprocess ()) {
    CUcontext ctx;
    CUdeviceptr a;
    size_t pitch;
    std::vector<unsigned char> h (4096);
    cuInit (0);
    cuCtxCreate_v2 (&ctx, 0, 0);
    cuMemAllocPitch_v2 (&a, &pitch, 64, 4, 4);
    CUDA_MEMCPY2D c;
    memset (&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = h.data ();
    c.srcPitch = 64;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = a;
    c.dstPitch = pitch;
    c.WidthInBytes = 64;
    c.Height = 5;                           /* one row too many */
    cuMemcpy2D_v2 (&c);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cuMemcpy2D destination*not inside one live device allocation*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/emu-driver/same-library", test_same_library);
  g_test_add_func ("/emu-driver/devices", test_devices);
  g_test_add_func ("/emu-driver/contexts", test_contexts);
  g_test_add_func ("/emu-driver/copies", test_copies);
  g_test_add_func ("/emu-driver/not-emulated", test_not_emulated);
  g_test_add_func ("/emu-driver/death/overrun", death_overrun);
  return g_test_run ();
}
