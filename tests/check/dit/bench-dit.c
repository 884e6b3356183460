/* bench-dit.c — ms per DiT step and per block on the CPU backend, for the
 * tiny golden configuration and a mid-size one (dim 512, 8 heads, 8 layers,
 * 256×128 px).  Figures, not assertions.
 *   bench-dit [blocks] [threads]
 */
#include <stdlib.h>
#include "la-dit.h"

static LaTensor *
randn (GRand *r, int ndim, const int64_t *shape)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  for (gint64 i = 0; i < la_tensor_numel (t); i++)
    la_tensor_f32 (t)[i] = (float) (g_rand_double (r) * 2 - 1);
  return t;
}

static void
bench (const char *label, int dim, int heads, int layers, int text_dim, int audio_dim, int H, int W, int nblocks,
       int threads)
{
  LaDitConfig c;
  la_dit_config_init_14b (&c);
  c.dim = dim; c.ffn_dim = 2 * dim; c.num_heads = heads; c.num_layers = layers;
  c.text_dim = text_dim; c.audio_dim = audio_dim; c.text_len = 512;
  c.n_inject = 0;
  for (int l = 0; l < layers; l += 4)
    c.audio_inject_layers[c.n_inject++] = l;
  LaBackend *be = la_backend_cpu_new (threads);
  LaCheckpoint *ck = la_dit_random_weights (&c, 1);
  GError *e = NULL;
  LaDitModel *m = la_dit_model_new (be, &c, ck, &e);
  g_assert_no_error (e);
  GRand *r = g_rand_new_with_seed (1);
  int h = H / 8, w = W / 8;
  g_autoptr (LaTensor) ref = randn (r, 4, (int64_t[]) { 16, 1, h, w });
  g_autoptr (LaTensor) mot = randn (r, 4, (int64_t[]) { 16, 19, h, w });
  g_autoptr (LaTensor) ctx = randn (r, 2, (int64_t[]) { 20, text_dim });
  LaDitSessionParams p;
  la_dit_session_params_init (&p, h, w);
  gint64 t0 = g_get_monotonic_time ();
  LaDitSession *s = la_dit_session_new (m, &p, ref, mot, ctx, &e);
  g_assert_no_error (e);
  double t_open = (g_get_monotonic_time () - t0) / 1000.0;
  g_autoptr (LaTensor) noise = randn (r, 4, (int64_t[]) { 16, 3, h, w });
  g_autoptr (LaTensor) au = randn (r, 3, (int64_t[]) { 25, audio_dim, 12 });
  /* one warm-up block, then the timed ones (clip 0 and the ring wrap included when nblocks > 4) */
  LaTensor *x = la_dit_session_generate_block (s, noise, au, &e);
  la_tensor_unref (x);
  t0 = g_get_monotonic_time ();
  for (int b = 0; b < nblocks; b++) {
    x = la_dit_session_generate_block (s, noise, au, &e);
    g_assert_no_error (e);
    la_tensor_unref (x);
  }
  double ms = (g_get_monotonic_time () - t0) / 1000.0 / nblocks;
  g_print ("%-10s dim %4d heads %2d layers %2d %4dx%-4d px: session+sink prefill %8.1f ms, %8.2f ms/step, %8.2f ms/block (%d threads)\n",
           label, dim, heads, layers, W, H, t_open, ms / 4, ms, threads);
  la_dit_session_free (s);
  la_dit_model_free (m);
  la_checkpoint_unref (ck);
  la_backend_unref (be);
  g_rand_free (r);
}

int
main (int argc, char **argv)
{
  int nblocks = argc > 1 ? atoi (argv[1]) : 8;
  int threads = argc > 2 ? atoi (argv[2]) : 0;
  bench ("tiny", 96, 3, 3, 32, 32, 128, 64, nblocks, threads);
  bench ("mid", 512, 8, 8, 4096, 1024, 256, 128, nblocks, threads);
  return 0;
}
