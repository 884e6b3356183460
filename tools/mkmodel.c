/* liveavatar-mkmodel — writes a complete random-weight model folder in the
 * official layout, key names and file formats (io.md §6.1; the file list
 * is in lib/la-tiny-model.c).
 *
 *   liveavatar-mkmodel --preset tiny [--seed N] --out DIR
 *
 * The tiny preset has the golden cases' widths (DiT dim 96, 3 heads, 3
 * layers) so every component is exercised in seconds on a CPU.  The full
 * 14B shapes are not written to disk (56 GB of f32 to generate): the bench
 * builds them in memory on the device.
 */
#include <liveavatar/liveavatar.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
  char *preset = NULL, *out = NULL;
  gint64 seed = 0;
  GOptionEntry entries[] = {
    { "preset", 'p', 0, G_OPTION_ARG_STRING, &preset, "tiny (default) or full", "NAME" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 0)", "N" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output folder", "DIR" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— write a random-weight model folder in the official layout");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !out) {
    fprintf (stderr, "liveavatar-mkmodel: %s\n", error ? error->message : "--out DIR is required");
    return 2;
  }
  int rc = 0;
  if (!preset || g_strcmp0 (preset, "tiny") == 0) {
    if (!la_model_write_tiny (out, (guint64) seed, &error))
      rc = 1;
    else {
      g_autoptr (LaModelPaths) p = la_model_paths_resolve (out, out, &error);
      if (!p)
        rc = 1;
      else
        printf ("tiny model written to %s\n", out);
    }
  } else if (g_strcmp0 (preset, "full") == 0) {
    fprintf (stderr, "liveavatar-mkmodel: the full 14B preset is not written to disk; "
                     "use liveavatar-bench --preset full, which generates the weights in memory\n");
    rc = 2;
  } else {
    fprintf (stderr, "liveavatar-mkmodel: unknown preset '%s' (tiny or full)\n", preset);
    rc = 2;
  }
  if (rc == 1) {
    fprintf (stderr, "liveavatar-mkmodel: %s\n", error->message);
    g_error_free (error);
  }
  g_free (preset);
  g_free (out);
  return rc;
}
