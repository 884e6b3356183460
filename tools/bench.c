/* liveavatar-bench — speed and memory figures (never assertions).
 *
 *   liveavatar-bench [--preset tiny|mid] [--what dit,vae,wav2vec2,soak,session] [--blocks N]
 *
 *   dit       ms per denoising step and per block (4 steps) of the DiT session
 *   vae       ms per decoded block (3 latents -> 12 frames) and decoder cache size
 *   wav2vec2  real-time factor of the full-size wav2vec2-large architecture
 *             (random weights generated in memory)
 *   soak      N blocks of the DiT session with resident memory sampled along
 *             the way (flat memory, no position overflow)
 *   session   N blocks of the whole engine session (tiny generated model, or
 *             --model DIR [--lora F], at --size WxH, default 64x64: wav2vec2 +
 *             DiT + VAE + frames out) on --session-devices (cpu, cuda:0, ...)
 *             with --weights: resident memory, time to the first frame, fps
 *   linear    the backend's linear at DiT widths with an f32 weight and with the
 *             same weight resident in bf16 (per-panel conversion + sgemm), best of 4
 *   load      loads --model DIR [--lora F] [--weights file|f32|bf16] the way a
 *             session does (one bundle: DiT + LoRA, VAE, umT5, wav2vec2):
 *             load time, peak RSS, resident bytes per component and dtype;
 *             last line "load: resident R bytes, peak RSS P bytes, T s"
 *
 * Presets: tiny = the golden widths (dim 96, 3 heads, 3 layers) at 128x64
 * pixels; mid = dim 512, 8 heads, 8 layers at 256x128 pixels.  Weights are
 * random; timings are wall-clock on this machine's CPU backend, or on a GPU
 * with --device cuda:N (the emulated device runs them too: its times mean nothing).
 *
 *   --dry-run (or --device dryrun), any preset, also full = the 14B model at
 *   704x384: the model code on a backend that records its ops and executes
 *   nothing, then predicted H100 figures from a roofline (tools/bench-dryrun.c,
 *   lib/dryrun; --what and --blocks do not apply).
 */
#include <liveavatar/liveavatar.h>
#include "la-dit.h"
#include "la-vae.h"
#include "la-audio.h"
#include <liveavatar/la-tpp.h>
#include "session/la-model-bundle.h"
#include "la-ops.h"
#include "bench-dryrun.h"
#include "la-tpp-pipeline.h"
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>

typedef struct {
  const char *name;
  int dim, heads, layers, ffn, text_dim, audio_dim;
  int H, W;
  int vae_dim;
} Preset;

static const Preset presets[] = {
  { "tiny", 96, 3, 3, 192, 32, 32, 128, 64, 8 },
  { "mid", 512, 8, 8, 1536, 256, 256, 256, 128, 32 },
  { "full", 5120, 40, 40, 13824, 4096, 1024, 384, 704, 96 },   /* 14B at 704x384: --dry-run only */
};

static double now_ms (void) { return g_get_monotonic_time () / 1000.0; }

static long
rss_kb (void)
{
  g_autofree char *s = NULL;
  if (!g_file_get_contents ("/proc/self/status", &s, NULL, NULL))
    return -1;
  const char *p = strstr (s, "VmRSS:");
  return p ? atol (p + 6) : -1;
}

static LaTensor *
randn (int ndim, const int64_t *shape, GRand *r, float scale)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (int64_t i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) g_rand_double_range (r, -1, 1) * scale;
  return t;
}

static void
dit_config (const Preset *p, LaDitConfig *c)
{
  la_dit_config_init_14b (c);
  c->dim = p->dim; c->num_heads = p->heads; c->num_layers = p->layers; c->ffn_dim = p->ffn;
  c->text_dim = p->text_dim; c->audio_dim = p->audio_dim; c->text_len = 16;
  c->n_inject = 2; c->audio_inject_layers[0] = 0; c->audio_inject_layers[1] = p->layers - 1;
}

