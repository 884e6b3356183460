/* backend-cpu.h — CPU backend internals shared by lib/cpu/ops-*.c. */
#pragma once
#include "la-backend-impl.h"

/* Rows = all leading dims flattened; N = last dim. */
static inline int64_t la_cpu_rows (const LaTensor *t) { return t->ndim ? la_tensor_numel (t) / t->shape[t->ndim - 1] : 1; }
static inline int64_t la_cpu_cols (const LaTensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

/* y[M,N] = x[M,K] . w[N,K]^T (+ bias), row strides given; used by several ops. */
void la_cpu_gemm_nt (int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                     const float *w, int64_t ldw, float *y, int64_t ldy, const float *bias);

/* ops-bf16.c: y[M,N] = x[M,K] . w[N,K]^T (+ bias) with a bf16 w (fp32 accumulation). */
void la_cpu_linear_bf16w (int64_t M, int64_t N, int64_t K, const float *x, const uint16_t *w, float *y,
                          const float *bias);
/* t itself when f32, else an f32 copy returned in *tmp (caller unrefs). */
const LaTensor *la_cpu_as_f32_operand (const LaTensor *t, LaTensor **tmp);

/* ops-audio.c */
void la_cpu_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                    const LaTensor *b, int stride, int pad_l, int pad_r, gboolean replicate,
                    int groups, gboolean x_cf);

/* ops-vae.c */
void la_cpu_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma, float eps);
void la_cpu_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
                    const int64_t xoff[4], const int64_t count[4]);
void la_cpu_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x);
void la_cpu_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                         const LaTensor *inv_std, gboolean encode);
void la_cpu_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi);

/* ops-dit.c */
void la_cpu_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads);
void la_cpu_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
void la_cpu_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
void la_cpu_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs);

/* ops-frames.c */
void la_cpu_frames_to_rgba8 (LaBackend *be, LaTensor *y, const LaTensor *x);
void la_cpu_rgba8_to_nv12 (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix);
void la_cpu_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos);
