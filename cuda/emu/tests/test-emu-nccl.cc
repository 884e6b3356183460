/* test-emu-nccl.cc — the emulated NCCL (cuda/emu/lib-nccl.cc):
 *  - 1..5 ranks, one host thread per rank on its own device: a ring of
 *    ncclSend/ncclRecv (each rank sends before it receives) and an in-place
 *    ncclBroadcast, data checked element by element;
 *  - one thread driving every rank in a group with each receive posted
 *    before the sends (deadlocks unless the group defers);
 *  - a destroyed peer: what it sent still arrives, then ncclRemoteError;
 *  - refusals of ncclCommInitAll; aborts in a child process for calls in a
 *    different order on two ranks, a byte-count mismatch, a stream of another
 *    device, a destroyed communicator, a capturing stream, and a receive
 *    nobody answers.
 */
#include <nccl.h>
#include <thread>
#include "emu-test.h"

static const size_t COUNT = 1000;

static float *
dev_filled (float base)
{
  std::vector<float> h (COUNT);
  for (size_t i = 0; i < COUNT; i++)
    h[i] = base + (float) i;
  return to_dev (h);
}

static void
expect_filled (const float *d, float base, const char *what, int rank)
{
  std::vector<float> h = from_dev (d, COUNT);
  for (size_t i = 0; i < COUNT; i++)
    if (h[i] != base + (float) i)
      g_error ("%s: rank %d element %zu = %g, want %g", what, rank, i, h[i], base + (float) i);
}

static void
test_threads (void)
{
  for (int n = 1; n <= 5; n++) {
    ncclComm_t comms[5];
    int devs[5];
    for (int r = 0; r < n; r++)
      devs[r] = n - 1 - r;      /* rank ≠ device, to catch a mix-up */
    g_assert_cmpint (ncclCommInitAll (comms, n, devs), ==, ncclSuccess);
    std::vector<std::thread> th;
    for (int r = 0; r < n; r++)
      th.emplace_back ([&, r] () {
        cudaSetDevice (devs[r]);
        cudaStream_t s;
        cudaStreamCreateWithFlags (&s, cudaStreamNonBlocking);
        float *out = dev_filled (1000.0f * r), *in = dev_filled (-1.0f);
        g_assert_cmpint (ncclSend (out, COUNT, ncclFloat, (r + 1) % n, comms[r], s), ==, ncclSuccess);
        g_assert_cmpint (ncclRecv (in, COUNT, ncclFloat, (r + n - 1) % n, comms[r], s), ==, ncclSuccess);
        cudaStreamSynchronize (s);
        expect_filled (in, 1000.0f * ((r + n - 1) % n), "ring", r);
        float *b = dev_filled (r == 2 % n ? 77.0f : -5.0f);
        g_assert_cmpint (ncclBroadcast (b, b, COUNT, ncclFloat, 2 % n, comms[r], s), ==, ncclSuccess);
        cudaStreamSynchronize (s);
        expect_filled (b, 77.0f, "broadcast", r);
        int dev, rank, cnt;
        ncclCommCuDevice (comms[r], &dev);
        ncclCommUserRank (comms[r], &rank);
        ncclCommCount (comms[r], &cnt);
        g_assert_cmpint (dev, ==, devs[r]);
        g_assert_cmpint (rank, ==, r);
        g_assert_cmpint (cnt, ==, n);
        ncclResult_t ae;
        g_assert_cmpint (ncclCommGetAsyncError (comms[r], &ae), ==, ncclSuccess);
        g_assert_cmpint (ae, ==, ncclSuccess);
        cudaFree (out);
        cudaFree (in);
        cudaFree (b);
        cudaStreamDestroy (s);
      });
    for (auto &t : th)
      t.join ();
    for (int r = 0; r < n; r++)
      g_assert_cmpint (ncclCommDestroy (comms[r]), ==, ncclSuccess);
  }
}

static void
test_group_one_thread (void)
{
  const int n = 4;
  ncclComm_t comms[n];
  g_assert_cmpint (ncclCommInitAll (comms, n, NULL), ==, ncclSuccess);
  cudaStream_t s[n];
  float *out[n], *in[n];
  for (int r = 0; r < n; r++) {
    cudaSetDevice (r);
    cudaStreamCreateWithFlags (&s[r], cudaStreamNonBlocking);
    out[r] = dev_filled (10.0f * r);
    in[r] = dev_filled (0.0f);
  }
  ncclGroupStart ();
  for (int r = 0; r < n; r++) {
    g_assert_cmpint (ncclRecv (in[r], COUNT, ncclFloat, (r + 1) % n, comms[r], s[r]), ==, ncclSuccess);
    g_assert_cmpint (ncclSend (out[r], COUNT, ncclFloat, (r + n - 1) % n, comms[r], s[r]), ==, ncclSuccess);
  }
  g_assert_cmpint (ncclGroupEnd (), ==, ncclSuccess);
  for (int r = 0; r < n; r++) {
    expect_filled (in[r], 10.0f * ((r + 1) % n), "group", r);
    cudaFree (out[r]);
    cudaFree (in[r]);
    cudaStreamDestroy (s[r]);
    ncclCommDestroy (comms[r]);
  }
  cudaSetDevice (0);
}

