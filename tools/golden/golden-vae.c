/* golden-vae.c — golden runner for "vae" cases (Wan2.1 VAE, docs/design/vae.md).
 *
 * Replays case.json "calls": encode of the 1-frame image, of the image
 * repeated 5 times and of a 9-frame clip (Wan2_1_VAE.encode, chunks 1,4,4),
 * and stream_decode of latents [0:7] then [7:10] then [10:13] on one
 * decoder (caches carried over).  Stage intermediates are compared through
 * the VAE tap ("<tag>.chunk<k>.<module>").  Extra checks of our own: the
 * u8 -> [-1, 1] mapping, the session-encode helper, and the same stream
 * decoded with 3-latent passes (must match the one-latent-per-pass output).
 * Config and normalisation constants come from case.json.
 */
#include <stdio.h>
#include <string.h>
#include "la-vae.h"
#include <liveavatar/la-image.h>
#include "golden.h"
#include "la-ops.h"

typedef struct {
  GoldenCase *c;
  const char *tag;       /* NULL: taps ignored */
  GError *error;
} Tap;

static LaTensor *
to_host (LaBackend *be, const LaTensor *t)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, h, t);
  return h;
}

static LaTensor *
upload (LaBackend *be, const LaTensor *t)
{
  LaTensor *d = la_alloc (be, LA_DTYPE_F32, t->ndim, t->shape);
  la_copy (be, d, t);
  return d;
}

static LaTensor *
frames (LaBackend *be, const LaTensor *x, int64_t t0, int64_t n)
{
  int64_t s[4] = { x->shape[0], n, x->shape[2], x->shape[3] };
  LaTensor *y = la_alloc (be, LA_DTYPE_F32, 4, s);
  int64_t yo[4] = { 0, 0, 0, 0 }, xo[4] = { 0, t0, 0, 0 };
  la_copy4d (be, y, yo, x, xo, s);
  return y;
}

static void
tap_cb (const char *name, int chunk, LaTensor *t, gpointer user_data)
{
  Tap *d = user_data;
  if (!d->tag || !d->c->intermediates || d->error)
    return;
  g_autofree char *full = g_strdup_printf ("%s.chunk%d.%s", d->tag, chunk, name);
  if (!la_checkpoint_get (d->c->intermediates, full))
    return;
  g_autoptr (LaTensor) h = to_host (d->c->backend, t);
  golden_check (d->c, d->c->intermediates, full, h, &d->error);
}

static gboolean
check (GoldenCase *c, const char *name, LaTensor *t, GError **error)
{
  g_autoptr (LaTensor) h = to_host (c->backend, t);
  return golden_check (c, c->outputs, name, h, error);
}

static gboolean
read_floats (JsonObject *o, const char *member, float *out, int n, GError **error)
{
  JsonArray *a = json_object_has_member (o, member) ? json_object_get_array_member (o, member) : NULL;
  if (!a || (int) json_array_get_length (a) != n) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "case.json: latent_normalisation.%s must hold z_dim = %d numbers", member, n);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    out[i] = (float) json_array_get_double_element (a, i);
  return TRUE;
}

