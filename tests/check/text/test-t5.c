/* test-t5.c — the umT5 encoder on tiny configs other than the golden case:
 *  - against a plain double-precision host implementation of docs/design/text.md §3
 *    (dim_attn != dim, odd head counts, several layers);
 *  - padding independence: the real-token outputs of (ids + padding, mask)
 *    equal those of the real tokens alone (what the runtime relies on);
 *  - bf16 weights (the .pth dtype) load and agree with the rounded f32 ones;
 *  - bad inputs are GErrors (id out of range, missing / mis-shaped tensor,
 *    config disagreeing with the weights). */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <liveavatar/liveavatar.h>
#include "la-text.h"
#include "la-ops.h"

static LaBackend *be;

static LaTensor *
host (LaTensor *t)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, h, t);
  return h;
}

static float *
W (LaCheckpoint *ck, const char *fmt, int l)
{
  char n[96];
  g_snprintf (n, sizeof n, fmt, l);
  LaTensor *t = la_checkpoint_get (ck, n);
  g_assert_nonnull (t);
  g_assert_true (t->dtype == LA_DTYPE_F32);
  return la_tensor_f32 (t);
}

static void
rms (double *y, const double *x, const float *w, int L, int D)
{
  for (int i = 0; i < L; i++) {
    double s = 0;
    for (int d = 0; d < D; d++)
      s += x[i * D + d] * x[i * D + d];
    double r = 1.0 / sqrt (s / D + 1e-6);
    for (int d = 0; d < D; d++)
      y[i * D + d] = x[i * D + d] * r * w[d];
  }
}

static void
lin (double *y, const double *x, const float *w, int L, int K, int N)
{
  for (int i = 0; i < L; i++)
    for (int n = 0; n < N; n++) {
      double s = 0;
      for (int k = 0; k < K; k++)
        s += x[i * K + k] * w[n * K + k];
      y[i * N + n] = s;
    }
}

/* Straightforward reference of T5Encoder(ids) without mask, in double. */
static double *
reference (LaCheckpoint *ck, const LaT5Config *c, const gint32 *ids, int L)
{
  int D = c->dim, A = c->dim_attn, F = c->dim_ffn, H = c->num_heads, hd = A / H;
  double *x = g_new0 (double, L * D), *h = g_new0 (double, L * D), *q = g_new0 (double, L * A),
         *k = g_new0 (double, L * A), *v = g_new0 (double, L * A), *a = g_new0 (double, L * A),
         *y = g_new0 (double, L * D), *g = g_new0 (double, L * F), *f = g_new0 (double, L * F),
         *p = g_new0 (double, L);
  const float *emb = W (ck, "token_embedding.weight", 0);
  for (int i = 0; i < L; i++)
    for (int d = 0; d < D; d++)
      x[i * D + d] = emb[(size_t) ids[i] * D + d];
  for (int l = 0; l < c->num_layers; l++) {
    const float *pos = W (ck, "blocks.%d.pos_embedding.embedding.weight", l);
    rms (h, x, W (ck, "blocks.%d.norm1.weight", l), L, D);
    lin (q, h, W (ck, "blocks.%d.attn.q.weight", l), L, D, A);
    lin (k, h, W (ck, "blocks.%d.attn.k.weight", l), L, D, A);
    lin (v, h, W (ck, "blocks.%d.attn.v.weight", l), L, D, A);
    for (int n = 0; n < H; n++)
      for (int i = 0; i < L; i++) {
        double mx = -1e300, s = 0;
        for (int j = 0; j < L; j++) {
          double z = 0;
          for (int e = 0; e < hd; e++)
            z += q[i * A + n * hd + e] * k[j * A + n * hd + e];
          z += pos[la_t5_relative_bucket (j - i, c->num_buckets, 128) * H + n];
          p[j] = z;
          mx = MAX (mx, z);
        }
        for (int j = 0; j < L; j++)
          s += (p[j] = exp (p[j] - mx));
        for (int e = 0; e < hd; e++) {
          double o = 0;
          for (int j = 0; j < L; j++)
            o += p[j] / s * v[j * A + n * hd + e];
          a[i * A + n * hd + e] = o;
        }
      }
    lin (y, a, W (ck, "blocks.%d.attn.o.weight", l), L, A, D);
    for (int i = 0; i < L * D; i++)
      x[i] += y[i];
    rms (h, x, W (ck, "blocks.%d.norm2.weight", l), L, D);
    lin (g, h, W (ck, "blocks.%d.ffn.gate.0.weight", l), L, D, F);
    lin (f, h, W (ck, "blocks.%d.ffn.fc1.weight", l), L, D, F);
    for (int i = 0; i < L * F; i++) {
      double u = g[i];
      f[i] *= 0.5 * u * (1 + tanh (sqrt (2 / G_PI) * (u + 0.044715 * u * u * u)));
    }
    lin (y, f, W (ck, "blocks.%d.ffn.fc2.weight", l), L, F, D);
    for (int i = 0; i < L * D; i++)
      x[i] += y[i];
  }
  rms (h, x, W (ck, "norm.weight", 0), L, D);
  g_free (x); g_free (q); g_free (k); g_free (v); g_free (a); g_free (y); g_free (g); g_free (f); g_free (p);
  return h;
}

