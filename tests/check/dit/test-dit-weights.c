/* DiT weights resident in the checkpoint's precision:
 *  - bf16 resident weights (bf16-representable values) give the same block
 *    as f32 ones within rel-L2 1e-2 (the bf16 GEMMs accumulate in fp32, so
 *    in fact to about 1e-6);
 *  - loading a model folder with its LoRA holds one copy: the peak resident
 *    memory of the load stays within resident weights + largest tensor +
 *    10 % (VmHWM, reset through /proc/self/clear_refs, not a timing). */
#include <glib/gstdio.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dit-test-util.h"

static LaCheckpoint *
cast_all (LaCheckpoint *ck, LaDType dt)
{
  LaCheckpoint *out = la_checkpoint_new ();
  for (const char * const *n = la_checkpoint_names (ck); *n; n++) {
    g_autoptr (LaTensor) t = la_tensor_to_dtype (la_checkpoint_get (ck, *n), dt);
    la_checkpoint_add (out, *n, t);
  }
  return out;
}

static LaTensor *
one_block (LaDitModel *m, const LaDitConfig *c, int lat_h, int lat_w)
{
  GRand *r = g_rand_new_with_seed (7);
  g_autoptr (LaTensor) ref = randn (r, 4, (int64_t[]) { 16, 1, lat_h, lat_w });
  g_autoptr (LaTensor) mot = randn (r, 4, (int64_t[]) { 16, 2, lat_h, lat_w });
  g_autoptr (LaTensor) ctx = randn (r, 2, (int64_t[]) { 5, c->text_dim });
  g_autoptr (LaTensor) noise = randn (r, 4, (int64_t[]) { 16, 3, lat_h, lat_w });
  g_autoptr (LaTensor) au = randn (r, 3, (int64_t[]) { 25, c->audio_dim, 12 });
  g_rand_free (r);
  LaDitSessionParams p;
  la_dit_session_params_init (&p, lat_h, lat_w);
  p.fixed_d = 0;
  p.d_seed = 5;
  GError *e = NULL;
  LaDitSession *s = la_dit_session_new (m, &p, ref, mot, ctx, &e);
  g_assert_no_error (e);
  LaTensor *out = la_dit_session_generate_block (s, noise, au, &e);
  g_assert_no_error (e);
  la_dit_session_free (s);
  return out;
}

static void
test_bf16_block (void)
{
  LaDitConfig c;
  tiny_config (&c, 128, 2, 2);
  g_autoptr (LaBackend) be = la_backend_cpu_new (0);
  g_autoptr (LaCheckpoint) w32 = la_dit_random_weights (&c, 21);
  g_autoptr (LaCheckpoint) w16 = cast_all (w32, LA_DTYPE_BF16);     /* bf16-representable */
  GError *e = NULL;
  LaDitModel *mf = la_dit_model_new (be, &c, w16, &e);               /* f32 resident */
  g_assert_no_error (e);
  LaWeightBinder wb;
  la_weight_binder_init (&wb, be, w16, LA_WEIGHTS_FILE);
  LaDitModel *mb = la_dit_model_new_bound (&c, &wb, &e);             /* bf16 linears */
  g_assert_no_error (e);
  g_assert_cmpuint (wb.bytes[LA_DTYPE_BF16], >, 4 * wb.bytes[LA_DTYPE_F32]);
  g_autoptr (LaTensor) a = one_block (mf, &c, 8, 8);
  g_autoptr (LaTensor) b = one_block (mb, &c, 8, 8);
  double num = 0, den = 0;
  for (int64_t i = 0; i < la_tensor_numel (a); i++) {
    double d = la_tensor_f32 (b)[i] - la_tensor_f32 (a)[i];
    num += d * d;
    den += (double) la_tensor_f32 (a)[i] * la_tensor_f32 (a)[i];
  }
  g_print ("# bf16 vs f32 resident weights: rel-L2 %.3g over %" G_GINT64_FORMAT " values\n", sqrt (num / den),
           la_tensor_numel (a));
  g_assert_cmpfloat (den, >, 0);
  g_assert_cmpfloat (sqrt (num / den), <, 1e-2);
  la_dit_model_free (mf);
  la_dit_model_free (mb);
}

static gint64
status_kb (const char *key)
{
  g_autofree char *s = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/status", &s, NULL, NULL));
  const char *p = strstr (s, key);
  g_assert_nonnull (p);
  return atol (p + strlen (key));
}