/* --infer-frames (0: the session default, 48) for the dit and soak benches:
 * step graphs start once the KV ring is full (block infer_frames/4/F − 1),
 * so a short clip shows replay in few blocks. */
static int dit_infer_frames;

typedef struct {
  LaDitModel *model;
  LaDitSession *s;
  LaTensor *noise, *audio;
} DitRig;

static gboolean
dit_rig (LaBackend *be, const Preset *p, DitRig *rig, GError **error)
{
  LaDitConfig c;
  dit_config (p, &c);
  g_autoptr (LaCheckpoint) w = la_dit_random_weights (&c, 7);
  if (!(rig->model = la_dit_model_new (be, &c, w, error)))
    return FALSE;
  int h = p->H / 8, wd = p->W / 8;
  LaDitSessionParams sp;
  la_dit_session_params_init (&sp, h, wd);
  sp.fixed_d = 0;
  sp.d_seed = 1;
  if (dit_infer_frames > 0)
    sp.infer_frames = dit_infer_frames;
  g_autoptr (GRand) r = g_rand_new_with_seed (3);
  g_autoptr (LaTensor) ref = randn (4, (int64_t[]) { c.in_dim, 1, h, wd }, r, 1);
  g_autoptr (LaTensor) mot = randn (4, (int64_t[]) { c.in_dim, sp.motion_latent_frames, h, wd }, r, 1);
  g_autoptr (LaTensor) ctx = randn (2, (int64_t[]) { 8, c.text_dim }, r, 1);
  if (!(rig->s = la_dit_session_new (rig->model, &sp, ref, mot, ctx, error)))
    return FALSE;
  rig->noise = randn (4, (int64_t[]) { c.in_dim, sp.frames_per_block, h, wd }, r, 1);
  rig->audio = randn (3, (int64_t[]) { 25, c.audio_dim, 4 * sp.frames_per_block }, r, 1);
  return TRUE;
}

static void
dit_rig_free (DitRig *rig)
{
  g_clear_pointer (&rig->s, la_dit_session_free);
  g_clear_pointer (&rig->model, la_dit_model_free);
  g_clear_pointer (&rig->noise, la_tensor_unref);
  g_clear_pointer (&rig->audio, la_tensor_unref);
}

static gboolean
bench_dit (LaBackend *be, const Preset *p, int blocks, GError **error)
{
  DitRig rig = { 0 };
  if (!dit_rig (be, p, &rig, error))
    return FALSE;
  double best = 1e30, sum = 0;
  for (int b = 0; b < blocks; b++) {
    la_backend_reset_stats (be);
    double t0 = now_ms ();
    LaTensor *x = la_dit_session_generate_block (rig.s, rig.noise, rig.audio, error);
    if (!x) {
      dit_rig_free (&rig);
      return FALSE;
    }
    la_tensor_unref (x);
    double dt = now_ms () - t0;
    best = MIN (best, dt);
    sum += dt;
    /* host<->backend traffic of the block (what a GPU would copy and wait for) */
    LaBackendStats st;
    la_backend_get_stats (be, &st);
    printf ("  block %d: %" G_GUINT64_FORMAT " uploads (%" G_GUINT64_FORMAT " B), %" G_GUINT64_FORMAT
            " downloads (%" G_GUINT64_FORMAT " B), %" G_GUINT64_FORMAT " syncs, %" G_GUINT64_FORMAT
            " step graphs captured, %" G_GUINT64_FORMAT " launched\n", b, st.uploads,
            st.upload_bytes, st.downloads, st.download_bytes, st.syncs, st.graph_captures, st.graph_launches);
  }
  printf ("dit  %-4s %dx%d  dim %d heads %d layers %d: %.1f ms/block (best %.1f), %.1f ms/step, %.2f blocks/s\n",
          p->name, p->W, p->H, p->dim, p->heads, p->layers, sum / blocks, best, sum / blocks / 4, 1000.0 * blocks / sum);
  dit_rig_free (&rig);
  return TRUE;
}

