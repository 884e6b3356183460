/* tpp-fixture.h — what the TPP tests share: tiny random DiT models (one
 * or one per device, CPU or CUDA backends), random blocks, an output sink
 * collecting the clean latents, and the sequential 4-cache reference. */
#pragma once
#include <string.h>
#include <liveavatar/la-tpp.h>
#include <liveavatar/liveavatar.h>

#include "../dit/dit-test-util.h"

/* The explicit per-call sink offsets of block b (the "online" variant). */
static inline const int *
explicit_d (int b)
{
  static int d[4];
  d[0] = 4 + b, d[1] = 30 - b, d[2] = 10 + 2 * b, d[3] = 17;
  return d;
}

typedef struct {
  LaBackend *be[LA_TPP_MAX_STAGES];
  LaDitConfig cfg;
  LaCheckpoint *ck;
  LaDitModel *m[LA_TPP_MAX_STAGES];
  int n_models;
  LaTensor *ref, *mot, *mot2, *ctx;
  LaTensor *noise[16], *audio[16];
  int n_blocks;
  LaDitSessionParams p;
} Fx;

static gboolean use_cuda = FALSE;   /* fixtures on CUDA backends (one per stage: own stream) */
static gboolean cuda_per_gpu = FALSE;   /* with use_cuda: model i on GPU i (else all on GPU 0) */

G_GNUC_UNUSED static void
fx_init (Fx *f, int dim, int heads, int layers, int lat_h, int lat_w, int n_models, int n_blocks, guint32 seed)
{
  memset (f, 0, sizeof *f);
  GRand *r = g_rand_new_with_seed (seed);
  tiny_config (&f->cfg, dim, heads, layers);
  f->ck = la_dit_random_weights (&f->cfg, seed + 1);
  f->n_models = n_models;
  for (int i = 0; i < n_models; i++) {
    GError *e = NULL;
    f->be[i] = use_cuda ? la_backend_cuda_new (cuda_per_gpu ? i : 0, &e) : la_backend_cpu_new (1);
    g_assert_no_error (e);
    f->m[i] = la_dit_model_new (f->be[i], &f->cfg, f->ck, &e);
    g_assert_no_error (e);
  }
  f->ref = randn (r, 4, (int64_t[]) { 16, 1, lat_h, lat_w });
  f->mot = randn (r, 4, (int64_t[]) { 16, 19, lat_h, lat_w });
  f->mot2 = randn (r, 4, (int64_t[]) { 16, 19, lat_h, lat_w });
  f->ctx = randn (r, 2, (int64_t[]) { 5, f->cfg.text_dim });
  f->n_blocks = n_blocks;
  for (int b = 0; b < n_blocks; b++) {
    f->noise[b] = randn (r, 4, (int64_t[]) { 16, 3, lat_h, lat_w });
    f->audio[b] = randn (r, 3, (int64_t[]) { 25, f->cfg.audio_dim, 12 });
  }
  la_dit_session_params_init (&f->p, lat_h, lat_w);
  f->p.infer_frames = 24;                 /* 2 blocks per clip: clip 1 starts at block 2 */
  f->p.d_seed = seed * 7 + 3;
  f->p.refresh_sink_at_clip1 = TRUE;
  g_rand_free (r);
}

G_GNUC_UNUSED static void
fx_clear (Fx *f)
{
  for (int b = 0; b < f->n_blocks; b++) {
    la_tensor_unref (f->noise[b]);
    la_tensor_unref (f->audio[b]);
  }
  la_tensor_unref (f->ref);
  la_tensor_unref (f->mot);
  la_tensor_unref (f->mot2);
  la_tensor_unref (f->ctx);
  for (int i = 0; i < f->n_models; i++) {
    la_dit_model_free (f->m[i]);
    la_backend_unref (f->be[i]);
  }
  la_checkpoint_unref (f->ck);
}

typedef struct {
  LaTensor *out[16];
  int n_calls;
  int fail_at;       /* output callback fails at this block (-1 never) */
} Sink;

G_GNUC_UNUSED static gboolean
collect (gint64 block, const LaTensor *clean, gpointer user, GError **error)
{
  Sink *s = user;
  if (block == s->fail_at) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "VAE decode failed (test)");
    return FALSE;
  }
  g_assert_cmpint (block, <, 16);
  g_clear_pointer (&s->out[block], la_tensor_unref);
  s->out[block] = la_tensor_to_dtype (clean, LA_DTYPE_F32);
  s->n_calls++;
  return TRUE;
}

G_GNUC_UNUSED static void
sink_clear (Sink *s)
{
  for (int i = 0; i < 16; i++)
    g_clear_pointer (&s->out[i], la_tensor_unref);
}

/* Sequential reference: one session, 4 caches.  explicit: the online variant
 * (given d, refresh at block 2 with ref = first clean frame and new motion). */
G_GNUC_UNUSED static void
sequential (Fx *f, gboolean explicit, LaTensor **out)
{
  GError *e = NULL;
  LaDitSessionParams p = f->p;
  if (explicit)
    p.refresh_sink_at_clip1 = FALSE;
  LaDitSession *s = la_dit_session_new (f->m[0], &p, f->ref, f->mot, f->ctx, &e);
  g_assert_no_error (e);
  LaTensor *first = NULL;
  for (int b = 0; b < f->n_blocks; b++) {
    if (explicit) {
      la_dit_session_queue_d (s, explicit_d (b), 4);
      if (b == 2)
        g_assert_true (la_dit_session_refresh_sink (s, first, f->mot2, &e));
    }
    out[b] = la_dit_session_generate_block (s, f->noise[b], f->audio[b], &e);
    g_assert_no_error (e);
    if (b == 0) {
      first = la_tensor_new (LA_DTYPE_F32, 4, (int64_t[]) { 16, 1, out[0]->shape[2], out[0]->shape[3] });
      gint64 hw = out[0]->shape[2] * out[0]->shape[3];
      for (int c = 0; c < 16; c++)
        memcpy (la_tensor_f32 (first) + c * hw, la_tensor_f32 (out[0]) + c * 3 * hw, sizeof (float) * hw);
    }
  }
  la_tensor_unref (first);
  la_dit_session_free (s);
}