/* A model folder (the tiny one's layout) whose DiT is replaced by a wider
 * bf16 one in a single file, with a rank-16 LoRA. */
static char *
write_model (LaDitConfig *c, guint64 *largest)
{
  g_autofree char *dir = g_dir_make_tmp ("la-dit-load-XXXXXX", NULL);
  GError *e = NULL;
  g_assert_true (la_model_write_tiny (dir, 3, &e));
  g_assert_no_error (e);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *n;
  while ((n = g_dir_read_name (d)))
    if (g_str_has_prefix (n, "diffusion_pytorch_model")) {
      g_autofree char *p = g_build_filename (dir, n, NULL);
      g_unlink (p);
    }
  tiny_config (c, 768, 6, 4);
  c->ffn_dim = 3072;
  g_autofree char *cj = g_build_filename (dir, "config.json", NULL);
  g_assert_true (la_dit_config_write_json_file (c, cj, &e));
  g_autoptr (LaCheckpoint) w32 = la_dit_random_weights (c, 5);
  g_autoptr (LaCheckpoint) w16 = cast_all (w32, LA_DTYPE_BF16);
  g_clear_pointer (&w32, la_checkpoint_unref);
  *largest = 0;
  for (const char * const *k = la_checkpoint_names (w16); *k; k++)
    *largest = MAX (*largest, la_tensor_nbytes (la_checkpoint_get (w16, *k)));
  g_autofree char *wp = g_build_filename (dir, "diffusion_pytorch_model.safetensors", NULL);
  g_assert_true (la_safetensors_write (wp, w16, &e));
  g_autoptr (LaCheckpoint) lora = la_lora_random (w16, 16, 9);
  g_autofree char *lp = g_build_filename (dir, "liveavatar.safetensors", NULL);
  g_assert_true (la_safetensors_write (lp, lora, &e));
  g_assert_no_error (e);
  return g_steal_pointer (&dir);
}

static void
test_load_peak_rss (void)
{
  if (!g_file_test ("/proc/self/clear_refs", G_FILE_TEST_EXISTS)) {
    g_test_skip ("no /proc/self/clear_refs to reset the peak RSS");
    return;
  }
  LaDitConfig c;
  guint64 largest;
  g_autofree char *dir = write_model (&c, &largest);
  g_autofree char *lora = g_build_filename (dir, "liveavatar.safetensors", NULL);
  g_autoptr (LaBackend) be = la_backend_cpu_new (0);
  /* Free heap left by the generation goes back to the kernel first (else
   * the load reuses it and its growth looks smaller than the weights), then
   * VmHWM back to the current RSS: the peak measured is the load's. */
  malloc_trim (0);
  GError *e = NULL;
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  if (!f || fputs ("5", f) < 0 || fclose (f) != 0) {
    g_test_skip ("cannot write /proc/self/clear_refs");
    return;
  }
  gint64 base = status_kb ("VmRSS:");
  g_assert_cmpint (status_kb ("VmHWM:"), <=, base + 1024);
  LaDitLoadInfo info;
  LaDitModel *m = la_dit_model_load (be, dir, lora, &info, &e);
  g_assert_no_error (e);
  gint64 peak = status_kb ("VmHWM:") - base;
  guint64 resident = 0;
  for (int t = 0; t < LA_DTYPE_COUNT; t++)
    resident += info.resident[t];
  double bound = (resident + largest) / 1024.0 + 0.10 * resident / 1024.0;
  g_print ("# load: resident %" G_GUINT64_FORMAT " bytes (bf16 %" G_GUINT64_FORMAT "), largest tensor %"
           G_GUINT64_FORMAT ", peak RSS growth %" G_GINT64_FORMAT " kB, bound %.0f kB\n",
           resident, info.resident[LA_DTYPE_BF16], largest, peak, bound);
  g_assert_cmpuint (info.lora.n_merged, ==, info.lora.n_targets);
  g_assert_cmpuint (info.lora.n_merged, >, 0);
  g_assert_cmpuint (info.resident[LA_DTYPE_BF16], >, 10 * info.resident[LA_DTYPE_F32]);
  /* the resident copy really is there (it is not a lazily faulted view) */
  g_assert_cmpfloat (peak, >=, 0.9 * resident / 1024.0);
  g_assert_cmpfloat (peak, <=, bound);
  la_dit_model_free (m);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dit-weights/bf16-block", test_bf16_block);
  g_test_add_func ("/dit-weights/load-peak-rss", test_load_peak_rss);
  return g_test_run ();
}