static gboolean
bench_soak (LaBackend *be, const Preset *p, int blocks, GError **error)
{
  DitRig rig = { 0 };
  if (!dit_rig (be, p, &rig, error))
    return FALSE;
  long rss0 = 0;
  double t0 = now_ms ();
  int warm = MIN (20, blocks / 10 + 1);
  printf ("soak %s: %d blocks\n", p->name, blocks);
  for (int b = 0; b < blocks; b++) {
    LaTensor *x = la_dit_session_generate_block (rig.s, rig.noise, rig.audio, error);
    if (!x) {
      g_prefix_error (error, "block %d: ", b);
      dit_rig_free (&rig);
      return FALSE;
    }
    la_tensor_unref (x);
    if (b + 1 == warm)
      rss0 = rss_kb ();
    if ((b + 1) % MAX (1, blocks / 10) == 0 || b + 1 == blocks)
      printf ("  block %6d  rss %ld kB  (%.1f ms/block)\n", b + 1, rss_kb (), (now_ms () - t0) / (b + 1));
  }
  long rss1 = rss_kb ();
  printf ("soak %s: rss after warm-up %ld kB, at the end %ld kB (%+.2f %%)\n", p->name, rss0, rss1,
          rss0 > 0 ? 100.0 * (rss1 - rss0) / rss0 : 0.0);
  dit_rig_free (&rig);
  return TRUE;
}

/* A stage worker of this process on the loopback (bench_session's "worker" devices). */
typedef struct {
  LaBackend *be;
  LaDitModel *m;
  LaTppWorker *w;
} LoopWorker;

static void
loop_worker_free (LoopWorker *lw)
{
  la_tpp_worker_free (lw->w);
  la_dit_model_free (lw->m);
  la_backend_unref (lw->be);
}

/* The whole engine: audio in, frames out, for N blocks, memory sampled.
 * devices: the session's list, where "worker" stands for a stage worker
 * started here on the loopback (it loads the model itself, as a worker
 * process would), so the soak covers both ends of the stage protocol. */
