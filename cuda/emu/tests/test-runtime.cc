/* test-runtime.cc — the seam of cuda/emu/emu-internal.h implemented as
 * simply as possible, so the emulated libraries are tested on their own,
 * apart from the emulated runtime: device memory is malloc'd and registered
 * (la_emu_check_device_range looks it up), work runs at enqueue, there are
 * LA_EMU_DEVICES (default 1, as the emulated runtime) devices, the current
 * device is per thread.  Only what the library tests call is here; with
 * -Dcuda-emu=enabled the tests link the emulated runtime instead. */
#include <cuda_runtime.h>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include "../emu-internal.h"

struct LaEmuStream {
  int device;
  bool capturing;              /* only reported: nothing is recorded */
};

static std::mutex lock;
static std::map<const char *, size_t> allocs;   /* start → size */
static thread_local int current;

void
la_emu_fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs ("cuda-emu: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  abort ();
}

void
la_emu_enqueue (cudaStream_t s, std::function<void ()> fn)
{
  (void) s;
  fn ();
}

void
la_emu_check_device_range (const void *p, size_t bytes, const char *what)
{
  std::lock_guard<std::mutex> g (lock);
  const char *c = (const char *) p;
  auto it = allocs.upper_bound (c);
  if (it != allocs.begin ()) {
    --it;
    if (c >= it->first && c + (bytes ? bytes : 1) <= it->first + it->second)
      return;
  }
  la_emu_fail ("%s: [%p, +%zu) is not inside one live device allocation", what, p, bytes);
}

int
la_emu_device_count (void)
{
  const char *e = getenv ("LA_EMU_DEVICES");
  return e ? atoi (e) : 1;
}

int
la_emu_current_device (void)
{
  return current;
}

int
la_emu_stream_device (cudaStream_t s)
{
  return s ? s->device : current;
}

extern "C" cudaError_t
cudaGetDeviceCount (int *count)
{
  *count = la_emu_device_count ();
  return cudaSuccess;
}

extern "C" cudaError_t
cudaSetDevice (int device)
{
  if (device < 0 || device >= la_emu_device_count ())
    return cudaErrorInvalidDevice;
  current = device;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaGetDevice (int *device)
{
  *device = current;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaMalloc (void **p, size_t size)
{
  const size_t rounded = size ? (size + 255) & ~(size_t) 255 : 256;
  char *m = (char *) aligned_alloc (256, rounded);   /* cudaMalloc's alignment */
  if (!m)
    return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> g (lock);
  allocs[m] = size;
  *p = m;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaFree (void *p)
{
  if (!p)
    return cudaSuccess;
  std::lock_guard<std::mutex> g (lock);
  if (!allocs.erase ((const char *) p))
    return cudaErrorInvalidValue;
  free (p);
  return cudaSuccess;
}

extern "C" cudaError_t
cudaMemcpy (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
  (void) kind;
  memcpy (dst, src, count);
  return cudaSuccess;
}

extern "C" cudaError_t
cudaMemcpyAsync (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind, cudaStream_t s)
{
  (void) s;
  return cudaMemcpy (dst, src, count, kind);
}

extern "C" cudaError_t
cudaStreamCreateWithFlags (cudaStream_t *s, unsigned int flags)
{
  (void) flags;
  *s = new LaEmuStream { current, false };
  return cudaSuccess;
}

extern "C" cudaError_t
cudaStreamDestroy (cudaStream_t s)
{
  delete s;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaStreamSynchronize (cudaStream_t s)
{
  (void) s;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaStreamQuery (cudaStream_t s)
{
  (void) s;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaStreamBeginCapture (cudaStream_t s, cudaStreamCaptureMode mode)
{
  (void) mode;
  if (!s)
    return cudaErrorInvalidValue;
  s->capturing = true;
  return cudaSuccess;
}

extern "C" cudaError_t
cudaStreamIsCapturing (cudaStream_t s, cudaStreamCaptureStatus *status)
{
  *status = s && s->capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

extern "C" const char *
cudaGetErrorString (cudaError_t e)
{
  return e == cudaSuccess ? "no error" : "error";
}
