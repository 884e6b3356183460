/* vae-decode.c — the streaming decoder (vae_streaming.py stream_decode,
 * docs/design/vae.md §4, §5, §8).
 *
 * Per call: z = latents / inv_std + mean (fp32), x = conv2(z) (1x1x1), then
 * decoder passes.  The stream's first pass is always exactly one latent
 * (it marks both upsample3d slots "Rep" and yields 1 frame); every later
 * latent yields 4 frames (temporal factor) whatever the pass split, because
 * all temporal state lives in the per-conv 2-frame caches, which persist
 * across calls until la_vae_decoder_reset().  Output is clamped to [-1, 1].
 */
#include "vae-private.h"
#include "la-ops.h"

static const int STRIDE1[3] = { 1, 1, 1 };

LaVaeDecoder *
la_vae_decoder_new (LaVae *vae)
{
  LaVaeDecoder *dec = g_new0 (LaVaeDecoder, 1);
  dec->vae = vae;
  dec->max_pass = 1;
  vae_state_init (&dec->st, vae->dec.n_slots);
  return dec;
}

void
la_vae_decoder_free (LaVaeDecoder *dec)
{
  if (!dec)
    return;
  vae_state_clear (&dec->st);
  g_free (dec);
}

void
la_vae_decoder_reset (LaVaeDecoder *dec)
{
  vae_state_clear (&dec->st);
  vae_state_init (&dec->st, dec->vae->dec.n_slots);
  dec->h = dec->w = 0;
  dec->primed_block_pending = FALSE;
}

void
la_vae_decoder_set_max_pass (LaVaeDecoder *dec, int max_latents)
{
  dec->max_pass = MAX (1, max_latents);
}

LaTensor *
la_vae_decoder_decode (LaVaeDecoder *dec, const LaTensor *latents, GError **error)
{
  LaVae *vae = dec->vae;
  LaBackend *be = vae->be;
  const LaVaeConfig *cfg = &vae->cfg;
  if (!latents || latents->ndim != 4 || latents->shape[0] != cfg->z_dim || latents->shape[1] < 1
      || latents->shape[2] < 1 || latents->shape[3] < 1
      || (latents->dtype != LA_DTYPE_F32 && latents->dtype != LA_DTYPE_BF16)) {
    g_autofree char *s = latents ? la_shape_to_string (latents->ndim, latents->shape) : g_strdup ("NULL");
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "VAE decode: latents %s must be f32 or bf16 [%d, T, h, w]", s, cfg->z_dim);
    return NULL;
  }
  const int64_t T = latents->shape[1], h = latents->shape[2], w = latents->shape[3];
  if (dec->h && (dec->h != h || dec->w != w)) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE,
                 "VAE decode: latent size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 " differs from this stream's %dx%d (reset the decoder for a new stream)",
                 h, w, dec->h, dec->w);
    return NULL;
  }
  dec->h = (int) h;
  dec->w = (int) w;
  LaTensor *z = la_alloc (be, LA_DTYPE_F32, 4, latents->shape);
  if (latents->dtype == LA_DTYPE_BF16) {
    la_copy (be, z, latents);   /* exact */
    if (cfg->bf16_norm) {
      vae_latent_norm_bf16 (vae, z, FALSE);
    } else {
      la_latent_norm (be, z, z, vae->mean, vae->inv_std, FALSE);
    }
  } else {
    /* host latents (the DiT's output) come up once; device ones are read in place */
    g_autoptr (LaTensor) src = la_to_backend (be, latents);
    la_latent_norm (be, z, src, vae->mean, vae->inv_std, FALSE);
  }
  LaTensor *x = vae_conv (vae, &vae->conv2, z, 0, 0, STRIDE1, NULL);
  la_tensor_unref (z);

  GPtrArray *outs = g_ptr_array_new_with_free_func ((GDestroyNotify) la_tensor_unref);
  for (int64_t t = 0; t < T;) {
    int64_t n = dec->st.chunk == 0 ? 1 : MIN (dec->max_pass, T - t);
    LaTensor *xin = vae_slice_frames (be, x, t, n);
    LaTensor *y = vae_side_forward (vae, &vae->dec, "decoder", xin, &dec->st);
    g_ptr_array_add (outs, y);
    dec->st.chunk++;
    t += n;
  }
  la_tensor_unref (x);
  LaTensor *out = vae_cat_frames (be, outs);
  g_ptr_array_unref (outs);
  la_clamp (be, out, out, -1.0f, 1.0f);
  if (!la_backend_sync (be, error)) {
    la_tensor_unref (out);
    return NULL;
  }
  return out;
}