static gboolean
bench_session (int blocks, int threads, const char *devices, const char *model, const char *lora, const char *weights,
               const char *size, GError **error)
{
  LoopWorker lw[LA_TPP_MAX_STAGES] = { 0 };
  int n_lw = 0;
  g_autofree char *devlist = NULL;
  LaSession *s = NULL;
  gboolean ok = FALSE;
  g_autofree char *tmp = g_dir_make_tmp ("la-bench-XXXXXX", error);
  if (!tmp)
    return FALSE;
  /* --model: a given folder (e.g. the full-width generated tree), else the
   * tiny model generated here */
  g_autofree char *dir = model ? g_strdup (model) : g_build_filename (tmp, "tiny", NULL);
  if (!model && !la_model_write_tiny (dir, 1, error))
    return FALSE;
  int W = 64, H = 64;
  if (size && (sscanf (size, "%dx%d", &W, &H) != 2 || W < 64 || H < 64 || W > 4096 || H > 4096)) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "--size '%s': expected WxH, each 64..4096 (e.g. 704x384)", size);
    return FALSE;
  }
  g_autofree guint8 *img = g_malloc ((gsize) W * H * 3);
  for (gsize i = 0; i < (gsize) W * H * 3; i++)
    img[i] = (guint8) (i * 7);
  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = dir;
  p.lora = model ? lora : dir;
  p.ref_rgb = img;
  p.ref_width = W;
  p.ref_height = H;
  p.ref_stride = W * 3;
  p.max_area = W * H;
  p.context_ms = 1000;
  p.n_threads = threads;
  if (!la_weights_from_string (weights, &p.weights, error))
    return FALSE;
  {
    g_auto (GStrv) parts = g_strsplit (devices ? devices : "cpu", ",", -1);
    for (int i = 0; parts[i] && n_lw < LA_TPP_MAX_STAGES; i++)
      if (!strcmp (parts[i], "worker")) {
        LoopWorker *w = &lw[n_lw++];
        LaDitLoadInfo info;
        w->be = la_backend_cpu_new (1);
        if (!(w->m = la_dit_model_load (w->be, dir, p.lora, &info, error)) ||
            !(w->w = la_tpp_worker_new (w->m, info.digest, "cpu", "127.0.0.1:0", error)))
          goto out;
        la_tpp_worker_start (w->w, 1, NULL, NULL);
        g_free (parts[i]);
        parts[i] = g_strdup (la_tpp_worker_get_address (w->w));
      }
    devlist = g_strjoinv (",", parts);
  }
  p.devices = devlist;
  double ts = now_ms ();
  if (!(s = la_session_new (&p, error)))
    goto out;
  printf ("session setup (model load, reference encode, prefill): %.0f ms\n", now_ms () - ts);
  const gsize chunk = 7680;                         /* one block of audio */
  float *pcm = g_new (float, chunk);
  gint64 frames = 0, want = (gint64) blocks * 12 - 3;
  long rss0 = 0;
  double t0 = now_ms ();
  ok = TRUE;
  double t_first = 0, t_block1 = 0;
  {
    int ow, oh;
    la_session_get_size (s, &ow, &oh);
    printf ("session soak: %d blocks, %s, %dx%d, devices %s, weights %s\n", blocks, model ? model : "tiny model", ow, oh,
            devlist, la_weights_to_string (p.weights));
  }
  for (gint64 fed = 0; ok && frames < want;) {
    if (fed < blocks) {
      for (gsize i = 0; i < chunk; i++)
        pcm[i] = 0.3f * sinf ((float) ((fed * chunk + i) % 100000) * 0.05f);
      ok = la_session_push_audio (s, pcm, chunk, error);
      if (++fed == blocks)
        la_session_end_of_stream (s);
    }
    LaFrame *f;
    while (ok && (f = la_session_pull_frame (s, fed < blocks ? 0 : -1, error))) {
      la_frame_unref (f);
      frames++;
      if (frames == 1)
        t_first = now_ms () - t0;
      if (frames == 9)
        t_block1 = now_ms ();
      gint64 b = (frames + 3) / 12;
      if ((frames + 3) % 12 == 0) {
        if (b == MIN (20, blocks / 10 + 1))
          rss0 = rss_kb ();
        if (b % MAX (1, blocks / 10) == 0)
          printf ("  block %6" G_GINT64_FORMAT "  rss %ld kB  (%.1f ms/block)\n", b, rss_kb (), (now_ms () - t0) / b);
      }
    }
    if (error && *error)
      ok = FALSE;
    if (ok && fed == blocks && la_session_is_drained (s))
      break;
  }
  long rss1 = rss_kb ();
  if (ok && frames > 9)
    printf ("session: first frame %.0f ms after the first block of audio was pushed; then %.2f fps over %" G_GINT64_FORMAT
            " frames\n", t_first, (frames - 9) / ((now_ms () - t_block1) / 1000.0), frames - 9);
  if (ok)
    printf ("session soak: %" G_GINT64_FORMAT " frames; rss after warm-up %ld kB, at the end %ld kB (%+.2f %%)\n",
            frames, rss0, rss1, rss0 > 0 ? 100.0 * (rss1 - rss0) / rss0 : 0.0);
  g_free (pcm);
out:
  la_session_free (s);
  for (int i = 0; i < n_lw; i++)
    loop_worker_free (&lw[i]);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  (void) !system (rm);
  return ok;
}

