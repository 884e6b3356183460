/* liveavatar-inspect — the tensor inventory of a checkpoint file or model folder.
 *
 *   liveavatar-inspect FILE_OR_FOLDER [--lora FILE]
 *
 * A file (safetensors, *.index.json, torch.save zip) prints "name dtype shape"
 * per tensor; a model folder resolves every component (docs/design/formats.md §4) and prints
 * each one's inventory.  Exits 1 with a one-line error on a malformed or
 * unsupported input.
 */
#include <liveavatar/liveavatar.h>
#include "la-model.h"
#include <stdio.h>

static guint64
print_inventory (const char *title, LaCheckpoint *ck)
{
  const char * const *names = la_checkpoint_names (ck);
  guint64 bytes = 0;
  printf ("# %s: %u tensors\n", title, la_checkpoint_size (ck));
  for (int i = 0; names[i]; i++) {
    LaTensor *t = la_checkpoint_get (ck, names[i]);
    g_autofree char *shape = la_shape_to_string (t->ndim, t->shape);
    printf ("%s\t%s\t%s\n", names[i], la_dtype_name (t->dtype), shape);
    bytes += la_tensor_nbytes (t);
  }
  printf ("# %.3f MB\n", (double) bytes / 1e6);
  return bytes;
}

static gboolean
inspect_file (const char *path, GError **error)
{
  g_autoptr (LaCheckpoint) ck = la_checkpoint_open (path, error);
  if (!ck)
    return FALSE;
  print_inventory (path, ck);
  return TRUE;
}

int
main (int argc, char **argv)
{
  char *lora = NULL;
  g_auto (GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "lora", 'l', 0, G_OPTION_ARG_FILENAME, &lora, "Live-Avatar LoRA file or folder (with a model folder)", "PATH" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &args, NULL, "FILE_OR_FOLDER" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("FILE_OR_FOLDER — print a checkpoint's tensor inventory");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !args || g_strv_length (args) != 1) {
    fprintf (stderr, "liveavatar-inspect: %s\n", error ? error->message : "give one file or folder");
    return 2;
  }
  const char *path = args[0];
  gboolean ok;
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_autofree char *cfg = g_build_filename (path, "config.json", NULL);
    g_autofree char *vae = g_build_filename (path, "Wan2.1_VAE.pth", NULL);
    if (!g_file_test (vae, G_FILE_TEST_EXISTS)) {
      ok = inspect_file (path, &error);          /* a plain weights folder (HF wav2vec2, DiT only) */
    } else {
      g_autoptr (LaModelPaths) p = la_model_paths_resolve (path, lora, &error);
      ok = p != NULL;
      const char *parts[] = { p ? p->dit_weights : NULL, p ? p->vae : NULL, p ? p->t5 : NULL,
                              p ? p->wav2vec_weights : NULL, p ? p->lora : NULL };
      for (guint i = 0; ok && i < G_N_ELEMENTS (parts); i++)
        if (parts[i])
          ok = inspect_file (parts[i], &error);
      if (ok)
        printf ("# tokenizer: %s\n", p->tokenizer);
    }
  } else
    ok = inspect_file (path, &error);
  g_free (lora);
  if (!ok) {
    fprintf (stderr, "liveavatar-inspect: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  return 0;
}
