/* exec.cc — the emulator's kernel executor: runs one grid on the calling OS
 * thread, block after block, in forward or reverse order (LA_EMU_ORDER).
 *
 * Fiber mode: each CUDA thread of a block is a fiber with its own stack.  A
 * fiber runs until it reaches a barrier (__syncthreads, or a warp collective:
 * __syncwarp, shuffles, votes, WMMA loads/stores), then the scheduler resumes
 * the next runnable fiber in thread order (or reverse).  The last thread to
 * arrive at a barrier releases the others, so every barrier is a real
 * rendezvous and code that relies on one it does not have sees stale shared
 * memory.  No runnable fiber while some are waiting is a deadlock (reported
 * with who waits where); a lane that exits while its warp waits for it at a
 * collective, or a thread that exits while the block waits at
 * __syncthreads, is reported too (CUDA leaves both undefined).
 *
 * Loop mode (the fast path): a kernel whose first launch never reached a
 * barrier runs its threads as a plain loop afterwards; a barrier reached in
 * loop mode fails loudly (LA_EMU_FIBERS=1 forces fibers for every launch).
 *
 * Fibers switch with a few instructions of x86-64 assembly (the callee-saved
 * registers; MXCSR and the x87 control word are not switched: no kernel
 * changes rounding modes); other architectures use ucontext (slower: it
 * saves the signal mask).
 */
#include "emu-internal.h"
#include "emu-exec.h"
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>
#include <csignal>
#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace {

const size_t STACK_SIZE = 256 * 1024;   /* WMMA fragments are 16x16 per lane here */
const size_t GUARD = 4096;

enum FiberState { F_RUN, F_WAIT_BLOCK, F_WAIT_WARP, F_DONE };

struct Fiber {
#if defined(__x86_64__)
  void *sp;
#else
  ucontext_t uc;
#endif
  char *stack;               /* lowest address, the guard page included */
  int tid;
  uint3 idx;                 /* its threadIdx */
  FiberState state;
  unsigned warp_epoch;       /* epoch of the collective the lane waits at */
};

struct Warp {
  unsigned arrived;          /* lanes arrived at the pending collective */
  unsigned mask;             /* its member mask */
  int op;
  unsigned epoch;
  unsigned exited;           /* lanes that have returned */
  unsigned present;          /* lanes that exist (the last warp may be partial) */
  uint64_t slots[2][32];     /* values by epoch parity: a released lane may run one collective ahead */
};

struct Block {
  const char *kname;
  const std::function<void ()> *body;
  int nthreads;
  bool loop_mode;
  bool used_barrier;
  bool reverse;
  int bar_arrived;
  int ndone;
  Fiber *cur;
  dim3 bdim;
  Warp warps[32];
  void *dyn_smem;
  uint64_t runnable[16];     /* bit per thread in F_RUN */
  uint64_t serial;           /* this block's number, process-wide per OS thread */
};

static inline void
set_state (Block *b, Fiber *f, FiberState st)
{
  f->state = st;
  const uint64_t bit = 1ull << (f->tid & 63);
  if (st == F_RUN)
    b->runnable[f->tid >> 6] |= bit;
  else
    b->runnable[f->tid >> 6] &= ~bit;
}

/* Per OS thread: its fibers' stacks, the scheduler context, the block it runs. */
struct Poisoned {
  void *p;
  uint64_t serial;           /* block it was last filled for */
};

/* Zero-initialised, no constructor: a thread_local with one would cost a
 * guard check on every access. */
struct ThreadCtx {
  Fiber *fibers;
  int nfibers;
#if defined(__x86_64__)
  void *sched_sp;
#else
  ucontext_t sched_uc;
#endif
  Block *block;
  unsigned char *smem;
  size_t smem_size;
  char *altstack;
  uint64_t serial;
  Poisoned *poisoned;        /* static __shared__ variables seen */
  int npoisoned, cap_poisoned;
};

thread_local ThreadCtx tctx;

}  // namespace

