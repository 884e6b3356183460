/* test-published-tree — the tree liveavatar-mkmodel --preset full writes
 * (both published downloads, every width as published, depth shrunk to 2
 * DiT / 1 umT5 / 1 wav2vec2 layers) checked file by file, counted against
 * the published 1,260 DiT / 896 LoRA tensors by formula, and loaded through
 * the element's own path (la_model_bundle_load: resolver, readers, LoRA
 * merge, model constructors) at dim 5120.
 *
 * Needs ~1 GB of disk (holes aside) and several GB of memory while weights
 * are f32; the peak RSS is reported with g_test_message.
 */
#include <liveavatar/liveavatar.h>
#include "session/la-model-bundle.h"
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define DIT_LAYERS 2

static char *root, *model, *lora_dir;

/* Blocks that carry an audio injector among the first `layers` (the
 * published list, truncated as the generator does). */
static int
n_inject (int layers)
{
  static const int inj[] = { 0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39 };
  int n = 0;
  for (guint j = 0; j < G_N_ELEMENTS (inj); j++)
    n += inj[j] < layers;
  return n;
}

/* 36 top-level tensors (embeddings, head, frame packer, audio encoder),
 * 27 per block, 12 per audio injector (q/k/v/o + biases, 2 norms, adain). */
static int
dit_tensors (int layers)
{
  return 36 + 27 * layers + 12 * n_inject (layers);
}

/* One A/B pair per target: 10 linears per block, q/k/v/o per injector. */
static int
lora_tensors (int layers)
{
  return 2 * (10 * layers + 4 * n_inject (layers));
}

static char *
path (const char *rel)
{
  return g_build_filename (model, rel, NULL);
}

static void
test_layout (void)
{
  static const char *files[] = {
    "config.json", "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model-00001-of-00004.safetensors", "diffusion_pytorch_model-00002-of-00004.safetensors",
    "diffusion_pytorch_model-00003-of-00004.safetensors", "diffusion_pytorch_model-00004-of-00004.safetensors",
    "Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth", "google/umt5-xxl/spiece.model",
    "google/umt5-xxl/tokenizer.json", "wav2vec2-large-xlsr-53-english/config.json",
    "wav2vec2-large-xlsr-53-english/model.safetensors", "wav2vec2-large-xlsr-53-english/pytorch_model.bin",
    "wav2vec2-large-xlsr-53-english/preprocessor_config.json",
  };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *p = path (files[i]);
    g_assert_true (g_file_test (p, G_FILE_TEST_IS_REGULAR));
  }
  g_autofree char *lp = g_build_filename (lora_dir, "liveavatar.safetensors", NULL);
  g_assert_true (g_file_test (lp, G_FILE_TEST_IS_REGULAR));

  /* config.json as diffusers writes it: the ignore_for_config keys absent */
  g_autofree char *cfg = path ("config.json");
  g_autoptr (JsonParser) jp = json_parser_new ();
  g_assert_true (json_parser_load_from_file (jp, cfg, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (jp));
  static const char *ignored[] = { "patch_size", "cross_attn_norm", "qk_norm", "text_dim", "window_size" };
  for (guint i = 0; i < G_N_ELEMENTS (ignored); i++)
    g_assert_false (json_object_has_member (o, ignored[i]));
  g_assert_cmpstr (json_object_get_string_member (o, "_class_name"), ==, "WanModel_S2V");
  g_assert_true (json_object_has_member (o, "_diffusers_version"));
  g_assert_cmpint (json_object_get_int_member (o, "dim"), ==, 5120);

  /* dtypes as published; big matrices are holes on disk */
  GError *e = NULL;
  g_autofree char *idx = path ("diffusion_pytorch_model.safetensors.index.json");
  g_autoptr (LaCheckpoint) dit = la_checkpoint_open (idx, &e);
  g_assert_no_error (e);
  const char * const *names = la_checkpoint_names (dit);
  for (int i = 0; names[i]; i++)
    g_assert_cmpint (la_checkpoint_get (dit, names[i])->dtype, ==, LA_DTYPE_BF16);
  LaTensor *ffn = la_checkpoint_get (dit, "blocks.1.ffn.0.weight");
  g_assert_nonnull (ffn);
  g_assert_cmpint (ffn->shape[0], ==, 13824);
  g_autofree char *t5p = path ("models_t5_umt5-xxl-enc-bf16.pth");
  g_autoptr (LaCheckpoint) t5 = la_checkpoint_open (t5p, &e);
  g_assert_no_error (e);
  LaTensor *emb = la_checkpoint_get (t5, "token_embedding.weight");
  g_assert_cmpint (emb->dtype, ==, LA_DTYPE_BF16);
  g_assert_cmpint (emb->shape[0], ==, 256384);
  GStatBuf st;
  g_assert_cmpint (g_stat (t5p, &st), ==, 0);
  g_test_message ("umT5 file: %" G_GINT64_FORMAT " bytes, %" G_GINT64_FORMAT " on disk",
                  (gint64) st.st_size, (gint64) st.st_blocks * 512);
  g_assert_cmpint ((gint64) st.st_blocks * 512, <, (gint64) st.st_size / 16);
  g_autofree char *vp = path ("Wan2.1_VAE.pth");
  g_autoptr (LaCheckpoint) vae = la_checkpoint_open (vp, &e);
  g_assert_no_error (e);
  g_assert_cmpint (la_checkpoint_get (vae, la_checkpoint_names (vae)[0])->dtype, ==, LA_DTYPE_F32);
  /* the two wav2vec2 weight files hold the same tensors */
  g_autofree char *ws = path ("wav2vec2-large-xlsr-53-english/model.safetensors");
  g_autofree char *wb = path ("wav2vec2-large-xlsr-53-english/pytorch_model.bin");
  g_autoptr (LaCheckpoint) w1 = la_checkpoint_open (ws, &e);
  g_autoptr (LaCheckpoint) w2 = w1 ? la_checkpoint_open (wb, &e) : NULL;
  g_assert_no_error (e);
  g_assert_cmpuint (la_checkpoint_size (w1), ==, la_checkpoint_size (w2));
  g_assert_cmpstr (la_checkpoint_digest (w1), ==, la_checkpoint_digest (w2));
}

