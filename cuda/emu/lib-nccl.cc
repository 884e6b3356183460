/* lib-nccl.cc — emulated NCCL (issue 15): communicators between the emulated
 * devices of one process, driven by one host thread per rank (or by one
 * thread inside a group call).
 *
 * ncclCommInitAll makes one clique of n communicators.  Every ordered pair of
 * ranks (src → dst) has a FIFO of messages; a message is posted at the call,
 * so calls match by peer and call order as in NCCL, and is filled when the
 * stream work enqueued for it runs (la_emu_enqueue: at once, or at graph
 * launch).  ncclSend posts one message; ncclBroadcast's root posts one per
 * other rank.  ncclRecv (and a non-root's ncclBroadcast) waits on the host
 * until the head message of its FIFO is filled, checks it is the matching
 * call (kind, root, byte count — a mismatch aborts naming both ranks), then
 * enqueues the copy into its buffer on its stream: that stream's later work
 * sees the data, as with NCCL's stream ordering.  The wait happens outside
 * la_emu_enqueue, so no runtime lock is held while a peer is awaited; sends
 * are buffered (eager), so send-before-recv on one thread cannot deadlock.
 *
 * Group calls defer the operations of the calling thread to ncclGroupEnd,
 * which posts every send first and then runs the receives, so one thread can
 * drive all ranks.  A receive whose peer is destroyed or aborted with nothing
 * left to deliver returns ncclRemoteError (also reported by
 * ncclCommGetAsyncError); one that waits longer than LA_EMU_NCCL_TIMEOUT_S
 * (default 120) aborts the process naming the ranks — a real NCCL would hang.
 * Using a destroyed or aborted communicator aborts, as does a stream of
 * another device than the communicator's, or a capturing stream (not
 * emulated: a receive would wait on the host for what only the launch makes).
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <vector>
#include "emu-internal.h"

enum MsgKind { MSG_SEND, MSG_BCAST };

struct Msg {
  MsgKind kind;
  int root;
  size_t bytes;
  std::vector<char> data;
  bool ready = false;
};

struct Clique;

struct ncclComm {
  Clique *cl;
  int rank, dev;
  bool gone;                   /* destroyed or aborted */
  ncclResult_t async_error;
};

struct Clique {
  std::mutex mu;
  std::condition_variable cv;
  int n;
  int refs;                    /* live communicators + operations in flight */
  std::vector<std::unique_ptr<ncclComm>> comm;
  std::vector<std::deque<std::shared_ptr<Msg>>> fifo;   /* [src · n + dst] */
};

static std::mutex live_lock;
static std::set<const ncclComm *> live;

static const char *
kind_name (MsgKind k)
{
  return k == MSG_SEND ? "ncclSend" : "ncclBroadcast";
}

/* Takes a reference on the clique for the operation (dropped by unref). */
static ncclComm *
comm_of (ncclComm_t c, const char *call)
{
  std::lock_guard<std::mutex> g (live_lock);
  if (!c || !live.count (c))
    la_emu_fail ("%s: communicator %p was never created, or is already destroyed or aborted", call, (void *) c);
  std::lock_guard<std::mutex> g2 (c->cl->mu);
  c->cl->refs++;
  return c;
}

static void
unref (Clique *cl)
{
  bool last;
  {
    std::lock_guard<std::mutex> g (cl->mu);
    last = --cl->refs == 0;
  }
  if (last)
    delete cl;
}

static size_t
type_size (ncclDataType_t t)
{
  switch (t) {
  case ncclInt8: case ncclUint8: return 1;
  case ncclFloat16: case ncclBfloat16: return 2;
  case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
  case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
  default: break;
  }
  return 0;
}