static gboolean
bench_vae (LaBackend *be, const Preset *p, int blocks, GError **error)
{
  LaVaeConfig c;
  la_vae_config_wan21 (&c);
  c.dim = p->vae_dim;
  g_autoptr (LaCheckpoint) w = la_vae_random_weights (&c, 5);
  LaVae *vae = la_vae_new (be, w, &c, error);
  if (!vae)
    return FALSE;
  int h = p->H / 8, wd = p->W / 8;
  g_autoptr (GRand) r = g_rand_new_with_seed (4);
  g_autoptr (LaTensor) mot = randn (4, (int64_t[]) { c.z_dim, 7, h, wd }, r, 1);
  g_autoptr (LaTensor) blk = randn (4, (int64_t[]) { c.z_dim, 3, h, wd }, r, 1);
  LaVaeDecoder *dec = la_vae_decoder_new (vae);
  gboolean ok = la_vae_decoder_prime (dec, mot, 7, error);
  double sum = 0;
  for (int b = 0; ok && b < blocks; b++) {
    double t0 = now_ms ();
    LaTensor *px = la_vae_decoder_decode_block (dec, blk, b == 0 ? 3 : 0, error);
    ok = px != NULL;
    if (px)
      la_tensor_unref (px);
    sum += now_ms () - t0;
  }
  if (ok)
    printf ("vae  %-4s %dx%d  dim %d: %.1f ms/block (12 frames), decoder caches %" G_GINT64_FORMAT " elements (formula %" G_GINT64_FORMAT ")\n",
            p->name, p->W, p->H, c.dim, sum / blocks, la_vae_decoder_cache_elements (dec),
            la_vae_decoder_cache_formula (&c, h, wd));
  la_vae_decoder_free (dec);
  la_vae_free (vae);
  return ok;
}

static gboolean
bench_wav2vec2 (LaBackend *be, double seconds, GError **error)
{
  LaWav2Vec2Config c;
  la_wav2vec2_config_init_large (&c);
  double t0 = now_ms ();
  g_autoptr (LaCheckpoint) w = la_wav2vec2_random_weights (&c, 9);
  LaWav2Vec2 *m = la_wav2vec2_new (be, &c, w, error);
  if (!m)
    return FALSE;
  double t_load = now_ms () - t0;
  gsize n = (gsize) (seconds * 16000);
  g_autofree float *pcm = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    pcm[i] = 0.3f * sinf ((float) i * 0.05f) * sinf ((float) i * 0.0007f);
  t0 = now_ms ();
  LaTensor *hs = la_wav2vec2_encode_pcm (m, pcm, n, 16000, 1, error);
  double dt = now_ms () - t0;
  la_wav2vec2_free (m);
  if (!hs)
    return FALSE;
  la_tensor_unref (hs);
  printf ("wav2vec2 large (%d layers, width %d): %.2f s of audio in %.0f ms -> real-time factor %.3f (weights %.0f ms)\n",
          c.num_layers, c.hidden_size, seconds, dt, dt / 1000.0 / seconds, t_load);
  return TRUE;
}

static gboolean
bench_linear (LaBackend *be, GError **error)
{
  static const int shapes[][3] = { { 64, 5120, 5120 }, { 3168, 5120, 5120 }, { 3168, 13824, 5120 }, { 3168, 5120, 13824 } };
  GRand *r = g_rand_new_with_seed (1);
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
    g_autoptr (LaTensor) x = randn (2, (int64_t[]) { M, K }, r, 1.f);
    g_autoptr (LaTensor) w32 = randn (2, (int64_t[]) { N, K }, r, 0.01f);
    g_autoptr (LaTensor) w16 = la_tensor_to_dtype (w32, LA_DTYPE_BF16);
    g_autoptr (LaTensor) y = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { M, N });
    double best[2] = { 1e30, 1e30 };
    for (int rep = 0; rep < 4; rep++)
      for (int k = 0; k < 2; k++) {
        double t0 = now_ms ();
        la_linear (be, y, x, k ? w16 : w32, NULL);
        best[k] = MIN (best[k], now_ms () - t0);
      }
    printf ("linear M %d N %d K %d: f32 weight %.1f ms (%.1f GFLOP/s), bf16 weight %.1f ms (%.1f GFLOP/s)\n", M, N, K,
            best[0], 2e-6 * M * N * K / best[0], best[1], 2e-6 * M * N * K / best[1]);
  }
  g_rand_free (r);
  return la_backend_sync (be, error);
}