gint64
la_vae_decoder_cache_elements (LaVaeDecoder *dec)
{
  gint64 n = 0;
  for (int i = 0; i < dec->st.n_slots; i++)
    if (dec->st.slots[i].t)
      n += la_tensor_numel (dec->st.slots[i].t);
  return n;
}

gint64
la_vae_decoder_cache_formula (const LaVaeConfig *cfg, int h, int w)
{
  /* 2 frames x sum over temporal convs of (input channels x pixels), docs/design/vae.md §5. */
  const int n = cfg->n_levels, nrb = cfg->num_res_blocks;
  int dims[LA_VAE_MAX_LEVELS + 1];
  dims[0] = cfg->dim * cfg->dim_mult[n - 1];
  for (int i = 0; i < n; i++)
    dims[i + 1] = cfg->dim * cfg->dim_mult[n - 1 - i];
  gint64 px = (gint64) h * w;
  gint64 sum = (gint64) cfg->z_dim * px + 4 * (gint64) dims[0] * px;   /* conv1, middle */
  for (int i = 0; i < n; i++) {
    int in = i > 0 ? dims[i] / 2 : dims[i], out = dims[i + 1];
    for (int r = 0; r < nrb + 1; r++) {
      sum += (gint64) (in + out) * px;
      in = out;
    }
    if (i != n - 1) {
      if (cfg->temperal_downsample[n - 2 - i])
        sum += (gint64) out * px;          /* upsample3d time_conv input */
      px *= 4;
    }
  }
  sum += (gint64) dims[n] * px;             /* head */
  return 2 * sum;
}

gboolean
la_vae_decoder_prime (LaVaeDecoder *dec, const LaTensor *motion_latents, int n_prime, GError **error)
{
  if (!motion_latents || motion_latents->ndim != 4 || n_prime < 1 || motion_latents->shape[1] < n_prime) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "VAE decoder prime: need motion latents [z, >= %d, h, w]", n_prime);
    return FALSE;
  }
  LaBackend *be = dec->vae->be;
  /* The reference's motion latents are f32 (holding bf16 values): their
   * de-normalisation is fp32 arithmetic, so a BF16 tensor is widened first. */
  LaTensor *m32 = la_alloc (be, LA_DTYPE_F32, 4, motion_latents->shape);
  la_copy (be, m32, motion_latents);
  LaTensor *m = vae_slice_frames (be, m32, 0, n_prime);
  la_tensor_unref (m32);
  LaTensor *out = la_vae_decoder_decode (dec, m, error);
  la_tensor_unref (m);
  if (!out)
    return FALSE;
  la_tensor_unref (out);   /* the reference discards the priming frames */
  dec->primed_block_pending = TRUE;
  return TRUE;
}

LaTensor *
la_vae_decoder_decode_block (LaVaeDecoder *dec, const LaTensor *block, int drop_first, GError **error)
{
  LaTensor *out = la_vae_decoder_decode (dec, block, error);
  if (!out)
    return NULL;
  if (dec->primed_block_pending && drop_first > 0 && drop_first < out->shape[1]) {
    LaTensor *kept = vae_slice_frames (dec->vae->be, out, drop_first, out->shape[1] - drop_first);
    la_tensor_unref (out);
    out = kept;
  }
  dec->primed_block_pending = FALSE;
  return out;
}

guint8 *
la_vae_frames_to_rgb8 (LaBackend *be, const LaTensor *frames, GError **error)
{
  if (!frames || frames->ndim != 4 || frames->shape[0] != 3) {
    g_set_error (error, LA_ERROR, LA_ERROR_SHAPE, "VAE frames must be [3, F, H, W]");
    return NULL;
  }
  const int64_t F = frames->shape[1], H = frames->shape[2], W = frames->shape[3], P = H * W;
  LaTensor *host = la_tensor_new (LA_DTYPE_F32, 4, frames->shape);
  la_copy (be, host, frames);
  if (!la_backend_sync (be, error)) {
    la_tensor_unref (host);
    return NULL;
  }
  const float *d = la_tensor_f32 (host);
  guint8 *rgb = g_malloc ((gsize) (F * P * 3));
  for (int64_t f = 0; f < F; f++)
    for (int64_t p = 0; p < P; p++)
      for (int c = 0; c < 3; c++) {
        float v = d[(c * F + f) * P + p];
        v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
        /* ((x + 1) / 2 * 255).to(uint8): truncation toward zero. */
        rgb[(f * P + p) * 3 + c] = (guint8) ((v + 1.0f) / 2.0f * 255.0f);
      }
  la_tensor_unref (host);
  return rgb;
}
