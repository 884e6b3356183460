/* The process's model cache: sessions that load the same model folder,
 * LoRA, precision and device share one resident copy of the weights, and
 * each keeps its own stream state — two sessions running at once give the
 * frames one session gives alone. */
#include <liveavatar/liveavatar.h>
#include "la-model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *model_dir;

static LaSession *
new_session (const char *dir, LaWeights weights, GError **error)
{
  static guint8 img[96 * 160 * 3];
  for (int i = 0; i < (int) sizeof img; i++)
    img[i] = (guint8) ((i * 37) % 251);
  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = dir;
  p.lora = dir;
  p.ref_rgb = img;
  p.ref_width = 96;
  p.ref_height = 160;
  p.ref_stride = 96 * 3;
  p.prompt = "a person talking";
  p.max_area = 64 * 128;
  p.n_threads = 1;
  p.weights = weights;
  return la_session_new (&p, error);
}

static float *
make_audio (gsize n)
{
  float *a = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    a[i] = 0.3f * sinf ((float) i * 0.05f) * sinf ((float) i * 0.0007f);
  return a;
}

#define N_SAMPLES (2 * 12 * 640)

/* Feeds the same audio to every session in turn, chunk by chunk (so their
 * engine threads run at the same time), then drains them all. */
static void
run_together (LaSession **s, GPtrArray **frames, int n)
{
  g_autofree float *audio = make_audio (N_SAMPLES);
  GError *e = NULL;
  for (gsize off = 0; off < N_SAMPLES; off += 1600)
    for (int i = 0; i < n; i++) {
      g_assert_true (la_session_push_audio (s[i], audio + off, MIN (1600, N_SAMPLES - off), &e));
      g_assert_no_error (e);
      LaFrame *f;
      while ((f = la_session_pull_frame (s[i], 0, &e)))
        g_ptr_array_add (frames[i], f);
    }
  for (int i = 0; i < n; i++) {
    la_session_end_of_stream (s[i]);
    LaFrame *f;
    while ((f = la_session_pull_frame (s[i], -1, &e)))
      g_ptr_array_add (frames[i], f);
    g_assert_no_error (e);
  }
}

static void
assert_same_frames (GPtrArray *a, GPtrArray *b)
{
  g_assert_cmpuint (a->len, ==, b->len);
  g_assert_cmpuint (a->len, >, 0);
  for (guint i = 0; i < a->len; i++) {
    LaFrame *x = a->pdata[i], *y = b->pdata[i];
    g_assert_cmpint (x->index, ==, y->index);
    g_assert_cmpmem (x->rgb, (gsize) x->stride * x->height, y->rgb, (gsize) y->stride * y->height);
  }
}

static void
test_shared (void)
{
  GError *e = NULL;
  LaModelCacheStats st;

  /* one session alone */
  g_autoptr (GPtrArray) alone = g_ptr_array_new_with_free_func ((GDestroyNotify) la_frame_unref);
  LaSession *a = new_session (model_dir, LA_WEIGHTS_FILE, &e);
  g_assert_no_error (e);
  LaSessionStats sa;
  la_session_get_stats (a, &sa);
  g_assert_cmpuint (sa.weight_bytes, >, 0);
  la_model_cache_get_stats (&st);
  g_assert_cmpuint (st.n_models, ==, 1);
  g_assert_cmpuint (st.resident_bytes, ==, sa.weight_bytes);
  run_together (&a, &alone, 1);
  la_session_free (a);
  la_model_cache_get_stats (&st);
  g_assert_cmpuint (st.n_models, ==, 0);           /* freed with its last session */

  /* two sessions of the same model (one names the folder another way) */
  g_autofree char *other = g_build_filename (model_dir, ".", NULL);
  LaSession *s[2] = { new_session (model_dir, LA_WEIGHTS_FILE, &e), NULL };
  g_assert_no_error (e);
  s[1] = new_session (other, LA_WEIGHTS_FILE, &e);
  g_assert_no_error (e);
  la_model_cache_get_stats (&st);
  g_assert_cmpuint (st.n_models, ==, 1);
  g_assert_cmpuint (st.n_users, ==, 2);
  g_assert_cmpuint (st.resident_bytes, ==, sa.weight_bytes);   /* counted once */

  /* another precision is another model */
  LaSession *f32 = new_session (model_dir, LA_WEIGHTS_F32, &e);
  g_assert_no_error (e);
  LaSessionStats sf;
  la_session_get_stats (f32, &sf);
  la_model_cache_get_stats (&st);
  g_assert_cmpuint (st.n_models, ==, 2);
  g_assert_cmpuint (sf.weight_bytes, >, sa.weight_bytes);      /* the bf16 linears widened */
  g_assert_cmpuint (st.resident_bytes, ==, sa.weight_bytes + sf.weight_bytes);
  la_session_free (f32);

  GPtrArray *frames[2] = { g_ptr_array_new_with_free_func ((GDestroyNotify) la_frame_unref),
                           g_ptr_array_new_with_free_func ((GDestroyNotify) la_frame_unref) };
  run_together (s, frames, 2);
  assert_same_frames (alone, frames[0]);
  assert_same_frames (alone, frames[1]);
  for (int i = 0; i < 2; i++) {
    la_session_free (s[i]);
    g_ptr_array_unref (frames[i]);
  }
  la_model_cache_get_stats (&st);
  g_assert_cmpuint (st.n_models, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autofree char *dir = g_dir_make_tmp ("la-model-cache-XXXXXX", NULL);
  GError *e = NULL;
  if (!la_model_write_tiny (dir, 11, &e))
    g_error ("%s", e->message);
  model_dir = dir;
  g_test_add_func ("/model-cache/shared", test_shared);
  int rc = g_test_run ();
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    rc = 1;
  return rc;
}