/* ------------------------------------------------------------ context switch */
#if defined(__x86_64__)
extern "C" void la_emu_ctx_switch (void **save_sp, void *new_sp);
extern "C" void la_emu_fiber_entry (void);
asm (".text\n"
     ".globl la_emu_ctx_switch\n"
     ".type la_emu_ctx_switch,@function\n"
     "la_emu_ctx_switch:\n"
     "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
     "  movq %rsp, (%rdi)\n"
     "  movq %rsi, %rsp\n"
     "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
     "  ret\n"
     ".size la_emu_ctx_switch,.-la_emu_ctx_switch\n"
     /* first activation: rbx holds the Fiber*, the stack is 16-byte aligned */
     ".globl la_emu_fiber_entry\n"
     ".type la_emu_fiber_entry,@function\n"
     "la_emu_fiber_entry:\n"
     "  movq %rbx, %rdi\n"
     "  call la_emu_fiber_main\n"
     "  ud2\n"
     ".size la_emu_fiber_entry,.-la_emu_fiber_entry\n");
#endif

extern "C" void la_emu_fiber_main (Fiber *f);

static void
switch_to_fiber (Fiber *f)
{
  tctx.block->cur = f;
  threadIdx = f->idx;
#if defined(__x86_64__)
  la_emu_ctx_switch (&tctx.sched_sp, f->sp);
#else
  swapcontext (&tctx.sched_uc, &f->uc);
#endif
}

/* Leaves the current fiber for the lowest-numbered runnable one (highest in
 * reverse order), straight from fiber to fiber; the scheduler only sees a
 * block where nothing can run (finished, or deadlocked).  Lowest-first
 * rather than round-robin: the first warps run as far ahead of the others as
 * the barriers allow, which is what exposes a missing one (a warp overwriting
 * shared memory that later warps have not read yet). */
static void
yield_to_scheduler (void)
{
  Block *b = tctx.block;
  Fiber *f = b->cur;
  Fiber *next = nullptr;
  const int words = (b->nthreads + 63) / 64;
  if (!b->reverse) {
    for (int w = 0; w < words; w++)
      if (b->runnable[w]) {
        next = &tctx.fibers[w * 64 + __builtin_ctzll (b->runnable[w])];
        break;
      }
  } else {
    for (int w = words - 1; w >= 0; w--)
      if (b->runnable[w]) {
        next = &tctx.fibers[w * 64 + 63 - __builtin_clzll (b->runnable[w])];
        break;
      }
  }
  if (next == f)
    return;
#if defined(__x86_64__)
  if (next) {
    b->cur = next;
    threadIdx = next->idx;
    la_emu_ctx_switch (&f->sp, next->sp);
  } else {
    la_emu_ctx_switch (&f->sp, tctx.sched_sp);
  }
  /* resumed: whoever switched here set cur and threadIdx */
#else
  (void) next;
  swapcontext (&f->uc, &tctx.sched_uc);
#endif
}