static gint64
status_bytes (const char *key)
{
  g_autofree char *s = NULL;
  if (!g_file_get_contents ("/proc/self/status", &s, NULL, NULL))
    return -1;
  const char *p = strstr (s, key);
  return p ? atoll (p + strlen (key)) * 1024 : -1;
}

static void
print_dtypes (const char *what, const guint64 *bytes, guint64 *total)
{
  GString *line = g_string_new (NULL);
  guint64 sum = 0;
  for (int t = 0; t < LA_DTYPE_COUNT; t++)
    if (bytes[t]) {
      g_string_append_printf (line, "%s %s %" G_GUINT64_FORMAT, line->len ? "," : "", la_dtype_name (t), bytes[t]);
      sum += bytes[t];
      total[t] += bytes[t];
    }
  printf ("%-9s %14" G_GUINT64_FORMAT " bytes resident:%s\n", what, sum, line->len ? line->str : " none");
  g_string_free (line, TRUE);
}

/* Peak RSS: /proc/self/clear_refs "5" resets VmHWM (Linux >= 4.0), so the
 * figure is the load's own peak, not the process's history. */
static gboolean
bench_load (LaBackend *be, const char *model, const char *lora, const char *weights, GError **error)
{
  LaWeights w;
  if (!model) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "--what load needs --model DIR");
    return FALSE;
  }
  if (!la_weights_from_string (weights, &w, error))
    return FALSE;
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  gboolean reset = f && fputs ("5", f) >= 0;
  if (f)
    fclose (f);
  gint64 rss0 = status_bytes ("VmRSS:");
  double t0 = now_ms ();
  LaModelBundle *b = la_model_bundle_load (be, model, lora, w, LA_MODEL_PARTS_ALL, error);
  double dt = (now_ms () - t0) / 1000.0;
  if (!b)
    return FALSE;
  gint64 peak = status_bytes ("VmHWM:"), rss1 = status_bytes ("VmRSS:");
  printf ("# load %s%s%s, weights %s; RSS before %" G_GINT64_FORMAT " bytes, after %" G_GINT64_FORMAT " bytes%s\n",
          model, lora ? " + LoRA " : "", lora ? lora : "", la_weights_to_string (w), rss0, rss1,
          reset ? "" : " (VmHWM not reset: peak is the process's)");
  guint64 total[LA_DTYPE_COUNT] = { 0 };
  print_dtypes ("DiT", b->resident[LA_MODEL_PART_DIT], total);
  if (lora)
    printf ("%-9s %14d bytes resident: %u of %u targets merged into the DiT weights (rank %d), no copy of its own\n",
            "LoRA", 0, b->lora.n_merged, b->lora.n_targets, b->lora.rank);
  print_dtypes ("VAE", b->resident[LA_MODEL_PART_VAE], total);
  print_dtypes ("umT5", b->resident[LA_MODEL_PART_T5], total);
  print_dtypes ("wav2vec2", b->resident[LA_MODEL_PART_WAV2VEC2], total);
  print_dtypes ("total", total, (guint64[LA_DTYPE_COUNT]) { 0 });
  printf ("# umT5's token embedding stays mapped from the file (rows read per prompt), not counted\n");
  printf ("load: resident %" G_GUINT64_FORMAT " bytes, peak RSS %" G_GINT64_FORMAT " bytes, %.1f s\n",
          la_model_bundle_resident_bytes (b), peak, dt);
  la_model_bundle_free (b);
  return TRUE;
}

