/* test-dit.c — the DiT on configurations and sizes other than the golden
 * case: config round trip, RoPE index lists, determinism, audio-prefix
 * invariance, ring wrap-around over many blocks with flat memory, and the
 * GError paths for bad weights / inputs.
 *
 * LA_DIT_LONG_BLOCKS=N runs N blocks of the tiny model and prints the
 * resident memory every N/10 blocks (the infinite-length check; default 300).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>
#include "la-dit.h"
#include <liveavatar/la-error.h>
#include "dit/dit-internal.h"

#include "dit-test-util.h"
#include "la-ops.h"

static long
rss_kb (void)
{
  long kb = 0;
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  while (f && fgets (line, sizeof line, f))
    if (!strncmp (line, "VmRSS:", 6))
      kb = atol (line + 6);
  if (f)
    fclose (f);
  return kb;
}

typedef struct {
  LaBackend *be;
  LaDitConfig cfg;
  LaCheckpoint *ck;
  LaDitModel *m;
  LaTensor *ref, *mot, *ctx;
  int lat_h, lat_w;
} Fx;

static void
fx_init (Fx *f, int dim, int heads, int layers, int lat_h, int lat_w, int n_mot)
{
  GRand *r = g_rand_new_with_seed (7);
  f->be = la_backend_cpu_new (1);
  tiny_config (&f->cfg, dim, heads, layers);
  f->ck = la_dit_random_weights (&f->cfg, 11);
  GError *e = NULL;
  f->m = la_dit_model_new (f->be, &f->cfg, f->ck, &e);
  g_assert_no_error (e);
  f->lat_h = lat_h;
  f->lat_w = lat_w;
  f->ref = randn (r, 4, (int64_t[]) { 16, 1, lat_h, lat_w });
  f->mot = randn (r, 4, (int64_t[]) { 16, n_mot, lat_h, lat_w });
  f->ctx = randn (r, 2, (int64_t[]) { 5, f->cfg.text_dim });
  g_rand_free (r);
}

static void
fx_clear (Fx *f)
{
  la_tensor_unref (f->ref);
  la_tensor_unref (f->mot);
  la_tensor_unref (f->ctx);
  la_dit_model_free (f->m);
  la_checkpoint_unref (f->ck);
  la_backend_unref (f->be);
}

static void
test_config_roundtrip (void)
{
  LaDitConfig a, b;
  tiny_config (&a, 96, 3, 3);
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "la-dit-config-test.json", NULL);
  GError *e = NULL;
  g_assert_true (la_dit_config_write_json_file (&a, path, &e));
  g_assert_true (la_dit_config_from_json_file (&b, path, &e));
  g_assert_no_error (e);
  g_assert_cmpint (a.dim, ==, b.dim);
  g_assert_cmpint (a.n_inject, ==, b.n_inject);
  g_assert_cmpmem (a.audio_inject_layers, sizeof (int) * a.n_inject, b.audio_inject_layers, sizeof (int) * b.n_inject);
  g_assert_cmpfloat (a.eps, ==, b.eps);
  g_assert_cmpint (a.text_len, ==, b.text_len);
  /* contradictory values are refused naming both keys */
  JsonObject *o = la_dit_config_to_json_object (&a);
  json_object_set_int_member (o, "num_heads", 5);
  g_assert_false (la_dit_config_from_json_object (&b, o, &e));
  g_assert_nonnull (strstr (e->message, "num_heads = 5"));
  g_assert_nonnull (strstr (e->message, "dim = 96"));
  g_clear_error (&e);
  json_object_unref (o);
  g_unlink (path);
}

/* config.json as the published Wan2.2-S2V-14B folder has it (diffusers'
 * register_to_config: no patch_size / text_dim / qk_norm / cross_attn_norm /
 * window_size, plus _class_name and _diffusers_version). */
