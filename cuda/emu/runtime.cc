/* runtime.cc — the emulated CUDA runtime (issue 15): devices, the device
 * arena, copies, streams, events, graphs, launches and errors, on the CPU.
 *
 * Device memory.  One arena of reserved address space (LA_EMU_ARENA_GB,
 * default 64) shared by the emulated devices; each allocation is 256-byte
 * aligned and followed by a redzone that starts at its exact end: new
 * memory, redzones and freed memory hold 0xff bytes (a NaN in f32, bf16 and
 * f16, so a read of any of them poisons a result), a write into a redzone is
 * reported after the launch (naming the kernel and the argument) or at
 * cudaFree, and freed blocks wait in a quarantine before reuse.  Between API
 * calls the arena is PROT_NONE: host code that dereferences a device pointer
 * faults, and the fault handler names the allocation (LA_EMU_PROTECT=0
 * turns this off).  The arena is transparent-huge-page backed so the two
 * mprotect calls per drain cost little.
 *
 * Streams are queues: work is recorded when it is issued and executed, in
 * order, when the host waits for it (cudaStreamSynchronize, an event or
 * stream query, a blocking copy, cudaDeviceSynchronize).  So a host read of
 * a copy's destination without a synchronisation sees the old bytes, as a
 * late GPU would show.  (All host memory is treated as pinned: real CUDA
 * finishes a device-to-pageable copy before returning, which would hide that
 * bug until the buffer is pinned.)  cudaStreamWaitEvent runs the other
 * stream up to the event first; the legacy default stream runs its work at
 * once after draining the device's blocking streams.  A stream being captured
 * records into its graph instead; cudaGraphLaunch enqueues the recorded
 * closures.
 *
 * Kernel launches check the configuration as CUDA does (block size and
 * dimensions, grid limits, dynamic shared memory against 48 KB or the
 * function's per-device cudaFuncAttributeMaxDynamicSharedMemorySize, the
 * stream's device) and report through cudaGetLastError; at execution every
 * pointer argument must lie in a live allocation of the stream's device.
 * LA_EMU_DEVICES (default 1) sets the number of devices.
 */
#include "emu-internal.h"
#include "emu-exec.h"
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>
#include <sys/mman.h>
#include <unistd.h>

namespace {

const size_t ALIGN = 256;
const size_t REDZONE = 256;
const size_t SMEM_DEFAULT = 48 * 1024;
const size_t SMEM_OPTIN = 232448;            /* sm_90: 227 KB */
const size_t QUARANTINE = (size_t) 256 << 20;
const int MAX_DEVICES = 16;

struct Alloc {
  size_t size;        /* as requested */
  size_t span;        /* bytes reserved from the arena, redzone included */
  int device;
};

struct Op {
  std::function<void ()> fn;
};

struct Graph {
  std::vector<std::shared_ptr<Op>> ops;
  int device;
};

}  // namespace

struct LaEmuStream {
  int device;
  unsigned flags;
  bool legacy;
  std::recursive_mutex mu;       /* held while draining */
  std::deque<std::shared_ptr<Op>> q;
  uint64_t enq = 0, done = 0;    /* ops issued / executed */
  Graph *capture = nullptr;
  bool capture_invalid = false;
};

struct LaEmuEvent {
  LaEmuStream *stream = nullptr;
  uint64_t pos = 0;
  unsigned flags;
};

struct LaEmuGraph {
  Graph g;
};

struct LaEmuGraphExec {
  std::vector<std::shared_ptr<Op>> ops;
  int device;
};