gboolean
golden_run_vae (GoldenCase *c, GError **error)
{
  LaBackend *be = c->backend;
  JsonObject *mc = golden_obj (c->obj, "model_config", error);
  JsonObject *ln = mc ? golden_obj (c->obj, "latent_normalisation", error) : NULL;
  if (!ln)
    return FALSE;
  LaVaeConfig cfg;
  la_vae_config_wan21 (&cfg);
  if (!la_vae_config_from_json (&cfg, mc, error) || !read_floats (ln, "mean", cfg.mean, cfg.z_dim, error)
      || !read_floats (ln, "std", cfg.std, cfg.z_dim, error))
    return FALSE;
  LaTensor *img = golden_tensor (c, c->inputs, "image", error);
  LaTensor *lat = img ? golden_tensor (c, c->inputs, "latents", error) : NULL;
  if (!lat)
    return FALSE;
  LaTensor *img8 = la_checkpoint_get (c->inputs, "image_uint8_hwc");
  LaVae *vae = la_vae_new (be, c->weights, &cfg, error);
  if (!vae)
    return FALSE;
  Tap tap = { c, NULL, NULL };
  la_vae_set_tap (vae, tap_cb, &tap);
  gboolean ok = FALSE;
  LaVaeDecoder *dec = NULL, *dec3 = NULL;
  g_autoptr (LaTensor) d_img = upload (be, img);
  g_autoptr (LaTensor) d_lat = upload (be, lat);

  /* Pixel mapping u8/255·2−1 (la_image_to_tensor) vs the reference's. */
  if (img8 && img8->dtype == LA_DTYPE_U8 && img8->ndim == 3 && img8->shape[2] == 3) {
    g_autoptr (LaTensor) t = la_image_to_tensor (img8->data, (int) img8->shape[1], (int) img8->shape[0]);
    golden_compare_tol (c, "image (u8 -> [-1,1])", t, img, 0.0, 0.0);
  }

  /* Every "encode.<X>" output: X an input clip, or "ref<N>" = the image
   * repeated N times (the single-GPU ref encode; also checked through the
   * session helper).  Intermediates are tagged "encode_<X>". */
  for (const char * const *np = la_checkpoint_names (c->outputs); *np; np++) {
    if (!g_str_has_prefix (*np, "encode."))
      continue;
    const char *key = *np + strlen ("encode.");
    LaTensor *px = la_checkpoint_get (c->inputs, key);
    int reps = 0;
    g_autoptr (LaTensor) d_px = NULL;
    if (g_str_equal (key, "image"))
      d_px = la_tensor_ref (d_img);
    else if (px)
      d_px = upload (be, px);
    else if (sscanf (key, "ref%d", &reps) == 1 && reps > 0) {
      LaTensor *ref = NULL, *mot = NULL;
      if (!la_vae_encode_session (vae, d_img, reps, FALSE, &ref, &mot, error))
        goto out;
      g_autoptr (LaTensor) r = ref, m = mot;
      if (la_checkpoint_get (c->outputs, "encode.image") && !check (c, "encode.image", r, error))
        goto out;
      if (!check (c, *np, m, error))
        goto out;
      if (reps == 5) {
        /* single-GPU variant: encode(ref x 5)[:, 1:] */
        if (!la_vae_encode_session (vae, d_img, 5, TRUE, &ref, &mot, error))
          goto out;
        g_autoptr (LaTensor) r2 = ref, m2 = mot;
        g_autoptr (LaTensor) hr = to_host (be, r2);
        LaTensor *want = la_checkpoint_get (c->outputs, *np);
        g_autoptr (LaTensor) d5 = upload (be, want);
        g_autoptr (LaTensor) l1 = frames (be, d5, 1, want->shape[1] - 1);
        g_autoptr (LaTensor) hl1 = to_host (be, l1);
        golden_compare (c, "single-GPU ref latent = encode.ref5[:, 1:]", hr, hl1);
      }
      continue;
    } else {
      g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: output '%s' has no input to encode",
                   c->dir, *np);
      goto out;
    }
    g_autofree char *tag = g_strdup_printf ("encode_%s", key);
    tap.tag = tag;
    g_autoptr (LaTensor) z = la_vae_encode (vae, d_px, error);
    tap.tag = NULL;
    if (tap.error) {
      g_propagate_error (error, g_steal_pointer (&tap.error));
      goto out;
    }
    if (!z || !check (c, *np, z, error))
      goto out;
  }

  /* stream_decode.chunk0, 1, ... on one decoder, the call split taken from
   * the expected frame counts (first call: 1 + tf·(n−1) frames, later: tf·n);
   * then the same stream with up to 3 latents per decoder pass. */
  {
    const int64_t T = lat->shape[1];
    const int tf = la_vae_temporal_factor (&cfg);
    dec = la_vae_decoder_new (vae);
    dec3 = la_vae_decoder_new (vae);
    la_vae_decoder_set_max_pass (dec3, 3);
    int64_t t0 = 0;
    for (int k = 0;; k++) {
      char name[64];
      g_snprintf (name, sizeof name, "stream_decode.chunk%d", k);
      LaTensor *want = la_checkpoint_get (c->outputs, name);
      if (!want)
        break;
      int64_t F = want->ndim == 4 ? want->shape[1] : 0;
      int64_t n = k == 0 ? 1 + (F - 1) / tf : F / tf;
      if (n < 1 || t0 + n > T) {
        g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "%s: %s has %" G_GINT64_FORMAT
                     " frames, which does not fit the %" G_GINT64_FORMAT " input latents", c->dir, name, F, T);
        goto out;
      }
      g_autoptr (LaTensor) part = frames (be, d_lat, t0, n);
      t0 += n;
      tap.tag = "stream_decode";
      g_autoptr (LaTensor) y = la_vae_decoder_decode (dec, part, error);
      tap.tag = NULL;
      if (tap.error) {
        g_propagate_error (error, g_steal_pointer (&tap.error));
        goto out;
      }
      if (!y || !check (c, name, y, error))
        goto out;
      g_autoptr (LaTensor) y3 = la_vae_decoder_decode (dec3, part, error);
      if (!y3)
        goto out;
      g_autoptr (LaTensor) h = to_host (be, y), h3 = to_host (be, y3);
      g_autofree char *label = g_strdup_printf ("%s: 3-latent passes == 1-latent passes", name);
      golden_compare_tol (c, label, h3, h, 1e-5, 1e-6);
    }
    printf ("  decoder cache: %" G_GINT64_FORMAT " elements (formula %" G_GINT64_FORMAT ")\n",
            la_vae_decoder_cache_elements (dec),
            la_vae_decoder_cache_formula (&cfg, (int) lat->shape[2], (int) lat->shape[3]));
  }
  ok = TRUE;
out:
  la_vae_decoder_free (dec);
  la_vae_decoder_free (dec3);
  la_vae_free (vae);
  return ok;
}