static const char published_config[] =
  "{\"_class_name\": \"WanModel_S2V\", \"_diffusers_version\": \"0.35.1\", \"adain_mode\": \"attn_norm\","
  " \"audio_dim\": 1024, \"audio_inject_layers\": [0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39],"
  " \"cond_dim\": 16, \"dim\": 5120, \"enable_adain\": true, \"enable_framepack\": true,"
  " \"enable_motioner\": false, \"enable_tsm\": false, \"eps\": 1e-06, \"ffn_dim\": 13824,"
  " \"framepack_drop_mode\": \"padd\", \"freq_dim\": 256, \"in_dim\": 16, \"model_type\": \"s2v\","
  " \"motion_token_num\": 1024, \"num_audio_token\": 4, \"num_heads\": 40, \"num_layers\": 40,"
  " \"out_dim\": 16, \"text_len\": 512, \"trainable_token_pos_emb\": false, \"zero_init\": true,"
  " \"zero_timestep\": true, \"add_last_motion\": true}";

static JsonObject *
parse_obj (const char *text)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_data (p, text, -1, NULL));
  return json_object_ref (json_node_get_object (json_parser_get_root (p)));
}

/* Loads `o` with `key` set to the JSON `value` (NULL: removed); returns the error. */
static GError *
load_with (const char *key, const char *value)
{
  g_autoptr (JsonObject) o = parse_obj (published_config);
  json_object_remove_member (o, key);
  if (value) {
    g_autofree char *one = g_strdup_printf ("{\"v\": %s}", value);
    g_autoptr (JsonObject) v = parse_obj (one);
    json_object_set_member (o, key, json_node_copy (json_object_get_member (v, "v")));
  }
  LaDitConfig c;
  GError *e = NULL;
  gboolean ok = la_dit_config_from_json_object (&c, o, &e);
  g_assert_true (ok == (e == NULL));
  return e;
}

static void
expect_refused (const char *key, const char *value, const char *needle1, const char *needle2)
{
  GError *e = load_with (key, value);
  if (!e)
    g_error ("%s = %s: accepted", key, value ? value : "(absent)");
  if (!strstr (e->message, needle1) || (needle2 && !strstr (e->message, needle2)))
    g_error ("%s = %s: message lacks '%s'/'%s': %s", key, value ? value : "(absent)", needle1,
             needle2 ? needle2 : "", e->message);
  g_error_free (e);
}

static void
test_config_published (void)
{
  g_autoptr (JsonObject) o = parse_obj (published_config);
  json_object_set_string_member (o, "some_future_key", "ignored");
  LaDitConfig c, want;
  GError *e = NULL;
  g_assert_true (la_dit_config_from_json_object (&c, o, &e));
  g_assert_no_error (e);
  la_dit_config_init_14b (&want);
  g_assert_cmpmem (&c, sizeof c, &want, sizeof want);   /* text_dim, patch_size from the defaults */

  /* absent keys take the constructor's defaults, which the Live Avatar path refuses */
  expect_refused ("enable_framepack", NULL, "constructor default", NULL);
  expect_refused ("enable_motioner", NULL, "enable_motioner", "enable_framepack");
  expect_refused ("cond_dim", NULL, "cond_dim = 0", NULL);
  /* a default that contradicts a stated value names both keys */
  expect_refused ("dim", NULL, "dim = 2048", "num_heads = 40");
  expect_refused ("num_layers", "20", "audio_inject_layers", "num_layers = 20");
  expect_refused ("num_audio_token", "3", "dim = 5120", "num_audio_token = 3");
  /* wrong types and unsupported values */
  expect_refused ("dim", "\"5120\"", "'dim'", "integer");
  expect_refused ("enable_adain", "1", "'enable_adain'", "boolean");
  expect_refused ("adain_mode", "\"concat\"", "adain_mode", "concat");
  expect_refused ("qk_norm", "false", "qk_norm", NULL);
  expect_refused ("window_size", "[16, 16]", "window_size", NULL);
  /* stated ignore_for_config keys are honoured */
  e = load_with ("text_dim", "4096");
  g_assert_no_error (e);
  expect_refused ("patch_size", "[2, 2, 2]", "patch_size", NULL);
}