static void
test_remote_error (void)
{
  ncclComm_t comms[2];
  ncclCommInitAll (comms, 2, NULL);
  float *a = dev_filled (3.0f), *b = dev_filled (0.0f);
  cudaSetDevice (1);
  g_assert_cmpint (ncclSend (a, COUNT, ncclFloat, 0, comms[1], 0), ==, ncclSuccess);
  ncclCommDestroy (comms[1]);
  cudaSetDevice (0);
  g_assert_cmpint (ncclRecv (b, COUNT, ncclFloat, 1, comms[0], 0), ==, ncclSuccess);   /* sent before the end */
  expect_filled (b, 3.0f, "before destroy", 0);
  g_assert_cmpint (ncclRecv (b, COUNT, ncclFloat, 1, comms[0], 0), ==, ncclRemoteError);
  ncclResult_t ae;
  ncclCommGetAsyncError (comms[0], &ae);
  g_assert_cmpint (ae, ==, ncclRemoteError);
  g_assert_cmpint (ncclCommAbort (comms[0]), ==, ncclSuccess);
  cudaFree (a);
  cudaFree (b);
}

static void
test_refusals (void)
{
  ncclComm_t comms[3];
  const int dup[3] = { 0, 1, 0 }, bad[2] = { 0, 9 };
  g_assert_cmpint (ncclCommInitAll (comms, 3, dup), ==, ncclInvalidUsage);
  g_assert_cmpint (ncclCommInitAll (comms, 2, bad), ==, ncclInvalidArgument);
  g_assert_cmpint (ncclCommInitAll (comms, 0, NULL), ==, ncclInvalidArgument);
  g_assert_cmpint (ncclGroupEnd (), ==, ncclInvalidUsage);
  g_assert_cmpstr (ncclGetErrorString (ncclRemoteError), ==, "remote process exited or there was a network error");
}

/* Two ranks on this thread, in a group so nothing waits: rank 0 does `first`, rank 1 `second`. */
static void
mismatch (bool bcast_vs_recv)
{
  ncclComm_t comms[2];
  ncclCommInitAll (comms, 2, NULL);
  float *a = dev_filled (0.0f), *b = dev_filled (0.0f);
  cudaStream_t s1;
  cudaSetDevice (1);
  cudaStreamCreateWithFlags (&s1, cudaStreamNonBlocking);
  cudaSetDevice (0);
  ncclGroupStart ();
  if (bcast_vs_recv) {
    ncclBroadcast (a, a, COUNT, ncclFloat, 0, comms[0], 0);
    ncclRecv (b, COUNT, ncclFloat, 0, comms[1], s1);
  } else {
    ncclSend (a, COUNT, ncclFloat, 1, comms[0], 0);
    ncclRecv (b, COUNT / 2, ncclFloat, 0, comms[1], s1);
  }
  ncclGroupEnd ();
}

static void
death_order (void)
{
  if (g_test_subprocess ()) {
    mismatch (true);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: ncclRecv on rank 1 (cuda:1) matched an ncclBroadcast from rank 0*different order*");
}

static void
death_count (void)
{
  if (g_test_subprocess ()) {
    mismatch (false);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: ncclRecv on rank 1 (cuda:1) expects 2000 bytes*sent 4000*");
}

static void
death_stream_device (void)
{
  if (g_test_subprocess ()) {
    ncclComm_t comms[2];
    ncclCommInitAll (comms, 2, NULL);
    float *a = dev_filled (0.0f);
    cudaStream_t s;
    cudaSetDevice (0);
    cudaStreamCreateWithFlags (&s, cudaStreamNonBlocking);
    ncclSend (a, COUNT, ncclFloat, 0, comms[1], s);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: ncclSend: a stream of cuda:0 used with the communicator of cuda:1*");
}

static void
death_destroyed (void)
{
  if (g_test_subprocess ()) {
    ncclComm_t comms[1];
    ncclCommInitAll (comms, 1, NULL);
    ncclCommDestroy (comms[0]);
    ncclResult_t ae;
    ncclCommGetAsyncError (comms[0], &ae);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: ncclCommGetAsyncError: communicator*already destroyed or aborted*");
}

static void
death_capture (void)
{
  if (g_test_subprocess ()) {
    ncclComm_t comms[1];
    ncclCommInitAll (comms, 1, NULL);
    float *a = dev_filled (0.0f);
    cudaStream_t s;
    cudaStreamCreateWithFlags (&s, cudaStreamNonBlocking);
    cudaStreamBeginCapture (s, cudaStreamCaptureModeRelaxed);
    ncclSend (a, COUNT, ncclFloat, 0, comms[0], s);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: ncclSend: NCCL in a stream capture is not emulated*");
}

static void
death_unanswered (void)
{
  if (g_test_subprocess ()) {
    g_setenv ("LA_EMU_NCCL_TIMEOUT_S", "1", TRUE);
    ncclComm_t comms[2];
    ncclCommInitAll (comms, 2, NULL);
    float *a = dev_filled (0.0f);
    ncclRecv (a, COUNT, ncclFloat, 1, comms[0], 0);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: ncclRecv: rank 0 (cuda:0) waited 1 s for rank 1 (cuda:1)*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/emu-nccl/threads", test_threads);
  g_test_add_func ("/emu-nccl/group-one-thread", test_group_one_thread);
  g_test_add_func ("/emu-nccl/remote-error", test_remote_error);
  g_test_add_func ("/emu-nccl/refusals", test_refusals);
  g_test_add_func ("/emu-nccl/death/order", death_order);
  g_test_add_func ("/emu-nccl/death/count", death_count);
  g_test_add_func ("/emu-nccl/death/stream-device", death_stream_device);
  g_test_add_func ("/emu-nccl/death/destroyed", death_destroyed);
  g_test_add_func ("/emu-nccl/death/capture", death_capture);
  g_test_add_func ("/emu-nccl/death/unanswered", death_unanswered);
  return g_test_run ();
}
