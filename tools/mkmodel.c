/* liveavatar-mkmodel — writes a generated model folder in the official
 * layout, key names and file formats (docs/design/formats.md §4; the file lists are in
 * lib/la-tiny-model.c).
 *
 *   liveavatar-mkmodel --preset tiny [--seed N] --out DIR
 *   liveavatar-mkmodel --preset full [--dit-layers N] [--t5-layers N] [--wav2vec2-layers N] --out DIR
 *
 * tiny has the golden cases' widths (DiT dim 96, 3 heads, 3 layers): every
 * component runs in seconds on a CPU.  full writes both published downloads
 * (DIR/Wan2.2-S2V-14B and DIR/LiveAvatar) with every published width; the
 * layer options shrink only the depth.  Its weights are not trained: tensors
 * of 2^24 elements or more (every DiT/umT5 matrix, the umT5 embedding) are
 * zeros stored as file holes, the rest seeded random, so even the 40-layer
 * tree takes little time and little disk.
 */
#include <liveavatar/liveavatar.h>
#include "la-model.h"
#include <stdio.h>

int
main (int argc, char **argv)
{
  char *preset = NULL, *out = NULL;
  gint64 seed = 0;
  LaFullTreeOptions full = { 0 };
  GOptionEntry entries[] = {
    { "preset", 'p', 0, G_OPTION_ARG_STRING, &preset, "tiny (default) or full", "NAME" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 0)", "N" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output folder", "DIR" },
    { "dit-layers", 0, 0, G_OPTION_ARG_INT, &full.dit_layers,
      "full: DiT blocks (default 40); the LoRA and audio injectors follow", "N" },
    { "t5-layers", 0, 0, G_OPTION_ARG_INT, &full.t5_layers, "full: umT5 blocks (default 24)", "N" },
    { "wav2vec2-layers", 0, 0, G_OPTION_ARG_INT, &full.wav2vec2_layers, "full: wav2vec2 layers (default 24; fewer loads, but cannot generate: the DiT weighs 25 hidden states)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— write a generated model folder in the official layout");
  g_option_context_set_description (ctx,
      "Weights are not trained.  tiny: seeded random.  full: tensors of 2^24 elements or more are\n"
      "zeros stored as file holes (sparse), smaller ones seeded random; the 40-layer tree has the\n"
      "published sizes (about 45 GB apparent) but takes a few GB of disk.\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !out) {
    fprintf (stderr, "liveavatar-mkmodel: %s\n", error ? error->message : "--out DIR is required");
    return 2;
  }
  int rc = 0;
  gboolean is_full = g_strcmp0 (preset, "full") == 0;
  if (preset && !is_full && g_strcmp0 (preset, "tiny") != 0) {
    fprintf (stderr, "liveavatar-mkmodel: unknown preset '%s' (tiny or full)\n", preset);
    rc = 2;
  } else if (!is_full && (full.dit_layers || full.t5_layers || full.wav2vec2_layers)) {
    fprintf (stderr, "liveavatar-mkmodel: --dit-layers/--t5-layers/--wav2vec2-layers apply to --preset full\n");
    rc = 2;
  } else if (full.dit_layers < 0 || full.t5_layers < 0 || full.wav2vec2_layers < 0) {
    fprintf (stderr, "liveavatar-mkmodel: layer counts must be positive\n");
    rc = 2;
  } else if (is_full) {
    full.seed = (guint64) seed;
    g_autofree char *model = g_build_filename (out, "Wan2.2-S2V-14B", NULL);
    g_autofree char *lora = g_build_filename (out, "LiveAvatar", NULL);
    g_autoptr (LaModelPaths) p = NULL;
    if (!la_model_write_full (out, &full, &error) || !(p = la_model_paths_resolve (model, lora, &error)))
      rc = 1;
    else
      printf ("full-width model written to %s (model %s, LoRA %s)\n", out, model, lora);
  } else {
    g_autoptr (LaModelPaths) p = NULL;
    if (!la_model_write_tiny (out, (guint64) seed, &error) || !(p = la_model_paths_resolve (out, out, &error)))
      rc = 1;
    else
      printf ("tiny model written to %s\n", out);
  }
  if (rc == 1) {
    fprintf (stderr, "liveavatar-mkmodel: %s\n", error->message);
    g_error_free (error);
  }
  g_free (preset);
  g_free (out);
  return rc;
}