static void
test_rope_lists (void)
{
  /* docs/design/model.md §3.5, 384×704: 2x h = [0,2,4,…,20,23], 4x w = [0,4,8,12,17,21,25,30,34,38,43] */
  gint64 h2[12], w4[11];
  dit_linspace_trunc (0, 23, 12, h2);
  static const gint64 eh2[12] = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 23 };
  g_assert_cmpmem (h2, sizeof h2, eh2, sizeof eh2);
  dit_linspace_trunc (0, 43, 11, w4);
  static const gint64 ew4[11] = { 0, 4, 8, 12, 17, 21, 25, 30, 34, 38, 43 };
  g_assert_cmpmem (w4, sizeof w4, ew4, sizeof ew4);
  gint64 f4[4];
  dit_linspace_trunc (19, 4, 4, f4);
  g_assert_cmpint (f4[0], ==, 19);
  g_assert_cmpint (f4[1], ==, 14);
  g_assert_cmpint (f4[3], ==, 4);
  /* fp16-rounded tables: cos/sin values are exactly representable in fp16 */
  DitRopeGroup g = { 0 };
  gint64 fl[1] = { -19 };
  dit_rope_group_grid (&g, 1, fl, 1, 1, 1, 1);
  float fr[128];
  dit_rope_fill_group (fr, 128, &g);
  for (int i = 0; i < 128; i++)
    g_assert_cmpfloat (fr[i], ==, la_round_f16 (fr[i]));
  /* negative temporal position = conjugate of |pos| (time pairs only) */
  g_assert_cmpfloat (fr[3], ==, -la_round_f16 ((float) sin (19.0 * 1.0 / pow (10000.0, 2.0 / 44))));
  dit_rope_group_clear (&g);
}

static LaTensor *
run_blocks (Fx *f, int P, int nblocks, int infer_frames, gboolean check_mem)
{
  LaDitSessionParams p;
  la_dit_session_params_init (&p, f->lat_h, f->lat_w);
  p.infer_frames = infer_frames;
  p.audio_prefix = P;
  p.fixed_d = 0;
  p.d_seed = 5;
  GError *e = NULL;
  LaDitSession *s = la_dit_session_new (f->m, &p, f->ref, f->mot, f->ctx, &e);
  g_assert_no_error (e);
  GRand *r = g_rand_new_with_seed (99);
  LaTensor *last = NULL;
  long rss_ref = 0;
  gint64 t0 = g_get_monotonic_time ();
  for (int b = 0; b < nblocks; b++) {
    g_autoptr (LaTensor) noise = randn (r, 4, (int64_t[]) { 16, 3, f->lat_h, f->lat_w });
    g_autoptr (LaTensor) au = randn (r, 3, (int64_t[]) { 25, f->cfg.audio_dim, 12 });
    if (last)
      la_tensor_unref (last);
    last = la_dit_session_generate_block (s, noise, au, &e);
    g_assert_no_error (e);
    if (check_mem && b == nblocks / 10)
      rss_ref = rss_kb ();
    if (check_mem && nblocks >= 10 && (b + 1) % (nblocks / 10) == 0)
      g_print ("# block %d: RSS %ld kB, %.2f ms/block\n", b + 1, rss_kb (),
               (g_get_monotonic_time () - t0) / 1000.0 / (b + 1));
  }
  if (check_mem) {
    long rss_end = rss_kb ();
    g_print ("# %d blocks: RSS %ld kB after block %d, %ld kB at the end (%.2f %%)\n", nblocks, rss_ref,
             nblocks / 10, rss_end, 100.0 * (rss_end - rss_ref) / rss_ref);
    g_assert_cmpfloat (rss_end, <=, rss_ref * 1.01 + 64);
  }
  g_assert_cmpint (la_dit_session_blocks_done (s), ==, nblocks);
  g_rand_free (r);
  la_dit_session_free (s);
  return last;
}