namespace {

std::mutex glock;                                  /* allocations, streams, attributes */
/* Held while draining streams listed under glock (and by cudaStreamDestroy
 * around the delete): another thread must not free a stream in between. */
std::recursive_mutex stream_life;
char *arena;
size_t arena_size, arena_hw;                       /* reserved, used (high water, 2 MiB steps) */
std::map<uintptr_t, Alloc> allocs;                 /* by address of the data */
std::map<uintptr_t, size_t> free_spans;            /* offset -> bytes, coalesced */
std::deque<std::pair<uintptr_t, size_t>> quarantine;
size_t quarantined;
std::set<LaEmuStream *> streams;
LaEmuStream *legacy[MAX_DEVICES];
std::map<std::pair<int, const void *>, int> smem_optin;
int ndevices;
bool protect_on;
std::mutex prot_lock;
int prot_open;                                     /* threads inside the emulator */
std::vector<std::pair<uintptr_t, size_t>> stack_guards;
thread_local int cur_device;
thread_local cudaError_t last_error;
thread_local int emu_depth;                        /* > 0 while this thread has the arena open */

cudaError_t
ret (cudaError_t e)
{
  if (e != cudaSuccess)
    last_error = e;
  return e;
}

const Alloc *
find_alloc (uintptr_t p, uintptr_t *base)
{
  auto it = allocs.upper_bound (p);
  if (it == allocs.begin ())
    return nullptr;
  --it;
  if (p >= it->first + it->second.span - 0)
    return nullptr;
  *base = it->first;
  return &it->second;
}

bool
in_arena (const void *p)
{
  return arena && (const char *) p >= arena && (const char *) p < arena + arena_size;
}

void
fault_handler (int sig, siginfo_t *si, void *uc)
{
  (void) uc;
  uintptr_t a = (uintptr_t) si->si_addr;
  char msg[512];
  int n = -1;
  for (auto &g : stack_guards)
    if (a >= g.first && a < g.first + g.second)
      n = snprintf (msg, sizeof msg, "cuda-emu: kernel %s overflowed its fiber stack\n",
                    la_emu_current_kernel () ? la_emu_current_kernel () : "?");
  if (n < 0 && in_arena ((const void *) a)) {
    uintptr_t base = 0;
    const Alloc *al = find_alloc (a, &base);
    if (emu_depth == 0 && al)
      n = snprintf (msg, sizeof msg,
                    "cuda-emu: host code touched device memory at %p: byte %zu of a %zu-byte allocation at %p "
                    "on device %d (copy it to the host with cudaMemcpy after synchronising)\n",
                    (void *) a, (size_t) (a - base), al->size, (void *) base, al->device);
    else
      n = snprintf (msg, sizeof msg, "cuda-emu: %s touched device address %p outside any live allocation%s%s\n",
                    emu_depth ? "the emulator" : "host code", (void *) a,
                    la_emu_current_kernel () ? " in kernel " : "",
                    la_emu_current_kernel () ? la_emu_current_kernel () : "");
  }
  if (n > 0) {
    if (write (2, msg, (size_t) n) < 0) {}
    signal (SIGABRT, SIG_DFL);
    abort ();
  }
  /* not ours: the default action */
  signal (sig, SIG_DFL);
  raise (sig);
}

int
env_int (const char *name, int dflt, int lo, int hi)
{
  const char *e = getenv (name);
  if (!e || !*e)
    return dflt;
  char *end;
  long v = strtol (e, &end, 10);
  if (*end || v < lo || v > hi)
    la_emu_fail ("%s=%s: want an integer in %d..%d", name, e, lo, hi);
  return (int) v;
}

void
init_once (void)
{
  static std::once_flag once;
  std::call_once (once, [] {
    ndevices = env_int ("LA_EMU_DEVICES", 1, 0, MAX_DEVICES);
    protect_on = env_int ("LA_EMU_PROTECT", 1, 0, 1) != 0;
    arena_size = (size_t) env_int ("LA_EMU_ARENA_GB", 64, 1, 4096) << 30;
    void *p = mmap (nullptr, arena_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      la_emu_fail ("cannot reserve a %zu GiB device arena (LA_EMU_ARENA_GB)", arena_size >> 30);
    arena = (char *) p;
    madvise (arena, arena_size, MADV_HUGEPAGE);
    if (!protect_on)
      mprotect (arena, arena_size, PROT_READ | PROT_WRITE);
    free_spans[0] = arena_size;
    for (int d = 0; d < ndevices; d++) {
      legacy[d] = new LaEmuStream ();
      legacy[d]->device = d;
      legacy[d]->flags = 0;
      legacy[d]->legacy = true;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction (SIGSEGV, &sa, nullptr);
    sigaction (SIGBUS, &sa, nullptr);
  });
}

/* The arena is readable while any thread is inside the emulator. */
struct Open {
  Open ()
  {
    if (emu_depth++ == 0) {
      std::lock_guard<std::mutex> g (prot_lock);
      if (prot_open++ == 0 && protect_on && arena_hw)
        mprotect (arena, arena_hw, PROT_READ | PROT_WRITE);
    }
  }
  ~Open ()
  {
    if (--emu_depth == 0) {
      std::lock_guard<std::mutex> g (prot_lock);
      if (--prot_open == 0 && protect_on && arena_hw)
        mprotect (arena, arena_hw, PROT_NONE);
    }
  }
};

void
grow_hw (size_t end)
{
  if (end <= arena_hw)
    return;
  size_t hw = (end + ((size_t) 2 << 20) - 1) & ~(((size_t) 2 << 20) - 1);
  std::lock_guard<std::mutex> g (prot_lock);
  if (protect_on && prot_open)
    mprotect (arena + arena_hw, hw - arena_hw, PROT_READ | PROT_WRITE);
  arena_hw = hw;
}

void
release_span (uintptr_t off, size_t span)
{
  auto it = free_spans.emplace (off, span).first;
  auto next = std::next (it);
  if (next != free_spans.end () && it->first + it->second == next->first) {
    it->second += next->second;
    free_spans.erase (next);
  }
  if (it != free_spans.begin ()) {
    auto prev = std::prev (it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      free_spans.erase (it);
    }
  }
}

/* First byte of the redzone that differs from 0xff, or nullptr. */
const unsigned char *
redzone_dirty (uintptr_t base, const Alloc &a)
{
  const unsigned char *p = (const unsigned char *) base + a.size, *end = (const unsigned char *) base + a.span;
  for (; p < end; p++)
    if (*p != 0xff)
      return p;
  return nullptr;
}

LaEmuStream *
resolve (cudaStream_t s)
{
  if (!s) {
    if (cur_device >= ndevices)
      la_emu_fail ("no emulated device %d", cur_device);
    return legacy[cur_device];
  }
  if (s == (cudaStream_t) (uintptr_t) 1 || s == (cudaStream_t) (uintptr_t) 2)
    la_emu_fail ("cudaStreamLegacy / cudaStreamPerThread handles are not emulated");
  std::lock_guard<std::mutex> g (glock);
  if (!streams.count (s))
    la_emu_fail ("stream %p is not a live stream (destroyed, or never created)", (void *) s);
  return s;
}

void drain (LaEmuStream *s, uint64_t upto);

void
run_op (LaEmuStream *s, const std::shared_ptr<Op> &op)
{
  (void) s;
  Open open;
  op->fn ();
}

/* Executes s's queued work up to op number upto (inclusive). */
void
drain (LaEmuStream *s, uint64_t upto)
{
  std::lock_guard<std::recursive_mutex> g (s->mu);
  while (s->done < upto && !s->q.empty ()) {
    std::shared_ptr<Op> op = s->q.front ();
    s->q.pop_front ();
    run_op (s, op);
    s->done++;
  }
}

void
drain_all (LaEmuStream *s)
{
  drain (s, UINT64_MAX);
}

/* Issue work on s: recorded while s is captured, else queued (the legacy
 * stream runs it now, after the device's blocking streams). */
void
issue (LaEmuStream *s, std::function<void ()> fn)
{
  auto op = std::make_shared<Op> ();
  op->fn = std::move (fn);
  std::lock_guard<std::recursive_mutex> g (s->mu);
  if (s->capture) {
    s->capture->ops.push_back (op);
    return;
  }
  if (s->legacy) {
    std::lock_guard<std::recursive_mutex> life (stream_life);
    std::vector<LaEmuStream *> blocking;
    {
      std::lock_guard<std::mutex> gl (glock);
      for (LaEmuStream *o : streams)
        if (o->device == s->device && !(o->flags & cudaStreamNonBlocking))
          blocking.push_back (o);
    }
    for (LaEmuStream *o : blocking)
      drain_all (o);
    run_op (s, op);
    s->enq++;
    s->done++;
    return;
  }
  s->q.push_back (op);
  s->enq++;
}

/* A blocking stream waits for the legacy stream, which never holds work. */

void
check_range (const void *p, size_t bytes, const char *what)
{
  std::lock_guard<std::mutex> g (glock);
  uintptr_t base = 0;
  const Alloc *a = find_alloc ((uintptr_t) p, &base);
  if (!a || (uintptr_t) p + bytes > base + a->size)
    la_emu_fail ("%s: [%p, +%zu) is not inside one live device allocation%s", what, p, bytes,
                 a ? " (it runs past the end of one)" : "");
}

}  // namespace

/* ------------------------------------------------------------------ seam */

void
la_emu_fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fflush (stdout);
  fputs ("cuda-emu: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  fflush (stderr);
  abort ();
}

void
la_emu_enqueue (cudaStream_t s, std::function<void ()> fn)
{
  init_once ();
  LaEmuStream *st = resolve (s);
  {
    std::lock_guard<std::recursive_mutex> g (st->mu);
    if (st->capture) {
      issue (st, std::move (fn));
      return;
    }
  }
  /* executed now, in stream order (what went before runs first) */
  drain_all (st);
  issue (st, std::move (fn));
  drain_all (st);
}

void
la_emu_check_device_range (const void *p, size_t bytes, const char *what)
{
  init_once ();
  check_range (p, bytes, what);
}

int
la_emu_current_device (void)
{
  return cur_device;
}

int
la_emu_device_count (void)
{
  init_once ();
  return ndevices;
}

int
la_emu_stream_device (cudaStream_t s)
{
  init_once ();
  return resolve (s)->device;
}

void
la_emu_register_stack (void *lo, size_t guard)
{
  std::lock_guard<std::mutex> g (glock);
  stack_guards.emplace_back ((uintptr_t) lo, guard);
}

/* ------------------------------------------------------------- launches */

void
la_emu::launch (const char *name, const void *kernel, dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
                std::function<void ()> body, std::vector<const void *> ptrs)
{
  init_once ();
  LaEmuStream *s = resolve (stream);
  const uint64_t threads = (uint64_t) block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
      grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (s->device != cur_device) {
    last_error = cudaErrorInvalidResourceHandle;   /* a stream of another device */
    return;
  }
  if (shmem > SMEM_DEFAULT) {
    std::lock_guard<std::mutex> g (glock);
    auto it = smem_optin.find ({ cur_device, kernel });
    if (it == smem_optin.end () || (size_t) it->second < shmem) {
      last_error = cudaErrorInvalidValue;         /* > 48 KB needs the per-device opt-in */
      return;
    }
  }
  const int device = s->device;
  issue (s, [name, kernel, grid, block, shmem, body = std::move (body), ptrs = std::move (ptrs), device] () {
    std::vector<std::pair<uintptr_t, size_t>> used;
    {
      std::lock_guard<std::mutex> g (glock);
      for (size_t i = 0; i < ptrs.size (); i++) {
        if (!ptrs[i])
          continue;
        uintptr_t base = 0;
        const Alloc *a = find_alloc ((uintptr_t) ptrs[i], &base);
        if (!a || (uintptr_t) ptrs[i] > base + a->size)
          la_emu_fail ("kernel %s: pointer argument %zu (%p) is not in a live device allocation%s", name, i + 1,
                       ptrs[i], in_arena (ptrs[i]) ? " (freed?)" : " (a host pointer)");
        if (a->device != device)
          la_emu_fail ("kernel %s on device %d: pointer argument %zu (%p) is device %d memory", name, device, i + 1,
                       ptrs[i], a->device);
        used.emplace_back (base, i);
      }
    }
    la_emu_run_grid (name, kernel, grid, block, shmem, body);
    std::lock_guard<std::mutex> g (glock);
    for (auto &u : used) {
      auto it = allocs.find (u.first);
      if (it == allocs.end ())
        continue;
      const unsigned char *bad = redzone_dirty (u.first, it->second);
      if (bad)
        la_emu_fail ("kernel %s wrote past the end of the %zu-byte allocation passed as pointer argument %zu "
                     "(byte %zu after its end)", name, it->second.size, u.second + 1,
                     (size_t) (bad - (const unsigned char *) u.first) - it->second.size);
    }
  });
}

extern "C" cudaError_t
la_emu_func_set_attribute (const void *func, cudaFuncAttribute attr, int value)
{
  init_once ();
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    la_emu_fail ("cudaFuncSetAttribute: attribute %d is not emulated", (int) attr);
  if (value < 0 || (size_t) value > SMEM_OPTIN)
    return ret (cudaErrorInvalidValue);
  if (cur_device >= ndevices)
    return ret (cudaErrorInvalidDevice);
  std::lock_guard<std::mutex> g (glock);
  smem_optin[{ cur_device, func }] = value;
  return cudaSuccess;
}

/* -------------------------------------------------------------- devices */

extern "C" {

cudaError_t
cudaGetDeviceCount (int *count)
{
  init_once ();
  *count = ndevices;
  return ndevices ? cudaSuccess : ret (cudaErrorNoDevice);
}

cudaError_t
cudaGetDeviceProperties (cudaDeviceProp *p, int device)
{
  init_once ();
  if (device < 0 || device >= ndevices)
    return ret (cudaErrorInvalidDevice);
  memset (p, 0, sizeof *p);
  snprintf (p->name, sizeof p->name, "cuda-emu device %d (H100-like, CPU)", device);
  p->totalGlobalMem = arena_size / (size_t) (ndevices ? ndevices : 1);
  p->sharedMemPerBlock = SMEM_DEFAULT;
  p->sharedMemPerBlockOptin = SMEM_OPTIN;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->unifiedAddressing = 1;
  return cudaSuccess;
}

cudaError_t
cudaSetDevice (int device)
{
  init_once ();
  if (device < 0 || device >= ndevices)
    return ret (cudaErrorInvalidDevice);
  cur_device = device;
  return cudaSuccess;
}

cudaError_t
cudaGetDevice (int *device)
{
  *device = cur_device;
  return cudaSuccess;
}

cudaError_t
cudaDriverGetVersion (int *v)
{
  *v = 0;   /* no driver: the emulator */
  return cudaSuccess;
}

cudaError_t
cudaRuntimeGetVersion (int *v)
{
  *v = 13000;
  return cudaSuccess;
}

cudaError_t
cudaMemGetInfo (size_t *free_bytes, size_t *total_bytes)
{
  init_once ();
  std::lock_guard<std::mutex> g (glock);
  size_t used = 0;
  for (auto &a : allocs)
    used += a.second.span;
  *total_bytes = arena_size;
  *free_bytes = arena_size - used;
  return cudaSuccess;
}

cudaError_t
cudaDeviceSynchronize (void)
{
  init_once ();
  std::lock_guard<std::recursive_mutex> life (stream_life);
  std::vector<LaEmuStream *> mine;
  {
    std::lock_guard<std::mutex> g (glock);
    for (LaEmuStream *o : streams)
      if (o->device == cur_device)
        mine.push_back (o);
  }
  for (LaEmuStream *o : mine) {
    if (o->capture)
      return ret (cudaErrorStreamCaptureUnsupported);
    drain_all (o);
  }
  return cudaSuccess;
}

cudaError_t
cudaGetLastError (void)
{
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t
cudaPeekAtLastError (void)
{
  return last_error;
}

const char *
cudaGetErrorName (cudaError_t e)
{
  switch (e) {
#define N(x) case x: return #x;
    N (cudaSuccess) N (cudaErrorInvalidValue) N (cudaErrorMemoryAllocation) N (cudaErrorInitializationError)
    N (cudaErrorInvalidConfiguration) N (cudaErrorInvalidDeviceFunction) N (cudaErrorNoDevice)
    N (cudaErrorInvalidDevice) N (cudaErrorInvalidResourceHandle) N (cudaErrorIllegalState) N (cudaErrorNotReady)
    N (cudaErrorIllegalAddress) N (cudaErrorLaunchOutOfResources) N (cudaErrorNotSupported)
    N (cudaErrorStreamCaptureUnsupported) N (cudaErrorStreamCaptureInvalidated) N (cudaErrorStreamCaptureUnmatched)
    N (cudaErrorUnknown)
#undef N
  }
  return "cudaErrorUnknown";
}

const char *
cudaGetErrorString (cudaError_t e)
{
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return cudaGetErrorName (e);
  }
}

/* --------------------------------------------------------------- memory */

cudaError_t
cudaMalloc (void **ptr, size_t size)
{
  init_once ();
  if (cur_device >= ndevices)
    return ret (cudaErrorNoDevice);
  const size_t span = ((size ? size : 1) + REDZONE + ALIGN - 1) & ~(ALIGN - 1);
  std::lock_guard<std::mutex> g (glock);
  auto take = [&] () -> uintptr_t {
    for (auto it = free_spans.begin (); it != free_spans.end (); ++it)
      if (it->second >= span) {
        uintptr_t off = it->first;
        size_t rest = it->second - span;
        free_spans.erase (it);
        if (rest)
          free_spans[off + span] = rest;
        return off;
      }
    return UINTPTR_MAX;
  };
  uintptr_t off = take ();
  if (off == UINTPTR_MAX && !quarantine.empty ()) {   /* give the quarantine back before failing */
    for (auto &q : quarantine)
      release_span (q.first, q.second);
    quarantine.clear ();
    quarantined = 0;
    off = take ();
  }
  if (off == UINTPTR_MAX) {
    *ptr = nullptr;
    return ret (cudaErrorMemoryAllocation);
  }
  grow_hw (off + span);
  {
    Open open;
    memset (arena + off, 0xff, span);     /* NaN until written; the redzone stays 0xff */
  }
  allocs[(uintptr_t) (arena + off)] = Alloc { size, span, cur_device };
  *ptr = arena + off;
  return cudaSuccess;
}

cudaError_t
cudaFree (void *ptr)
{
  init_once ();
  if (!ptr)
    return cudaSuccess;
  {
    std::lock_guard<std::mutex> g (glock);
    for (LaEmuStream *o : streams)
      if (o->capture) {
        o->capture_invalid = true;
        return ret (cudaErrorStreamCaptureUnsupported);
      }
  }
  /* cudaFree synchronises the device */
  std::vector<LaEmuStream *> all;
  {
    std::lock_guard<std::recursive_mutex> life (stream_life);
    {
      std::lock_guard<std::mutex> g (glock);
      all.assign (streams.begin (), streams.end ());
    }
    for (LaEmuStream *o : all)
      drain_all (o);
  }
  std::lock_guard<std::mutex> g (glock);
  auto it = allocs.find ((uintptr_t) ptr);
  if (it == allocs.end ())
    la_emu_fail ("cudaFree (%p): not the start of a live device allocation%s", ptr,
                 in_arena (ptr) ? " (freed twice, or an interior pointer)" : " (a host pointer)");
  Alloc a = it->second;
  {
    Open open;
    const unsigned char *bad = redzone_dirty (it->first, a);
    if (bad)
      la_emu_fail ("cudaFree (%p): something wrote %zu bytes past the end of this %zu-byte allocation", ptr,
                   (size_t) (bad - (const unsigned char *) ptr) - a.size, a.size);
    memset (ptr, 0xff, a.span);
  }
  allocs.erase (it);
  const uintptr_t off = (uintptr_t) ((char *) ptr - arena);
  quarantine.emplace_back (off, a.span);
  quarantined += a.span;
  while (quarantined > QUARANTINE) {
    release_span (quarantine.front ().first, quarantine.front ().second);
    quarantined -= quarantine.front ().second;
    quarantine.pop_front ();
  }
  return cudaSuccess;
}

static cudaError_t
memcpy_checked (void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t stream, bool sync)
{
  init_once ();
  const bool dd = in_arena (dst), sd = in_arena (src);
  switch (kind) {
    case cudaMemcpyHostToHost: if (dd || sd) return ret (cudaErrorInvalidValue); break;
    case cudaMemcpyHostToDevice: if (!dd || sd) return ret (cudaErrorInvalidValue); break;
    case cudaMemcpyDeviceToHost: if (dd || !sd) return ret (cudaErrorInvalidValue); break;
    case cudaMemcpyDeviceToDevice: if (!dd || !sd) return ret (cudaErrorInvalidValue); break;
    case cudaMemcpyDefault: break;
    default: la_emu_fail ("cudaMemcpy: copy kind %d is not emulated", (int) kind);
  }
  if (n == 0)
    return cudaSuccess;
  if (dd)
    check_range (dst, n, "cudaMemcpy destination");
  if (sd)
    check_range (src, n, "cudaMemcpy source");
  LaEmuStream *s = resolve (stream);
  issue (s, [dst, src, n] () { memmove (dst, src, n); });
  if (sync)
    drain_all (s);
  return cudaSuccess;
}

cudaError_t
cudaMemcpy (void *dst, const void *src, size_t count, cudaMemcpyKind kind)
{
  return memcpy_checked (dst, src, count, kind, nullptr, true);
}

cudaError_t
cudaMemcpyAsync (void *dst, const void *src, size_t count, cudaMemcpyKind kind, cudaStream_t stream)
{
  return memcpy_checked (dst, src, count, kind, stream, false);
}

static cudaError_t
memset_checked (void *ptr, int value, size_t n, cudaStream_t stream, bool sync)
{
  init_once ();
  if (n == 0)
    return cudaSuccess;
  check_range (ptr, n, "cudaMemset");
  LaEmuStream *s = resolve (stream);
  issue (s, [ptr, value, n] () { memset (ptr, value, n); });
  if (sync)
    drain_all (s);
  return cudaSuccess;
}

cudaError_t
cudaMemset (void *ptr, int value, size_t count)
{
  return memset_checked (ptr, value, count, nullptr, true);
}

cudaError_t
cudaMemsetAsync (void *ptr, int value, size_t count, cudaStream_t stream)
{
  return memset_checked (ptr, value, count, stream, false);
}

/* -------------------------------------------------------------- streams */

cudaError_t
cudaStreamCreateWithFlags (cudaStream_t *stream, unsigned int flags)
{
  init_once ();
  if (flags & ~(unsigned) cudaStreamNonBlocking)
    la_emu_fail ("cudaStreamCreateWithFlags: flags %#x are not emulated", flags);
  if (cur_device >= ndevices)
    return ret (cudaErrorNoDevice);
  LaEmuStream *s = new LaEmuStream ();
  s->device = cur_device;
  s->flags = flags;
  s->legacy = false;
  std::lock_guard<std::mutex> g (glock);
  streams.insert (s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t
cudaStreamCreate (cudaStream_t *stream)
{
  return cudaStreamCreateWithFlags (stream, cudaStreamDefault);
}

cudaError_t
cudaStreamDestroy (cudaStream_t stream)
{
  if (!stream)
    return ret (cudaErrorInvalidResourceHandle);
  LaEmuStream *s = resolve (stream);
  if (s->capture)
    return ret (cudaErrorStreamCaptureUnsupported);
  drain_all (s);   /* pending work completes, as on a GPU */
  std::lock_guard<std::recursive_mutex> life (stream_life);
  {
    std::lock_guard<std::mutex> g (glock);
    streams.erase (s);
  }
  delete s;
  return cudaSuccess;
}

cudaError_t
cudaStreamSynchronize (cudaStream_t stream)
{
  init_once ();
  LaEmuStream *s = resolve (stream);
  {
    std::lock_guard<std::recursive_mutex> g (s->mu);
    if (s->capture) {
      s->capture_invalid = true;
      return ret (cudaErrorStreamCaptureUnsupported);
    }
  }
  drain_all (s);
  return cudaSuccess;
}

cudaError_t
cudaStreamQuery (cudaStream_t stream)
{
  /* The emulated device progresses when polled: run what is queued. */
  return cudaStreamSynchronize (stream);
}

cudaError_t
cudaStreamBeginCapture (cudaStream_t stream, cudaStreamCaptureMode mode)
{
  init_once ();
  if (mode != cudaStreamCaptureModeRelaxed && mode != cudaStreamCaptureModeGlobal &&
      mode != cudaStreamCaptureModeThreadLocal)
    la_emu_fail ("cudaStreamBeginCapture: mode %d is not emulated", (int) mode);
  if (!stream)
    return ret (cudaErrorStreamCaptureUnsupported);   /* the legacy stream cannot be captured */
  LaEmuStream *s = resolve (stream);
  std::lock_guard<std::recursive_mutex> g (s->mu);
  if (s->capture)
    return ret (cudaErrorIllegalState);
  s->capture = new Graph ();
  s->capture->device = s->device;
  s->capture_invalid = false;
  return cudaSuccess;
}

cudaError_t
cudaStreamEndCapture (cudaStream_t stream, cudaGraph_t *graph)
{
  LaEmuStream *s = resolve (stream);
  std::lock_guard<std::recursive_mutex> g (s->mu);
  if (!s->capture)
    return ret (cudaErrorIllegalState);
  Graph *gr = s->capture;
  s->capture = nullptr;
  if (s->capture_invalid) {
    delete gr;
    *graph = nullptr;
    return ret (cudaErrorStreamCaptureInvalidated);
  }
  LaEmuGraph *out = new LaEmuGraph ();
  out->g = std::move (*gr);
  delete gr;
  *graph = out;
  return cudaSuccess;
}

cudaError_t
cudaStreamIsCapturing (cudaStream_t stream, cudaStreamCaptureStatus *status)
{
  LaEmuStream *s = resolve (stream);
  std::lock_guard<std::recursive_mutex> g (s->mu);
  *status = !s->capture ? cudaStreamCaptureStatusNone
            : s->capture_invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

/* --------------------------------------------------------------- events */

cudaError_t
cudaEventCreateWithFlags (cudaEvent_t *event, unsigned int flags)
{
  init_once ();
  if (flags & ~(unsigned) (cudaEventDisableTiming | cudaEventBlockingSync))
    la_emu_fail ("cudaEventCreateWithFlags: flags %#x are not emulated", flags);
  LaEmuEvent *e = new LaEmuEvent ();
  e->flags = flags;
  *event = e;
  return cudaSuccess;
}

cudaError_t
cudaEventCreate (cudaEvent_t *event)
{
  return cudaEventCreateWithFlags (event, cudaEventDefault);
}

cudaError_t
cudaEventRecord (cudaEvent_t event, cudaStream_t stream)
{
  LaEmuStream *s = resolve (stream);
  std::lock_guard<std::recursive_mutex> g (s->mu);
  if (s->capture)
    la_emu_fail ("cudaEventRecord in a stream being captured (graph fork/join) is not emulated");
  event->stream = s;
  event->pos = s->enq;
  return cudaSuccess;
}

cudaError_t
cudaEventSynchronize (cudaEvent_t event)
{
  if (event->stream)
    drain (event->stream, event->pos);
  return cudaSuccess;
}

cudaError_t
cudaEventQuery (cudaEvent_t event)
{
  return cudaEventSynchronize (event);   /* the device progresses when polled */
}

cudaError_t
cudaEventDestroy (cudaEvent_t event)
{
  delete event;
  return cudaSuccess;
}

cudaError_t
cudaStreamWaitEvent (cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
  if (flags)
    la_emu_fail ("cudaStreamWaitEvent: flags %#x are not emulated", flags);
  LaEmuStream *s = resolve (stream);
  LaEmuStream *src = event->stream;
  const uint64_t pos = event->pos;
  if (!src || src == s)
    return cudaSuccess;
  {
    std::lock_guard<std::recursive_mutex> g (s->mu);
    if (s->capture)
      la_emu_fail ("cudaStreamWaitEvent in a stream being captured (graph fork/join) is not emulated");
  }
  issue (s, [src, pos] () { drain (src, pos); });
  return cudaSuccess;
}

/* --------------------------------------------------------------- graphs */

cudaError_t
cudaGraphInstantiate (cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
  if (flags)
    la_emu_fail ("cudaGraphInstantiate: flags %#llx are not emulated", flags);
  if (!graph)
    return ret (cudaErrorInvalidValue);
  LaEmuGraphExec *e = new LaEmuGraphExec ();
  e->ops = graph->g.ops;
  e->device = graph->g.device;
  *exec = e;
  return cudaSuccess;
}

cudaError_t
cudaGraphLaunch (cudaGraphExec_t exec, cudaStream_t stream)
{
  init_once ();
  LaEmuStream *s = resolve (stream);
  {
    std::lock_guard<std::recursive_mutex> g (s->mu);
    if (s->capture)
      la_emu_fail ("cudaGraphLaunch into a stream being captured is not emulated");
  }
  if (s->device != exec->device)
    return ret (cudaErrorInvalidValue);
  std::vector<std::shared_ptr<Op>> ops = exec->ops;
  issue (s, [ops] () {
    for (auto &op : ops)
      op->fn ();
  });
  return cudaSuccess;
}

cudaError_t
cudaGraphExecDestroy (cudaGraphExec_t exec)
{
  delete exec;
  return cudaSuccess;
}

cudaError_t
cudaGraphDestroy (cudaGraph_t graph)
{
  delete graph;
  return cudaSuccess;
}

}  // extern "C"
