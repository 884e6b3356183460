/* test-tpp.c — TPP (lib/tpp) on CPU threads, tiny random DiT models.
 *
 *  - the device -> stage mapping for 1..6 devices;
 *  - exactness: 1..5 stages give, bit for bit, the sequential 4-cache loop
 *    (la_dit_session_generate_block) over 3 clips with the clip-1 adaptive
 *    sink refresh, with d drawn by the generator, for two model/latent sizes,
 *    shared and per-device models; and with explicit d + an explicit refresh
 *    (new motion latents, ref = the stream's first frame: the online variant);
 *  - faults: a failing DiT stage and a failing VAE stage stop the pipeline
 *    with the stage and device named; a bad input fails la_tpp_new naming the stage;
 *  - shutdown mid-stream, flush (drain with discard) and EOS never deadlock
 *    (a watchdog alarm kills the test if anything hangs).
 */
#include <unistd.h>
#include <liveavatar/la-cuda.h>
#include "tpp-fixture.h"
#include "la-tpp-pipeline.h"

static LaTpp *
make_tpp (Fx *f, int n_dev, Sink *sink, LaDitSessionParams *p, GError **e)
{
  LaTppConfig cfg;
  la_tpp_config_init (&cfg);
  cfg.n_devices = n_dev;
  static char names[LA_TPP_MAX_STAGES][16];
  for (int i = 0; i < n_dev; i++) {
    cfg.devices[i].model = f->m[i % f->n_models];
    g_snprintf (names[i], sizeof names[i], "cpu:%d", i);
    cfg.devices[i].name = names[i];
  }
  cfg.output = collect;
  cfg.output_user = sink;
  cfg.record_timeline = TRUE;
  return la_tpp_new (&cfg, p ? p : &f->p, f->ref, f->mot, f->ctx, e);
}

static void
check_exact (Fx *f, gboolean explicit)
{
  LaTensor *seq[16] = { 0 };
  sequential (f, explicit, seq);
  for (int n = 1; n <= 5; n++) {
    Sink sink = { .fail_at = -1 };
    GError *e = NULL;
    LaDitSessionParams p = f->p;
    if (explicit)
      p.refresh_sink_at_clip1 = FALSE;
    LaTpp *t = make_tpp (f, n, &sink, &p, &e);
    g_assert_no_error (e);
    for (int b = 0; b < f->n_blocks; b++) {
      LaTppBlock blk = { .noise = f->noise[b], .audio = f->audio[b], .d = explicit ? explicit_d (b) : NULL };
      if (explicit && b == 2) {
        blk.refresh = TRUE;
        blk.refresh_motion = f->mot2;
      }
      g_assert_true (la_tpp_push (t, &blk, &e));
      g_assert_no_error (e);
    }
    g_assert_true (la_tpp_finish (t, &e));
    g_assert_no_error (e);
    g_assert_cmpint (la_tpp_blocks_out (t), ==, f->n_blocks);
    int ne = 0;
    g_autofree LaTppEvent *ev = la_tpp_timeline (t, &ne);
    g_assert_cmpint (ne, >, f->n_blocks);
    for (int b = 0; b < f->n_blocks; b++) {
      g_assert_nonnull (sink.out[b]);
      g_assert_cmpint (la_tensor_nbytes (sink.out[b]), ==, la_tensor_nbytes (seq[b]));
      if (memcmp (sink.out[b]->data, seq[b]->data, la_tensor_nbytes (seq[b])))
        g_error ("%d stages: block %d differs from the sequential loop", n, b);
    }
    g_print ("# %d stages (%s): %d blocks bit-identical to the sequential loop\n", n,
             explicit ? "explicit d + online refresh" : "generator d + clip-1 refresh", f->n_blocks);
    la_tpp_free (t);
    sink_clear (&sink);
  }
  for (int b = 0; b < f->n_blocks; b++)
    la_tensor_unref (seq[b]);
}

