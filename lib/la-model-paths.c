/* la-model-paths.c — finding every file of the official model folder. */
#include "la-model.h"
#include "liveavatar/la-error.h"

void
la_model_paths_free (LaModelPaths *p)
{
  if (!p)
    return;
  g_free (p->root);
  g_free (p->dit_config);
  g_free (p->dit_weights);
  g_free (p->vae);
  g_free (p->t5);
  g_free (p->tokenizer);
  g_free (p->wav2vec_dir);
  g_free (p->wav2vec_config);
  g_free (p->wav2vec_weights);
  g_free (p->lora);
  g_free (p->overrides);
  g_free (p);
}

/* First existing candidate, or NULL after noting `want` as missing. */
static char *
find_one (GPtrArray *missing, const char *want, const char *dir, ...)
{
  va_list ap;
  va_start (ap, dir);
  for (const char *c = va_arg (ap, const char *); c; c = va_arg (ap, const char *)) {
    char *p = g_build_filename (dir, c, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
      va_end (ap);
      return p;
    }
    g_free (p);
  }
  va_end (ap);
  g_ptr_array_add (missing, g_build_filename (dir, want, NULL));
  return NULL;
}

static char *
resolve_lora (const char *lora, GPtrArray *missing)
{
  if (g_file_test (lora, G_FILE_TEST_IS_REGULAR))
    return g_strdup (lora);
  if (g_file_test (lora, G_FILE_TEST_IS_DIR)) {
    char *p = g_build_filename (lora, "liveavatar.safetensors", NULL);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
      return p;
    g_free (p);
    /* huggingface-cli with cache_dir: models--Quark-Vision--Live-Avatar/snapshots/<rev>/ */
    g_autofree char *snaps = g_build_filename (lora, "models--Quark-Vision--Live-Avatar", "snapshots", NULL);
    g_autoptr (GDir) d = g_dir_open (snaps, 0, NULL);
    for (const char *rev; d && (rev = g_dir_read_name (d));) {
      p = g_build_filename (snaps, rev, "liveavatar.safetensors", NULL);
      if (g_file_test (p, G_FILE_TEST_EXISTS))
        return p;
      g_free (p);
    }
    g_ptr_array_add (missing, g_build_filename (lora, "liveavatar.safetensors", NULL));
    return NULL;
  }
  g_ptr_array_add (missing, g_strdup (lora));
  return NULL;
}

LaModelPaths *
la_model_paths_resolve (const char *folder, const char *lora, GError **error)
{
  if (!folder || !g_file_test (folder, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "model folder %s does not exist", folder ? folder : "(null)");
    return NULL;
  }
  g_autoptr (GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  LaModelPaths *p = g_new0 (LaModelPaths, 1);
  p->root = g_strdup (folder);
  p->dit_config = find_one (missing, "config.json", folder, "config.json", NULL);
  p->dit_weights = find_one (missing, "diffusion_pytorch_model.safetensors.index.json", folder,
                             "diffusion_pytorch_model.safetensors.index.json",
                             "diffusion_pytorch_model.safetensors", NULL);
  p->vae = find_one (missing, "Wan2.1_VAE.pth", folder, "Wan2.1_VAE.pth", NULL);
  p->t5 = find_one (missing, "models_t5_umt5-xxl-enc-bf16.pth", folder, "models_t5_umt5-xxl-enc-bf16.pth", NULL);
  g_autofree char *tok_dir = g_build_filename (folder, "google", "umt5-xxl", NULL);
  p->tokenizer = find_one (missing, "spiece.model", tok_dir, "spiece.model", NULL);
  p->wav2vec_dir = g_build_filename (folder, "wav2vec2-large-xlsr-53-english", NULL);
  p->wav2vec_config = find_one (missing, "config.json", p->wav2vec_dir, "config.json", NULL);
  p->wav2vec_weights = find_one (missing, "model.safetensors", p->wav2vec_dir,
                                 "model.safetensors", "pytorch_model.bin", NULL);
  if (lora && *lora)
    p->lora = resolve_lora (lora, missing);
  p->overrides = g_build_filename (folder, "liveavatar.json", NULL);
  if (!g_file_test (p->overrides, G_FILE_TEST_IS_REGULAR))
    g_clear_pointer (&p->overrides, g_free);

  if (missing->len) {
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < missing->len; i++)
      g_string_append_printf (s, "%s%s", i ? ", " : "", (char *) missing->pdata[i]);
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "model folder %s is incomplete; missing %u file%s: %s",
                 folder, missing->len, missing->len > 1 ? "s" : "", s->str);
    g_string_free (s, TRUE);
    la_model_paths_free (p);
    return NULL;
  }
  return p;
}
