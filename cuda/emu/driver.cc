/* driver.cc — the CUDA driver API of the emulated device (la-emu-driver.h),
 * so that GStreamer's GstCuda (which dlopens libcuda.so.1) and nvcodec's
 * cudaupload / cudadownload run on the same emulated devices, arena and
 * streams as the engine.  Built into the emulator's shared library, which the
 * emulated build names libcuda.so.1 (cuda/emu/meson.build): a dlopen of that
 * soname returns the instance the engine is already linked to, so a device
 * pointer from the runtime is valid for the driver calls and back.
 *
 * Mapping onto the runtime (runtime.cc):
 *  - CUdevice = the runtime's device ordinal; CUstream = cudaStream_t (the
 *    same queue; NULL = the device's legacy stream);
 *  - contexts: a per-thread stack as in CUDA.  Every context of a device
 *    (the primary one, cuDevicePrimaryCtxRetain, and those of cuCtxCreate)
 *    shares the device's memory and streams — the emulator has one address
 *    space — so making one current selects its device (cudaSetDevice).  What
 *    needs a current context fails with CUDA_ERROR_INVALID_CONTEXT without
 *    one, as in CUDA, so a missing gst_cuda_context_push shows here;
 *  - memory: cuMemAlloc/cuMemAllocPitch are cudaMalloc (protected arena,
 *    redzones); pitches are multiples of LA_EMU_PITCH_ALIGN; cuMemAllocHost
 *    is page-aligned host memory (the runtime treats all host memory as
 *    pinned);
 *  - cuMemcpy2D(Async): one runtime copy per row (one in all when both
 *    pitches equal the width) on the stream, with the runtime's checks: a
 *    row outside a live allocation aborts naming it, a host pointer given as
 *    device memory (or the reverse) is CUDA_ERROR_INVALID_VALUE.
 * Not emulated, with CUDA_ERROR_NOT_SUPPORTED: modules (PTX/cubin, so
 * cuLaunchKernel), texture objects, GL/EGL graphics interop.
 * LA_EMU_DRIVER_TRACE=1 prints each driver call to stderr.
 */
#include "emu-internal.h"
#include <la-emu-driver.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

struct LaEmuCuContext {
  int device;
  bool primary;
};

