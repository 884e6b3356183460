/* liveavatar-golden — checks golden cases produced by the official code.
 *
 *   liveavatar-golden [--verbose] [--device cuda[:N] [--bf16]] [--stages N] CASE_DIR...
 *
 * Each case is dispatched by case.json's "case" to its component's runner;
 * the tolerances come from the case's tolerance_guidance (fp32 figures),
 * else the golden README's defaults.  Prints per-tensor max-abs and relative
 * L2, ends with "N passed, M failed", exits non-zero on any failure.
 */
#include "golden.h"
#include "la-device.h"
#include <string.h>
#include <stdlib.h>

static const struct { const char *prefix; GoldenRunFunc run; } kinds[] = {
  { "dit_stream", golden_run_dit_stream },
  { "wav2vec2", golden_run_wav2vec2 },
  { "audio", golden_run_audio },
  { "vae", golden_run_vae },
  { "t5", golden_run_t5 },
};

/* First "<key> <= <number>" in the guidance text: the fp32 figures come first. */
static gboolean
guidance_value (const char *text, const char *key, double *out)
{
  g_autofree char *pattern = g_strdup_printf ("%s\\s*<=\\s*([0-9.eE+-]+)", key);
  g_autoptr (GRegex) re = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) mi = NULL;
  if (!g_regex_match (re, text, 0, &mi))
    return FALSE;
  g_autofree char *num = g_match_info_fetch (mi, 1);
  *out = g_ascii_strtod (num, NULL);
  return *out > 0;
}

static LaCheckpoint *
open_optional (const char *dir, const char *file, GError **error)
{
  g_autofree char *p = g_build_filename (dir, file, NULL);
  if (!g_file_test (p, G_FILE_TEST_EXISTS))
    return NULL;
  return la_safetensors_open (p, error);
}

/* The bf16 figure of the guidance ("a bf16 implementation needs ~1e-2 rel"). */
static gboolean
guidance_bf16_rel (const char *text, double *out)
{
  g_autoptr (GRegex) re = g_regex_new ("bf16[^.;]*?~\\s*([0-9.eE+-]+)\\s*rel", 0, 0, NULL);
  g_autoptr (GMatchInfo) mi = NULL;
  if (!g_regex_match (re, text, 0, &mi))
    return FALSE;
  g_autofree char *num = g_match_info_fetch (mi, 1);
  *out = g_ascii_strtod (num, NULL);
  return *out > 0;
}

static gboolean
run_case (const char *dir, int stages, int remote, gboolean verbose, gboolean bf16, LaBackend *be, GError **error)
{
  GoldenCase c = { .dir = g_strdup (dir), .stages = stages, .remote = remote, .verbose = verbose, .backend = be,
                   .bf16 = bf16, .tol_max_abs = 2e-4, .tol_rel_l2 = 2e-5 };
  gboolean ok = FALSE;
  GError *e = NULL;
  g_autofree char *json = g_build_filename (dir, "case.json", NULL);
  c.parser = json_parser_new ();
  if (!json_parser_load_from_file (c.parser, json, &e)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: %s", json, e->message);
    g_error_free (e);
    goto out;
  }
  JsonNode *root = json_parser_get_root (c.parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root) || !json_object_has_member (json_node_get_object (root), "case")) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: no \"case\" member", json);
    goto out;
  }
  c.obj = json_node_get_object (root);
  c.kind = json_object_get_string_member (c.obj, "case");
  const char *guide = json_object_get_string_member_with_default (c.obj, "tolerance_guidance", "");
  guidance_value (guide, "max_abs", &c.tol_max_abs);
  guidance_value (guide, "rel_l2", &c.tol_rel_l2);
  if (bf16) {
    /* bf16 rounds at ~4e-3 relative per op: the relative L2 is the measure;
     * max-abs catches outliers (a wrong row or token) at 2x that, of the
     * tensor's range (measured on the emulated device: at most 0.73 %). */
    if (!g_str_has_prefix (c.kind ? c.kind : "", "dit_stream") || !guidance_bf16_rel (guide, &c.tol_rel_l2)) {
      g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG, "%s: --bf16 is for dit_stream cases whose "
                   "tolerance_guidance gives the bf16 relative error", dir);
      goto out;
    }
    c.tol_max_abs = -2 * c.tol_rel_l2;      /* negative: relative to the expected tensor's max |x| */
  }
  if (!(c.weights = open_optional (dir, "weights.safetensors", error)) && error && *error) goto out;
  if (!(c.inputs = open_optional (dir, "inputs.safetensors", error)) && error && *error) goto out;
  if (!(c.outputs = open_optional (dir, "outputs.safetensors", error)) && error && *error) goto out;
  if (!(c.intermediates = open_optional (dir, "intermediates.safetensors", error)) && error && *error) goto out;

  GoldenRunFunc run = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (g_str_has_prefix (c.kind, kinds[i].prefix))
      run = kinds[i].run;
  if (!run) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_IMPLEMENTED, "%s: unknown case kind '%s'", dir, c.kind);
    goto out;
  }
  if (c.tol_max_abs < 0)
    g_print ("case %s (%s), bf16 tolerance max_abs %.1g*max|x| rel_l2 %.1g\n", dir, c.kind, -c.tol_max_abs,
             c.tol_rel_l2);
  else
    g_print ("case %s (%s), tolerance max_abs %.1g rel_l2 %.1g\n", dir, c.kind, c.tol_max_abs, c.tol_rel_l2);
  if (!run (&c, error))
    goto out;
  if (c.n_compared == 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_FAILED, "%s: the runner compared no tensor", dir);
    goto out;
  }
  g_print ("  %d tensors compared, %d failed\n", c.n_compared, c.n_failed);
  ok = c.n_failed == 0;
