/* The model-folder resolver: complete folder, every missing file listed, LoRA layouts. */
#include <liveavatar/liveavatar.h>
#include "la-model.h"
#include <glib/gstdio.h>
#include <string.h>

static char *root;

static void
touch (const char *rel)
{
  g_autofree char *p = g_build_filename (root, rel, NULL);
  g_autofree char *d = g_path_get_dirname (p);
  g_mkdir_with_parents (d, 0755);
  g_assert_true (g_file_set_contents (p, "x", 1, NULL));
}

static void
test_incomplete_lists_everything (void)
{
  GError *e = NULL;
  touch ("config.json");
  g_assert_null (la_model_paths_resolve (root, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  const char *want[] = { "diffusion_pytorch_model.safetensors.index.json", "Wan2.1_VAE.pth",
                         "models_t5_umt5-xxl-enc-bf16.pth", "spiece.model", "wav2vec2-large-xlsr-53-english" };
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    g_assert_nonnull (strstr (e->message, want[i]));
  g_autofree char *present = g_build_filename (root, "config.json", NULL);
  g_assert_null (strstr (e->message, present));             /* present: not listed */
  g_clear_error (&e);
}

static void
test_complete (void)
{
  GError *e = NULL;
  touch ("diffusion_pytorch_model.safetensors.index.json");
  touch ("Wan2.1_VAE.pth");
  touch ("models_t5_umt5-xxl-enc-bf16.pth");
  touch ("google/umt5-xxl/spiece.model");
  touch ("wav2vec2-large-xlsr-53-english/config.json");
  touch ("wav2vec2-large-xlsr-53-english/pytorch_model.bin");
  g_autoptr (LaModelPaths) p = la_model_paths_resolve (root, NULL, &e);
  g_assert_no_error (e);
  g_assert_true (g_str_has_suffix (p->wav2vec_weights, "pytorch_model.bin"));
  g_assert_null (p->lora);

  /* LoRA in the Hugging Face cache layout. */
  touch ("LiveAvatar/models--Quark-Vision--Live-Avatar/snapshots/abc123/liveavatar.safetensors");
  g_autofree char *ldir = g_build_filename (root, "LiveAvatar", NULL);
  g_autoptr (LaModelPaths) q = la_model_paths_resolve (root, ldir, &e);
  g_assert_no_error (e);
  g_assert_true (g_str_has_suffix (q->lora, "snapshots/abc123/liveavatar.safetensors"));

  /* A LoRA path that does not exist is named. */
  g_assert_null (la_model_paths_resolve (root, "/nonexistent/lora.safetensors", &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "/nonexistent/lora.safetensors"));
  g_clear_error (&e);
  g_assert_null (la_model_paths_resolve ("/nonexistent-folder", NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_clear_error (&e);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  root = g_dir_make_tmp ("la-model-XXXXXX", NULL);
  g_test_add_func ("/model-paths/incomplete", test_incomplete_lists_everything);
  g_test_add_func ("/model-paths/complete", test_complete);
  int r = g_test_run ();
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", root);
  (void) !system (cmd);
  return r;
}