static void
test_stream_other_config (void)
{
  /* head_dim 24 (split 4/4/4), 2 layers, non-square latent 16×8, motion shorter than 19 (zero front pad) */
  Fx f;
  fx_init (&f, 48, 2, 2, 16, 8, 7);
  g_autoptr (LaTensor) a = run_blocks (&f, 1, 5, 12, FALSE);
  g_autoptr (LaTensor) b = run_blocks (&f, 1, 5, 12, FALSE);
  g_assert_cmpint (a->shape[0], ==, 16);
  g_assert_cmpint (a->shape[1], ==, 3);
  g_assert_cmpint (a->shape[2], ==, 16);
  g_assert_cmpint (a->shape[3], ==, 8);
  for (gint64 i = 0; i < la_tensor_numel (a); i++)
    g_assert_true (isfinite (la_tensor_f32 (a)[i]));
  g_assert_cmpmem (a->data, la_tensor_nbytes (a), b->data, la_tensor_nbytes (b));
  /* audio prefix P ≡ 1 (mod 4) is irrelevant (replicate padding, docs/design/audio-path.md §5) */
  g_autoptr (LaTensor) c = run_blocks (&f, 73, 5, 12, FALSE);
  double md = 0;
  for (gint64 i = 0; i < la_tensor_numel (a); i++)
    md = MAX (md, fabs (la_tensor_f32 (a)[i] - la_tensor_f32 (c)[i]));
  g_print ("# audio prefix 1 vs 73: max |diff| = %g\n", md);
  g_assert_cmpfloat (md, <=, 1e-4);
  fx_clear (&f);
}

/* refresh_sink_at_clip1 == a manual refresh with the first clean latent frame */
static void
test_sink_refresh (void)
{
  Fx f;
  fx_init (&f, 48, 2, 2, 16, 8, 19);
  LaDitSessionParams p;
  la_dit_session_params_init (&p, f.lat_h, f.lat_w);
  p.infer_frames = 12;   /* one block per clip */
  p.fixed_d = 9;
  GError *e = NULL;
  LaTensor *out[3][3] = { { 0 } };
  for (int mode = 0; mode < 3; mode++) {   /* 0 auto, 1 manual, 2 none */
    p.refresh_sink_at_clip1 = mode == 0;
    LaDitSession *s = la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e);
    g_assert_no_error (e);
    GRand *r = g_rand_new_with_seed (3);
    for (int b = 0; b < 3; b++) {
      g_autoptr (LaTensor) noise = randn (r, 4, (int64_t[]) { 16, 3, f.lat_h, f.lat_w });
      g_autoptr (LaTensor) au = randn (r, 3, (int64_t[]) { 25, f.cfg.audio_dim, 12 });
      out[mode][b] = la_dit_session_generate_block (s, noise, au, &e);
      g_assert_no_error (e);
      if (mode == 1 && b == 0) {
        int64_t sh[4] = { 16, 1, f.lat_h, f.lat_w };
        g_autoptr (LaTensor) first = la_tensor_new (LA_DTYPE_F32, 4, sh);
        for (int c = 0; c < 16; c++)
          memcpy (la_tensor_f32 (first) + c * f.lat_h * f.lat_w,
                  la_tensor_f32 (out[1][0]) + c * 3 * f.lat_h * f.lat_w, sizeof (float) * f.lat_h * f.lat_w);
        g_assert_true (la_dit_session_refresh_sink (s, first, NULL, &e));
      }
    }
    g_rand_free (r);
    la_dit_session_free (s);
  }
  g_assert_cmpmem (out[0][0]->data, la_tensor_nbytes (out[0][0]), out[2][0]->data, la_tensor_nbytes (out[2][0]));
  g_assert_cmpmem (out[0][2]->data, la_tensor_nbytes (out[0][2]), out[1][2]->data, la_tensor_nbytes (out[1][2]));
  g_assert_true (memcmp (out[0][2]->data, out[2][2]->data, la_tensor_nbytes (out[0][2])) != 0);
  for (int i = 0; i < 3; i++)
    for (int b = 0; b < 3; b++)
      la_tensor_unref (out[i][b]);
  fx_clear (&f);
}

/* copy_rows_at and attention_n (the ring position a step graph reads on the
 * backend) on the CPU reference: the rows land at *pos and the others stay;
 * a row range out of dst writes nothing and is reported; attention_n equals
 * attention on the n-row views bit for bit, and n > rows(k) is reported. */
