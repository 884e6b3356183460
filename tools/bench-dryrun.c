/* bench-dryrun.c — liveavatar-bench --dry-run: the real model code (DiT
 * session step calls, the causal audio encoder inside them, the VAE's
 * streaming decode of a block, wav2vec2 of a block's audio window) on the
 * recording backend (lib/dryrun), priced by the roofline.
 *
 * Phases recorded, each a range of ops plus the device memory it holds:
 *   load       weights (shapes only: zero views of a bf16 DiT checkpoint, f32 VAE and wav2vec2)
 *   session    one with the 4 step caches (one GPU), one with a single cache (a TPP stage)
 *   block 0    its 4 denoising steps (ring not full yet: time to first frame)
 *   steady     the 4 steps of block infer_frames/4/F (ring full: throughput)
 *   wav2vec2   one block's window: 4000 ms past + 480 ms block + 400 ms look-ahead
 *   VAE        priming (7 motion latents), block 0 (3 frames dropped), block 1
 *
 * Throughput: 1 GPU runs wav2vec2, the 4 steps and the VAE of a block in
 * sequence; TPP 4+1 runs one step per GPU (plus the latent hop to the next
 * GPU) and wav2vec2 + VAE on the fifth: one block per slowest stage.
 */
#include "bench-dryrun.h"
#include "la-vae.h"
#include "la-audio.h"
#include "la-synth.h"
#include "la-ops.h"
#include <stdio.h>
#include <string.h>
#include <math.h>

#define N_STEPS 4
#define FRAMES_PER_BLOCK 12
#define W2V_WINDOW_MS (4000 + 480 + 400)
#define LOOKAHEAD_MS 400
#define BLOCK_AUDIO_MS 480

typedef struct {
  guint first, last;
  LaDryMem before, after;
} Phase;

static void
phase_begin (LaBackend *be, Phase *p)
{
  la_dryrun_reset_peak (be);
  la_dryrun_mem (be, &p->before);
  p->first = la_dryrun_n_ops (be);
}

static void
phase_end (LaBackend *be, Phase *p)
{
  la_dryrun_mem (be, &p->after);
  p->last = la_dryrun_n_ops (be);
}

/* Bytes with f32 elements re-priced at the roofline's activation width. */
static double
proj (const LaRoofline *rl, double bytes, double f32)
{
  return rl->act_bytes > 0 ? bytes - f32 * (4 - rl->act_bytes) : bytes;
}

static double held (const LaRoofline *rl, const Phase *p)
{
  return proj (rl, (double) p->after.live - p->before.live, (double) p->after.live_f32 - p->before.live_f32);
}

static double peak_extra (const LaRoofline *rl, const Phase *p)
{
  return proj (rl, (double) p->after.peak - p->before.live, (double) p->after.peak_f32 - p->before.live_f32);
}

static LaTensor *
host_rand (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (gint64 i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) g_rand_double_range (r, -1, 1);
  return t;
}

typedef struct {
  Phase step0[N_STEPS], steady[N_STEPS], w2v, prime, vae0, vae1, prefill;
} Run;

/* Predicted seconds of a phase range (eager or graph). */
static double
t_of (const LaRoofline *rl, LaBackend *be, const Phase *p, gboolean graph)
{
  LaRoofSum s;
  la_roofline_sum (rl, be, p->first, p->last, &s);
  return graph ? s.t_graph_total : s.t_eager_total;
}

typedef struct {
  double step_max, steps, w2v, vae, vae0, steps0, hop;
  double block_1gpu, fps_1gpu, stage_dit, stage_vae, fps_tpp, ttff_1gpu, ttff_tpp;
} Pred;