static void
fiber_stacks (int n)
{
  if (n <= tctx.nfibers)
    return;
  Fiber *nf = (Fiber *) calloc ((size_t) n, sizeof (Fiber));
  if (!nf)
    la_emu_fail ("out of host memory for %d fibers", n);
  if (tctx.fibers)
    memcpy (nf, tctx.fibers, sizeof (Fiber) * (size_t) tctx.nfibers);
  for (int i = tctx.nfibers; i < n; i++) {
    void *p = mmap (nullptr, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
      la_emu_fail ("cannot map a fiber stack");
    mprotect (p, GUARD, PROT_NONE);
    nf[i].stack = (char *) p;
    la_emu_register_stack (p, GUARD);
  }
  free (tctx.fibers);
  tctx.fibers = nf;
  tctx.nfibers = n;
  if (!tctx.altstack) {
    /* a fiber stack overflow faults on the guard page: the report needs a stack of its own */
    tctx.altstack = (char *) malloc (65536);
    stack_t ss;
    memset (&ss, 0, sizeof ss);
    ss.ss_sp = tctx.altstack;
    ss.ss_size = 65536;
    sigaltstack (&ss, nullptr);
  }
}

static void
fiber_init (Fiber *f, int tid, dim3 bd)
{
  f->tid = tid;
  set_state (tctx.block, f, F_RUN);
  f->idx.x = (unsigned) tid % bd.x;
  f->idx.y = (unsigned) tid / bd.x % bd.y;
  f->idx.z = (unsigned) tid / (bd.x * bd.y);
  f->warp_epoch = 0;
#if defined(__x86_64__)
  /* stacks are 256 KB aligned: staggering their tops keeps the hot frames of
   * a block's fibers from all landing in the same cache sets */
  uintptr_t top = ((uintptr_t) f->stack + STACK_SIZE - (size_t) (tid % 61) * 1088) & ~(uintptr_t) 63;
  uint64_t *sp = (uint64_t *) top;
  *--sp = (uint64_t) (uintptr_t) la_emu_fiber_entry;  /* ret target: entry then runs with rsp % 16 == 0 */
  *--sp = 0;                                 /* rbp */
  *--sp = (uint64_t) (uintptr_t) f;          /* rbx */
  *--sp = 0;                                 /* r12 */
  *--sp = 0;                                 /* r13 */
  *--sp = 0;                                 /* r14 */
  *--sp = 0;                                 /* r15 */
  f->sp = sp;
#else
  getcontext (&f->uc);
  f->uc.uc_stack.ss_sp = f->stack + GUARD;
  f->uc.uc_stack.ss_size = STACK_SIZE - GUARD;
  f->uc.uc_link = nullptr;
  makecontext (&f->uc, (void (*) ()) la_emu_fiber_main, 1, f);
#endif
}

static std::string
describe_thread (const Block *b, int tid)
{
  char s[96];
  snprintf (s, sizeof s, "thread (%d,%d,%d) of block (%u,%u,%u)", tid % (int) b->bdim.x,
            tid / (int) b->bdim.x % (int) b->bdim.y, tid / (int) (b->bdim.x * b->bdim.y), blockIdx.x, blockIdx.y,
            blockIdx.z);
  return s;
}

static const char *const op_names[] = { "__syncwarp", "__shfl_sync", "__shfl_xor_sync", "__shfl_up_sync",
                                        "__shfl_down_sync", "__ballot_sync", "__any_sync", "__all_sync",
                                        "wmma::load_matrix_sync", "wmma::store_matrix_sync",
                                        "wmma::mma_sync" };

extern "C" void
la_emu_fiber_main (Fiber *f)
{
  Block *b = tctx.block;
  (*b->body) ();
  set_state (b, f, F_DONE);
  b->ndone++;
  /* An exit while the warp waits for this lane at a collective can never complete it. */
  Warp &w = b->warps[f->tid / 32];
  unsigned bit = 1u << (f->tid % 32);
  w.exited |= bit;
  if (w.arrived && (w.mask & bit) && !(w.arrived & bit))
    la_emu_fail ("kernel %s: %s exited while lanes 0x%08x of its warp wait for it at %s (mask 0x%08x)", b->kname,
                 describe_thread (b, f->tid).c_str (), w.arrived, op_names[w.op], w.mask);
  if (b->bar_arrived)
    la_emu_fail ("kernel %s: %s exited while %d threads of its block wait at __syncthreads", b->kname,
                 describe_thread (b, f->tid).c_str (), b->bar_arrived);
  yield_to_scheduler ();
  __builtin_unreachable ();
}

static Block *
barrier_block (const char *what)
{
  Block *b = tctx.block;
  if (!b)
    la_emu_fail ("%s called outside a kernel", what);
  if (b->loop_mode)
    la_emu_fail ("kernel %s reached %s in loop mode: its first launch ran without a barrier, so the "
                 "executor runs its threads as a loop (run with LA_EMU_FIBERS=1)", b->kname, what);
  b->used_barrier = true;
  return b;
}

extern "C" void
la_emu_syncthreads (void)
{
  Block *b = barrier_block ("__syncthreads");
  Fiber *f = b->cur;
  Warp &w = b->warps[f->tid / 32];
  if (w.arrived)
    la_emu_fail ("kernel %s: %s reached __syncthreads while lanes 0x%08x of its warp wait at %s", b->kname,
                 describe_thread (b, f->tid).c_str (), w.arrived, op_names[w.op]);
  if (++b->bar_arrived == b->nthreads) {
    b->bar_arrived = 0;
    for (int i = 0; i < b->nthreads; i++)
      if (tctx.fibers[i].state == F_WAIT_BLOCK)
        set_state (b, &tctx.fibers[i], F_RUN);
    return;
  }
  set_state (b, f, F_WAIT_BLOCK);
  yield_to_scheduler ();
}

/* The rendezvous under every warp collective; returns the epoch whose slots hold the lanes' values. */
static unsigned
warp_rendezvous (Block *b, unsigned mask, int op, uint64_t value)
{
  Fiber *f = b->cur;
  const int lane = f->tid % 32, wi = f->tid / 32;
  const unsigned bit = 1u << lane;
  Warp &w = b->warps[wi];
  if (__builtin_expect (!(mask & bit), 0))
    la_emu_fail ("kernel %s: %s calls %s with mask 0x%08x that excludes itself", b->kname,
                 describe_thread (b, f->tid).c_str (), op_names[op], mask);
  if (__builtin_expect (w.arrived == 0, 0)) {
    if (mask & ~w.present)
      la_emu_fail ("kernel %s: %s calls %s with mask 0x%08x naming lanes that do not exist (block of %d threads)",
                   b->kname, describe_thread (b, f->tid).c_str (), op_names[op], mask, b->nthreads);
    w.mask = mask;
    w.op = op;
  } else if (__builtin_expect (w.mask != mask || w.op != op, 0)) {
    la_emu_fail ("kernel %s: %s calls %s (mask 0x%08x) while lanes 0x%08x of its warp wait at %s (mask 0x%08x): "
                 "divergent warp collectives", b->kname, describe_thread (b, f->tid).c_str (), op_names[op], mask,
                 w.arrived, op_names[w.op], w.mask);
  }
  if (__builtin_expect (mask & w.exited, 0))
    la_emu_fail ("kernel %s: %s calls %s with mask 0x%08x but lanes 0x%08x have exited", b->kname,
                 describe_thread (b, f->tid).c_str (), op_names[op], mask, mask & w.exited);
  const unsigned epoch = w.epoch;
  w.slots[epoch & 1][lane] = value;
  w.arrived |= bit;
  if (w.arrived == mask) {
    w.arrived = 0;
    w.epoch++;
    for (unsigned m = mask & ~bit; m; m &= m - 1)
      set_state (b, &tctx.fibers[wi * 32 + __builtin_ctz (m)], F_RUN);
    return epoch;
  }
  set_state (b, f, F_WAIT_WARP);
  f->warp_epoch = epoch;
  yield_to_scheduler ();
  return epoch;
}

extern "C" uint64_t
la_emu_warp_op (unsigned int mask, int op, uint64_t value, int arg, int width)
{
  Block *b = barrier_block (op_names[op]);
  if (width <= 0 || width > 32 || (width & (width - 1)))
    la_emu_fail ("kernel %s: %s with width %d (a power of two up to 32)", b->kname, op_names[op], width);
  const int lane = b->cur->tid % 32;
  const unsigned e = warp_rendezvous (b, mask, op, value);
  const Warp &w = b->warps[b->cur->tid / 32];
  const uint64_t *s = w.slots[e & 1];
  const int base = lane & ~(width - 1);
  int src = lane;
  switch (op) {
    case 0: return 0;
    case 1: src = base + (arg & (width - 1)); break;
    case 2: src = lane ^ arg; if (src >= base + width || src < base) src = lane; break;
    case 3: src = lane - arg >= base ? lane - arg : lane; break;
    case 4: src = lane + arg < base + width ? lane + arg : lane; break;
    default: {
      unsigned bits = 0;
      for (int l = 0; l < 32; l++)
        if (((mask >> l) & 1u) && s[l])
          bits |= 1u << l;
      return op == 5 ? bits : op == 6 ? (bits != 0) : (bits == mask);
    }
  }
  if (!((mask >> src) & 1u))
    la_emu_fail ("kernel %s: %s lane %d reads lane %d, which is not in the mask 0x%08x", b->kname, op_names[op], lane,
                 src, mask);
  return s[src];
}

/* WMMA's warp-synchronous operations (mma.h): a rendezvous of the whole warp
 * that also checks every lane passed the same pointer and ldm. */
extern "C" void
la_emu_wmma_sync (int op, const void *ptr, unsigned ldm)
{
  Block *b = barrier_block (op_names[8 + op]);
  const unsigned e = warp_rendezvous (b, 0xffffffffu, 8 + op, (uint64_t) (uintptr_t) ptr ^ ((uint64_t) ldm << 48));
  const Warp &w = b->warps[b->cur->tid / 32];
  for (int l = 0; l < 32; l++)
    if (w.slots[e & 1][l] != w.slots[e & 1][0])
      la_emu_fail ("kernel %s: %s: lanes of warp %d pass different pointers or ldm (lane 0 %#llx, lane %d %#llx)",
                   b->kname, op_names[8 + op], b->cur->tid / 32, (unsigned long long) w.slots[e & 1][0], l,
                   (unsigned long long) w.slots[e & 1][l]);
}

extern "C" void *
la_emu_dyn_smem (void)
{
  if (!tctx.block)
    la_emu_fail ("extern __shared__ memory used outside a kernel");
  return tctx.block->dyn_smem;
}

extern "C" void
la_emu_shared_poison (void *p, size_t bytes)
{
  Block *b = tctx.block;
  if (!b)
    la_emu_fail ("__shared__ variable declared outside a kernel");
  for (int i = 0; i < tctx.npoisoned; i++)
    if (tctx.poisoned[i].p == p) {
      if (tctx.poisoned[i].serial != b->serial) {
        tctx.poisoned[i].serial = b->serial;
        memset (p, 0xff, bytes);
      }
      return;
    }
  if (tctx.npoisoned == tctx.cap_poisoned) {
    tctx.cap_poisoned = tctx.cap_poisoned ? 2 * tctx.cap_poisoned : 16;
    tctx.poisoned = (Poisoned *) realloc (tctx.poisoned, sizeof (Poisoned) * (size_t) tctx.cap_poisoned);
    if (!tctx.poisoned)
      la_emu_fail ("out of host memory");
  }
  tctx.poisoned[tctx.npoisoned++] = Poisoned { p, b->serial };
  memset (p, 0xff, bytes);
}

extern "C" const char *
la_emu_current_kernel (void)
{
  return tctx.block ? tctx.block->kname : nullptr;
}

static void
deadlock (Block *b)
{
  std::string who;
  int shown = 0;
  for (int i = 0; i < b->nthreads && shown < 8; i++) {
    const Fiber &f = tctx.fibers[i];
    if (f.state == F_WAIT_BLOCK || f.state == F_WAIT_WARP) {
      who += "\n  " + describe_thread (b, i) + " waits at " +
             (f.state == F_WAIT_BLOCK ? std::string ("__syncthreads") : std::string (op_names[b->warps[i / 32].op]));
      shown++;
    }
  }
  la_emu_fail ("kernel %s: deadlock: %d of %d threads exited, %d wait at __syncthreads, none can run:%s", b->kname,
               b->ndone, b->nthreads, b->bar_arrived, who.c_str ());
}

static void
run_block_fibers (Block *b)
{
  const int n = b->nthreads;
  for (int i = 0; i < n; i++)
    fiber_init (&tctx.fibers[i], i, b->bdim);
  /* fibers pass control among themselves; back here when none can run */
  switch_to_fiber (&tctx.fibers[b->reverse ? n - 1 : 0]);
  while (b->ndone < n) {
    bool ran = false;
    for (int k = 0; k < n && b->ndone < n; k++) {
      Fiber *f = &tctx.fibers[b->reverse ? n - 1 - k : k];
      if (f->state == F_RUN) {
        switch_to_fiber (f);
        ran = true;
      }
    }
    if (!ran && b->ndone < n)
      deadlock (b);
  }
}

/* --------------------------------------------------------------- grids */

namespace {
std::mutex mode_lock;
std::unordered_map<const void *, int> kernel_mode;   /* 1: fibers needed, 2: loop mode */

bool
env_flag (const char *name)
{
  const char *e = getenv (name);
  return e && *e && strcmp (e, "0") != 0;
}
}

static int order_override = -1;

bool
la_emu_order_reverse (void)
{
  static const bool r = [] {
    const char *e = getenv ("LA_EMU_ORDER");
    if (e && strcmp (e, "reverse") != 0 && strcmp (e, "forward") != 0)
      la_emu_fail ("LA_EMU_ORDER=%s: want forward or reverse", e);
    return e && strcmp (e, "reverse") == 0;
  }();
  return order_override >= 0 ? order_override != 0 : r;
}

extern "C" void
la_emu_set_order (int reverse)
{
  order_override = reverse;
}

void
la_emu_run_grid (const char *name, const void *kernel, dim3 grid, dim3 block, size_t shmem,
                 const std::function<void ()> &body)
{
  static const bool force_fibers = env_flag ("LA_EMU_FIBERS");
  int mode;
  {
    std::lock_guard<std::mutex> g (mode_lock);
    auto it = kernel_mode.find (kernel);
    mode = it == kernel_mode.end () ? 0 : it->second;
  }
  const bool loop = !force_fibers && mode == 2;
  const int nthreads = (int) (block.x * block.y * block.z);
  if (!loop)
    fiber_stacks (nthreads);
  if (shmem > tctx.smem_size) {
    free (tctx.smem);
    tctx.smem = (unsigned char *) aligned_alloc (256, (shmem + 255) & ~(size_t) 255);
    tctx.smem_size = shmem;
  }
  Block *saved = tctx.block;   /* a kernel never launches another; kept for clarity of nesting errors */
  if (saved)
    la_emu_fail ("kernel %s launched from inside kernel %s (dynamic parallelism is not emulated)", name, saved->kname);
  Block *b = new Block ();
  b->kname = name;
  b->body = &body;
  b->nthreads = nthreads;
  b->loop_mode = loop;
  b->reverse = la_emu_order_reverse ();
  b->bdim = block;
  b->dyn_smem = shmem ? tctx.smem : nullptr;
  tctx.block = b;
  gridDim = grid;
  blockDim = block;
  const uint64_t nblocks = (uint64_t) grid.x * grid.y * grid.z;
  for (uint64_t k = 0; k < nblocks; k++) {
    const uint64_t bi = b->reverse ? nblocks - 1 - k : k;
    blockIdx.x = (unsigned) (bi % grid.x);
    blockIdx.y = (unsigned) (bi / grid.x % grid.y);
    blockIdx.z = (unsigned) (bi / ((uint64_t) grid.x * grid.y));
    b->serial = ++tctx.serial;
    if (shmem)
      memset (tctx.smem, 0xff, shmem);   /* uninitialised shared memory reads as NaN */
    if (loop) {
      for (int t = 0; t < nthreads; t++) {
        const int tid = b->reverse ? nthreads - 1 - t : t;
        threadIdx.x = (unsigned) tid % block.x;
        threadIdx.y = (unsigned) tid / block.x % block.y;
        threadIdx.z = (unsigned) tid / (block.x * block.y);
        body ();
      }
    } else {
      b->bar_arrived = 0;
      b->ndone = 0;
      memset (b->runnable, 0, sizeof b->runnable);
      memset (b->warps, 0, sizeof b->warps);
      for (int wi = 0; wi * 32 < nthreads; wi++) {
        const int here = nthreads - wi * 32 < 32 ? nthreads - wi * 32 : 32;
        b->warps[wi].present = here == 32 ? 0xffffffffu : ((1u << here) - 1u);
      }
      run_block_fibers (b);
    }
  }
  tctx.block = nullptr;
  if (mode == 0) {
    std::lock_guard<std::mutex> g (mode_lock);
    kernel_mode[kernel] = b->used_barrier ? 1 : 2;
  }
  delete b;
}