static double
rel_l2 (const float *a, const double *b, int64_t n)
{
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return sqrt (num / MAX (den, 1e-30));
}

static void
make_ids (gint32 *ids, int L, int vocab, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  for (int i = 0; i < L; i++)
    ids[i] = g_rand_int_range (r, 3, vocab);
  ids[L - 1] = 1;   /* </s> */
  g_rand_free (r);
}

static void
run_config (int vocab, int dim, int dim_attn, int ffn, int heads, int layers, int L, guint64 seed)
{
  LaT5Config cfg = { vocab, dim, dim_attn, ffn, heads, layers, 32, 128, 1e-6f };
  g_autoptr (LaCheckpoint) ck = la_t5_random_weights (&cfg, seed);
  GError *e = NULL;
  g_autoptr (LaT5Encoder) enc = la_t5_encoder_new (be, ck, NULL, &e);
  g_assert_no_error (e);
  const LaT5Config *got = la_t5_encoder_config (enc);
  g_assert_cmpint (got->dim_attn, ==, dim_attn);
  g_assert_cmpint (got->num_heads, ==, heads);
  g_assert_cmpint (got->num_layers, ==, layers);

  gint32 *ids = g_new (gint32, L + 40);
  make_ids (ids, L, vocab, (guint32) seed);
  g_autoptr (LaTensor) out = la_t5_encode (enc, ids, L, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) oh = host (out);
  g_assert_cmpint (oh->shape[0], ==, L);
  g_assert_cmpint (oh->shape[1], ==, dim);
  double *ref = reference (ck, &cfg, ids, L);
  double err = rel_l2 (la_tensor_f32 (oh), ref, (int64_t) L * dim);
  g_test_message ("config dim %d attn %d heads %d layers %d L %d: rel_l2 vs double ref %.3g",
                  dim, dim_attn, heads, layers, L, err);
  g_assert_cmpfloat (err, <, 1e-5);

  /* padding independence: ids + 0-padding with a mask */
  int P = L + 37;
  gint32 *mask = g_new0 (gint32, P);
  for (int i = 0; i < P; i++) {
    mask[i] = i < L;
    if (i >= L)
      ids[i] = 0;
  }
  g_autoptr (LaTensor) padded = la_t5_encode_full (enc, ids, mask, P, NULL, NULL, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) ph = host (padded);
  double perr = rel_l2 (la_tensor_f32 (ph), ref, (int64_t) L * dim);
  g_assert_cmpfloat (perr, <, 1e-5);
  /* without the mask the padding leaks into the real tokens */
  g_autoptr (LaTensor) nomask = la_t5_encode_full (enc, ids, NULL, P, NULL, NULL, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) nh = host (nomask);
  g_assert_cmpfloat (rel_l2 (la_tensor_f32 (nh), ref, (int64_t) L * dim), >, 1e-3);
  g_free (mask);
  g_free (ids);
  g_free (ref);
}

static void
test_configs (void)
{
  run_config (50, 48, 36, 80, 6, 3, 11, 1);
  run_config (70, 32, 32, 64, 4, 2, 1, 2);     /* a single token ([</s>] only) */
  run_config (40, 24, 40, 56, 5, 1, 140, 3);   /* L > max_dist: saturated buckets */
}

static void
test_bf16 (void)
{
  LaT5Config cfg = { 60, 32, 32, 48, 4, 2, 32, 128, 1e-6f };
  g_autoptr (LaCheckpoint) ck = la_t5_random_weights (&cfg, 7);
  g_autoptr (LaCheckpoint) ck16 = la_checkpoint_new ();
  g_autoptr (LaCheckpoint) ck16f = la_checkpoint_new ();   /* the bf16 values as f32 */
  for (const char * const *n = la_checkpoint_names (ck); *n; n++) {
    g_autoptr (LaTensor) b = la_tensor_to_dtype (la_checkpoint_get (ck, *n), LA_DTYPE_BF16);
    g_autoptr (LaTensor) f = la_tensor_to_dtype (b, LA_DTYPE_F32);
    la_checkpoint_add (ck16, *n, b);
    la_checkpoint_add (ck16f, *n, f);
  }
  GError *e = NULL;
  g_autoptr (LaT5Encoder) enc = la_t5_encoder_new (be, ck16, &cfg, &e);
  g_assert_no_error (e);
  gint32 ids[9];
  make_ids (ids, 9, cfg.vocab, 5);
  g_autoptr (LaTensor) out = la_t5_encode (enc, ids, 9, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) oh = host (out);
  double *ref = reference (ck16f, &cfg, ids, 9);
  g_assert_cmpfloat (rel_l2 (la_tensor_f32 (oh), ref, 9 * cfg.dim), <, 1e-5);
  g_free (ref);
}