extern "C" ncclResult_t
ncclGetVersion (int *version)
{
  if (!version)
    return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

extern "C" const char *
ncclGetErrorString (ncclResult_t r)
{
  switch (r) {
  case ncclSuccess: return "no error";
  case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
  case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
  case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
  case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
  case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
  case ncclRemoteError: return "remote process exited or there was a network error";
  case ncclInProgress: return "NCCL operation in progress";
  default: break;
  }
  return "unknown result code";
}

extern "C" const char *
ncclGetLastError (ncclComm_t comm)
{
  (void) comm;
  return "";
}

extern "C" ncclResult_t
ncclCommInitAll (ncclComm_t *comms, int ndev, const int *devlist)
{
  if (!comms || ndev < 1)
    return ncclInvalidArgument;
  const int count = la_emu_device_count ();
  for (int i = 0; i < ndev; i++) {
    const int d = devlist ? devlist[i] : i;
    if (d < 0 || d >= count)
      return ncclInvalidArgument;
    for (int j = 0; j < i; j++)
      if ((devlist ? devlist[j] : j) == d)   /* NCCL: "Duplicate GPU detected" */
        return ncclInvalidUsage;
  }
  Clique *cl = new Clique ();
  cl->n = ndev;
  cl->refs = ndev;
  cl->fifo.resize ((size_t) ndev * ndev);
  std::lock_guard<std::mutex> g (live_lock);
  for (int i = 0; i < ndev; i++) {
    cl->comm.emplace_back (new ncclComm { cl, i, devlist ? devlist[i] : i, false, ncclSuccess });
    comms[i] = cl->comm.back ().get ();
    live.insert (comms[i]);
  }
  return ncclSuccess;
}

/* Destroy and abort: the communicator is gone for new calls; peers waiting on
 * it get ncclRemoteError once nothing it sent is left to deliver. */
static ncclResult_t
finish (ncclComm_t c, const char *call)
{
  {
    std::lock_guard<std::mutex> g (live_lock);
    if (!c || !live.erase (c))
      la_emu_fail ("%s: communicator %p was never created, or is already destroyed or aborted", call, (void *) c);
  }
  Clique *cl = c->cl;
  {
    std::lock_guard<std::mutex> g (cl->mu);
    c->gone = true;
  }
  cl->cv.notify_all ();
  unref (cl);
  return ncclSuccess;
}

extern "C" ncclResult_t
ncclCommDestroy (ncclComm_t comm)
{
  return finish (comm, "ncclCommDestroy");
}

extern "C" ncclResult_t
ncclCommAbort (ncclComm_t comm)
{
  return finish (comm, "ncclCommAbort");
}

extern "C" ncclResult_t
ncclCommGetAsyncError (ncclComm_t comm, ncclResult_t *err)
{
  if (!err)
    return ncclInvalidArgument;
  ncclComm *c = comm_of (comm, "ncclCommGetAsyncError");
  {
    std::lock_guard<std::mutex> g (c->cl->mu);
    *err = c->async_error;
  }
  unref (c->cl);
  return ncclSuccess;
}

extern "C" ncclResult_t
ncclCommCount (const ncclComm_t comm, int *count)
{
  if (!count)
    return ncclInvalidArgument;
  ncclComm *c = comm_of (comm, "ncclCommCount");
  *count = c->cl->n;
  unref (c->cl);
  return ncclSuccess;
}

extern "C" ncclResult_t
ncclCommCuDevice (const ncclComm_t comm, int *device)
{
  if (!device)
    return ncclInvalidArgument;
  ncclComm *c = comm_of (comm, "ncclCommCuDevice");
  *device = c->dev;
  unref (c->cl);
  return ncclSuccess;
}

extern "C" ncclResult_t
ncclCommUserRank (const ncclComm_t comm, int *rank)
{
  if (!rank)
    return ncclInvalidArgument;
  ncclComm *c = comm_of (comm, "ncclCommUserRank");
  *rank = c->rank;
  unref (c->cl);
  return ncclSuccess;
}

/* ------------------------------------------------------------ operations */

/* Posts messages to `dsts` now and enqueues their filling from buf on s. */
static ncclResult_t
post (ncclComm *c, MsgKind kind, int root, const void *buf, void *self_copy, size_t bytes, std::vector<int> dsts,
      cudaStream_t s)
{
  Clique *cl = c->cl;
  std::vector<std::shared_ptr<Msg>> msgs;
  {
    std::lock_guard<std::mutex> g (cl->mu);
    for (int d : dsts) {
      auto m = std::make_shared<Msg> ();
      m->kind = kind, m->root = root, m->bytes = bytes;
      cl->fifo[(size_t) c->rank * cl->n + d].push_back (m);
      msgs.push_back (m);
    }
    cl->refs++;              /* held until the enqueued work ran */
  }
  la_emu_enqueue (s, [cl, msgs, buf, self_copy, bytes] () {
    for (auto &m : msgs)
      m->data.assign ((const char *) buf, (const char *) buf + bytes);
    if (self_copy && self_copy != buf)
      memmove (self_copy, buf, bytes);
    {
      std::lock_guard<std::mutex> g (cl->mu);
      for (auto &m : msgs)
        m->ready = true;
    }
    cl->cv.notify_all ();
    unref (cl);
  });
  return ncclSuccess;
}

static int
timeout_s (void)
{
  const char *e = getenv ("LA_EMU_NCCL_TIMEOUT_S");
  const int t = e ? atoi (e) : 0;
  return t > 0 ? t : 120;
}

/* Waits for the head message from `src`, checks it matches, enqueues its copy into buf on s. */
static ncclResult_t
take (ncclComm *c, const char *call, MsgKind kind, int src, void *buf, size_t bytes, cudaStream_t s)
{
  Clique *cl = c->cl;
  auto &q = cl->fifo[(size_t) src * cl->n + c->rank];
  std::shared_ptr<Msg> m;
  {
    std::unique_lock<std::mutex> g (cl->mu);
    const auto deadline = std::chrono::steady_clock::now () + std::chrono::seconds (timeout_s ());
    for (;;) {
      if (!q.empty () && q.front ()->ready)
        break;
      if (c->gone)
        return ncclInvalidUsage;
      if (q.empty () && cl->comm[src]->gone) {
        c->async_error = ncclRemoteError;
        return ncclRemoteError;
      }
      if (cl->cv.wait_until (g, deadline) == std::cv_status::timeout && !(!q.empty () && q.front ()->ready))
        la_emu_fail ("%s: rank %d (cuda:%d) waited %d s for rank %d (cuda:%d): no matching call was made "
                     "(LA_EMU_NCCL_TIMEOUT_S)", call, c->rank, c->dev, timeout_s (), src, cl->comm[src]->dev);
    }
    m = q.front ();
    q.pop_front ();
  }
  if (m->kind != kind || (kind == MSG_BCAST && m->root != src))
    la_emu_fail ("%s on rank %d (cuda:%d) matched an %s from rank %d: the ranks' calls are in a different order",
                 call, c->rank, c->dev, kind_name (m->kind), src);
  if (m->bytes != bytes)
    la_emu_fail ("%s on rank %d (cuda:%d) expects %zu bytes, the matching %s from rank %d sent %zu", call, c->rank,
                 c->dev, bytes, kind_name (m->kind), src, m->bytes);
  la_emu_enqueue (s, [m, buf] () { memcpy (buf, m->data.data (), m->bytes); });
  return ncclSuccess;
}

/* The calling thread's group: sends are posted before any receive runs. */
struct Deferred {
  ncclComm *c;
  std::function<ncclResult_t ()> fn;
};
static thread_local int group_depth;
static thread_local std::vector<Deferred> group_posts, group_takes;

static ncclResult_t
run (ncclComm *c, bool is_post, std::function<ncclResult_t ()> fn)
{
  if (group_depth > 0) {
    (is_post ? group_posts : group_takes).push_back ({ c, std::move (fn) });
    return ncclSuccess;
  }
  ncclResult_t r = fn ();
  unref (c->cl);
  return r;
}

/* Checks shared by every operation; returns the byte count. */
static size_t
check_op (ncclComm *c, const char *call, const void *buf, size_t count, ncclDataType_t t, int peer, cudaStream_t s,
          const char *what)
{
  const size_t es = type_size (t);
  if (!es)
    la_emu_fail ("%s: data type %d unknown", call, (int) t);
  if (peer < 0 || peer >= c->cl->n)
    la_emu_fail ("%s: rank %d of %d", call, peer, c->cl->n);
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing (s, &cap) != cudaSuccess || cap != cudaStreamCaptureStatusNone)
    la_emu_fail ("%s: NCCL in a stream capture is not emulated (a receive would wait on the host for data that "
                 "only the graph launch produces)", call);
  if (la_emu_stream_device (s) != c->dev)
    la_emu_fail ("%s: a stream of cuda:%d used with the communicator of cuda:%d (rank %d)", call,
                 la_emu_stream_device (s), c->dev, c->rank);
  if (buf && count)
    la_emu_check_device_range (buf, count * es, what);
  else if (count)
    la_emu_fail ("%s: NULL buffer for %zu elements", call, count);
  return count * es;
}

