/* cuda_runtime.h — for the emulated libraries' own tests only, until the
 * emulated runtime's header (cuda/emu/include/cuda_runtime.h, which comes
 * first on the include path) is there: the few cudart declarations the
 * libraries and their tests use, as the CUDA documentation gives them. */
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidDevice = 101,
  cudaErrorNotReady = 600,
} cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

typedef struct CUstream_st *cudaStream_t;

#define cudaStreamNonBlocking 0x01

cudaError_t cudaGetDeviceCount (int *count);
cudaError_t cudaSetDevice (int device);
cudaError_t cudaGetDevice (int *device);
cudaError_t cudaMalloc (void **p, size_t size);
cudaError_t cudaFree (void *p);
cudaError_t cudaMemcpy (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags (cudaStream_t *s, unsigned int flags);
cudaError_t cudaStreamDestroy (cudaStream_t s);
cudaError_t cudaStreamSynchronize (cudaStream_t s);
cudaError_t cudaStreamQuery (cudaStream_t s);
const char *cudaGetErrorString (cudaError_t e);

#ifdef __cplusplus
}
#endif
