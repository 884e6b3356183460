/* emu-internal.h — the seam between the emulated CUDA runtime (cudart, kernel
 * executor, device arena: helper D1) and the emulated libraries (cuBLAS,
 * cuBLASLt, cuDNN, NCCL: helper D3).  Both sides include it; change it only by
 * agreement (add, don't rename).  Lives in cuda/emu/ in the repo.
 */
#pragma once
#include <cstddef>
#include <functional>
#include <cuda_runtime.h>   /* the emulator's own header (cuda/emu/include/) */

/* Loud failure: prints "cuda-emu: <message>" to stderr and aborts.  Used for
 * anything the emulator does not emulate and for every detected misuse. */
[[noreturn]] void la_emu_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Run fn as work ordered on stream s (0 = legacy default stream): executed
 * now with device memory accessible, or recorded into the graph when s is
 * capturing (then run at cudaGraphLaunch). */
void la_emu_enqueue (cudaStream_t s, std::function<void ()> fn);

/* Abort naming `what` unless [p, p + bytes) lies inside one live device
 * allocation (of any emulated device).  bytes == 0 checks p only. */
void la_emu_check_device_range (const void *p, size_t bytes, const char *what);

/* Device of the calling host thread (cudaSetDevice), and the device count. */
int la_emu_current_device (void);
int la_emu_device_count (void);

/* The device a stream belongs to (the device current when it was created; 0
 * for the default stream uses la_emu_current_device()). */
int la_emu_stream_device (cudaStream_t s);