/* bf16 weights written as a torch.save zip (the .pth format of
 * models_t5_umt5-xxl-enc-bf16.pth) load through la_torchzip_open and give
 * bit-identical outputs to the in-memory checkpoint. */
static void
test_pth (void)
{
  LaT5Config cfg = { 40, 16, 24, 32, 3, 2, 32, 128, 1e-6f };
  g_autoptr (LaCheckpoint) ck = la_t5_random_weights (&cfg, 11);
  g_autoptr (LaCheckpoint) ck16 = la_checkpoint_new ();
  for (const char * const *n = la_checkpoint_names (ck); *n; n++) {
    g_autoptr (LaTensor) b = la_tensor_to_dtype (la_checkpoint_get (ck, *n), LA_DTYPE_BF16);
    la_checkpoint_add (ck16, *n, b);
  }
  GError *e = NULL;
  g_autofree char *dir = g_dir_make_tmp ("la-t5-XXXXXX", &e);
  g_assert_no_error (e);
  g_autofree char *path = g_build_filename (dir, "t5-enc-bf16.pth", NULL);
  g_assert_true (la_torchzip_write (path, ck16, &e));
  g_assert_no_error (e);
  g_autoptr (LaT5Encoder) a = la_t5_encoder_new (be, ck16, NULL, &e);
  g_assert_no_error (e);
  g_autoptr (LaT5Encoder) b = la_t5_encoder_new_from_file (be, path, NULL, &e);
  g_assert_no_error (e);
  gint32 ids[6];
  make_ids (ids, 6, cfg.vocab, 3);
  g_autoptr (LaTensor) oa = la_t5_encode (a, ids, 6, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) ob = la_t5_encode (b, ids, 6, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) ha = host (oa);
  g_autoptr (LaTensor) hb = host (ob);
  g_assert_cmpmem (ha->data, la_tensor_nbytes (ha), hb->data, la_tensor_nbytes (hb));
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_errors (void)
{
  LaT5Config cfg = { 30, 16, 16, 24, 2, 2, 32, 128, 1e-6f };
  g_autoptr (LaCheckpoint) ck = la_t5_random_weights (&cfg, 9);
  GError *e = NULL;
  g_autoptr (LaT5Encoder) enc = la_t5_encoder_new (be, ck, &cfg, &e);
  g_assert_no_error (e);
  gint32 bad[3] = { 5, 30, 1 };
  g_assert_null (la_t5_encode (enc, bad, 3, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  g_assert_null (la_t5_encode (enc, bad, 0, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);

  LaT5Config other = cfg;
  other.num_heads = 4;
  g_assert_null (la_t5_encoder_new (be, ck, &other, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_clear_error (&e);

  la_checkpoint_remove (ck, "blocks.1.ffn.fc2.weight");
  g_assert_null (la_t5_encoder_new (be, ck, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (e->message, "blocks.1.ffn.fc2.weight"));
  g_clear_error (&e);
  g_autoptr (LaTensor) wrong = la_tensor_new_v (LA_DTYPE_F32, 16, 23, -1);
  la_checkpoint_add (ck, "blocks.1.ffn.fc2.weight", wrong);
  g_assert_null (la_t5_encoder_new (be, ck, NULL, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_clear_error (&e);
}

static void
test_random_layout (void)
{
  /* the real umT5-XXL layout: 2 + 24 * 10 = 242 tensors (docs/design/text.md §6); only
   * the key list is checked, on a narrow stand-in with the same count */
  LaT5Config cfg;
  la_t5_config_umt5_xxl (&cfg);
  cfg.vocab = 8; cfg.dim = 8; cfg.dim_attn = 8; cfg.dim_ffn = 8; cfg.num_heads = 64 / 8;
  g_autoptr (LaCheckpoint) ck = la_t5_random_weights (&cfg, 1);
  g_assert_cmpuint (la_checkpoint_size (ck), ==, 242);
  g_assert_nonnull (la_checkpoint_get (ck, "blocks.23.pos_embedding.embedding.weight"));
  g_assert_nonnull (la_checkpoint_get (ck, "blocks.23.ffn.gate.0.weight"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  be = la_backend_cpu_new (2);
  g_test_add_func ("/text/t5/configs", test_configs);
  g_test_add_func ("/text/t5/bf16", test_bf16);
  g_test_add_func ("/text/t5/pth", test_pth);
  g_test_add_func ("/text/t5/errors", test_errors);
  g_test_add_func ("/text/t5/layout", test_random_layout);
  int rc = g_test_run ();
  la_backend_unref (be);
  return rc;
}