static void
test_plan (void)
{
  LaTppPlan p;
  GError *e = NULL;
  g_assert_false (la_tpp_plan (0, &p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  const char *want[] = {
    "stage 0: device 0, steps 0-3 + VAE",
    "stage 0: device 0, steps 0-1; stage 1: device 1, steps 2-3; stage 2: device 1, VAE",
    "stage 0: device 0, step 0; stage 1: device 1, step 1; stage 2: device 2, steps 2-3; stage 3: device 2, VAE",
    "stage 0: device 0, step 0; stage 1: device 1, step 1; stage 2: device 2, step 2; stage 3: device 3, step 3; "
    "stage 4: device 3, VAE",
    "stage 0: device 0, step 0; stage 1: device 1, step 1; stage 2: device 2, step 2; stage 3: device 3, step 3; "
    "stage 4: device 4, VAE",
    "stage 0: device 0, step 0; stage 1: device 1, step 1; stage 2: device 2, step 2; stage 3: device 3, step 3; "
    "stage 4: device 4, VAE",
  };
  for (int n = 1; n <= 6; n++) {
    g_assert_true (la_tpp_plan (n, &p, &e));
    g_autofree char *d = la_tpp_plan_describe (&p);
    g_assert_cmpstr (d, ==, want[n - 1]);
    int steps = 0;
    for (int k = 0; k < p.n_stages; k++)
      steps += p.stage[k].n_steps;
    g_assert_cmpint (steps, ==, 4);
  }
}

static void
test_exact_shared (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 16, 8, 1, 6, 5);   /* 3 clips of 2 blocks, one model shared by all stages */
  check_exact (&f, FALSE);
  check_exact (&f, TRUE);
  fx_clear (&f);
}

static void
test_exact_per_device (void)
{
  Fx f;
  fx_init (&f, 48, 3, 3, 8, 16, 5, 5, 9);   /* other sizes; one backend + model per device */
  check_exact (&f, FALSE);
  f.p.infer_frames = 36;                     /* 3 blocks per clip: the refresh moves to block 3 */
  check_exact (&f, FALSE);
  check_exact (&f, TRUE);
  fx_clear (&f);
}

/* Several stages on one GPU, each its own CUDA backend (stream) and weights:
 * the same bitwise check.  Skipped without a GPU (not run here). */
static void
test_exact_cuda (void)
{
  GError *e = NULL;
  LaBackend *probe = la_backend_cuda_new (0, &e);
  if (!probe) {
    g_test_skip (e ? e->message : "no CUDA device");
    g_clear_error (&e);
    return;
  }
  la_backend_unref (probe);
  use_cuda = TRUE;
  Fx f;
  /* Small (head dim 16, 2 layers, 8x8 latents): it runs in CI on the
   * emulated device too, where every kernel is interpreted. */
  fx_init (&f, 32, 2, 2, 8, 8, 5, 5, 9);
  check_exact (&f, FALSE);
  check_exact (&f, TRUE);
  fx_clear (&f);
  use_cuda = FALSE;
}

/* The NCCL transport over GPUs 0..n-1, n = 1..5 (CPU models: only the latent
 * moves through NCCL), bit-identical to the sequential loop.  Where fewer
 * than n CUDA devices exist (real or emulated: -Dcuda-emu=enabled gives 5)
 * la_tpp_new must fail cleanly, naming NCCL; where they exist it must work. */
static void
check_nccl (gboolean cuda_models)
{
  Fx f;
  const int n_cuda = la_cuda_device_count ();
  /* CUDA models: the DiT of stage i on GPU i, as devices=cuda:0,...,cuda:4 */
  use_cuda = cuda_per_gpu = cuda_models;
  fx_init (&f, 32, 2, 2, 8, 8, cuda_models ? MIN (n_cuda, 5) : 1, 5, 31);
  use_cuda = cuda_per_gpu = FALSE;
  LaTensor *seq[16] = { 0 };
  sequential (&f, FALSE, seq);
  for (int n = 1; n <= (cuda_models ? f.n_models : 5); n++) {
    Sink sink = { .fail_at = -1 };
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = n;
    cfg.transport = LA_TPP_TRANSPORT_NCCL;
    for (int i = 0; i < n; i++) {
      cfg.devices[i].model = f.m[cuda_models ? i : 0];
      cfg.devices[i].cuda_device = i;
    }
    cfg.output = collect;
    cfg.output_user = &sink;
    GError *e = NULL;
    LaTpp *t = la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e);
    if (!t) {
      g_assert_nonnull (e);
      if (n <= n_cuda)
        g_error ("NCCL transport, %d of %d CUDA devices: %s", n, n_cuda, e->message);
      g_assert_nonnull (strstr (e->message, "NCCL"));
      g_print ("# NCCL transport, %d devices: unavailable here: %s\n", n, e->message);
      g_clear_error (&e);
      continue;
    }
    for (int b = 0; b < f.n_blocks; b++) {
      LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b] };
      g_assert_true (la_tpp_push (t, &blk, &e));
    }
    g_assert_true (la_tpp_finish (t, &e));
    g_assert_no_error (e);
    for (int b = 0; b < f.n_blocks; b++)
      g_assert_true (sink.out[b] && !memcmp (sink.out[b]->data, seq[b]->data, la_tensor_nbytes (seq[b])));
    g_print ("# NCCL transport, %d devices (%s models): bit-identical\n", n, cuda_models ? "CUDA" : "CPU");
    la_tpp_free (t);
    sink_clear (&sink);
  }
  for (int b = 0; b < f.n_blocks; b++)
    la_tensor_unref (seq[b]);
  fx_clear (&f);
}

