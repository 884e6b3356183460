/* dit-internal.h — shared between the lib/dit files (not installed). */
#pragma once
#include "la-dit.h"
#include "liveavatar/la-error.h"
#include "audio/la-dit-audio.h"

/* FramePack buckets (latent frames, newest last: 4x | 2x | post), a constant
 * of the official FramePackMotioner (zip_frame_buckets = [1, 2, 16]). */
#define DIT_FP_POST 1
#define DIT_FP_2X   2
#define DIT_FP_4X   16
#define DIT_FP_TOTAL (DIT_FP_POST + DIT_FP_2X + DIT_FP_4X)
/* Sink ref frame: temporal RoPE index 30 (official ref_grid_sizes start). */
#define DIT_REF_TIME 30

typedef struct {
  LaTensor *modulation;                        /* [6, D] */
  LaTensor *sq_w, *sq_b, *sk_w, *sk_b, *sv_w, *sv_b, *so_w, *so_b, *snq, *snk;
  LaTensor *n3_w, *n3_b;
  LaTensor *cq_w, *cq_b, *ck_w, *ck_b, *cv_w, *cv_b, *co_w, *co_b, *cnq, *cnk;
  LaTensor *f1_w, *f1_b, *f2_w, *f2_b;
} DitBlockW;

struct _LaDitModel {
  LaBackend *be;
  LaDitConfig cfg;
  int D, H, HD;
  LaWeightBinder *wb;                          /* during construction only */
  GPtrArray *owned;                            /* resident weights (la-weights.h) */
  LaTensor *pe_w, *pe_b;                       /* patch_embedding as [D, in*ph*pw] */
  LaTensor *cond_b;                            /* cond_encoder.bias (input is zeros) */
  LaTensor *te0_w, *te0_b, *te2_w, *te2_b;     /* text MLP */
  LaTensor *tm0_w, *tm0_b, *tm2_w, *tm2_b;     /* time MLP */
  LaTensor *tp_w, *tp_b;                       /* time_projection.1 */
  LaTensor *hm;                                /* head.modulation [2, D] */
  LaTensor *hh_w, *hh_b;                       /* head.head */
  LaTensor *tcm[3];                            /* trainable_cond_mask rows */
  LaTensor *fp_w[3], *fp_b[3];                 /* frame_packer proj / proj_2x / proj_4x as [D, K] */
  int fp_k[3][3];                              /* kernels (kt, kh, kw) */
  DitBlockW *blocks;
  int *inject_of_layer;                        /* layer -> injector index or -1 */
  LaCausalAudioEncoder *aenc;
  LaAudioInjector *ainj;
};

/* ---- dit-rope.c: positions and fp16-rounded cos/sin (host bookkeeping) ---- */
typedef struct {
  int nf, nh, nw;
  gint64 f[DIT_FP_4X];                         /* temporal positions (negative = conjugate) */
  gint64 *h, *w;                               /* nh / nw positions (owned) */
} DitRopeGroup;
/* Official rope_precompute index list: trunc(numpy.linspace(start, stop, num)). */
void dit_linspace_trunc (double start, double stop, int num, gint64 *out);
/* Writes freqs [ntok, HD/2, 2] (cos, sin) for a group at row offset, returns tokens written. */
int  dit_rope_fill_group (float *freqs, int HD, const DitRopeGroup *g);
void dit_rope_group_grid (DitRopeGroup *g, int nf, const gint64 *f, int nh, int gh_extent, int nw, int gw_extent);
void dit_rope_group_clear (DitRopeGroup *g);

/* ---- helpers (dit-util.c) ---- */
/* A view of rows [r0, r0+n) of a 2-D-like tensor (rows = product of leading dims). */
LaTensor *dit_rows (const LaTensor *t, gint64 r0, gint64 n);
/* A view of t's data from element `off` with a new shape. */
LaTensor *dit_view (const LaTensor *t, gint64 off, int ndim, const int64_t *shape);
LaTensor *dit_alloc2 (LaBackend *be, gint64 a, gint64 b);
LaTensor *dit_alloc3 (LaBackend *be, gint64 a, gint64 b, gint64 c);
LaTensor *dit_alloc2t (LaBackend *be, LaDType dtype, gint64 a, gint64 b);

/* ---- dit-block.c ---- */
typedef struct {
  /* per-call inputs shared by all layers */
  int n_frames, fsl;                           /* modulation groups: frame f covers rows [f*fsl, (f+1)*fsl) */
  const LaTensor *e0;                          /* [n_frames, 6, D] time projection (no block modulation yet) */
  const LaTensor *freqs;                       /* [L, HD/2, 2] RoPE of the query tokens */
  const LaTensor *ctx_k, *ctx_v;               /* this layer's text K/V [text_len, D] */
  /* self-attention cache of this layer */
  LaTensor *k_all, *v_all;                     /* [Nc + C, D]: sink part [0, Nc), ring [Nc, Nc + C) */
  LaTensor *cond_k;                            /* [Nc, D] un-roped sink keys */
  const LaTensor *freqs_cond;                  /* [Nc, HD/2, 2] (step calls) */
  int Nc;
  gboolean sink;                               /* prefill: write cond_k/v, attend among sink tokens only */
  /* step: 1-element I32 backend tensors read when the ops run (so one
   * captured step serves every block): the row of k_all / v_all the call's
   * K/V go to (Nc + ring slot) and the key rows attention reads (Nc + active) */
  const LaTensor *ring_row, *n_keys;
} DitBlockArgs;

typedef struct {
  LaTensor *u, *q, *k, *attn, *tmp, *mod, *hid;   /* scratch sized for L rows */
  LaTensor *kr, *vr;                             /* step calls: roped K and V in the cache dtype (else NULL) */
} DitScratch;

void dit_scratch_init (DitScratch *s, LaBackend *be, int L, int D, int ffn, int n_frames, LaDType act);
void dit_scratch_clear (DitScratch *s);
void dit_block_forward (LaDitModel *m, int layer, LaTensor *x, const DitBlockArgs *a, DitScratch *s);