static void
predict (const LaRoofline *rl, LaBackend *be, const Run *r, gboolean graph, double latent_bytes, Pred *p)
{
  memset (p, 0, sizeof *p);
  for (int i = 0; i < N_STEPS; i++) {
    double t = t_of (rl, be, &r->steady[i], graph);
    p->steps += t;
    p->step_max = MAX (p->step_max, t);
    p->steps0 += t_of (rl, be, &r->step0[i], graph);
  }
  p->w2v = t_of (rl, be, &r->w2v, graph);
  p->vae = t_of (rl, be, &r->vae1, graph);
  p->vae0 = t_of (rl, be, &r->vae0, graph);
  p->hop = latent_bytes / (rl->pcie_gbs * 1e9) + 2 * rl->launch_eager_us * 1e-6;
  p->block_1gpu = p->w2v + p->steps + p->vae;
  p->fps_1gpu = FRAMES_PER_BLOCK / p->block_1gpu;
  p->stage_dit = p->step_max + p->hop;
  p->stage_vae = p->w2v + p->vae;
  p->fps_tpp = FRAMES_PER_BLOCK / MAX (p->stage_dit, p->stage_vae);
  p->ttff_1gpu = p->w2v + p->steps0 + p->vae0;
  p->ttff_tpp = p->w2v + p->steps0 + N_STEPS * p->hop + p->vae0;
}

typedef struct { guint up, down, sync; } Traffic;

static void
count (LaBackend *be, const Phase *ph, Traffic *t)
{
  for (guint i = ph->first; i < ph->last; i++) {
    LaDryClass c = la_dryrun_op (be, i)->cls;
    t->up += c == LA_DRY_COPY_H2D;
    t->down += c == LA_DRY_COPY_D2H;
    t->sync += c == LA_DRY_SYNC;
  }
}

static void
print_traffic (const char *what, const Traffic *t)
{
  printf ("  %-40s %5u uploads, %5u downloads, %5u host syncs\n", what, t->up, t->down, t->sync);
}

static void
table (const LaRoofline *rl, LaBackend *be, const char *title, const Phase *ph, int n)
{
  LaRoofSum tot = { 0 };
  for (int k = 0; k < n; k++) {
    LaRoofSum s;
    la_roofline_sum (rl, be, ph[k].first, ph[k].last, &s);
    la_roofline_add (&tot, &s);
  }
  la_roofline_print (stdout, title, &tot);
}

/* The same range by op name: where the time goes beyond the GEMMs. */
static void
by_op (const LaRoofline *rl, LaBackend *be, const Phase *ph)
{
  const char *names[32];
  double fl[32] = { 0 }, by[32] = { 0 }, tg[32] = { 0 };
  guint cnt[32] = { 0 }, n = 0;
  for (guint i = ph->first; i < ph->last; i++) {
    const LaDryOp *o = la_dryrun_op (be, i);
    guint k = 0;
    while (k < n && strcmp (names[k], o->op) != 0)
      k++;
    if (k == n) {
      if (n == G_N_ELEMENTS (names))
        continue;
      names[n++] = o->op;
    }
    LaRoofSum s;
    la_roofline_sum (rl, be, i, i + 1, &s);
    cnt[k]++;
    fl[k] += s.flops_total;
    by[k] += s.bytes_total;
    tg[k] += s.t_graph_total;
  }
  printf ("  by op:");
  for (guint k = 0; k < n; k++)
    printf ("%s %s %u x %.1f ms (%.1f GB)", k ? "," : "", names[k], cnt[k], tg[k] * 1e3, by[k] / 1e9);
  printf (" [graph ms]\n");
}

static long
rss_peak_kb (void)
{
  g_autofree char *s = NULL;
  if (!g_file_get_contents ("/proc/self/status", &s, NULL, NULL))
    return -1;
  const char *p = strstr (s, "VmHWM:");
  return p ? atol (p + 6) : -1;
}

#define GB(x) ((x) / 1e9)

