/* vae-encode.c — WanVAE_.encode (docs/design/vae.md §3, §5, §6, §8).
 *
 * The pixels are fed in chunks of 1, 4, 4, ... frames (iter = 1 + (T−1)/4,
 * a partial trailing chunk is ignored as in the reference), each chunk
 * through the whole encoder with the temporal caches carried over; the
 * chunk outputs are concatenated in time, the top-level 1x1x1 conv1 gives
 * [mu | log_var], and mu is normalised: (mu − mean) · (1/std), fp32.
 */
#include "vae-private.h"
#include "la-ops.h"

static const int STRIDE1[3] = { 1, 1, 1 };

LaTensor *
la_vae_encode (LaVae *vae, const LaTensor *pixels, GError **error)
{
  LaBackend *be = vae->be;
  const LaVaeConfig *cfg = &vae->cfg;
  const int sf = la_vae_spatial_factor (cfg);
  if (!pixels || pixels->ndim != 4 || pixels->shape[0] != 3 || pixels->shape[1] < 1
      || pixels->dtype != LA_DTYPE_F32 || pixels->shape[2] < sf || pixels->shape[3] < sf
      || pixels->shape[2] % sf || pixels->shape[3] % sf) {
    g_autofree char *s = pixels ? la_shape_to_string (pixels->ndim, pixels->shape) : g_strdup ("NULL");
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "VAE encode: pixels %s must be f32 [3, T, H, W] with H, W multiples of %d", s, sf);
    return NULL;
  }
  const int64_t T = pixels->shape[1];
  const int n_chunks = 1 + (int) ((T - 1) / 4);
  VaeState st;
  vae_state_init (&st, vae->enc.n_slots);
  GPtrArray *outs = g_ptr_array_new_with_free_func ((GDestroyNotify) la_tensor_unref);
  for (int i = 0; i < n_chunks; i++) {
    int64_t t0 = i == 0 ? 0 : 1 + 4 * (i - 1), n = i == 0 ? 1 : 4;
    st.chunk = i;
    LaTensor *x = vae_slice_frames (be, pixels, t0, n);
    LaTensor *y = vae_side_forward (vae, &vae->enc, "encoder", x, &st);
    g_ptr_array_add (outs, y);
  }
  vae_state_clear (&st);
  LaTensor *cat = vae_cat_frames (be, outs);
  const int64_t total = cat->shape[1];
  g_ptr_array_unref (outs);
  LaTensor *ml = vae_conv (vae, &vae->conv1, cat, 0, 0, STRIDE1, NULL);
  la_tensor_unref (cat);
  /* mu = channels [0, z_dim); the log-variance half is discarded. */
  LaTensor *mu = vae_alloc4 (be, cfg->z_dim, total, ml->shape[2], ml->shape[3]);
  int64_t zo[4] = { 0, 0, 0, 0 }, cnt[4] = { cfg->z_dim, total, ml->shape[2], ml->shape[3] };
  la_copy4d (be, mu, zo, ml, zo, cnt);
  la_tensor_unref (ml);
  if (cfg->bf16_norm) {
    /* mu is the bf16 output of conv1 under autocast */
    vae_latent_norm_bf16 (vae, mu, TRUE);
  } else {
    la_latent_norm (be, mu, mu, vae->mean, vae->inv_std, TRUE);
  }
  if (!la_backend_sync (be, error)) {
    la_tensor_unref (mu);
    return NULL;
  }
  return mu;
}

gboolean
la_vae_encode_session (LaVae *vae, const LaTensor *ref_pixels_in, int motion_frames,
                       gboolean single_gpu_ref, LaTensor **ref_latents,
                       LaTensor **motion_latents, GError **error)
{
  LaBackend *be = vae->be;
  /* ref_pixels: [3, 1, H, W] (or [3, H, W]), on the host or the VAE's device. */
  const LaTensor *ref_pixels = ref_pixels_in;
  if (!ref_pixels || !(ref_pixels->ndim == 4 && ref_pixels->shape[0] == 3 && ref_pixels->shape[1] == 1)
      || motion_frames < 1) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "VAE session encode: ref_pixels must be [3, 1, H, W] and motion_frames >= 1 (got %d)",
                 motion_frames);
    return FALSE;
  }
  g_autoptr (LaTensor) ref_dev = la_to_backend (be, ref_pixels_in);
  ref_pixels = ref_dev;
  const int64_t H = ref_pixels->shape[2], W = ref_pixels->shape[3];
  int reps = MAX (motion_frames, single_gpu_ref ? 5 : 1);
  LaTensor *rep = vae_alloc4 (be, 3, reps, H, W);
  int64_t zo[4] = { 0, 0, 0, 0 }, c1[4] = { 3, 1, H, W };
  for (int t = 0; t < reps; t++) {
    int64_t yo[4] = { 0, t, 0, 0 };
    la_copy4d (be, rep, yo, ref_pixels, zo, c1);
  }
  LaTensor *ref = NULL, *mot = NULL;
  if (single_gpu_ref) {
    /* encode(ref repeated 5 times)[:, 1:] — the "4-frame" latent. */
    LaTensor *r5 = vae_slice_frames (be, rep, 0, 5);
    LaTensor *l5 = la_vae_encode (vae, r5, error);
    la_tensor_unref (r5);
    if (l5) {
      ref = vae_slice_frames (be, l5, 1, l5->shape[1] - 1);
      la_tensor_unref (l5);
    }
  } else {
    ref = la_vae_encode (vae, ref_pixels, error);
  }
  if (ref) {
    LaTensor *rm = vae_slice_frames (be, rep, 0, motion_frames);
    mot = la_vae_encode (vae, rm, error);
    la_tensor_unref (rm);
  }
  la_tensor_unref (rep);
  if (!ref || !mot) {
    g_clear_pointer (&ref, la_tensor_unref);
    return FALSE;
  }
  *ref_latents = ref;
  *motion_latents = mot;
  return TRUE;
}
