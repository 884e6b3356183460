/* vae-bench.c — CPU timing of the streaming VAE decoder: ms per decoded
 * 3-latent block (12 frames) with random weights at the real Wan2.1 widths
 * (or --dim), after a 1-latent priming pass, with one latent per decoder
 * pass (the reference split) and with the whole block in one pass.
 * Also prints the decoder cache size against the docs/design/vae.md §5 formula.
 *
 *   vae-bench [--dim 96] [--height 64] [--width 64] [--blocks 2] [--threads 0]
 */
#include <stdio.h>
#include <liveavatar/liveavatar.h>
#include "la-vae.h"

static LaTensor *
rand_latents (int z, int t, int h, int w, guint32 seed)
{
  LaTensor *x = la_tensor_new_v (LA_DTYPE_F32, z, t, h, w, -1);
  GRand *r = g_rand_new_with_seed (seed);
  for (int64_t i = 0; i < la_tensor_numel (x); i++)
    la_tensor_f32 (x)[i] = (float) g_rand_double_range (r, -2, 2);
  g_rand_free (r);
  return x;
}

int
main (int argc, char **argv)
{
  int dim = 96, H = 64, W = 64, blocks = 2, threads = 0;
  GOptionEntry entries[] = {
    { "dim", 0, 0, G_OPTION_ARG_INT, &dim, "base width (96 = Wan2.1)", "N" },
    { "height", 0, 0, G_OPTION_ARG_INT, &H, "frame height (multiple of 8)", "H" },
    { "width", 0, 0, G_OPTION_ARG_INT, &W, "frame width (multiple of 8)", "W" },
    { "blocks", 0, 0, G_OPTION_ARG_INT, &blocks, "timed blocks per mode", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (0 = all)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- VAE decoder timing");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) e = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &e) || H % 8 || W % 8 || H < 8 || W < 8 || dim < 1) {
    fprintf (stderr, "vae-bench: %s\n", e ? e->message : "bad size");
    return 2;
  }
  LaVaeConfig cfg;
  la_vae_config_wan21 (&cfg);
  cfg.dim = dim;
  LaBackend *be = la_backend_cpu_new (threads);
  g_autoptr (LaCheckpoint) ck = la_vae_random_weights (&cfg, 1);
  LaVae *vae = la_vae_new (be, ck, &cfg, &e);
  if (!vae) {
    fprintf (stderr, "vae-bench: %s\n", e->message);
    return 1;
  }
  const int h = H / 8, w = W / 8;
  printf ("VAE decoder, dim %d, %dx%d frames (%dx%d latents), %d threads\n", dim, H, W, h, w,
          la_backend_get_n_threads (be));
  for (int mode = 0; mode < 2; mode++) {
    LaVaeDecoder *dec = la_vae_decoder_new (vae);
    la_vae_decoder_set_max_pass (dec, mode ? 3 : 1);
    g_autoptr (LaTensor) prime = rand_latents (cfg.z_dim, 1, h, w, 7);
    gint64 t0 = g_get_monotonic_time ();
    g_autoptr (LaTensor) p = la_vae_decoder_decode (dec, prime, &e);
    if (!p) {
      fprintf (stderr, "vae-bench: %s\n", e->message);
      return 1;
    }
    double ms_prime = (g_get_monotonic_time () - t0) / 1000.0;
    double total = 0;
    for (int b = 0; b < blocks; b++) {
      g_autoptr (LaTensor) z = rand_latents (cfg.z_dim, 3, h, w, 100 + b);
      t0 = g_get_monotonic_time ();
      g_autoptr (LaTensor) y = la_vae_decoder_decode (dec, z, &e);
      total += (g_get_monotonic_time () - t0) / 1000.0;
      if (!y) {
        fprintf (stderr, "vae-bench: %s\n", e->message);
        return 1;
      }
    }
    printf ("  %s: first pass %.1f ms, %.1f ms per 3-latent block (12 frames), %d blocks\n",
            mode ? "3 latents per pass" : "1 latent per pass ", ms_prime, total / MAX (blocks, 1), blocks);
    if (mode == 0)
      printf ("  decoder cache: %" G_GINT64_FORMAT " elements, formula %" G_GINT64_FORMAT " (%.1f MB in bf16)\n",
              la_vae_decoder_cache_elements (dec), la_vae_decoder_cache_formula (&cfg, h, w),
              la_vae_decoder_cache_formula (&cfg, h, w) * 2 / 1e6);
    la_vae_decoder_free (dec);
  }
  la_vae_free (vae);
  la_backend_unref (be);
  return 0;
}