static void
test_nccl (void)
{
  check_nccl (FALSE);
}

/* TPP on CUDA end to end: each stage's DiT on its own GPU, the latent over
 * NCCL, 1..5 GPUs, bit for bit the sequential loop on GPU 0. */
static void
test_nccl_cuda (void)
{
  if (la_cuda_device_count () < 1) {
    g_test_skip ("no CUDA device");
    return;
  }
  check_nccl (TRUE);
}

static void
test_faults (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 8, 1, 6, 13);
  for (int which = 0; which < 3; which++) {
    /* 0: DiT stage 1 of 4 devices; 1: the VAE stage (output callback); 2: stage 0 of 1 device */
    int n_dev = which == 2 ? 1 : 4;
    Sink sink = { .fail_at = which == 1 ? 2 : -1 };
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = n_dev;
    const char *names[] = { "cpu:0", "cpu:1", "cpu:2", "cpu:3" };
    for (int i = 0; i < n_dev; i++) {
      cfg.devices[i].model = f.m[0];
      cfg.devices[i].name = names[i];
    }
    cfg.output = collect;
    cfg.output_user = &sink;
    if (which != 1) {
      cfg.fault_stage = which == 0 ? 1 : 0;
      cfg.fault_block = 2;
    }
    GError *e = NULL;
    LaTpp *t = la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e);
    g_assert_no_error (e);
    gboolean ok = TRUE;
    for (int b = 0; ok && b < f.n_blocks; b++) {
      LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b] };
      ok = la_tpp_push (t, &blk, &e);
    }
    if (ok)
      ok = la_tpp_finish (t, &e);
    g_assert_false (ok);
    g_assert_nonnull (e);
    const char *want = which == 0 ? "stage 1 (cpu:1, step 1)" : which == 1 ? "stage 4 (cpu:3, VAE)"
                                                                              : "stage 0 (cpu:0, steps 0-3)";
    if (!strstr (e->message, want))
      g_error ("fault %d: '%s' does not name '%s'", which, e->message, want);
    g_print ("# fault %d: %s\n", which, e->message);
    g_clear_error (&e);
    /* later calls keep failing with the same error, and nothing hangs */
    LaTppBlock blk = { .noise = f.noise[0], .audio = f.audio[0] };
    g_assert_false (la_tpp_push (t, &blk, &e));
    g_assert_nonnull (strstr (e->message, want));
    g_clear_error (&e);
    g_assert_false (la_tpp_drain (t, FALSE, &e));
    g_clear_error (&e);
    la_tpp_free (t);
    sink_clear (&sink);
  }
  /* a bad input fails la_tpp_new, naming a stage */
  {
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = 2;
    cfg.devices[0].model = cfg.devices[1].model = f.m[0];
    g_autoptr (LaTensor) bad = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { 16, 1, 8, 16 });
    GError *e = NULL;
    LaTpp *t = la_tpp_new (&cfg, &f.p, bad, f.mot, f.ctx, &e);
    g_assert_null (t);
    g_assert_nonnull (e);
    g_assert_nonnull (strstr (e->message, "stage "));
    g_assert_nonnull (strstr (e->message, "ref_latent"));
    g_clear_error (&e);
    cfg.devices[1].model = NULL;
    g_assert_null (la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e));
    g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
    g_clear_error (&e);
  }
  fx_clear (&f);
}