namespace {

std::mutex dlock;
std::set<LaEmuCuContext *> contexts;      /* live ones */
LaEmuCuContext *primary[64];
int primary_refs[64];
std::set<void *> host_allocs;
bool initialised;
thread_local std::vector<LaEmuCuContext *> ctx_stack;

void
trace (const char *fn)
{
  static int on = -1;
  if (on < 0) {
    const char *e = getenv ("LA_EMU_DRIVER_TRACE");
    on = e && *e && strcmp (e, "0") != 0;
  }
  if (on)
    fprintf (stderr, "cuda-emu driver: %s\n", fn);
}
#define TRACE() trace (__func__)

CUresult
from_rt (cudaError_t e)
{
  switch (e) {
    case cudaSuccess: return CUDA_SUCCESS;
    case cudaErrorInvalidValue: return CUDA_ERROR_INVALID_VALUE;
    case cudaErrorMemoryAllocation: return CUDA_ERROR_OUT_OF_MEMORY;
    case cudaErrorNoDevice: return CUDA_ERROR_NO_DEVICE;
    case cudaErrorInvalidDevice: return CUDA_ERROR_INVALID_DEVICE;
    case cudaErrorInvalidResourceHandle: return CUDA_ERROR_INVALID_HANDLE;
    case cudaErrorNotSupported: return CUDA_ERROR_NOT_SUPPORTED;
    default: return CUDA_ERROR_UNKNOWN;
  }
}

bool
valid_device (CUdevice d)
{
  return d >= 0 && d < la_emu_device_count () && d < 64;
}

/* The current context, or nullptr; its device is made the runtime's. */
LaEmuCuContext *
current (void)
{
  if (ctx_stack.empty ())
    return nullptr;
  LaEmuCuContext *c = ctx_stack.back ();
  {
    std::lock_guard<std::mutex> g (dlock);
    if (!contexts.count (c))
      return nullptr;
  }
  cudaSetDevice (c->device);
  return c;
}

bool
live (CUcontext c)
{
  std::lock_guard<std::mutex> g (dlock);
  return c && contexts.count (c);
}

/* One row-by-row 2-D copy on `stream` (cudaMemcpyAsync per row). */
CUresult
copy2d (const CUDA_MEMCPY2D *c, CUstream stream)
{
  if (!c)
    return CUDA_ERROR_INVALID_VALUE;
  if (!current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY)
    return CUDA_ERROR_NOT_SUPPORTED;                    /* CUDA arrays (textures) */
  if (c->srcMemoryType < CU_MEMORYTYPE_HOST || c->srcMemoryType > CU_MEMORYTYPE_UNIFIED ||
      c->dstMemoryType < CU_MEMORYTYPE_HOST || c->dstMemoryType > CU_MEMORYTYPE_UNIFIED)
    return CUDA_ERROR_INVALID_VALUE;
  if (c->WidthInBytes == 0 || c->Height == 0)
    return CUDA_SUCCESS;
  if ((c->Height > 1 && (c->srcPitch < c->WidthInBytes + c->srcXInBytes ||
                         c->dstPitch < c->WidthInBytes + c->dstXInBytes)))
    return CUDA_ERROR_INVALID_VALUE;
  const bool sh = c->srcMemoryType == CU_MEMORYTYPE_HOST, dh = c->dstMemoryType == CU_MEMORYTYPE_HOST;
  const char *src = sh ? (const char *) c->srcHost : (const char *) (uintptr_t) c->srcDevice;
  char *dst = dh ? (char *) c->dstHost : (char *) (uintptr_t) c->dstDevice;
  if (!src || !dst)
    return CUDA_ERROR_INVALID_VALUE;
  src += c->srcY * c->srcPitch + c->srcXInBytes;
  dst += c->dstY * c->dstPitch + c->dstXInBytes;
  cudaMemcpyKind kind;
  if (c->srcMemoryType == CU_MEMORYTYPE_UNIFIED || c->dstMemoryType == CU_MEMORYTYPE_UNIFIED)
    kind = cudaMemcpyDefault;
  else
    kind = sh ? (dh ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice)
              : (dh ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice);
  /* The whole span first, so a short allocation is named once. */
  const size_t sspan = (c->Height - 1) * c->srcPitch + c->WidthInBytes;
  const size_t dspan = (c->Height - 1) * c->dstPitch + c->WidthInBytes;
  if (c->srcMemoryType == CU_MEMORYTYPE_DEVICE)
    la_emu_check_device_range (src, sspan, "cuMemcpy2D source");
  if (c->dstMemoryType == CU_MEMORYTYPE_DEVICE)
    la_emu_check_device_range (dst, dspan, "cuMemcpy2D destination");
  if (c->srcPitch == c->WidthInBytes && c->dstPitch == c->WidthInBytes)
    return from_rt (cudaMemcpyAsync (dst, src, c->WidthInBytes * c->Height, kind, stream));
  for (size_t y = 0; y < c->Height; y++) {
    cudaError_t e = cudaMemcpyAsync (dst + y * c->dstPitch, src + y * c->srcPitch, c->WidthInBytes, kind, stream);
    if (e != cudaSuccess)
      return from_rt (e);
  }
  return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

CUresult
cuInit (unsigned int flags)
{
  TRACE ();
  if (flags)
    return CUDA_ERROR_INVALID_VALUE;
  la_emu_device_count ();
  initialised = true;
  return CUDA_SUCCESS;
}

CUresult
cuDriverGetVersion (int *version)
{
  TRACE ();
  if (!version)
    return CUDA_ERROR_INVALID_VALUE;
  *version = 13000;
  return CUDA_SUCCESS;
}

CUresult
cuGetErrorName (CUresult error, const char **str)
{
  switch (error) {
#define N(x) case x: *str = #x; return CUDA_SUCCESS;
    N (CUDA_SUCCESS) N (CUDA_ERROR_INVALID_VALUE) N (CUDA_ERROR_OUT_OF_MEMORY) N (CUDA_ERROR_NOT_INITIALIZED)
    N (CUDA_ERROR_NO_DEVICE) N (CUDA_ERROR_INVALID_DEVICE) N (CUDA_ERROR_INVALID_IMAGE)
    N (CUDA_ERROR_INVALID_CONTEXT) N (CUDA_ERROR_INVALID_HANDLE) N (CUDA_ERROR_NOT_FOUND)
    N (CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED) N (CUDA_ERROR_PEER_ACCESS_NOT_ENABLED)
    N (CUDA_ERROR_NOT_SUPPORTED) N (CUDA_ERROR_UNKNOWN)
#undef N
  }
  *str = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult
cuGetErrorString (CUresult error, const char **str)
{
  switch (error) {
    case CUDA_SUCCESS: *str = "no error"; break;
    case CUDA_ERROR_INVALID_VALUE: *str = "invalid argument"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *str = "out of memory"; break;
    case CUDA_ERROR_NOT_INITIALIZED: *str = "initialization error"; break;
    case CUDA_ERROR_NO_DEVICE: *str = "no CUDA-capable device is detected"; break;
    case CUDA_ERROR_INVALID_DEVICE: *str = "invalid device ordinal"; break;
    case CUDA_ERROR_INVALID_CONTEXT: *str = "invalid device context"; break;
    case CUDA_ERROR_INVALID_HANDLE: *str = "invalid resource handle"; break;
    case CUDA_ERROR_NOT_SUPPORTED:
      *str = "operation not supported (cuda-emu: the emulated device runs no PTX/cubin modules, "
             "texture objects or graphics interop)";
      break;
    default:
      return cuGetErrorName (error, str);
  }
  return CUDA_SUCCESS;
}

/* -------------------------------------------------------------- devices */

CUresult
cuDeviceGetCount (int *count)
{
  TRACE ();
  if (!initialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  *count = la_emu_device_count ();
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGet (CUdevice *device, int ordinal)
{
  TRACE ();
  if (!initialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid_device (ordinal))
    return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGetName (char *name, int len, CUdevice dev)
{
  TRACE ();
  cudaDeviceProp p;
  if (!name || len <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device (dev) || cudaGetDeviceProperties (&p, dev) != cudaSuccess)
    return CUDA_ERROR_INVALID_DEVICE;
  snprintf (name, (size_t) len, "%s", p.name);
  return CUDA_SUCCESS;
}

CUresult
cuDeviceTotalMem_v2 (size_t *bytes, CUdevice dev)
{
  TRACE ();
  cudaDeviceProp p;
  if (!valid_device (dev) || cudaGetDeviceProperties (&p, dev) != cudaSuccess)
    return CUDA_ERROR_INVALID_DEVICE;
  *bytes = p.totalGlobalMem;
  return CUDA_SUCCESS;
}

CUresult
cuDeviceGetAttribute (int *value, CUdevice_attribute attrib, CUdevice dev)
{
  TRACE ();
  if (!valid_device (dev))
    return CUDA_ERROR_INVALID_DEVICE;
  switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_MAX_PITCH: *value = 2147483647; break;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: *value = 512; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 132; break;
    case CU_DEVICE_ATTRIBUTE_INTEGRATED: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = dev + 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: *value = 32; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: *value = 0; break;
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = 0; break;
    default:
      /* Unknown to the emulator: say so rather than invent a value. */
      trace ("cuDeviceGetAttribute: attribute not emulated");
      return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult
cuDeviceCanAccessPeer (int *can_access, CUdevice dev, CUdevice peer)
{
  TRACE ();
  if (!valid_device (dev) || !valid_device (peer))
    return CUDA_ERROR_INVALID_DEVICE;
  /* One address space: every pair of distinct devices are peers. */
  *can_access = dev != peer;
  return CUDA_SUCCESS;
}

/* ------------------------------------------------------------- contexts */

CUresult
cuCtxCreate_v2 (CUcontext *pctx, unsigned int flags, CUdevice dev)
{
  TRACE ();
  (void) flags;                        /* scheduling flags: nothing to schedule */
  if (!initialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (!pctx)
    return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device (dev))
    return CUDA_ERROR_INVALID_DEVICE;
  LaEmuCuContext *c = new LaEmuCuContext { dev, false };
  {
    std::lock_guard<std::mutex> g (dlock);
    contexts.insert (c);
  }
  ctx_stack.push_back (c);             /* current, as in CUDA */
  cudaSetDevice (dev);
  *pctx = c;
  return CUDA_SUCCESS;
}

CUresult
cuCtxDestroy_v2 (CUcontext ctx)
{
  TRACE ();
  if (!live (ctx) || ctx->primary)
    return CUDA_ERROR_INVALID_CONTEXT;
  /* Work on its device finishes first, as in CUDA. */
  int prev = 0;
  cudaGetDevice (&prev);
  cudaSetDevice (ctx->device);
  cudaDeviceSynchronize ();
  cudaSetDevice (prev);
  {
    std::lock_guard<std::mutex> g (dlock);
    contexts.erase (ctx);
  }
  if (!ctx_stack.empty () && ctx_stack.back () == ctx)
    ctx_stack.pop_back ();
  delete ctx;
  current ();
  return CUDA_SUCCESS;
}

CUresult
cuCtxPushCurrent_v2 (CUcontext ctx)
{
  TRACE ();
  if (!live (ctx))
    return CUDA_ERROR_INVALID_CONTEXT;
  ctx_stack.push_back (ctx);
  cudaSetDevice (ctx->device);
  return CUDA_SUCCESS;
}

CUresult
cuCtxPopCurrent_v2 (CUcontext *pctx)
{
  TRACE ();
  if (ctx_stack.empty ())
    return CUDA_ERROR_INVALID_CONTEXT;
  LaEmuCuContext *c = ctx_stack.back ();
  ctx_stack.pop_back ();
  if (pctx)
    *pctx = c;
  current ();                          /* the one below becomes current */
  return CUDA_SUCCESS;
}

CUresult
cuCtxGetCurrent (CUcontext *pctx)
{
  TRACE ();
  *pctx = current ();
  return CUDA_SUCCESS;
}

CUresult
cuCtxSetCurrent (CUcontext ctx)
{
  TRACE ();
  if (ctx && !live (ctx))
    return CUDA_ERROR_INVALID_CONTEXT;
  if (!ctx_stack.empty ())
    ctx_stack.pop_back ();
  if (ctx) {
    ctx_stack.push_back (ctx);
    cudaSetDevice (ctx->device);
  }
  return CUDA_SUCCESS;
}

CUresult
cuCtxGetDevice (CUdevice *device)
{
  TRACE ();
  LaEmuCuContext *c = current ();
  if (!c)
    return CUDA_ERROR_INVALID_CONTEXT;
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult
cuCtxSynchronize (void)
{
  TRACE ();
  if (!current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  return from_rt (cudaDeviceSynchronize ());
}

CUresult
cuCtxEnablePeerAccess (CUcontext peer, unsigned int flags)
{
  TRACE ();
  LaEmuCuContext *c = current ();
  if (!c || !live (peer))
    return CUDA_ERROR_INVALID_CONTEXT;
  if (flags)
    return CUDA_ERROR_INVALID_VALUE;
  if (peer->device == c->device)
    return CUDA_ERROR_INVALID_DEVICE;  /* CUDA: no peer access to one's own device */
  return CUDA_SUCCESS;                 /* always on: one address space */
}

CUresult
cuCtxDisablePeerAccess (CUcontext peer)
{
  TRACE ();
  if (!current () || !live (peer))
    return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

CUresult
cuDevicePrimaryCtxRetain (CUcontext *pctx, CUdevice dev)
{
  TRACE ();
  if (!initialised)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid_device (dev))
    return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> g (dlock);
  if (!primary[dev]) {
    primary[dev] = new LaEmuCuContext { dev, true };
    contexts.insert (primary[dev]);
  }
  primary_refs[dev]++;
  *pctx = primary[dev];
  return CUDA_SUCCESS;
}

CUresult
cuDevicePrimaryCtxRelease_v2 (CUdevice dev)
{
  TRACE ();
  if (!valid_device (dev))
    return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> g (dlock);
  if (primary_refs[dev] <= 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  /* The primary context stays (the runtime's memory lives in it). */
  primary_refs[dev]--;
  return CUDA_SUCCESS;
}

/* --------------------------------------------------------------- memory */

CUresult
cuMemAlloc_v2 (CUdeviceptr *dptr, size_t bytes)
{
  TRACE ();
  void *p = nullptr;
  if (!dptr || bytes == 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (!current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  CUresult r = from_rt (cudaMalloc (&p, bytes));
  *dptr = (CUdeviceptr) (uintptr_t) p;
  return r;
}

CUresult
cuMemAllocPitch_v2 (CUdeviceptr *dptr, size_t *pitch, size_t width_bytes, size_t height, unsigned int element_bytes)
{
  TRACE ();
  if (!dptr || !pitch || width_bytes == 0 || height == 0 ||
      (element_bytes != 4 && element_bytes != 8 && element_bytes != 16))
    return CUDA_ERROR_INVALID_VALUE;
  const size_t p = (width_bytes + LA_EMU_PITCH_ALIGN - 1) / LA_EMU_PITCH_ALIGN * LA_EMU_PITCH_ALIGN;
  CUresult r = cuMemAlloc_v2 (dptr, p * height);
  if (r == CUDA_SUCCESS)
    *pitch = p;
  return r;
}

CUresult
cuMemFree_v2 (CUdeviceptr dptr)
{
  TRACE ();
  if (!current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  return from_rt (cudaFree ((void *) (uintptr_t) dptr));
}

CUresult
cuMemAllocHost_v2 (void **pp, size_t bytes)
{
  TRACE ();
  if (!pp || bytes == 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (!current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  if (posix_memalign (pp, 4096, bytes) != 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  std::lock_guard<std::mutex> g (dlock);
  host_allocs.insert (*pp);
  return CUDA_SUCCESS;
}

CUresult
cuMemFreeHost (void *p)
{
  TRACE ();
  {
    std::lock_guard<std::mutex> g (dlock);
    if (!host_allocs.erase (p))
      return CUDA_ERROR_INVALID_VALUE;
  }
  free (p);
  return CUDA_SUCCESS;
}

CUresult
cuMemcpy2D_v2 (const CUDA_MEMCPY2D *copy)
{
  TRACE ();
  /* The legacy stream: runs at once, after the device's blocking streams. */
  CUresult r = copy2d (copy, nullptr);
  if (r == CUDA_SUCCESS)
    r = from_rt (cudaStreamSynchronize (nullptr));
  return r;
}

CUresult
cuMemcpy2DAsync_v2 (const CUDA_MEMCPY2D *copy, CUstream stream)
{
  TRACE ();
  return copy2d (copy, stream);
}

/* -------------------------------------------------------------- streams */

CUresult
cuStreamCreate (CUstream *stream, unsigned int flags)
{
  TRACE ();
  if (!stream || (flags & ~(unsigned) CU_STREAM_NON_BLOCKING))
    return CUDA_ERROR_INVALID_VALUE;
  if (!current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  return from_rt (cudaStreamCreateWithFlags (stream, flags));
}

CUresult
cuStreamDestroy_v2 (CUstream stream)
{
  TRACE ();
  return from_rt (cudaStreamDestroy (stream));
}

/* GStreamer 1.22's loader asks for the name without the suffix. */
CUresult
cuStreamDestroy (CUstream stream)
{
  return cuStreamDestroy_v2 (stream);
}

CUresult
cuStreamSynchronize (CUstream stream)
{
  TRACE ();
  if (!stream && !current ())
    return CUDA_ERROR_INVALID_CONTEXT;
  return from_rt (cudaStreamSynchronize (stream));
}

/* ------------------------------------------------ not emulated (modules) */

#define NOT_EMULATED(decl) \
  CUresult decl { TRACE (); return CUDA_ERROR_NOT_SUPPORTED; }

NOT_EMULATED (cuModuleLoadData (CUmodule *, const void *))
NOT_EMULATED (cuModuleUnload (CUmodule))
NOT_EMULATED (cuModuleGetFunction (CUfunction *, CUmodule, const char *))
NOT_EMULATED (cuLaunchKernel (CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
                              unsigned int, unsigned int, CUstream, void **, void **))
NOT_EMULATED (cuTexObjectCreate (CUtexObject *, const void *, const void *, const void *))
NOT_EMULATED (cuTexObjectDestroy (CUtexObject))
NOT_EMULATED (cuGraphicsMapResources (unsigned int, CUgraphicsResource *, CUstream))
NOT_EMULATED (cuGraphicsUnmapResources (unsigned int, CUgraphicsResource *, CUstream))
NOT_EMULATED (cuGraphicsSubResourceGetMappedArray (CUarray *, CUgraphicsResource, unsigned int, unsigned int))
NOT_EMULATED (cuGraphicsResourceGetMappedPointer_v2 (CUdeviceptr *, size_t *, CUgraphicsResource))
NOT_EMULATED (cuGraphicsUnregisterResource (CUgraphicsResource))
NOT_EMULATED (cuGraphicsResourceSetMapFlags_v2 (CUgraphicsResource, unsigned int))
NOT_EMULATED (cuGraphicsGLRegisterImage (CUgraphicsResource *, unsigned int, unsigned int, unsigned int))
NOT_EMULATED (cuGraphicsGLRegisterBuffer (CUgraphicsResource *, unsigned int, unsigned int))
NOT_EMULATED (cuGLGetDevices_v2 (unsigned int *, CUdevice *, unsigned int, int))

}  // extern "C"
