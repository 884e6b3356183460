/* nccl.h — the emulated CUDA device (issue 15): NCCL between the emulated
 * devices of one process (cuda/emu/lib-nccl.cc): communicators from
 * ncclCommInitAll, point-to-point send/recv, broadcast, group calls, abort /
 * destroy / async error.  Declarations follow the NCCL documentation; enum
 * values NCCL 2.x. */
#pragma once
#include <stddef.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NCCL_MAJOR 2
#define NCCL_MINOR 0
#define NCCL_PATCH 0
#define NCCL_VERSION_CODE (NCCL_MAJOR * 10000 + NCCL_MINOR * 100 + NCCL_PATCH)

typedef struct ncclComm *ncclComm_t;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8,
} ncclResult_t;

typedef enum {
  ncclInt8 = 0, ncclChar = 0,
  ncclUint8 = 1,
  ncclInt32 = 2, ncclInt = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6, ncclHalf = 6,
  ncclFloat32 = 7, ncclFloat = 7,
  ncclFloat64 = 8, ncclDouble = 8,
  ncclBfloat16 = 9,
  ncclNumTypes = 10,
} ncclDataType_t;

ncclResult_t ncclGetVersion (int *version);
const char *ncclGetErrorString (ncclResult_t result);
const char *ncclGetLastError (ncclComm_t comm);

ncclResult_t ncclCommInitAll (ncclComm_t *comms, int ndev, const int *devlist);
ncclResult_t ncclCommDestroy (ncclComm_t comm);
ncclResult_t ncclCommAbort (ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError (ncclComm_t comm, ncclResult_t *asyncError);
ncclResult_t ncclCommCount (const ncclComm_t comm, int *count);
ncclResult_t ncclCommCuDevice (const ncclComm_t comm, int *device);
ncclResult_t ncclCommUserRank (const ncclComm_t comm, int *rank);

ncclResult_t ncclSend (const void *sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                       cudaStream_t stream);
ncclResult_t ncclRecv (void *recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                       cudaStream_t stream);
ncclResult_t ncclBroadcast (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, int root,
                            ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclGroupStart (void);
ncclResult_t ncclGroupEnd (void);

#ifdef __cplusplus
}
#endif