/* "# FILE: N tensors" of liveavatar-inspect, for the file whose name ends in `suffix`. */
static int
inspect_count (const char *out, const char *suffix)
{
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    char *colon = g_strrstr (lines[i], ": ");
    if (lines[i][0] == '#' && colon && g_str_has_suffix (lines[i], " tensors")) {
      *colon = 0;
      if (g_str_has_suffix (lines[i], suffix))
        return atoi (colon + 2);
    }
  }
  return -1;
}

static void
test_counts (void)
{
  /* the published tree, by the same formulas */
  g_assert_cmpint (dit_tensors (40), ==, 1260);
  g_assert_cmpint (lora_tensors (40), ==, 896);

  const char *inspect = g_getenv ("LA_INSPECT");
  if (!inspect) {
    g_test_skip ("LA_INSPECT (the liveavatar-inspect path) is not set; meson test sets it");
    return;
  }
  const char *argv[] = { inspect, model, "--lora", lora_dir, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status;
  GError *e = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &e));
  g_assert_no_error (e);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_cmpint (inspect_count (out, "diffusion_pytorch_model.safetensors.index.json"), ==, dit_tensors (DIT_LAYERS));
  g_assert_cmpint (inspect_count (out, "liveavatar.safetensors"), ==, lora_tensors (DIT_LAYERS));
}

static void
test_load (void)
{
  GError *e = NULL;
  LaBackend *be = la_backend_cpu_new (0);
  gint64 t0 = g_get_monotonic_time ();
  LaModelBundle *b = la_model_bundle_load (be, model, lora_dir, LA_WEIGHTS_FILE, LA_MODEL_PARTS_ALL, &e);
  g_assert_no_error (e);
  g_assert_nonnull (b);
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  g_test_message ("full-width tree (%d DiT layers at dim 5120, 1 umT5, 1 wav2vec2 layer) loaded in %.1f s, "
                  "peak RSS %.2f GB", DIT_LAYERS, (g_get_monotonic_time () - t0) / 1e6, ru.ru_maxrss * 1024.0 / 1e9);
  /* text_dim and patch_size are absent from config.json: the defaults hold */
  g_assert_cmpint (b->dit_cfg.dim, ==, 5120);
  g_assert_cmpint (b->dit_cfg.text_dim, ==, 4096);
  g_assert_cmpint (b->dit_cfg.patch_size[1], ==, 2);
  g_assert_cmpint (b->dit_cfg.num_layers, ==, DIT_LAYERS);
  g_assert_cmpint (b->dit_cfg.n_inject, ==, n_inject (DIT_LAYERS));
  g_assert_cmpint (b->lora.rank, ==, LA_LORA_RANK);
  g_assert_cmpuint (b->lora.n_merged, ==, lora_tensors (DIT_LAYERS) / 2);
  g_assert_cmpint (la_t5_encoder_config (b->t5)->num_layers, ==, 1);
  g_assert_cmpint (la_t5_encoder_config (b->t5)->vocab, ==, 256384);
  g_assert_cmpint (la_wav2vec2_get_config (b->w2v)->hidden_size, ==, 1024);
  g_assert_cmpint (la_wav2vec2_get_config (b->w2v)->num_layers, ==, 1);
  /* the bf16 files' linears stay bf16 (issue 14): the DiT's bf16 bytes dominate */
  g_assert_cmpuint (b->resident[LA_MODEL_PART_DIT][LA_DTYPE_BF16], >, 5 * b->resident[LA_MODEL_PART_DIT][LA_DTYPE_F32]);
  g_assert_cmpuint (b->resident[LA_MODEL_PART_T5][LA_DTYPE_BF16], >, 0);
  la_model_bundle_free (b);
  la_backend_unref (be);
}

static void
rm_rf (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  for (const char *n; d && (n = g_dir_read_name (d));) {
    g_autofree char *p = g_build_filename (dir, n, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR))
      rm_rf (p);
    else
      g_unlink (p);
  }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  GError *e = NULL;
  root = g_dir_make_tmp ("la-published-XXXXXX", &e);
  g_assert_no_error (e);
  model = g_build_filename (root, "Wan2.2-S2V-14B", NULL);
  lora_dir = g_build_filename (root, "LiveAvatar", NULL);
  LaFullTreeOptions opt = { .dit_layers = DIT_LAYERS, .t5_layers = 1, .wav2vec2_layers = 1, .seed = 3 };
  if (!la_model_write_full (root, &opt, &e))
    g_error ("writing the full-width tree: %s", e->message);
  g_test_add_func ("/published-tree/layout", test_layout);
  g_test_add_func ("/published-tree/counts", test_counts);
  g_test_add_func ("/published-tree/load", test_load);
  int rc = g_test_run ();
  rm_rf (root);
  g_free (root);
  g_free (model);
  g_free (lora_dir);
  return rc;
}
