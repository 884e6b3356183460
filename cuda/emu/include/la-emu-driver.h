/* la-emu-driver.h — the CUDA driver API subset that cuda/emu/driver.cc
 * emulates: what GStreamer 1.22's GstCuda loader resolves from libcuda.so.1
 * (gst/cuda/cuda-gst.h), plus the primary-context calls an application
 * needs to share the runtime's memory with GstCuda.
 *
 * Types and values follow the toolkit's cuda.h (the 64-bit, "_v2" ABI: the
 * exported names carry the _v2 suffix where cuda.h #defines one), so code
 * compiled against the real cuda.h calls these through dlopen/dlsym.  Only
 * the declarations the emulator and its tests use are here; it is not a
 * replacement for cuda.h.
 */
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704,
  CUDA_ERROR_PEER_ACCESS_NOT_ENABLED = 705,
  CUDA_ERROR_NOT_SUPPORTED = 801,
  CUDA_ERROR_UNKNOWN = 999,
} CUresult;

typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct LaEmuCuContext *CUcontext;
typedef struct LaEmuStream *CUstream;         /* the runtime's cudaStream_t */
typedef struct LaEmuCuOpaque *CUmodule, *CUfunction, *CUarray, *CUgraphicsResource;
typedef unsigned long long CUtexObject;

typedef enum {
  CU_MEMORYTYPE_HOST = 1,
  CU_MEMORYTYPE_DEVICE = 2,
  CU_MEMORYTYPE_ARRAY = 3,
  CU_MEMORYTYPE_UNIFIED = 4,
} CUmemorytype;

#define CU_STREAM_DEFAULT 0x0
#define CU_STREAM_NON_BLOCKING 0x1

typedef enum {
  CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
  CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
  CU_DEVICE_ATTRIBUTE_MAX_PITCH = 11,
  CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT = 14,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_INTEGRATED = 18,
  CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY = 19,
  CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
  CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
  CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
  CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
  CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT = 51,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY = 83,
  CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED = 102,
} CUdevice_attribute;

/* cuda.h's CUDA_MEMCPY2D (CUDA_MEMCPY2D_v2): field for field. */
typedef struct {
  size_t srcXInBytes, srcY;
  CUmemorytype srcMemoryType;
  const void *srcHost;
  CUdeviceptr srcDevice;
  CUarray srcArray;
  size_t srcPitch;
  size_t dstXInBytes, dstY;
  CUmemorytype dstMemoryType;
  void *dstHost;
  CUdeviceptr dstDevice;
  CUarray dstArray;
  size_t dstPitch;
  size_t WidthInBytes, Height;
} CUDA_MEMCPY2D;

/* Pitch of cuMemAllocPitch rows (an H100 gives 512). */
#define LA_EMU_PITCH_ALIGN 512

CUresult cuInit (unsigned int flags);
CUresult cuDriverGetVersion (int *version);
CUresult cuGetErrorName (CUresult error, const char **str);
CUresult cuGetErrorString (CUresult error, const char **str);

CUresult cuDeviceGet (CUdevice *device, int ordinal);
CUresult cuDeviceGetCount (int *count);
CUresult cuDeviceGetName (char *name, int len, CUdevice dev);
CUresult cuDeviceGetAttribute (int *value, CUdevice_attribute attrib, CUdevice dev);
CUresult cuDeviceCanAccessPeer (int *can_access, CUdevice dev, CUdevice peer);
CUresult cuDeviceTotalMem_v2 (size_t *bytes, CUdevice dev);

CUresult cuCtxCreate_v2 (CUcontext *pctx, unsigned int flags, CUdevice dev);
CUresult cuCtxDestroy_v2 (CUcontext ctx);
CUresult cuCtxPushCurrent_v2 (CUcontext ctx);
CUresult cuCtxPopCurrent_v2 (CUcontext *pctx);
CUresult cuCtxGetCurrent (CUcontext *pctx);
CUresult cuCtxSetCurrent (CUcontext ctx);
CUresult cuCtxGetDevice (CUdevice *device);
CUresult cuCtxSynchronize (void);
CUresult cuCtxEnablePeerAccess (CUcontext peer, unsigned int flags);
CUresult cuCtxDisablePeerAccess (CUcontext peer);
CUresult cuDevicePrimaryCtxRetain (CUcontext *pctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2 (CUdevice dev);

CUresult cuMemAlloc_v2 (CUdeviceptr *dptr, size_t bytes);
CUresult cuMemAllocPitch_v2 (CUdeviceptr *dptr, size_t *pitch, size_t width_bytes, size_t height,
                             unsigned int element_bytes);
CUresult cuMemFree_v2 (CUdeviceptr dptr);
CUresult cuMemAllocHost_v2 (void **pp, size_t bytes);
CUresult cuMemFreeHost (void *p);
CUresult cuMemcpy2D_v2 (const CUDA_MEMCPY2D *copy);
CUresult cuMemcpy2DAsync_v2 (const CUDA_MEMCPY2D *copy, CUstream stream);

CUresult cuStreamCreate (CUstream *stream, unsigned int flags);
CUresult cuStreamDestroy_v2 (CUstream stream);
CUresult cuStreamDestroy (CUstream stream);     /* the unsuffixed name GstCuda 1.22 asks for */
CUresult cuStreamSynchronize (CUstream stream);

/* Not emulated: they return CUDA_ERROR_NOT_SUPPORTED (see cuGetErrorString). */
CUresult cuModuleLoadData (CUmodule *module, const void *image);
CUresult cuLaunchKernel (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                         unsigned int by, unsigned int bz, unsigned int shmem, CUstream stream, void **params,
                         void **extra);

#ifdef __cplusplus
}
#endif