extern "C" ncclResult_t
ncclSend (const void *sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm, cudaStream_t stream)
{
  ncclComm *c = comm_of (comm, "ncclSend");
  const size_t bytes = check_op (c, "ncclSend", sendbuff, count, datatype, peer, stream, "ncclSend sendbuff");
  return run (c, true, [=] () { return post (c, MSG_SEND, -1, sendbuff, nullptr, bytes, { peer }, stream); });
}

extern "C" ncclResult_t
ncclRecv (void *recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm, cudaStream_t stream)
{
  ncclComm *c = comm_of (comm, "ncclRecv");
  const size_t bytes = check_op (c, "ncclRecv", recvbuff, count, datatype, peer, stream, "ncclRecv recvbuff");
  return run (c, false, [=] () { return take (c, "ncclRecv", MSG_SEND, peer, recvbuff, bytes, stream); });
}

extern "C" ncclResult_t
ncclBroadcast (const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, int root,
               ncclComm_t comm, cudaStream_t stream)
{
  ncclComm *c = comm_of (comm, "ncclBroadcast");
  const size_t bytes = check_op (c, "ncclBroadcast", recvbuff, count, datatype, root, stream,
                                 "ncclBroadcast recvbuff");
  if (c->rank != root)
    return run (c, false, [=] () { return take (c, "ncclBroadcast", MSG_BCAST, root, recvbuff, bytes, stream); });
  check_op (c, "ncclBroadcast", sendbuff, count, datatype, root, stream, "ncclBroadcast sendbuff");
  std::vector<int> dsts;
  for (int r = 0; r < c->cl->n; r++)
    if (r != root)
      dsts.push_back (r);
  return run (c, true, [=] () { return post (c, MSG_BCAST, root, sendbuff, recvbuff, bytes, dsts, stream); });
}

extern "C" ncclResult_t
ncclGroupStart (void)
{
  group_depth++;
  return ncclSuccess;
}

extern "C" ncclResult_t
ncclGroupEnd (void)
{
  if (group_depth <= 0)
    return ncclInvalidUsage;
  if (--group_depth > 0)
    return ncclSuccess;
  std::vector<Deferred> posts, takes;
  posts.swap (group_posts);
  takes.swap (group_takes);
  ncclResult_t r = ncclSuccess;
  for (auto *list : { &posts, &takes })
    for (Deferred &d : *list) {
      ncclResult_t e = d.fn ();
      if (r == ncclSuccess)
        r = e;
      unref (d.c->cl);
    }
  return r;
}
