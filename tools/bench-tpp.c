/* bench-tpp.c — TPP figures on the CPU: blocks/s per stage count, and the
 * per-stage timeline (start/end per block per stage) as a text table and an
 * SVG Gantt chart per stage count.  Random weights; figures, not assertions.
 *
 *   liveavatar-bench-tpp [--stages 1,2,3,4,5] [--blocks 8] [--dim 512] [--heads 8]
 *                        [--layers 8] [--width 256] [--height 128] [--threads 1]
 *                        [--vae-ms 0 | --vae-dim 0] [--remote K] [--svg PREFIX] [--quiet]
 *
 * The VAE stage either sleeps --vae-ms per block, or (--vae-dim D > 0) runs
 * a real streaming Wan2.1-layout decoder of base width D with random weights
 * (primed with 7 motion latents, first block drops 3 frames, as the session does).
 *
 * Every stage is a thread on the same CPU backend (one model shared: the CPU
 * backend may be called from several threads).  --threads is the OpenMP /
 * OpenBLAS thread count per op.  With P cores, S stages can at best run
 * min(S, P / threads) forwards at once: on a 2-core machine pipelining can
 * at most double the throughput and in practice gains less (see docs/tpp.md).
 *
 * --remote K: the first K DiT devices are stage workers (la_tpp_worker_*)
 * served by threads of this process over the loopback, so the same run
 * shows what the stage protocol costs per block against local stages.
 */
#include <stdlib.h>
#include <string.h>
#include <liveavatar/la-tpp.h>
#include <liveavatar/liveavatar.h>
#include "la-vae.h"
#include "la-tpp-pipeline.h"

static LaTensor *
randn (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (gint64 i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) (g_rand_double (r) * 2 - 1);
  return t;
}

static int vae_ms = 0;

static gboolean
vae_emulate (gint64 block, const LaTensor *clean, gpointer user, GError **error)
{
  LaVaeDecoder *dec = user;
  if (dec) {
    LaTensor *px = la_vae_decoder_decode_block (dec, clean, block == 0 ? 3 : 0, error);
    if (!px)
      return FALSE;
    la_tensor_unref (px);
  } else if (vae_ms > 0)
    g_usleep ((gulong) vae_ms * 1000);
  return TRUE;
}