out:
  if (c.weights) la_checkpoint_unref (c.weights);
  if (c.inputs) la_checkpoint_unref (c.inputs);
  if (c.outputs) la_checkpoint_unref (c.outputs);
  if (c.intermediates) la_checkpoint_unref (c.intermediates);
  g_clear_object (&c.parser);
  g_free (c.dir);
  return ok;
}

int
main (int argc, char **argv)
{
  int stages = 0, remote = 0;
  gboolean verbose = FALSE, bf16 = FALSE;
  char *device = NULL;
  g_auto (GStrv) dirs = NULL;
  GOptionEntry entries[] = {
    { "stages", 's', 0, G_OPTION_ARG_INT, &stages, "Run the DiT through N pipeline stages (TPP)", "N" },
    { "remote", 'r', 0, G_OPTION_ARG_INT, &remote, "With --stages: the last K DiT stages are stage workers on "
      "the loopback (the stage protocol)", "K" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Print every compared tensor", NULL },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Backend: cpu (default) or cuda[:N]", "DEV" },
    { "bf16", 0, 0, G_OPTION_ARG_NONE, &bf16, "dit_stream cases at the GPU precision: bf16 weights, KV caches and "
      "activations (CUDA), at the case's bf16 tolerance", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &dirs, NULL, "CASE_DIR..." },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("CASE_DIR... — check golden cases");
  g_option_context_add_main_entries (ctx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !dirs) {
    g_printerr ("liveavatar-golden: %s\n", error ? error->message : "no case directory given");
    return 2;
  }
  if (bf16 && !(device && g_str_has_prefix (device, "cuda"))) {
    g_printerr ("liveavatar-golden: --bf16 needs --device cuda (the CPU ops read f32)\n");
    return 2;
  }
  LaBackend *be = la_device_open (device ? device : "cpu", bf16 ? LA_WEIGHTS_BF16 : LA_WEIGHTS_F32, 0, &error);
  if (!be) {
    g_printerr ("liveavatar-golden: %s\n", error->message);
    return device && g_str_has_prefix (device, "cuda") ? 77 : 2;
  }

  int passed = 0, failed = 0;
  for (int i = 0; dirs[i]; i++) {
    if (run_case (dirs[i], stages, remote, verbose, bf16, be, &error)) {
      g_print ("PASS %s\n", dirs[i]);
      passed++;
    } else {
      g_print ("FAIL %s%s%s\n", dirs[i], error ? ": " : "", error ? error->message : "");
      g_clear_error (&error);
      failed++;
    }
  }
  la_backend_unref (be);
  g_free (device);
  g_print ("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
