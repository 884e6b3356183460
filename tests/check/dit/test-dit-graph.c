/* test-dit-graph.c — DiT steps replayed as CUDA graphs (lib/dit/dit-session.c,
 * docs/cuda.md "CUDA graphs"), on a CUDA device: a GPU or the emulated one
 * of the -Dcuda-emu=enabled build (suite cuda-session).  Without a CUDA
 * device the test exits 77 (skipped).
 *
 *  - graphs on vs off (each on its own backend, so its own pool): 8 blocks
 *    at 2 blocks per clip (2 ring slots, the ring filling in clip 0): each
 *    step's one graph is captured in block 1 (after block 0 ran eagerly)
 *    and launched in every block from 1 on, whatever the ring slot and the
 *    active length (both read on the device):
 *    the clean latents bit for bit those of the eager run, the capture /
 *    launch counts exact (graphs cannot silently stay off), and the peak
 *    device memory that of the eager run; with f32 and with bf16 KV caches
 *    and activations (the GPU session's setting);
 *  - the pool: N captures of the same step-like sequence of temporaries
 *    share one set of blocks (peak memory does not grow N-fold), those
 *    blocks never serve an eager allocation while a graph lives, and come
 *    back to eager use when the last graph goes;
 *  - TPP on 2 GPUs (NCCL), each stage with graphs: bit for bit cuda:0 alone
 *    without graphs.
 */
#include <string.h>
#include <liveavatar/la-cuda.h>
#include "../tpp/tpp-fixture.h"
#include "la-ops.h"
#include "la-tpp-pipeline.h"

static gboolean
have_cuda (int n)
{
  if (la_cuda_device_count () >= n)
    return TRUE;
  g_test_skip ("not enough CUDA devices (a GPU or the emulated device)");
  return FALSE;
}

/* The sequential loop over f's blocks on model i (graphs on or off); the
 * backend's stats count the blocks only. */
static void
run_seq (Fx *f, int i, gboolean graphs, LaDType dt, LaTensor **out)
{
  GError *e = NULL;
  LaDitSessionParams p = f->p;
  p.no_graphs = !graphs;
  p.cache_dtype = p.act_dtype = dt;
  LaDitSession *s = la_dit_session_new (f->m[i], &p, f->ref, f->mot, f->ctx, &e);
  g_assert_no_error (e);
  la_backend_reset_stats (f->be[i]);
  for (int b = 0; b < f->n_blocks; b++) {
    out[b] = la_dit_session_generate_block (s, f->noise[b], f->audio[b], &e);
    g_assert_no_error (e);
  }
  la_dit_session_free (s);
}

/* dt: the KV cache and activation dtype of both runs (bf16: the GPU session's). */
static void
on_off (LaDType dt)
{
  if (!have_cuda (1))
    return;
  Fx f;
  use_cuda = TRUE;
  /* two backends (pools) on GPU 0: the eager run on one, the graphs on the other */
  fx_init (&f, 32, 2, 2, 8, 8, 2, 8, 41);   /* 2 blocks per clip: 2 ring slots */
  use_cuda = FALSE;
  LaTensor *eager[16] = { 0 }, *graph[16] = { 0 };
  LaBackendStats st;
  run_seq (&f, 0, FALSE, dt, eager);
  la_backend_get_stats (f.be[0], &st);
  g_assert_cmpuint (st.graph_captures + st.graph_launches, ==, 0);

  run_seq (&f, 1, TRUE, dt, graph);
  LaCudaMemStats me, mg;
  la_cuda_mem_stats (f.be[0], &me);
  la_cuda_mem_stats (f.be[1], &mg);
  g_print ("# peak device memory: eager %" G_GUINT64_FORMAT " B, with 4 step graphs %" G_GUINT64_FORMAT " B\n",
           me.peak, mg.peak);
  /* The captures take the eager cache's temporaries and share them: no more
   * than the eager run (+5 % slack; one set of temporaries per graph, as the
   * pool had it before, is +15 % here). */
  g_assert_cmpuint (mg.peak, <=, me.peak + me.peak / 20);
  la_backend_get_stats (f.be[1], &st);
  /* One graph per step, keyed by nothing else: captured in block 1 (block 0
   * eager), launched in blocks 1..7, block 1 of clip 0 (ring not yet full)
   * included */
  g_assert_cmpuint (st.graph_captures, ==, 4);
  g_assert_cmpuint (st.graph_launches, ==, 4 * 7);
  /* still one upload (noise + audio) and one download per block, and the
   * clip-1 sink refresh's ref latent */
  g_assert_cmpuint (st.uploads, ==, (guint64) f.n_blocks + 1);
  g_assert_cmpuint (st.downloads, ==, (guint64) f.n_blocks);
  for (int b = 0; b < f.n_blocks; b++) {
    if (memcmp (eager[b]->data, graph[b]->data, la_tensor_nbytes (eager[b])))
      g_error ("block %d: the graph run differs from the eager run", b);
    la_tensor_unref (eager[b]);
    la_tensor_unref (graph[b]);
  }
  g_print ("# %s: %d blocks bit-identical with graphs (%" G_GUINT64_FORMAT " captured, %" G_GUINT64_FORMAT
           " launches)\n", la_dtype_name (dt), f.n_blocks, st.graph_captures, st.graph_launches);
  fx_clear (&f);
}

