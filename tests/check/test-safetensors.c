/* safetensors round trip, sharded index, folder detection and require(). */
#include <liveavatar/liveavatar.h>
#include "la-checkpoint.h"
#include <glib/gstdio.h>
#include <string.h>

static char *tmpdir;

static LaCheckpoint *
make_ck (void)
{
  LaCheckpoint *ck = la_checkpoint_new ();
  g_autoptr (LaTensor) a = la_tensor_new_v (LA_DTYPE_F32, 2, 3, -1);
  g_autoptr (LaTensor) b = la_tensor_new_v (LA_DTYPE_BF16, 4, -1);
  g_autoptr (LaTensor) c = la_tensor_new_v (LA_DTYPE_I64, 2, -1);
  for (int i = 0; i < 6; i++)
    la_tensor_f32 (a)[i] = (float) i * 0.5f;
  ((uint16_t *) b->data)[2] = la_f32_to_bf16 (3.0f);
  ((int64_t *) c->data)[1] = -42;
  la_checkpoint_add (ck, "blocks.0.weight", a);
  la_checkpoint_add (ck, "head \"quoted\" \xc3\xa9", b);
  la_checkpoint_add (ck, "ids", c);
  return ck;
}

static void
test_roundtrip (void)
{
  GError *e = NULL;
  g_autoptr (LaCheckpoint) ck = make_ck ();
  g_autofree char *p = g_build_filename (tmpdir, "a.safetensors", NULL);
  g_assert_true (la_safetensors_write (p, ck, &e));
  g_assert_no_error (e);
  g_autoptr (LaCheckpoint) r = la_checkpoint_open (p, &e);
  g_assert_no_error (e);
  g_assert_cmpuint (la_checkpoint_size (r), ==, 3);
  LaTensor *a = la_checkpoint_get (r, "blocks.0.weight");
  g_assert_nonnull (a);
  g_assert_cmpint (a->dtype, ==, LA_DTYPE_F32);
  g_assert_cmpfloat (la_tensor_f32 (a)[5], ==, 2.5f);
  LaTensor *b = la_checkpoint_get (r, "head \"quoted\" \xc3\xa9");
  g_assert_nonnull (b);
  g_assert_cmpfloat (la_bf16_to_f32 (((uint16_t *) b->data)[2]), ==, 3.0f);
  g_assert_cmpint (((int64_t *) la_checkpoint_get (r, "ids")->data)[1], ==, -42);
  const char * const *names = la_checkpoint_names (r);
  g_assert_cmpstr (names[0], ==, "blocks.0.weight");
  g_assert_null (names[3]);

  int64_t want[2] = { 2, 3 };
  g_assert_nonnull (la_checkpoint_require (r, "blocks.0.weight", 2, want, &e));
  int64_t wrong[2] = { 3, 2 };
  g_assert_null (la_checkpoint_require (r, "blocks.0.weight", 2, wrong, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_assert_nonnull (strstr (e->message, "blocks.0.weight"));
  g_assert_nonnull (strstr (e->message, p));
  g_clear_error (&e);
  g_assert_null (la_checkpoint_require (r, "nope", -1, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "nope"));
  g_clear_error (&e);
}

static void
write_file (const char *name, const char *text)
{
  g_autofree char *p = g_build_filename (tmpdir, name, NULL);
  g_assert_true (g_file_set_contents (p, text, -1, NULL));
}

static void
test_sharded (void)
{
  GError *e = NULL;
  g_autoptr (LaCheckpoint) s1 = la_checkpoint_new ();
  g_autoptr (LaCheckpoint) s2 = la_checkpoint_new ();
  g_autoptr (LaTensor) x = la_tensor_new_v (LA_DTYPE_F32, 4, -1);
  g_autoptr (LaTensor) y = la_tensor_new_v (LA_DTYPE_F16, 2, 2, -1);
  la_checkpoint_add (s1, "x", x);
  la_checkpoint_add (s2, "y", y);
  g_autofree char *dir = g_build_filename (tmpdir, "sharded", NULL);
  g_mkdir_with_parents (dir, 0755);
  g_autofree char *p1 = g_build_filename (dir, "m-00001-of-00002.safetensors", NULL);
  g_autofree char *p2 = g_build_filename (dir, "m-00002-of-00002.safetensors", NULL);
  g_assert_true (la_safetensors_write (p1, s1, &e));
  g_assert_true (la_safetensors_write (p2, s2, &e));
  write_file ("sharded/diffusion_pytorch_model.safetensors.index.json",
              "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"x\":\"m-00001-of-00002.safetensors\","
              "\"y\":\"m-00002-of-00002.safetensors\"}}");
  g_autoptr (LaCheckpoint) r = la_checkpoint_open (dir, &e);   /* folder detection */
  g_assert_no_error (e);
  g_assert_cmpuint (la_checkpoint_size (r), ==, 2);
  g_assert_cmpint (la_checkpoint_get (r, "y")->dtype, ==, LA_DTYPE_F16);

  /* A weight_map entry absent from its shard is an error naming it. */
  write_file ("sharded/bad.index.json",
              "{\"weight_map\":{\"x\":\"m-00001-of-00002.safetensors\",\"z\":\"m-00002-of-00002.safetensors\"}}");
  g_autofree char *bad = g_build_filename (dir, "bad.index.json", NULL);
  g_assert_null (la_checkpoint_open (bad, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "'z'"));
  g_clear_error (&e);
  /* A shard outside the folder is refused. */
  write_file ("sharded/evil.index.json", "{\"weight_map\":{\"x\":\"../a.safetensors\"}}");
  g_autofree char *evil = g_build_filename (dir, "evil.index.json", NULL);
  g_assert_null (la_checkpoint_open (evil, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_FORMAT);
  g_clear_error (&e);
  /* A missing shard names the file. */
  write_file ("sharded/gone.index.json", "{\"weight_map\":{\"x\":\"nothere.safetensors\"}}");
  g_autofree char *gone = g_build_filename (dir, "gone.index.json", NULL);
  g_assert_null (la_checkpoint_open (gone, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "nothere.safetensors"));
  g_clear_error (&e);
}

static void
test_golden_files (void)
{
  const char *dir = g_getenv ("LA_GOLDEN_DIR");
  if (!dir) {
    g_test_skip ("LA_GOLDEN_DIR not set");
    return;
  }
  GError *e = NULL;
  g_autofree char *p = g_build_filename (dir, "dit_stream", "weights.safetensors", NULL);
  g_autoptr (LaCheckpoint) ck = la_checkpoint_open (p, &e);
  g_assert_no_error (e);
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 141);
  LaTensor *t = la_checkpoint_get (ck, "patch_embedding.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->ndim, ==, 5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("la-st-XXXXXX", NULL);
  g_test_add_func ("/safetensors/roundtrip", test_roundtrip);
  g_test_add_func ("/safetensors/sharded", test_sharded);
  g_test_add_func ("/safetensors/golden", test_golden_files);
  int r = g_test_run ();
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmpdir);
  (void) !system (cmd);
  return r;
}
