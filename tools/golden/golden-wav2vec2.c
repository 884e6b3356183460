/* golden-wav2vec2.c — golden runner for "wav2vec2" cases (docs/design/audio-path.md §2, §3).
 *
 * Config from case.json full_config (the HF config.json); normalisation of
 * the waveform checked against input_values and the normalize.* stats; the
 * model run on the case's input_values with every intermediate captured and
 * compared (our activations are time-major [T, C]; the case's conv outputs
 * are channels-first [C, T], so those are transposed here); all hidden
 * states and the CTC logits.
 */
#include "la-audio.h"
#include "golden.h"
#include "la-ops.h"
#include <string.h>

static LaTensor *
transpose2 (LaTensor *t)
{
  const int64_t R = t->shape[0], C = t->shape[1];
  LaTensor *y = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { C, R });
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 0; c < C; c++)
      la_tensor_f32 (y)[c * R + r] = la_tensor_f32 (t)[r * C + c];
  return y;
}

gboolean
golden_run_wav2vec2 (GoldenCase *c, GError **error)
{
  LaBackend *be = c->backend;
  JsonObject *cfgo = json_object_has_member (c->obj, "full_config")
                         ? golden_obj (c->obj, "full_config", error) : golden_obj (c->obj, "model_config", error);
  if (!cfgo)
    return FALSE;
  LaWav2Vec2Config cfg;
  if (!la_wav2vec2_config_from_json (cfgo, &cfg, error))
    return FALSE;

  /* Normalisation. */
  LaTensor *wave = golden_tensor (c, c->inputs, "waveform", error);
  LaTensor *iv = wave ? golden_tensor (c, c->inputs, "input_values", error) : NULL;
  if (!iv)
    return FALSE;
  int64_t n = la_tensor_numel (wave);
  g_autoptr (LaTensor) w32 = la_tensor_as_f32 (wave);
  g_autoptr (LaTensor) mine = la_tensor_new (LA_DTYPE_F32, 1, &n);
  float st[3];
  la_audio_normalize (la_tensor_f32 (w32), (size_t) n, la_tensor_f32 (mine), st);
  golden_compare_tol (c, "input_values (normalise)", mine, iv, 2e-6, -1);
  const char *sn[3] = { "normalize.mean", "normalize.var", "normalize.denominator" };
  for (int i = 0; i < 3; i++)
    if (c->intermediates && la_checkpoint_get (c->intermediates, sn[i])) {
      g_autoptr (LaTensor) s = la_tensor_new_from_f32 (1, (int64_t[]) { 1 }, &st[i]);
      golden_check (c, c->intermediates, sn[i], s, NULL);
    }
  int64_t ta = la_wav2vec2_num_frames (&cfg, n);
  g_print ("  T_a = %" G_GINT64_FORMAT " frames for %" G_GINT64_FORMAT " samples (receptive field %" G_GINT64_FORMAT
           ", hop %" G_GINT64_FORMAT ")\n", ta, n, la_wav2vec2_receptive_field (&cfg), la_wav2vec2_hop (&cfg));

  /* Model on the case's input_values. */
  LaWav2Vec2 *m = la_wav2vec2_new (be, &cfg, c->weights, error);
  if (!m)
    return FALSE;
  g_autoptr (LaCheckpoint) dbg = la_checkpoint_new ();
  g_autoptr (LaTensor) iv32 = la_tensor_as_f32 (iv);
  g_autoptr (LaTensor) hs = la_wav2vec2_forward (m, iv32, dbg, error);
  if (!hs) {
    la_wav2vec2_free (m);
    return FALSE;
  }
  g_autoptr (LaTensor) hsh = la_tensor_new (LA_DTYPE_F32, hs->ndim, hs->shape);
  la_copy (be, hsh, hs);

  if (c->intermediates) {
    const char *const *names = la_checkpoint_names (c->intermediates);
    for (int i = 0; names[i]; i++) {
      if (g_str_has_prefix (names[i], "normalize."))
        continue;
      LaTensor *exp = la_checkpoint_get (c->intermediates, names[i]);
      LaTensor *act = la_checkpoint_get (dbg, names[i]);
      if (!act) {
        g_print ("  FAIL %-48s not produced\n", names[i]);
        c->n_compared++, c->n_failed++;
        continue;
      }
      g_autoptr (LaTensor) a = NULL;
      if (act->ndim == 2 && exp->ndim == 2 && act->shape[0] != exp->shape[0] && act->shape[0] == exp->shape[1])
        a = transpose2 (act);   /* channels-first in the case */
      else
        a = la_tensor_ref (act);
      golden_compare (c, names[i], a, exp);
    }
  }
  golden_check (c, c->outputs, "hidden_states", hsh, NULL);
  const int64_t L1 = hsh->shape[0], T = hsh->shape[1], H = hsh->shape[2];
  LaTensor *ref = la_checkpoint_get (c->outputs, "hidden_states");
  for (int64_t l = 0; ref && l < L1 && la_tensor_numel (ref) == la_tensor_numel (hsh); l++) {
    g_autoptr (LaTensor) rf = la_tensor_as_f32 (ref);
    g_autoptr (LaTensor) a = la_tensor_new_from_f32 (2, (int64_t[]) { T, H }, la_tensor_f32 (hsh) + l * T * H);
    g_autoptr (LaTensor) e = la_tensor_new_from_f32 (2, (int64_t[]) { T, H }, la_tensor_f32 (rf) + l * T * H);
    g_autofree char *lab = g_strdup_printf ("hidden_states[%" G_GINT64_FORMAT "]", l);
    golden_compare (c, lab, a, e);
  }
  /* CTC head (unused by LiveAvatar; checks the last state end to end). */
  LaTensor *lw = la_checkpoint_get (c->weights, "lm_head.weight");
  LaTensor *lb = la_checkpoint_get (c->weights, "lm_head.bias");
  if (lw && lb && la_checkpoint_get (c->outputs, "logits")) {
    g_autoptr (LaTensor) last = la_tensor_new_from_f32 (2, (int64_t[]) { T, H }, la_tensor_f32 (hsh) + (L1 - 1) * T * H);
    g_autoptr (LaTensor) lw32 = la_tensor_as_f32 (lw);
    g_autoptr (LaTensor) lb32 = la_tensor_as_f32 (lb);
    g_autoptr (LaTensor) logits = la_tensor_new (LA_DTYPE_F32, 2, (int64_t[]) { T, lw->shape[0] });
    g_autoptr (LaBackend) cpu = la_backend_cpu_new (1);
    la_linear (cpu, logits, last, lw32, lb32);
    golden_check (c, c->outputs, "logits", logits, NULL);
  }
  la_wav2vec2_free (m);
  return TRUE;
}