static void
test_ops_device_pos (void)
{
  LaBackend *be = la_backend_cpu_new (1);
  GRand *r = g_rand_new_with_seed (11);
  g_autoptr (LaTensor) h_dst = randn (r, 2, (int64_t[]) { 9, 12 });
  g_autoptr (LaTensor) h_src = randn (r, 2, (int64_t[]) { 3, 12 });
  g_autoptr (LaTensor) q = randn (r, 2, (int64_t[]) { 5, 12 });
  g_rand_free (r);
  g_autoptr (LaTensor) dst = la_to_backend (be, h_dst);
  g_autoptr (LaTensor) src = la_to_backend (be, h_src);
  g_autoptr (LaTensor) pos = la_alloc (be, LA_DTYPE_I32, 1, (int64_t[]) { 1 });
  GError *e = NULL;
  ((int32_t *) pos->data)[0] = 6;
  la_copy_rows_at (be, dst, src, pos);
  g_assert_true (la_backend_sync (be, &e));
  const float *d = dst->data, *hd = h_dst->data, *hs = h_src->data;
  for (int i = 0; i < 9 * 12; i++)
    g_assert_cmpfloat (d[i], ==, i >= 6 * 12 ? hs[i - 6 * 12] : hd[i]);
  g_autoptr (LaTensor) before = la_tensor_new_from_f32 (2, dst->shape, dst->data);
  ((int32_t *) pos->data)[0] = 7;                  /* rows 7..9 of 9 */
  la_copy_rows_at (be, dst, src, pos);
  g_assert_false (la_backend_sync (be, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  g_assert_cmpmem (dst->data, la_tensor_nbytes (dst), before->data, la_tensor_nbytes (before));

  /* attention over the first 4 of dst's 9 rows as keys and values */
  g_autoptr (LaTensor) qd = la_to_backend (be, q);
  g_autoptr (LaTensor) out_n = la_alloc (be, LA_DTYPE_F32, 2, q->shape);
  g_autoptr (LaTensor) out_v = la_alloc (be, LA_DTYPE_F32, 2, q->shape);
  g_autoptr (LaTensor) kv4 = dit_rows (dst, 0, 4);
  ((int32_t *) pos->data)[0] = 4;
  la_attention_n (be, out_n, qd, dst, dst, 3, 0.5f, pos);
  la_attention (be, out_v, qd, kv4, kv4, 3, 0.5f, NULL);
  g_assert_true (la_backend_sync (be, &e));
  g_assert_cmpmem (out_n->data, la_tensor_nbytes (out_n), out_v->data, la_tensor_nbytes (out_v));
  g_autoptr (LaTensor) out_all = la_alloc (be, LA_DTYPE_F32, 2, q->shape);
  la_attention (be, out_all, qd, dst, dst, 3, 0.5f, NULL);
  g_assert_true (la_backend_sync (be, &e));
  g_assert_true (memcmp (out_n->data, out_all->data, la_tensor_nbytes (out_n)) != 0);  /* n matters */
  ((int32_t *) pos->data)[0] = 10;
  la_attention_n (be, out_n, qd, dst, dst, 3, 0.5f, pos);
  g_assert_false (la_backend_sync (be, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  g_clear_error (&e);
  /* a position that is not a 1-element I32 is refused by the check */
  g_autoptr (LaTensor) fpos = la_alloc (be, LA_DTYPE_F32, 1, (int64_t[]) { 1 });
  la_copy_rows_at (be, dst, src, fpos);
  g_assert_false (la_backend_sync (be, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_SHAPE);
  g_assert_nonnull (strstr (e->message, "copy_rows_at: pos"));
  g_clear_error (&e);
  la_backend_unref (be);
}

/* A block stays on the backend (issue 18): generate_block uploads the noise
 * and the audio features in one copy (packed into one inbox, with the 16
 * bytes of the ring position between them) and downloads the latent once,
 * with no sync inside a step (the audio encoder's and the closing one only);
 * run_steps on a backend latent uploads only the audio (and the position),
 * copies nothing back to the host and gives the same bits; with the audio
 * on the backend too, the position alone goes up. */
static void
test_block_on_backend (void)
{
  Fx f;
  fx_init (&f, 48, 2, 2, 16, 8, 19);
  LaDitSessionParams p;
  la_dit_session_params_init (&p, f.lat_h, f.lat_w);
  p.fixed_d = 9;
  GError *e = NULL;
  GRand *r = g_rand_new_with_seed (5);
  g_autoptr (LaTensor) noise = randn (r, 4, (int64_t[]) { 16, 3, f.lat_h, f.lat_w });
  g_autoptr (LaTensor) au = randn (r, 3, (int64_t[]) { 25, f.cfg.audio_dim, 12 });
  g_rand_free (r);
  LaBackendStats st;

  LaDitSession *s = la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e);
  g_assert_no_error (e);
  la_backend_reset_stats (f.be);
  g_autoptr (LaTensor) host_out = la_dit_session_generate_block (s, noise, au, &e);
  g_assert_no_error (e);
  la_backend_get_stats (f.be, &st);
  g_assert_cmpuint (st.uploads, ==, 1);
  g_assert_cmpuint (st.upload_bytes, ==, la_tensor_nbytes (noise) + la_tensor_nbytes (au) + 16);
  g_assert_cmpuint (st.downloads, ==, 1);
  g_assert_cmpuint (st.download_bytes, ==, la_tensor_nbytes (noise));
  g_assert_cmpuint (st.syncs, ==, 2);
  la_dit_session_free (s);

  s = la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) xd = la_alloc (f.be, LA_DTYPE_F32, 4, noise->shape);
  la_copy (f.be, xd, noise);
  g_assert_true (la_backend_holds (f.be, xd) && !la_backend_holds (f.be, noise));
  la_backend_reset_stats (f.be);
  const int d[4] = { 9, 9, 9, 9 };
  g_assert_true (la_dit_session_run_steps (s, 0, 0, 4, d, xd, au, &e));
  g_assert_no_error (e);
  la_backend_get_stats (f.be, &st);
  g_assert_cmpuint (st.uploads, ==, 1);       /* the audio features */
  g_assert_cmpuint (st.upload_bytes, ==, la_tensor_nbytes (au) + 16);
  g_assert_cmpuint (st.downloads, ==, 0);
  g_assert_cmpuint (st.syncs, ==, 2);
  g_autoptr (LaTensor) dev_out = la_tensor_new (LA_DTYPE_F32, 4, noise->shape);
  la_copy (f.be, dev_out, xd);
  g_assert_cmpmem (dev_out->data, la_tensor_nbytes (dev_out), host_out->data, la_tensor_nbytes (host_out));
  la_dit_session_free (s);

  s = la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e);
  g_assert_no_error (e);
  la_copy (f.be, xd, noise);
  g_autoptr (LaTensor) aud = la_alloc (f.be, LA_DTYPE_F32, 3, au->shape);
  la_copy (f.be, aud, au);
  la_backend_reset_stats (f.be);
  g_assert_true (la_dit_session_run_steps (s, 0, 0, 4, d, xd, aud, &e));
  g_assert_no_error (e);
  la_backend_get_stats (f.be, &st);
  g_assert_cmpuint (st.uploads, ==, 1);       /* the ring position alone */
  g_assert_cmpuint (st.upload_bytes, ==, 16);
  la_copy (f.be, dev_out, xd);
  g_assert_cmpmem (dev_out->data, la_tensor_nbytes (dev_out), host_out->data, la_tensor_nbytes (host_out));
  la_dit_session_free (s);
  fx_clear (&f);
}

static void
test_long_stream (void)
{
  const char *env = g_getenv ("LA_DIT_LONG_BLOCKS");
  int n = env ? atoi (env) : 300;
  Fx f;
  fx_init (&f, 96, 3, 3, 16, 8, 19);
  g_autoptr (LaTensor) a = run_blocks (&f, 1, n, 24, TRUE);
  for (gint64 i = 0; i < la_tensor_numel (a); i++)
    g_assert_true (isfinite (la_tensor_f32 (a)[i]));
  fx_clear (&f);
}

static void
test_bad_input (void)
{
  Fx f;
  fx_init (&f, 48, 2, 2, 16, 8, 19);
  GError *e = NULL;
  /* missing tensor */
  LaCheckpoint *ck = la_dit_random_weights (&f.cfg, 3);
  la_checkpoint_remove (ck, "blocks.1.ffn.2.weight");
  g_assert_null (la_dit_model_new (f.be, &f.cfg, ck, &e));
  g_assert_nonnull (strstr (e->message, "blocks.1.ffn.2.weight"));
  g_clear_error (&e);
  la_checkpoint_unref (ck);
  /* wrong shape */
  ck = la_dit_random_weights (&f.cfg, 3);
  g_autoptr (LaTensor) bad = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { 3, 7 });
  la_checkpoint_add (ck, "head.head.weight", bad);
  g_assert_null (la_dit_model_new (f.be, &f.cfg, ck, &e));
  g_assert_nonnull (strstr (e->message, "head.head.weight"));
  g_clear_error (&e);
  la_checkpoint_unref (ck);
  /* config / weights mismatch: more layers in the weights than in the config */
  LaDitConfig c3 = f.cfg;
  c3.num_layers = 3;
  c3.audio_inject_layers[1] = 2;
  ck = la_dit_random_weights (&c3, 3);
  g_assert_null (la_dit_model_new (f.be, &f.cfg, ck, &e));
  g_assert_nonnull (strstr (e->message, "blocks.2"));
  g_clear_error (&e);
  la_checkpoint_unref (ck);
  /* session inputs */
  LaDitSessionParams p;
  la_dit_session_params_init (&p, f.lat_h, f.lat_w);
  p.infer_frames = 12;
  g_autoptr (LaTensor) badctx = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { 5, f.cfg.text_dim + 1 });
  g_assert_null (la_dit_session_new (f.m, &p, f.ref, f.mot, badctx, &e));
  g_assert_nonnull (strstr (e->message, "text_context"));
  g_clear_error (&e);
  g_autoptr (LaTensor) badref = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { 16, 1, f.lat_h, f.lat_w + 8 });
  g_assert_null (la_dit_session_new (f.m, &p, badref, f.mot, f.ctx, &e));
  g_assert_nonnull (strstr (e->message, "ref_latent"));
  g_clear_error (&e);
  p.audio_prefix = 3;
  g_assert_null (la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e));
  g_assert_nonnull (strstr (e->message, "audio_prefix"));
  g_clear_error (&e);
  p.audio_prefix = 1;
  p.cache_dtype = LA_DTYPE_BF16;        /* the CPU ops read f32: refused, not silently wrong */
  g_assert_null (la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e));
  g_assert_nonnull (strstr (e->message, "bf16 KV caches"));
  g_clear_error (&e);
  p.cache_dtype = LA_DTYPE_F32;
  p.act_dtype = LA_DTYPE_BF16;
  g_assert_null (la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e));
  g_assert_nonnull (strstr (e->message, "activations"));
  g_clear_error (&e);
  p.act_dtype = LA_DTYPE_F16;
  g_assert_null (la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e));
  g_assert_nonnull (strstr (e->message, "act_dtype"));
  g_clear_error (&e);
  p.act_dtype = LA_DTYPE_F32;
  LaDitSession *s = la_dit_session_new (f.m, &p, f.ref, f.mot, f.ctx, &e);
  g_assert_no_error (e);
  g_autoptr (LaTensor) noise = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { 16, 3, f.lat_h, f.lat_w });
  g_autoptr (LaTensor) au = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { 25, f.cfg.audio_dim + 1, 12 });
  g_assert_null (la_dit_session_generate_block (s, noise, au, &e));
  g_assert_nonnull (strstr (e->message, "audio"));
  g_clear_error (&e);
  g_autoptr (LaTensor) au2 = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { 25, f.cfg.audio_dim, 12 });
  g_autoptr (LaTensor) noise2 = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { 16, 2, f.lat_h, f.lat_w });
  g_assert_null (la_dit_session_generate_block (s, noise2, au2, &e));
  g_assert_nonnull (strstr (e->message, "noise"));
  g_clear_error (&e);
  la_dit_session_free (s);
  fx_clear (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dit/config-roundtrip", test_config_roundtrip);
  g_test_add_func ("/dit/config-published", test_config_published);
  g_test_add_func ("/dit/rope-lists", test_rope_lists);
  g_test_add_func ("/dit/stream-other-config", test_stream_other_config);
  g_test_add_func ("/dit/bad-input", test_bad_input);
  g_test_add_func ("/dit/sink-refresh", test_sink_refresh);
  g_test_add_func ("/dit/long-stream", test_long_stream);
  g_test_add_func ("/dit/block-on-backend", test_block_on_backend);
  g_test_add_func ("/dit/ops-device-pos", test_ops_device_pos);
  return g_test_run ();
}