int
main (int argc, char **argv)
{
  char *stages_s = NULL, *svg = NULL;
  int vae_dim = 0;
  int blocks = 8, dim = 512, heads = 8, layers = 8, width = 256, height = 128, threads = 1, n_remote = 0;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "stages", 's', 0, G_OPTION_ARG_STRING, &stages_s, "Stage (device) counts to run, comma separated (1,2,3,4,5)", "LIST" },
    { "blocks", 'b', 0, G_OPTION_ARG_INT, &blocks, "Blocks per run (8)", "N" },
    { "dim", 0, 0, G_OPTION_ARG_INT, &dim, "DiT width (512)", "N" },
    { "heads", 0, 0, G_OPTION_ARG_INT, &heads, "Heads (8)", "N" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "Layers (8)", "N" },
    { "width", 0, 0, G_OPTION_ARG_INT, &width, "Image width, multiple of 64 (256)", "PX" },
    { "height", 0, 0, G_OPTION_ARG_INT, &height, "Image height, multiple of 64 (128)", "PX" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads per op (1)", "N" },
    { "vae-ms", 0, 0, G_OPTION_ARG_INT, &vae_ms, "Emulated VAE decode time per block (0)", "MS" },
    { "vae-dim", 0, 0, G_OPTION_ARG_INT, &vae_dim, "Real VAE decoder of this base width (0: none)", "N" },
    { "remote", 0, 0, G_OPTION_ARG_INT, &n_remote, "The first K DiT devices are loopback stage workers (0)", "K" },
    { "svg", 0, 0, G_OPTION_ARG_FILENAME, &svg, "Write PREFIX-N.svg timelines", "PREFIX" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No timeline tables", NULL },
    { NULL },
  };
  GError *e = NULL;
  g_autoptr (GOptionContext) oc = g_option_context_new ("- TPP pipeline figures on the CPU");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!g_option_context_parse (oc, &argc, &argv, &e)) {
    g_printerr ("%s\n", e->message);
    return 2;
  }
  g_auto (GStrv) list = g_strsplit (stages_s ? stages_s : "1,2,3,4,5", ",", -1);

  LaDitConfig c;
  la_dit_config_init_14b (&c);
  c.dim = dim; c.ffn_dim = 2 * dim; c.num_heads = heads; c.num_layers = layers;
  c.text_dim = 64; c.audio_dim = 64; c.text_len = 32;
  c.n_inject = 0;
  for (int l = 0; l < layers; l += 4)
    c.audio_inject_layers[c.n_inject++] = l;
  LaBackend *be = la_backend_cpu_new (threads);
  LaCheckpoint *ck = la_dit_random_weights (&c, 1);
  LaDitModel *m = la_dit_model_new (be, &c, ck, &e);
  if (!m) {
    g_printerr ("%s\n", e->message);
    return 1;
  }
  GRand *r = g_rand_new_with_seed (1);
  int h = height / 8, w = width / 8;
  g_autoptr (LaTensor) ref = randn (r, 4, (int64_t[]) { 16, 1, h, w });
  g_autoptr (LaTensor) mot = randn (r, 4, (int64_t[]) { 16, 19, h, w });
  g_autoptr (LaTensor) ctx = randn (r, 2, (int64_t[]) { 20, c.text_dim });
  g_autoptr (LaTensor) noise = randn (r, 4, (int64_t[]) { 16, 3, h, w });
  g_autoptr (LaTensor) au = randn (r, 3, (int64_t[]) { 25, c.audio_dim, 12 });
  LaDitSessionParams p;
  la_dit_session_params_init (&p, h, w);
  p.refresh_sink_at_clip1 = TRUE;     /* the official TPP's adaptive sink: the one clip-1 refresh */
  g_print ("TPP bench: dim %d, heads %d, layers %d, %dx%d px (%d tokens/block), %d blocks (%d per clip), "
           "%d thread(s)/op, %u cores, VAE %s\n", dim, heads, layers, width, height, 3 * (h / 2) * (w / 2), blocks,
           p.infer_frames / 12, threads, g_get_num_processors (),
           vae_dim > 0 ? g_strdup_printf ("decoder dim %d", vae_dim) : g_strdup_printf ("%d ms (emulated)", vae_ms));

  LaTppWorker *wk[LA_TPP_STEPS] = { 0 };
  n_remote = CLAMP (n_remote, 0, LA_TPP_STEPS);
  for (int i = 0; i < n_remote; i++) {
    if (!(wk[i] = la_tpp_worker_new (m, NULL, "cpu", "127.0.0.1:0", &e))) {
      g_printerr ("%s\n", e->message);
      return 1;
    }
    la_tpp_worker_start (wk[i], 1, NULL, NULL);
  }
  if (n_remote)
    g_print ("stage workers on the loopback: %d; per block and remote stage %.1f kB out (latent + audio), "
             "%.1f kB back\n", n_remote, (la_tensor_nbytes (noise) + la_tensor_nbytes (au)) / 1e3,
             la_tensor_nbytes (noise) / 1e3);

  double base = 0;
  for (int li = 0; list[li]; li++) {
    int n = atoi (list[li]);
    LaTppConfig tc;
    la_tpp_config_init (&tc);
    tc.n_devices = n;
    char names[LA_TPP_MAX_STAGES][16];
    for (int i = 0; i < n && i < LA_TPP_MAX_STAGES; i++) {
      g_snprintf (names[i], sizeof names[i], "cpu:%d", i);
      tc.devices[i].model = m;
      tc.devices[i].name = names[i];
      if (i < n_remote && i < LA_TPP_STEPS) {     /* devices 0..3 hold DiT steps in every plan */
        tc.devices[i].remote = la_tpp_worker_get_address (wk[i]);
        tc.devices[i].name = NULL;
      }
    }
    tc.output = vae_emulate;
    LaVae *vae = NULL;
    LaVaeDecoder *dec = NULL;
    LaCheckpoint *vck = NULL;
    if (vae_dim > 0) {
      /* one decoder per run, on the same CPU backend, used only by the VAE stage thread */
      LaVaeConfig vc;
      la_vae_config_wan21 (&vc);
      vc.dim = vae_dim;
      vck = la_vae_random_weights (&vc, 2);
      vae = la_vae_new (be, vck, &vc, &e);
      dec = vae ? la_vae_decoder_new (vae) : NULL;
      if (!dec || !la_vae_decoder_prime (dec, mot, 7, &e)) {
        g_printerr ("VAE: %s\n", e->message);
        return 1;
      }
      tc.output_user = dec;
    }
    tc.record_timeline = TRUE;
    gint64 t0 = g_get_monotonic_time ();
    LaTpp *t = la_tpp_new (&tc, &p, ref, mot, ctx, &e);
    if (!t) {
      g_printerr ("%d stages: %s\n", n, e->message);
      return 1;
    }
    gint64 t1 = g_get_monotonic_time ();
    gboolean ok = TRUE;
    for (int b = 0; ok && b < blocks; b++) {
      LaTppBlock blk = { .noise = noise, .audio = au };
      ok = la_tpp_push (t, &blk, &e);
    }
    ok = ok && la_tpp_finish (t, &e);
    gint64 t2 = g_get_monotonic_time ();
    if (!ok) {
      g_printerr ("%d stages: %s\n", n, e->message);
      return 1;
    }
    int ne = 0;
    g_autofree LaTppEvent *ev = la_tpp_timeline (t, &ne);
    const LaTppPlan *plan = la_tpp_get_plan (t);
    g_autofree char *desc = la_tpp_plan_describe (plan);
    /* steady state: output interval over the second half of the run */
    double o_first = -1, o_last = -1;
    int n_o = 0;
    for (int i = 0; i < ne; i++)
      if (ev[i].what == 'O' && ev[i].block >= blocks / 2) {
        if (o_first < 0 || ev[i].t1 < o_first) o_first = ev[i].t1;
        o_last = MAX (o_last, ev[i].t1);
        n_o++;
      }
    double bps = blocks / ((t2 - t1) * 1e-6);
    double steady = n_o > 1 && o_last > o_first ? (n_o - 1) / (o_last - o_first) : 0;
    if (li == 0)
      base = bps;
    g_print ("\n%d device(s): %s\n  init (parallel sink prefill) %.1f ms; %d blocks in %.1f ms: %.3f blocks/s "
             "(x%.2f vs the first row), steady state %.3f blocks/s\n",
             n, desc, (t1 - t0) * 1e-3, blocks, (t2 - t1) * 1e-3, bps, base > 0 ? bps / base : 1, steady);
    if (!quiet) {
      g_print ("  %-6s %-6s %-4s %10s %10s\n", "stage", "block", "what", "start_ms", "end_ms");
      for (int i = 0; i < ne; i++)
        g_print ("  %-6d %-6" G_GINT64_FORMAT " %-4c %10.1f %10.1f\n", ev[i].stage, ev[i].block, ev[i].what,
                 ev[i].t0 * 1e3, ev[i].t1 * 1e3);
    }
    if (svg) {
      g_autofree char *path = g_strdup_printf ("%s-%d.svg", svg, n);
      g_autofree char *title = g_strdup_printf ("TPP, %d device(s): %s — %.3f blocks/s", n, desc, bps);
      if (!la_tpp_timeline_svg (ev, ne, plan->n_stages, title, path, &e)) {
        g_printerr ("%s\n", e->message);
        return 1;
      }
      g_print ("  timeline: %s\n", path);
    }
    la_tpp_free (t);
    if (dec)
      la_vae_decoder_free (dec);
    if (vae)
      la_vae_free (vae);
    if (vck)
      la_checkpoint_unref (vck);
  }
  for (int i = 0; i < n_remote; i++)
    la_tpp_worker_free (wk[i]);
  g_rand_free (r);
  la_dit_model_free (m);
  la_checkpoint_unref (ck);
  la_backend_unref (be);
  g_free (stages_s);
  g_free (svg);
  return 0;
}
