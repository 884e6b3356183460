/* golden-audio.c — golden runner for "audio" cases: the offline alignment
 * helpers (docs/design/audio-path.md §4), the DiT's causal audio encoder (docs/design/audio-path.md §5) and the
 * audio injectors (docs/design/audio-path.md §6).  Sizes come from case.json "config" and the weight
 * shapes.  Each stage is fed the case's own inputs (not our previous
 * stage's output) so a failure points at one stage.
 */
#include "la-audio.h"
#include "audio/la-dit-audio.h"
#include "golden.h"
#include "la-ops.h"
#include <math.h>
#include <string.h>

static LaTensor *
host (LaBackend *be, const LaTensor *t)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, h, t);
  return h;
}

/* Rows [r0, r0+n) of a [R, ...] host tensor, as a new tensor. */
static LaTensor *
rows (const LaTensor *t, int64_t r0, int64_t n)
{
  int64_t row = la_tensor_numel (t) / t->shape[0];
  int64_t shp[LA_TENSOR_MAX_DIMS];
  memcpy (shp, t->shape, sizeof shp);
  shp[0] = n;
  return la_tensor_new_from_f32 (t->ndim, shp, la_tensor_f32 (t) + r0 * row);
}

gboolean
golden_run_audio (GoldenCase *c, GError **error)
{
  LaBackend *be = c->backend;
  JsonObject *cf = golden_obj (c->obj, "config", error);
  if (!cf)
    return FALSE;
  const int fps = (int) golden_int (cf, "fps", error);
  const int video_rate = (int) golden_int (cf, "video_rate", error);
  const int infer_frames = (int) golden_int (cf, "infer_frames", error);
  const int ntok = (int) golden_int (cf, "num_audio_token", error);
  const int heads = (int) golden_int (cf, "num_heads", error);
  const int fpb = (int) golden_int (cf, "frames_per_block", error);
  if (error && *error)
    return FALSE;
  JsonArray *mf = json_object_get_array_member (cf, "motion_frames");
  JsonArray *inj_layers = json_object_get_array_member (cf, "audio_inject_layers");
  if (!mf || json_array_get_length (mf) < 2 || !inj_layers) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: config.motion_frames / audio_inject_layers missing", c->dir);
    return FALSE;
  }
  const int prefix = (int) json_array_get_int_element (mf, 0);
  const int keep_from = (int) json_array_get_int_element (mf, 1);

  /* 1. 50 -> 30 fps interpolation (CPU-kernel form: the golden; GPU form reported). */
  LaTensor *hs50 = golden_tensor (c, c->inputs, "wav2vec_hidden_states_50fps", error);
  if (!hs50)
    return FALSE;
  g_autoptr (LaTensor) hs50f = la_tensor_as_f32 (hs50);
  g_autoptr (LaTensor) f30 = la_audio_interp_linear (hs50f, 50, video_rate, FALSE, error);
  if (!f30)
    return FALSE;
  LaTensor *ref30 = golden_tensor (c, c->outputs, "interp_30fps", error);
  if (!ref30)
    return FALSE;
  golden_compare_tol (c, "interp_30fps", f30, ref30, 1e-6, 1e-6);
  g_autoptr (LaTensor) f30g = la_audio_interp_linear (hs50f, 50, video_rate, TRUE, NULL);
  golden_compare_tol (c, "interp_30fps (GPU all-fp32 form)", f30g, ref30, 1e-4, 1e-5);

  /* 2. Bucket (from the case's interp output) and its sample indices. */
  g_autoptr (LaTensor) ref30f = la_tensor_as_f32 (ref30);
  int n_clips = 0;
  g_autoptr (LaTensor) bucket = la_audio_bucket (ref30f, video_rate, fps, infer_frames, 0, &n_clips, error);
  if (!bucket)
    return FALSE;
  golden_check (c, c->outputs, "bucket", bucket, NULL);
  gint64 want_clips = json_object_has_member (c->obj, "num_repeat_returned")
                          ? json_object_get_int_member (c->obj, "num_repeat_returned") : n_clips;
  c->n_compared++;
  if (want_clips != n_clips) {
    c->n_failed++;
    g_print ("  FAIL num_repeat (n_clips) %d, expected %" G_GINT64_FORMAT "\n", n_clips, want_clips);
  }
  {
    const int64_t T30 = ref30->shape[1], nb = bucket->shape[0];
    const int64_t pad = (int64_t) ceil ((double) nb / fps * video_rate) - T30;
    g_autofree int64_t *idx = g_new (int64_t, nb);
    if (!la_audio_sample_indices (video_rate, T30 + pad, fps, nb, 0, idx, error))
      return FALSE;
    g_autoptr (LaTensor) it = la_tensor_new (LA_DTYPE_F32, 1, &nb);
    int bad_rule = 0;
    for (int64_t i = 0; i < nb; i++) {
      la_tensor_f32 (it)[i] = (float) idx[i];
      if (fps == 25 && video_rate == 30 && idx[i] != (6 * i + 2) / 5)
        bad_rule++;
    }
    golden_check (c, c->outputs, "sample_indices", it, NULL);
    c->n_compared++;
    if (bad_rule) {
      c->n_failed++;
      g_print ("  FAIL sample_indices != (6i+2)//5 at %d frames\n", bad_rule);
    }
  }

  /* 3. Causal audio encoder on the prefixed block input. */
  LaCausalAudioEncoder *enc = la_causal_audio_encoder_new (be, c->weights, ntok, error);
  if (!enc)
    return FALSE;
  LaTensor *bai = golden_tensor (c, c->inputs, "block_audio_input", error);
  if (!bai) {
    la_causal_audio_encoder_free (enc);
    return FALSE;
  }
  g_autoptr (LaTensor) b32 = la_tensor_as_f32 (bai);
  const int64_t L = bai->shape[1], A = bai->shape[2], Tb = bai->shape[3];
  gboolean ok = TRUE;
  for (int variant = 0; variant < 2 && ok; variant++) {
    /* variant 0: the official prefix; 1: the shortest equivalent prefix P = 1 (docs/design/audio-path.md §5) */
    const int P = variant == 0 ? prefix : 1;
    const int keep = variant == 0 ? keep_from : (P + 3) / 4;
    const int64_t T = P + Tb;
    g_autoptr (LaTensor) in = la_tensor_new (LA_DTYPE_F32, 3, (int64_t[]) { L, A, T });
    for (int64_t r = 0; r < L * A; r++)
      for (int64_t t = 0; t < T; t++)
        la_tensor_f32 (in)[r * T + t] = la_tensor_f32 (b32)[r * Tb + (t < P ? 0 : t - P)];
    g_autoptr (LaCheckpoint) dbg = la_checkpoint_new ();
    LaTensor *glob = NULL, *loc = NULL;
    if (!la_causal_audio_encoder_forward_dbg (enc, in, &glob, &loc, dbg, error)) {
      ok = FALSE;
      break;
    }
    g_autoptr (LaTensor) gh = host (be, glob);
    g_autoptr (LaTensor) lh = host (be, loc);
    la_tensor_unref (glob);
    la_tensor_unref (loc);
    if (variant == 0) {
      golden_check (c, c->intermediates, "audio_encoder.weighted_feat",
                    la_checkpoint_get (dbg, "audio_encoder.weighted_feat"), NULL);
      golden_check (c, c->outputs, "audio_encoder.out_global", gh, NULL);
      golden_check (c, c->outputs, "audio_encoder.out_local", lh, NULL);
    }
    const int64_t nkeep = gh->shape[0] - keep;
    g_autoptr (LaTensor) gk = rows (gh, keep, nkeep);
    g_autoptr (LaTensor) lk = rows (lh, keep, nkeep);
    LaTensor *eg = la_checkpoint_get (c->outputs, "audio_emb_global_used");
    LaTensor *el = la_checkpoint_get (c->outputs, "merged_audio_emb");
    g_autofree char *lg = g_strdup_printf ("audio_emb_global_used (prefix %d)", P);
    g_autofree char *ll = g_strdup_printf ("merged_audio_emb (prefix %d)", P);
    if (eg)
      golden_compare (c, lg, gk, eg);
    if (el)
      golden_compare (c, ll, lk, el);
  }
  la_causal_audio_encoder_free (enc);
  if (!ok)
    return FALSE;

  /* 4. Audio injection after each configured block, from the case's dit_hidden_states
   *    and the case's merged_audio_emb / audio_emb_global_used. */
  const int n_inj = (int) json_array_get_length (inj_layers);
  LaAudioInjector *inj = la_audio_injector_new (be, c->weights, n_inj, heads, error);
  if (!inj)
    return FALSE;
  LaTensor *xh = golden_tensor (c, c->inputs, "dit_hidden_states", error);
  LaTensor *tok = xh ? golden_tensor (c, c->outputs, "merged_audio_emb", error) : NULL;
  LaTensor *gl = tok ? golden_tensor (c, c->outputs, "audio_emb_global_used", error) : NULL;
  if (!gl) {
    la_audio_injector_free (inj);
    return FALSE;
  }
  const int64_t D = xh->shape[xh->ndim - 1], NT = la_tensor_numel (xh) / D;
  for (int j = 0; j < n_inj; j++) {
    int blk = (int) json_array_get_int_element (inj_layers, j);
    g_autoptr (LaTensor) x32 = la_tensor_as_f32 (xh);
    g_autoptr (LaTensor) x = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { NT, D });
    la_copy (be, x, x32);
    g_autoptr (LaTensor) tb = la_alloc (be, LA_DTYPE_F32, 3, (int64_t[]) { fpb, la_tensor_numel (tok) / (fpb * D), D });
    g_autoptr (LaTensor) tok32 = la_tensor_as_f32 (tok);
    la_copy (be, tb, tok32);
    g_autoptr (LaTensor) gb = la_alloc (be, LA_DTYPE_F32, 2, (int64_t[]) { fpb, D });
    g_autoptr (LaTensor) gl32 = la_tensor_as_f32 (gl);
    la_copy (be, gb, gl32);
    g_autoptr (LaCheckpoint) dbg = la_checkpoint_new ();
    g_autofree char *pre = g_strdup_printf ("inject.block%d", blk);
    if (!la_audio_injector_apply_dbg (inj, j, x, fpb, tb, gb, dbg, pre, error)) {
      la_audio_injector_free (inj);
      return FALSE;
    }
    g_autofree char *n1 = g_strdup_printf ("%s.adain_out", pre);
    g_autofree char *n2 = g_strdup_printf ("%s.cross_attn_out", pre);
    g_autofree char *n3 = g_strdup_printf ("%s.out", pre);
    golden_check (c, c->intermediates, n1, la_checkpoint_get (dbg, n1), NULL);
    golden_check (c, c->intermediates, n2, la_checkpoint_get (dbg, n2), NULL);
    g_autoptr (LaTensor) xo = host (be, x);
    golden_check (c, c->outputs, n3, xo, NULL);
  }
  la_audio_injector_free (inj);
  return TRUE;
}
