/* vae-private.h — internals of the Wan2.1 VAE shared by lib/vae/vae-*.c.
 *
 * The network is a flat list of modules per side (encoder / decoder), in
 * the order of the official nn.Sequential indices, so module i of the
 * encoder's downsamples is named "encoder.downsamples.<i>".  Each temporal
 * conv owns one cache slot (docs/design/vae.md §5), numbered in forward order like the
 * reference's feat_idx.
 */
#pragma once
#include "la-vae.h"
#include "liveavatar/la-error.h"

typedef struct {
  LaTensor *w;   /* [Co, Ci, kt, kh, kw] (2-D convs as kt = 1) */
  LaTensor *b;   /* [Co] */
} VaeConv;

typedef enum {
  VAE_RES,       /* ResidualBlock(in, out) */
  VAE_ATTN,      /* AttentionBlock(C), per frame */
  VAE_DOWN2D,    /* ZeroPad2d(0,1,0,1) + Conv2d(C, C, 3, stride 2) */
  VAE_DOWN3D,    /* DOWN2D + time_conv (3,1,1) stride 2 with the first-chunk rule */
  VAE_UP2D,      /* nearest x2 + Conv2d(C, C/2, 3, pad 1) */
  VAE_UP3D,      /* time_conv C -> 2C (3,1,1) with the "Rep" first pass + UP2D */
} VaeModKind;

typedef struct {
  VaeModKind kind;
  int in, out;
  char name[64];                 /* e.g. "decoder.upsamples.3" */
  LaTensor *gamma0, *gamma1;     /* RES: residual.0 / residual.3; ATTN: norm.gamma [C] */
  VaeConv conv0, conv1, shortcut;/* RES: residual.2, residual.6, shortcut (w NULL = identity) */
  VaeConv qkv, proj;             /* ATTN */
  VaeConv resample, time_conv;   /* resample.1, time_conv */
  int slot;                      /* first cache slot of this module (-1: none) */
} VaeModule;

typedef struct {
  int n_mods;
  VaeModule *mods;               /* conv_in, stages..., middle, head as below */
  VaeConv conv_in;               /* encoder.conv1 / decoder.conv1 */
  int conv_in_slot;
  int n_stages;                  /* downsamples / upsamples */
  int n_middle;                  /* 3 */
  LaTensor *head_gamma;          /* head.0 */
  VaeConv head_conv;             /* head.2 */
  int head_slot;
  int n_slots;
} VaeSide;

/* One cache slot: a temporal conv's last two input frames (zeros before the
 * stream starts, which equals the reference's front padding), or the
 * resample's 1-frame cache / "Rep" mark. */
typedef struct {
  LaTensor *t;
  gboolean started;
} VaeSlot;

typedef struct {
  VaeSlot *slots;
  int n_slots;
  int idx;                       /* next slot in forward order (feat_idx) */
  int chunk;                     /* chunk / pass counter, for taps */
} VaeState;

struct _LaVae {
  LaBackend *be;
  LaVaeConfig cfg;
  VaeSide enc, dec;
  VaeConv conv1, conv2;          /* top-level 1x1x1 convs */
  LaTensor *mean, *inv_std;      /* [z_dim] on be (la_vae_norm_constants) */
  LaTensor *zeros, *ones;        /* [z_dim], to split (de)normalisation into bf16-rounded steps */
  LaVaeTapFunc tap;
  gpointer tap_data;
  guint64 resident_bytes;        /* weights bound (all f32: the published VAE file is fp32) */
};

struct _LaVaeDecoder {
  LaVae *vae;
  VaeState st;
  int max_pass;
  int h, w;                      /* latent size of this stream (0 before the first pass) */
  gboolean primed_block_pending; /* next decode_block is the first after priming */
};

/* vae-model.c */
gboolean vae_build (LaVae *vae, LaCheckpoint *ck, GRand *rng, GError **error);
void     vae_side_clear (VaeSide *s);
void     vae_state_init (VaeState *st, int n_slots);
void     vae_state_clear (VaeState *st);

/* vae-layers.c: forward pieces; x is consumed (unref'd) where noted "takes x". */
LaTensor *vae_alloc4 (LaBackend *be, int64_t c, int64_t t, int64_t h, int64_t w);
LaTensor *vae_cat_frames (LaBackend *be, GPtrArray *parts);
LaTensor *vae_conv (LaVae *vae, const VaeConv *cv, LaTensor *x, int ph, int pw,
                    const int stride[3], VaeSlot *cache);
LaTensor *vae_norm_silu (LaVae *vae, const LaTensor *x, const LaTensor *gamma, gboolean silu);
LaTensor *vae_module_forward (LaVae *vae, VaeModule *m, LaTensor *x, VaeState *st);
void      vae_round_bf16 (LaBackend *be, LaTensor *t);
/* The latent normalisation in bf16 arithmetic (autocast: bf16 operands, each
 * result rounded), in place on z: encode (x − mean)·inv_std, z being the
 * bf16 output of conv1 (rounded first); decode z / inv_std + mean. */
void      vae_latent_norm_bf16 (LaVae *vae, LaTensor *z, gboolean encode);
LaTensor *vae_slice_frames (LaBackend *be, const LaTensor *x, int64_t t0, int64_t n);
void      vae_tap (LaVae *vae, const char *name, int chunk, LaTensor *t);
LaTensor *vae_side_forward (LaVae *vae, VaeSide *side, const char *prefix, LaTensor *x,
                            VaeState *st);