static void
test_on_off (void)
{
  on_off (LA_DTYPE_F32);
}

static void
test_on_off_bf16 (void)
{
  on_off (LA_DTYPE_BF16);
}

/* One "step": a temporary as large as a layer's activations, written and
 * folded into out, then dropped (what the injector and the GEMM scratch do). */
static void
fake_step (LaBackend *be, LaTensor *out, float k, void *tmp_addr[2])
{
  g_autoptr (LaTensor) tmp = la_alloc (be, LA_DTYPE_F32, 2, out->shape);
  g_autoptr (LaTensor) tmp2 = la_alloc (be, LA_DTYPE_F32, 2, out->shape);
  la_fill (be, tmp, k);
  la_binary (be, LA_BINARY_ADD, tmp2, tmp, out);
  la_axpy (be, out, out, 1.0f, tmp2);
  tmp_addr[0] = tmp->data;
  tmp_addr[1] = tmp2->data;
}

static void
test_pool (void)
{
  if (!have_cuda (1))
    return;
  GError *e = NULL;
  LaBackend *be = la_backend_cuda_new (0, &e);
  g_assert_no_error (e);
  enum { N = 6 };
  const int64_t shape[2] = { 256, 1024 };            /* 1 MiB per temporary */
  const guint64 tmp_bytes = 256 * 1024 * sizeof (float);
  LaTensor *out = la_alloc (be, LA_DTYPE_F32, 2, shape);
  la_fill (be, out, 1.0f);
  void *addr[2];
  fake_step (be, out, 0.0f, addr);                  /* eager warm-up: out = 2 */
  g_assert_true (la_backend_sync (be, &e));
  LaCudaMemStats m0, m1;
  la_cuda_mem_stats (be, &m0);

  LaGraph *g[N];
  void *graph_tmp[N][2];
  for (int i = 0; i < N; i++) {
    g_assert_true (la_graph_begin (be, &e));
    fake_step (be, out, (float) (i + 1), graph_tmp[i]);
    g[i] = la_graph_end (be, &e);
    g_assert_no_error (e);
  }
  la_cuda_mem_stats (be, &m1);
  /* The captures share their temporaries: at most one step's worth more
   * (the first capture may not take the eager cache's blocks), not N. */
  g_print ("# pool: peak %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT " B over %d captures of %" G_GUINT64_FORMAT
           " B of temporaries each\n", m0.peak, m1.peak, N, 2 * tmp_bytes);
  g_assert_cmpuint (m1.peak, <=, m0.peak + 2 * tmp_bytes);
  for (int i = 1; i < N; i++)
    for (int j = 0; j < 2; j++)
      g_assert_true (graph_tmp[i][j] == graph_tmp[0][0] || graph_tmp[i][j] == graph_tmp[0][1]);

  /* While graphs live an eager allocation never gets a graph's block. */
  {
    g_autoptr (LaTensor) t1 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    g_autoptr (LaTensor) t2 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    g_autoptr (LaTensor) t3 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    for (int j = 0; j < 2; j++)
      g_assert_true (graph_tmp[0][j] != t1->data && graph_tmp[0][j] != t2->data && graph_tmp[0][j] != t3->data);
    la_fill (be, t1, 100.0f);
    la_fill (be, t2, 100.0f);
    la_fill (be, t3, 100.0f);
  }

  /* Replays compute what eager ops would: out = 2, then for each graph
   * out = out + (k + out) = 2·out + k. */
  float want = 2.0f;
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < N; i++) {
      g_assert_true (la_graph_launch (be, g[i], &e));
      want = 2 * want + (float) (i + 1);
    }
  g_autoptr (LaTensor) h = la_tensor_new (LA_DTYPE_F32, 2, shape);
  la_copy (be, h, out);
  g_assert_true (la_backend_sync (be, &e));
  g_assert_cmpfloat (la_tensor_f32 (h)[0], ==, want);
  g_assert_cmpfloat (la_tensor_f32 (h)[la_tensor_numel (h) - 1], ==, want);
  LaBackendStats st;
  la_backend_get_stats (be, &st);
  g_assert_cmpuint (st.graph_captures, ==, N);
  g_assert_cmpuint (st.graph_launches, ==, 2 * N);

  /* The last graph gone, its blocks serve eager allocations again. */
  for (int i = 0; i < N; i++)
    la_graph_free (be, g[i]);
  la_cuda_mem_stats (be, &m0);
  {
    g_autoptr (LaTensor) t1 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    g_autoptr (LaTensor) t2 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    g_autoptr (LaTensor) t3 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    g_autoptr (LaTensor) t4 = la_alloc (be, LA_DTYPE_F32, 2, shape);
    la_cuda_mem_stats (be, &m1);
    g_assert_cmpuint (m1.n_malloc, ==, m0.n_malloc);
  }
  g_assert_true (la_backend_sync (be, &e));
  la_tensor_unref (out);
  la_backend_unref (be);
}