int
main (int argc, char **argv)
{
  char *preset = NULL, *what = NULL, *device = NULL, *session_devices = NULL, *size = NULL;
  char *model = NULL, *lora = NULL, *weights = NULL;
  int blocks = 0, threads = 0;
  gboolean dry_run = FALSE, no_graphs = FALSE;
  LaRoofline rl;
  la_roofline_init_h100_sxm (&rl);
  GOptionEntry entries[] = {
    { "preset", 'p', 0, G_OPTION_ARG_STRING, &preset, "tiny (default), mid, or full (the 14B model, --dry-run only)", "NAME" },
    { "no-graphs", 0, 0, G_OPTION_ARG_NONE, &no_graphs, "dit, soak, session: no CUDA step graphs (LA_DIT_GRAPHS=0)", NULL },
    { "infer-frames", 0, 0, G_OPTION_ARG_INT, &dit_infer_frames, "dit, soak: frames per clip (default 48; graphs from the last block of clip 0)", "N" },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run,
      "Record the model's ops on a backend that executes nothing and print a predicted H100 roofline (also --device dryrun)", NULL },
    { "peak-bf16", 0, 0, G_OPTION_ARG_DOUBLE, &rl.bf16_tflops, "dry run: dense bf16 TFLOP/s (989)", "T" },
    { "peak-fp8", 0, 0, G_OPTION_ARG_DOUBLE, &rl.fp8_tflops, "dry run: dense FP8 TFLOP/s (1979)", "T" },
    { "peak-fp32", 0, 0, G_OPTION_ARG_DOUBLE, &rl.fp32_tflops, "dry run: fp32 CUDA-core TFLOP/s (67)", "T" },
    { "hbm", 0, 0, G_OPTION_ARG_DOUBLE, &rl.hbm_tbs, "dry run: memory bandwidth TB/s (3.35)", "TBS" },
    { "pcie", 0, 0, G_OPTION_ARG_DOUBLE, &rl.pcie_gbs, "dry run: host link GB/s (25)", "GBS" },
    { "launch-us", 0, 0, G_OPTION_ARG_DOUBLE, &rl.launch_eager_us, "dry run: eager launch us (5)", "US" },
    { "graph-node-us", 0, 0, G_OPTION_ARG_DOUBLE, &rl.launch_graph_us, "dry run: CUDA-graph node us (1)", "US" },
    { "sync-us", 0, 0, G_OPTION_ARG_DOUBLE, &rl.sync_us, "dry run: host sync us (10)", "US" },
    { "efficiency", 0, 0, G_OPTION_ARG_DOUBLE, &rl.efficiency, "dry run: share of tensor-core peak in the tables (1)", "E" },
    { "fp8", 0, 0, G_OPTION_ARG_NONE, &rl.fp8, "dry run: FP8 eligible linears in the tables", NULL },
    { "act-bytes", 0, 0, G_OPTION_ARG_INT, &rl.act_bytes, "dry run: bytes per activation/KV element (2; 0 = as recorded, f32)", "N" },
    { "what", 'w', 0, G_OPTION_ARG_STRING, &what, "Comma list: dit,vae,wav2vec2,soak,session,linear,load (default dit,vae,wav2vec2)", "LIST" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "load: model folder", "DIR" },
    { "lora", 'l', 0, G_OPTION_ARG_FILENAME, &lora, "load: LoRA file or folder", "F" },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, "load, session: resident precision file (default), f32, bf16 or fp8 (CUDA)", "W" },
    { "blocks", 'n', 0, G_OPTION_ARG_INT, &blocks, "Blocks to time (default 4; soak 10000)", "N" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads (default all)", "N" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "cpu (default) or cuda:N", "DEV" },
    { "size", 0, 0, G_OPTION_ARG_STRING, &size, "session: reference image and output size WxH (default 64x64)", "WxH" },
    { "session-devices", 0, 0, G_OPTION_ARG_STRING, &session_devices,
      "session soak: devices list (cpu,... or cuda:0,...); 'worker' = a loopback stage worker (e.g. cpu,worker)", "LIST" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— speed and memory figures of the engine");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "liveavatar-bench: %s\n", error->message);
    return 2;
  }
  if (no_graphs)
    g_setenv ("LA_DIT_GRAPHS", "0", TRUE);
  const Preset *p = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    if (g_strcmp0 (preset ? preset : "tiny", presets[i].name) == 0)
      p = &presets[i];
  if (!p) {
    fprintf (stderr, "liveavatar-bench: unknown preset '%s' (tiny, mid, or full with --dry-run)\n", preset);
    return 2;
  }
  if (dry_run || g_strcmp0 (device, "dryrun") == 0) {
    /* --device cuda --dry-run, or --device dryrun: nothing runs on any device */
    BenchDry bd = { .label = p->name, .width = p->W, .height = p->H, .vae_dim = p->vae_dim, .text_tokens = 64, .rl = rl };
    if (strcmp (p->name, "full") == 0)
      la_dit_config_init_14b (&bd.dit);
    else
      dit_config (p, &bd.dit);
    GError *e = NULL;
    gboolean done = bench_dryrun (&bd, &e);
    if (!done) {
      fprintf (stderr, "liveavatar-bench: %s\n", e->message);
      g_error_free (e);
    }
    g_free (preset); g_free (what); g_free (device); g_free (model); g_free (lora); g_free (weights);
    return done ? 0 : 1;
  }
  if (strcmp (p->name, "full") == 0) {
    fprintf (stderr, "liveavatar-bench: preset full (the 14B model) runs with --dry-run; on a GPU, measure the "
             "whole session on a generated tree instead: --what session --model T/Wan2.2-S2V-14B --lora "
             "T/LiveAvatar/liveavatar.safetensors --session-devices cuda:0 --size 704x384 (docs/cuda.md)\n");
    return 2;
  }
  LaBackend *be;
  if (device && g_str_has_prefix (device, "cuda")) {
    /* the component benches on a GPU (session: --session-devices) */
    GError *e = NULL;
    if (!(be = la_backend_cuda_new (device[4] == ':' ? atoi (device + 5) : 0, &e))) {
      fprintf (stderr, "liveavatar-bench: %s\n", e->message);
      g_error_free (e);
      return 77;
    }
  } else
    be = la_backend_cpu_new (threads);
  g_auto (GStrv) parts = g_strsplit (what ? what : "dit,vae,wav2vec2", ",", -1);
  gboolean ok = TRUE;
  if (la_backend_get_device (be) == LA_DEVICE_CPU)
    printf ("# liveavatar-bench, CPU backend, %d threads, preset %s\n", la_backend_get_n_threads (be), p->name);
  else
    printf ("# liveavatar-bench, %s backend (device %d), preset %s\n", la_backend_get_name (be),
            la_backend_get_device_index (be), p->name);
  for (int i = 0; ok && parts[i]; i++) {
    if (strcmp (parts[i], "dit") == 0)
      ok = bench_dit (be, p, blocks ? blocks : 4, &error);
    else if (strcmp (parts[i], "vae") == 0)
      ok = bench_vae (be, p, blocks ? blocks : 4, &error);
    else if (strcmp (parts[i], "wav2vec2") == 0)
      ok = bench_wav2vec2 (be, 4.8, &error);
    else if (strcmp (parts[i], "session") == 0)
      ok = bench_session (blocks ? blocks : 10000, threads, session_devices, model, lora, weights, size, &error);
    else if (strcmp (parts[i], "linear") == 0)
      ok = bench_linear (be, &error);
    else if (strcmp (parts[i], "load") == 0)
      ok = bench_load (be, model, lora, weights, &error);
    else if (strcmp (parts[i], "soak") == 0)
      ok = bench_soak (be, p, blocks ? blocks : 10000, &error);
    else {
      g_set_error (&error, LA_ERROR, LA_ERROR_INVALID_ARG, "unknown benchmark '%s'", parts[i]);
      ok = FALSE;
    }
  }
  la_backend_unref (be);
  g_free (preset);
  g_free (what);
  g_free (device);
  g_free (model);
  g_free (lora);
  g_free (weights);
  g_free (size);
  if (!ok) {
    fprintf (stderr, "liveavatar-bench: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  return 0;
}