static void
test_shutdown_flush_eos (void)
{
  Fx f;
  fx_init (&f, 32, 2, 2, 8, 8, 1, 6, 21);
  LaTensor *seq[16] = { 0 };
  sequential (&f, FALSE, seq);
  for (int n = 1; n <= 5; n++) {
    GError *e = NULL;
    /* shutdown mid-stream: blocks in flight, no drain */
    {
      Sink sink = { .fail_at = -1 };
      LaTpp *t = make_tpp (&f, n, &sink, NULL, &e);
      g_assert_no_error (e);
      for (int b = 0; b < 4; b++) {
        LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b] };
        g_assert_true (la_tpp_push (t, &blk, &e));
      }
      la_tpp_free (t);
      sink_clear (&sink);
    }
    /* a mis-shaped block is refused at push; the pipeline goes on */
    {
      Sink sink = { .fail_at = -1 };
      LaTpp *t = make_tpp (&f, n, &sink, NULL, &e);
      g_autoptr (LaTensor) bad = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { 16, 2, 8, 8 });
      LaTppBlock blk = { .noise = bad, .audio = f.audio[0] };
      g_assert_false (la_tpp_push (t, &blk, &e));
      g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
      g_assert_nonnull (strstr (e->message, "noise"));
      g_clear_error (&e);
      blk.noise = f.noise[0];
      blk.audio = bad;
      g_assert_false (la_tpp_push (t, &blk, &e));
      g_assert_nonnull (strstr (e->message, "audio"));
      g_clear_error (&e);
      blk.audio = f.audio[0];
      g_assert_true (la_tpp_push (t, &blk, &e));
      g_assert_true (la_tpp_finish (t, &e));
      g_assert_true (sink.out[0] && !memcmp (sink.out[0]->data, seq[0]->data, la_tensor_nbytes (seq[0])));
      la_tpp_free (t);
      sink_clear (&sink);
    }
    /* shutdown right after creation, and EOS with nothing pushed */
    {
      Sink sink = { .fail_at = -1 };
      LaTpp *t = make_tpp (&f, n, &sink, NULL, &e);
      la_tpp_free (t);
      t = make_tpp (&f, n, &sink, NULL, &e);
      g_assert_true (la_tpp_finish (t, &e));
      g_assert_true (la_tpp_finish (t, &e));   /* repeatable */
      LaTppBlock blk = { .noise = f.noise[0], .audio = f.audio[0] };
      g_assert_false (la_tpp_push (t, &blk, &e));   /* no push after EOS */
      g_clear_error (&e);
      la_tpp_free (t);
    }
    /* flush (drain, discarding in-flight output) mid-stream, then EOS: later blocks stay exact */
    {
      Sink sink = { .fail_at = -1 };
      LaTpp *t = make_tpp (&f, n, &sink, NULL, &e);
      for (int b = 0; b < 6; b++) {
        LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b] };
        g_assert_true (la_tpp_push (t, &blk, &e));
        if (b == 2)
          g_assert_true (la_tpp_drain (t, TRUE, &e));
      }
      g_assert_true (la_tpp_finish (t, &e));
      g_assert_no_error (e);
      g_assert_cmpint (la_tpp_blocks_out (t), ==, 6);
      for (int b = 3; b < 6; b++)
        g_assert_true (sink.out[b] && !memcmp (sink.out[b]->data, seq[b]->data, la_tensor_nbytes (seq[b])));
      la_tpp_free (t);
      sink_clear (&sink);
    }
  }
  for (int b = 0; b < f.n_blocks; b++)
    la_tensor_unref (seq[b]);
  fx_clear (&f);
}

