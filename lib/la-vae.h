/* la-vae.h — the Wan2.1 VAE (docs/design/vae.md): chunked causal encoder and the
 * streaming decoder with per-stream temporal caches.
 *
 * Layout: pixels and latents are [C, T, H, W] (batch dropped), f32, on the
 * VAE's backend.  Pixels are RGB in [-1, 1]; latents are normalised
 * ((mu - mean) · inv_std, docs/design/vae.md §6).
 *
 * Widths come from LaVaeConfig (case.json "model_config" or the real
 * Wan2.1 numbers from la_vae_config_wan21()); every weight is checked
 * against the shape the config implies, so a mismatched checkpoint is a
 * GError naming the tensor.
 */
#pragma once
#include <glib.h>
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"

G_BEGIN_DECLS

#define LA_VAE_MAX_LEVELS 8

typedef struct {
  int dim;                                  /* base width (96 in Wan2.1) */
  int z_dim;                                /* latent channels (16) */
  int n_levels;                             /* len(dim_mult) (4) */
  int dim_mult[LA_VAE_MAX_LEVELS];          /* [1, 2, 4, 4] */
  int num_res_blocks;                       /* 2 */
  gboolean temperal_downsample[LA_VAE_MAX_LEVELS - 1]; /* [F, T, T]; decoder uses the reverse */
  float mean[64], std[64];                  /* latent normalisation, z_dim entries */
  /* The reference as LiveAvatar runs it (VAE wrapper built with dtype bf16,
   * docs/design/vae.md §6): mean/std rounded to bf16, inv_std = bf16(1/std_bf16), and the
   * (de)normalisation done in bf16 arithmetic where its operands are bf16
   * (encode: always; decode: when the latents passed in are BF16 — f32
   * priming latents use fp32 arithmetic with the bf16 constants).
   * FALSE (la_vae_config_wan21's default): the fp32 wrapper of the golden
   * cases, inv_std = 1/std in fp32, fp32 arithmetic. */
  gboolean bf16_norm;
} LaVaeConfig;

/* The normalisation constants actually used for cfg (z_dim entries each). */
void la_vae_norm_constants (const LaVaeConfig *cfg, float *mean, float *inv_std);

/* The real Wan2.1_VAE.pth configuration (dim 96) with the fp32 mean/std of docs/design/vae.md §6. */
void la_vae_config_wan21 (LaVaeConfig *cfg);
/* Fills cfg from a JSON object with dim, z_dim, dim_mult, num_res_blocks,
 * temperal_downsample (and attn_scales, which must be empty); mean/std keep
 * their current values.  (Declared with gpointer so this header needs no json-glib.) */
gboolean la_vae_config_from_json (LaVaeConfig *cfg, gpointer json_object, GError **error);
/* Spatial factor 2^(levels-1) and temporal factor 2^(#temporal downsamples). */
int  la_vae_spatial_factor (const LaVaeConfig *cfg);
int  la_vae_temporal_factor (const LaVaeConfig *cfg);
/* Pixel frames T -> latents 1 + (T-1)/tf (the reference drops a partial trailing chunk). */
int  la_vae_latent_frames (const LaVaeConfig *cfg, int pixel_frames);
/* Latents T -> pixel frames 1 + tf·(T-1). */
int  la_vae_pixel_frames (const LaVaeConfig *cfg, int latent_frames);

typedef struct _LaVae LaVae;
typedef struct _LaVaeDecoder LaVaeDecoder;

/* Optional observer of stage outputs: name like "encoder.downsamples.2",
 * chunk = encoder chunk / decoder pass index, t = the stage output (borrowed). */
typedef void (*LaVaeTapFunc) (const char *name, int chunk, LaTensor *t, gpointer user_data);

/* Uploads the weights of ck (official Wan2.1_VAE.pth key names) to be. */
LaVae   *la_vae_new (LaBackend *be, LaCheckpoint *ck, const LaVaeConfig *cfg, GError **error);
void     la_vae_free (LaVae *vae);
const LaVaeConfig *la_vae_get_config (LaVae *vae);
/* Bytes of the weights it holds on its backend (f32). */
guint64  la_vae_resident_bytes (LaVae *vae);
void     la_vae_set_tap (LaVae *vae, LaVaeTapFunc func, gpointer user_data);

/* pixels [3, T, H, W] (T >= 1, H and W multiples of the spatial factor)
 * -> normalised latents [z_dim, 1+(T-1)/4, H/8, W/8].  Chunks 1,4,4,... */
LaTensor *la_vae_encode (LaVae *vae, const LaTensor *pixels, GError **error);

/* What the TPP pipeline encodes at session start (docs/design/vae.md §8): the reference
 * latent (1 frame) and the motion latents (ref repeated motion_frames times,
 * 73 -> 19 latents).  single_gpu_ref: the single-GPU variant instead encodes
 * 5 repeated frames and keeps latent 1. */
gboolean la_vae_encode_session (LaVae *vae, const LaTensor *ref_pixels, int motion_frames,
                                gboolean single_gpu_ref, LaTensor **ref_latents,
                                LaTensor **motion_latents, GError **error);

/* Streaming decoder state for one stream (caches of docs/design/vae.md §5, allocated lazily
 * at the first pass for the latent size seen then). */
LaVaeDecoder *la_vae_decoder_new (LaVae *vae);
void          la_vae_decoder_free (LaVaeDecoder *dec);
/* Forget everything: the next pass is the first of a new stream. */
void          la_vae_decoder_reset (LaVaeDecoder *dec);
/* Most latents per decoder pass (default 1 = the reference's split; larger
 * values batch passes — the first pass of a stream is always one latent). */
void          la_vae_decoder_set_max_pass (LaVaeDecoder *dec, int max_latents);
/* latents [z_dim, T, h, w] (F32, or BF16 such as DiT output) -> frames [3, F, H, W] in [-1, 1] (clamped):
 * F = 1 + 4(T-1) on the stream's first call, 4T afterwards.  */
LaTensor     *la_vae_decoder_decode (LaVaeDecoder *dec, const LaTensor *latents, GError **error);
/* Elements held by the temporal caches (0 before the first pass). */
gint64        la_vae_decoder_cache_elements (LaVaeDecoder *dec);
/* docs/design/vae.md §5 formula for the cache size at latent size h x w (elements). */
gint64        la_vae_decoder_cache_formula (const LaVaeConfig *cfg, int h, int w);

/* TPP session helpers: prime with motion_latents[:, 0:n_prime] (output
 * discarded), then decode blocks; the first block after priming drops its
 * first `drop` frames (3 in the reference). */
gboolean      la_vae_decoder_prime (LaVaeDecoder *dec, const LaTensor *motion_latents,
                                    int n_prime, GError **error);
LaTensor     *la_vae_decoder_decode_block (LaVaeDecoder *dec, const LaTensor *block,
                                           int drop_first, GError **error);

/* frames [3, F, H, W] f32 in [-1, 1] (host or device) -> host RGB uint8
 * [F, H, W, 3], floor((x+1)/2·255) (truncation, like the reference's
 * ((x+1)/2*255).to(uint8)). */
guint8       *la_vae_frames_to_rgb8 (LaBackend *be, const LaTensor *frames, GError **error);

/* Random weights with the official key names and shapes for cfg
 * (host f32; conv weights ~ U(-b, b), b = 1/sqrt(fan_in), gammas ~ 1 ± 0.1). */
LaCheckpoint *la_vae_random_weights (const LaVaeConfig *cfg, guint64 seed);

G_END_DECLS