static void
test_tpp_two_gpus (void)
{
  if (!have_cuda (2))
    return;
  Fx f;
  use_cuda = cuda_per_gpu = TRUE;
  fx_init (&f, 32, 2, 2, 8, 8, 2, 5, 43);    /* blocks 1, 2 capture, 3, 4 replay */
  use_cuda = cuda_per_gpu = FALSE;
  f.p.refresh_sink_at_clip1 = FALSE;
  LaTensor *seq[16] = { 0 };
  run_seq (&f, 0, FALSE, LA_DTYPE_F32, seq);

  Sink sink = { .fail_at = -1 };
  LaTppConfig cfg;
  la_tpp_config_init (&cfg);
  cfg.n_devices = 2;
  cfg.transport = LA_TPP_TRANSPORT_NCCL;
  for (int i = 0; i < 2; i++) {
    cfg.devices[i].model = f.m[i];
    cfg.devices[i].cuda_device = i;
    la_backend_reset_stats (f.be[i]);
  }
  cfg.output = collect;
  cfg.output_user = &sink;
  GError *e = NULL;
  LaTpp *t = la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e);
  g_assert_no_error (e);
  for (int b = 0; b < f.n_blocks; b++) {
    LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b] };
    g_assert_true (la_tpp_push (t, &blk, &e));
  }
  g_assert_true (la_tpp_finish (t, &e));
  g_assert_no_error (e);
  for (int i = 0; i < 2; i++) {
    LaBackendStats st;
    la_backend_get_stats (f.be[i], &st);
    /* 2 steps per stage captured once (block 1), launched in blocks 1..4 */
    g_assert_cmpuint (st.graph_captures, ==, 2);
    g_assert_cmpuint (st.graph_launches, ==, 8);
  }
  for (int b = 0; b < f.n_blocks; b++) {
    g_assert_nonnull (sink.out[b]);
    if (memcmp (sink.out[b]->data, seq[b]->data, la_tensor_nbytes (seq[b])))
      g_error ("block %d: TPP on 2 GPUs with graphs differs from cuda:0 alone", b);
    la_tensor_unref (seq[b]);
  }
  la_tpp_free (t);
  sink_clear (&sink);
  fx_clear (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (la_cuda_device_count () < 1) {
    g_print ("# no CUDA device (a GPU or the emulated device): skipped\n");
    return 77;
  }
  g_test_add_func ("/dit-graph/on-off", test_on_off);
  g_test_add_func ("/dit-graph/on-off-bf16", test_on_off_bf16);
  g_test_add_func ("/dit-graph/pool", test_pool);
  g_test_add_func ("/dit-graph/tpp-two-gpus", test_tpp_two_gpus);
  return g_test_run ();
}