/* Random stops: 40 runs with a random stage count, number of pushes, fault
 * (none, a DiT stage, the VAE) and ending (free mid-stream, flush + free,
 * EOS).  Every run must end (watchdog) and report faults. */
static void
test_stress (void)
{
  Fx f;
  fx_init (&f, 16, 2, 2, 8, 8, 1, 8, 41);
  GRand *r = g_rand_new_with_seed (99);
  for (int it = 0; it < 40; it++) {
    int n = g_rand_int_range (r, 1, 6), pushes = g_rand_int_range (r, 0, 9), end = g_rand_int_range (r, 0, 3);
    int fault = g_rand_int_range (r, 0, 3);
    Sink sink = { .fail_at = -1 };
    LaTppConfig cfg;
    la_tpp_config_init (&cfg);
    cfg.n_devices = n;
    for (int i = 0; i < n; i++)
      cfg.devices[i].model = f.m[0];
    cfg.output = collect;
    cfg.output_user = &sink;
    cfg.queue_depth = g_rand_int_range (r, 1, 4);
    LaTppPlan plan;
    la_tpp_plan (n, &plan, NULL);
    if (fault == 1) {
      cfg.fault_stage = g_rand_int_range (r, 0, plan.n_stages);
      cfg.fault_block = g_rand_int_range (r, 0, 8);
    } else if (fault == 2)
      sink.fail_at = g_rand_int_range (r, 0, 8);
    GError *e = NULL;
    LaTpp *t = la_tpp_new (&cfg, &f.p, f.ref, f.mot, f.ctx, &e);
    g_assert_no_error (e);
    gboolean ok = TRUE;
    for (int b = 0; ok && b < pushes; b++) {
      LaTppBlock blk = { .noise = f.noise[b], .audio = f.audio[b] };
      ok = la_tpp_push (t, &blk, &e);
    }
    if (ok && end == 1)
      ok = la_tpp_drain (t, TRUE, &e);
    if (ok && end == 2)
      ok = la_tpp_finish (t, &e);
    /* (a flush discards the outputs in flight: the output function is then not called, cannot fail) */
    gboolean faulted = (fault == 1 && cfg.fault_block < pushes) || (fault == 2 && sink.fail_at < pushes && end != 1);
    if (ok && end != 0)
      g_assert_false (faulted);     /* a fault inside the pushed blocks is always reported */
    if (!ok) {
      g_assert_nonnull (e);
      g_assert_nonnull (strstr (e->message, "TPP stage "));
    }
    g_clear_error (&e);
    la_tpp_free (t);
    sink_clear (&sink);
  }
  g_rand_free (r);
  fx_clear (&f);
}

int
main (int argc, char **argv)
{
  alarm (600);   /* watchdog: a deadlock fails the test instead of hanging it */
  /* the emulated CUDA device (-Dcuda-emu=enabled) has LA_EMU_DEVICES devices:
   * 5, so /tpp/nccl runs over 1..5 of them; a real GPU ignores this */
  g_setenv ("LA_EMU_DEVICES", "5", FALSE);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tpp/plan", test_plan);
  g_test_add_func ("/tpp/exact-shared-model", test_exact_shared);
  g_test_add_func ("/tpp/exact-per-device", test_exact_per_device);
  g_test_add_func ("/tpp/exact-cuda-one-gpu", test_exact_cuda);
  g_test_add_func ("/tpp/nccl", test_nccl);
  g_test_add_func ("/tpp/nccl-cuda-models", test_nccl_cuda);
  g_test_add_func ("/tpp/faults", test_faults);
  g_test_add_func ("/tpp/shutdown-flush-eos", test_shutdown_flush_eos);
  g_test_add_func ("/tpp/stress-random-stops", test_stress);
  return g_test_run ();
}