gboolean
bench_dryrun (const BenchDry *a, GError **error)
{
  const LaRoofline *rl = &a->rl;
  const LaDitConfig *c = &a->dit;
  const int h = a->height / 8, w = a->width / 8;
  gint64 t_start = g_get_monotonic_time ();
  gboolean ok = FALSE;
  LaBackend *be = la_backend_dryrun_new ();
  LaDitModel *model = NULL;
  LaVae *vae = NULL;
  LaWav2Vec2 *w2v = NULL;
  LaDitSession *s = NULL;
  LaVaeDecoder *dec = NULL;
  Run run;
  memset (&run, 0, sizeof run);
  g_autoptr (GRand) r = g_rand_new_with_seed (5);
  g_autoptr (LaTensor) ref = NULL, mot = NULL, ctx = NULL, x = NULL, audio = NULL, lat = NULL;

  /* Shapes only: every weight a view of the shared zero mapping. */
  gint64 saved = la_synth_zero_from;
  la_synth_zero_from = 0;
  g_autoptr (LaCheckpoint) dck = la_dit_random_weights (c, 1);
  la_dryrun_zero_weights (dck, LA_DTYPE_BF16);      /* the published DiT is bf16 */
  LaVaeConfig vc;
  la_vae_config_wan21 (&vc);
  if (a->vae_dim)
    vc.dim = a->vae_dim;
  g_autoptr (LaCheckpoint) vck = la_vae_random_weights (&vc, 2);
  LaWav2Vec2Config wc;
  la_wav2vec2_config_init_large (&wc);
  g_autoptr (LaCheckpoint) wck = la_wav2vec2_random_weights (&wc, 3);
  la_synth_zero_from = saved;

  Phase p_dit, p_vae, p_w2v, p_stage, p_all;
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, dck, LA_WEIGHTS_FILE);
  phase_begin (be, &p_dit);
  if (!(model = la_dit_model_new_bound (c, &wb, error)))
    goto out;
  phase_end (be, &p_dit);
  phase_begin (be, &p_vae);
  if (!(vae = la_vae_new (be, vck, &vc, error)))
    goto out;
  phase_end (be, &p_vae);
  phase_begin (be, &p_w2v);
  if (!(w2v = la_wav2vec2_new (be, &wc, wck, error)))
    goto out;
  phase_end (be, &p_w2v);

  LaDitSessionParams sp;
  la_dit_session_params_init (&sp, h, w);
  sp.fixed_d = 0;
  sp.d_seed = 1;
  /* what the session allocates on a GPU with bf16/FP8 weights (la-session.c) */
  sp.cache_dtype = sp.act_dtype = LA_DTYPE_BF16;
  ref = host_rand (r, 4, (int64_t[]) { c->in_dim, 1, h, w });
  mot = host_rand (r, 4, (int64_t[]) { c->in_dim, sp.motion_latent_frames, h, w });
  ctx = host_rand (r, 2, (int64_t[]) { MIN (a->text_tokens, c->text_len), c->text_dim });
  const int F = sp.frames_per_block;
  x = host_rand (r, 4, (int64_t[]) { c->in_dim, F, h, w });
  audio = host_rand (r, 3, (int64_t[]) { wc.num_layers + 1, c->audio_dim, 4 * F });

  /* A TPP stage's session (one step's cache), then the one-GPU session (4). */
  sp.cache_mask = 1;
  phase_begin (be, &p_stage);
  if (!(s = la_dit_session_new (model, &sp, ref, mot, ctx, error)))
    goto out;
  phase_end (be, &p_stage);
  g_clear_pointer (&s, la_dit_session_free);
  sp.cache_mask = 0;
  phase_begin (be, &p_all);
  if (!(s = la_dit_session_new (model, &sp, ref, mot, ctx, error)))
    goto out;
  phase_end (be, &p_all);
  run.prefill = p_all;

  const gint64 steady_block = sp.infer_frames / 4 / F;   /* the first block with a full ring */
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < N_STEPS; i++) {
      Phase *ph = b ? &run.steady[i] : &run.step0[i];
      phase_begin (be, ph);
      if (!la_dit_session_denoise_step (s, i, x, audio, (b ? steady_block : 0) * F, la_dit_session_next_d (s), error))
        goto out;
      phase_end (be, ph);
    }

  {
    gsize n = (gsize) 16 * W2V_WINDOW_MS;
    g_autofree float *pcm = g_new (float, n);
    for (gsize i = 0; i < n; i++)
      pcm[i] = 0.3f * sinf ((float) i * 0.05f);
    phase_begin (be, &run.w2v);
    LaTensor *hs = la_wav2vec2_encode_pcm (w2v, pcm, n, 16000, 1, error);
    if (!hs)
      goto out;
    la_tensor_unref (hs);
    phase_end (be, &run.w2v);
  }

  dec = la_vae_decoder_new (vae);
  lat = host_rand (r, 4, (int64_t[]) { vc.z_dim, F, h, w });
  /* the decoder takes latents on its backend: the DiT's output is uploaded once per block */
  phase_begin (be, &run.prime);
  {
    g_autoptr (LaTensor) dmot = la_alloc (be, LA_DTYPE_F32, 4, mot->shape);
    la_copy (be, dmot, mot);
    if (!la_vae_decoder_prime (dec, dmot, 7, error))
      goto out;
  }
  phase_end (be, &run.prime);
  for (int b = 0; b < 2; b++) {
    Phase *ph = b ? &run.vae1 : &run.vae0;
    phase_begin (be, ph);
    g_autoptr (LaTensor) dlat = la_alloc (be, LA_DTYPE_F32, 4, lat->shape);
    la_copy (be, dlat, lat);
    g_autoptr (LaTensor) px = la_vae_decoder_decode_block (dec, dlat, b ? 0 : 3, error);
    if (!px)
      goto out;
    g_autofree guint8 *rgb = la_vae_frames_to_rgb8 (be, px, error);
    if (!rgb)
      goto out;
    phase_end (be, ph);
  }
  if (!la_backend_sync (be, error))
    goto out;

  /* ---- report ---- */
  double wall = (g_get_monotonic_time () - t_start) / 1e6;
  printf ("# liveavatar-bench --dry-run, preset %s: dim %d, %d heads, %d layers, ffn %d, %dx%d pixels "
          "(latent %dx%d, %d latent frames per block), 4 steps\n", a->label, c->dim, c->num_heads, c->num_layers,
          c->ffn_dim, a->width, a->height, w, h, F);
  printf ("# recorded %u ops in %.1f s of this machine's time, peak RSS %ld kB (nothing executed)\n",
          la_dryrun_n_ops (be), wall, rss_peak_kb ());
  la_roofline_print_params (stdout, rl);
  {
    gint64 lk = 0, lq = 0;
    for (guint i = run.steady[0].first; i < run.steady[0].last; i++) {
      const LaDryOp *o = la_dryrun_op (be, i);
      if (o->cls == LA_DRY_ATTENTION && o->dims[1] > lk)
        lk = o->dims[1], lq = o->dims[0];
    }
    printf ("# geometry: %" G_GINT64_FORMAT " query tokens per block, %" G_GINT64_FORMAT
            " keys per query in steady state (sink + full ring), text K/V %d tokens\n", lq, lk, c->text_len);
  }
  printf ("\n");
  table (rl, be, "one DiT step, steady state (step 0 of a block with a full KV ring)", &run.steady[0], 1);
  by_op (rl, be, &run.steady[0]);
  table (rl, be, "4 DiT steps of a steady block", run.steady, N_STEPS);
  table (rl, be, "VAE decode of a block (12 frames, steady), with the frames' download", &run.vae1, 1);
  by_op (rl, be, &run.vae1);
  table (rl, be, "wav2vec2-large of a block's audio window (4.88 s)", &run.w2v, 1);
  table (rl, be, "4 DiT steps of block 0 (ring not full)", run.step0, N_STEPS);
  table (rl, be, "session start: text K/V, sink embedding, one sink prefill, copies to 3 caches", &run.prefill, 1);

  {
    Traffic step = { 0 }, blk = { 0 };
    count (be, &run.steady[0], &step);
    for (int i = 0; i < N_STEPS; i++)
      count (be, &run.steady[i], &blk);
    count (be, &run.w2v, &blk);
    count (be, &run.vae1, &blk);
    printf ("\nhost<->device traffic (recorded, the engine as it is today):\n");
    print_traffic ("per DiT step (steady)", &step);
    print_traffic ("per block: wav2vec2 + 4 steps + VAE", &blk);
  }

  const double latent_bytes = (double) c->in_dim * F * h * w * 2;   /* bf16 latent between stages */
  printf ("\npredicted frame rate (12 frames per block; SOL = 100 %% of the tensor-core peak):\n");
  printf ("  %-26s %5s %9s %9s %9s %9s %8s %8s %9s %9s\n", "precision", "eff", "step ms", "VAE ms", "w2v ms",
          "block ms", "1-GPU", "TPP 4+1", "TTFF 1", "TTFF TPP");
  for (int fp8 = 0; fp8 < 2; fp8++)
    for (int g = 0; g < 2; g++)
      for (int e = 0; e < 3; e++) {
        static const double effs[3] = { 1.0, 0.6, 0.4 };
        LaRoofline q = *rl;
        q.fp8 = fp8;
        q.efficiency = effs[e];
        Pred p;
        predict (&q, be, &run, g, latent_bytes, &p);
        char name[64];
        g_snprintf (name, sizeof name, "%s, %s", fp8 ? "FP8 GEMM + bf16 attn" : "bf16", g ? "graphs" : "eager");
        printf ("  %-26s %4.0f%% %9.1f %9.1f %9.1f %9.1f %6.1f fps %5.1f fps %7.0f ms %7.0f ms\n", name,
                100 * effs[e], p.step_max * 1e3, p.vae * 1e3, p.w2v * 1e3, p.block_1gpu * 1e3, p.fps_1gpu, p.fps_tpp,
                p.ttff_1gpu * 1e3, p.ttff_tpp * 1e3);
      }
  printf ("  TTFF = compute from the first block's audio to its first frame (wav2vec2 + 4 steps of block 0 + its VAE);\n"
          "  audio in to first pixel adds the block's %d ms of audio and the %d ms look-ahead.\n"
          "  TPP: a DiT stage = its step + the latent hop (%.0f KB bf16); the fifth GPU runs wav2vec2 + VAE.\n",
          BLOCK_AUDIO_MS, LOOKAHEAD_MS, latent_bytes / 1e3);

  /* ---- memory plan ---- */
  LaDryMem mm;
  la_dryrun_mem (be, &mm);
  const double dit_w = (double) p_dit.after.live - p_dit.before.live;
  const double dit_w8 = dit_w - (double) mm.uploaded_fp8_elems;      /* bf16 -> e4m3: one byte less each */
  /* weights as bound (not re-priced: their dtype is the loader's choice) */
  const double vae_w = (double) p_vae.after.live - p_vae.before.live;
  const double w2v_w = (double) p_w2v.after.live - p_w2v.before.live;
  const double stage = held (rl, &p_stage), all = held (rl, &p_all);
  const double cache = (all - stage) / 3, shared = stage - cache;
  double act_step = 0;
  for (int i = 0; i < N_STEPS; i++)
    act_step = MAX (act_step, peak_extra (rl, &run.steady[i]));
  const double act_vae = MAX (peak_extra (rl, &run.vae1), peak_extra (rl, &run.vae0));
  const double vae_caches = held (rl, &run.prime) + held (rl, &run.vae0) + held (rl, &run.vae1);
  const double act_w2v = peak_extra (rl, &run.w2v);
  printf ("\npredicted device memory plan (GB; activations and caches %s):\n",
          rl->act_bytes > 0 ? "bf16" : "as recorded, f32");
  printf ("  DiT weights                      %8.2f bf16 linears, %.2f with FP8 linears (%.2f G FP8-eligible elements)\n",
          GB (dit_w), GB (dit_w8), mm.uploaded_fp8_elems / 1e9);
  printf ("  VAE / wav2vec2 weights           %8.2f / %.2f (f32, as loaded today)\n", GB (vae_w), GB (w2v_w));
  printf ("  KV cache of one step             %8.2f (K and V of every layer: sink + ring, un-roped sink keys)\n",
          GB (cache));
  printf ("  session, shared                  %8.2f (text K/V per layer, sink tokens, RoPE tables, scratch)\n",
          GB (shared));
  printf ("  activations, peak of a DiT step  %8.2f\n", GB (act_step));
  printf ("  VAE decoder caches / peak        %8.2f / %.2f\n", GB (vae_caches), GB (act_vae));
  printf ("  wav2vec2 peak (one window)       %8.2f\n", GB (act_w2v));
  const double one = dit_w + vae_w + w2v_w + all + MAX (act_step, MAX (act_vae, act_w2v)) + vae_caches;
  const double one8 = one - dit_w + dit_w8;
  const double tpp = dit_w + stage + act_step, tpp8 = tpp - dit_w + dit_w8;
  const double vgpu = vae_w + w2v_w + vae_caches + MAX (act_vae, act_w2v);
  printf ("  1 GPU (everything)               %8.2f bf16 weights, %.2f FP8 weights\n", GB (one), GB (one8));
  printf ("  TPP, each of the 4 DiT GPUs      %8.2f bf16 weights, %.2f FP8 weights\n", GB (tpp), GB (tpp8));
  printf ("  TPP, the VAE GPU                 %8.2f\n", GB (vgpu));
  ok = TRUE;
out:
  la_vae_decoder_free (dec);
  la_dit_session_free (s);
  la_dit_model_free (model);
  la_vae_free (vae);
  la_wav2vec2_free (w2v);
  la_backend_unref (be);
  return ok;
}
