/* la-backend-impl.h — what a backend implements (ggml-backend-impl.h style).
 *
 * Only backends (lib/cpu/, cuda/), lib/la-backend.c and lib/la-ops.c include
 * this: model code calls the checked wrappers of la-ops.h, never the table.
 *
 * Contract of every op
 *  - Tensors are contiguous and row-major; "rows" means all leading dims
 *    flattened, "N" the last dim.
 *  - Ops do not allocate their outputs: the caller passes `y` (so a memory
 *    plan can be made once per session).  In-place use (y == x) is allowed
 *    for elementwise ops and norms.
 *  - Ops do not return errors: a failure is recorded with
 *    la_backend_record_error() (sticky, the first one wins) and reported by
 *    la_backend_sync(), like cudaGetLastError, so model code stays linear.
 *  - Shapes and device placement were checked by la-ops.c before the op
 *    runs; a backend checks only what is its own (dtypes it lacks kernels for).
 */
#pragma once
#include "liveavatar/la-backend.h"
#include "liveavatar/la-error.h"
#include "la-ops.h"

G_BEGIN_DECLS

typedef struct _LaBackendOps LaBackendOps;

struct _LaBackendOps {
  const char *name;

  /* memory */
  LaTensor *(*alloc)   (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape);
  /* dst <- src, any dtype pair; src or dst may be a host tensor (upload/download). */
  void      (*copy)    (LaBackend *be, LaTensor *dst, const LaTensor *src);
  void      (*fill)    (LaBackend *be, LaTensor *y, float value);

  /* y[rows, N] = x[rows, K] · w[N, K]^T (+ bias[N]) — PyTorch nn.Linear layout.
   * w may be f32 or bf16 (resident in the checkpoint's precision; fp32 accumulation)
   * on every backend, and e4m3 on CUDA. */
  void (*linear)     (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *bias);
  /* c = alpha · op(a) · op(b) + beta · c, batched over leading dims of equal count
   * (a [B, M, K] or [B, K, M] when trans_a, likewise b; b may have batch 1). */
  void (*matmul)     (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b,
                      gboolean trans_a, gboolean trans_b, float alpha, float beta);

  /* Over the last dim; w and b may be NULL (no affine). */
  void (*layer_norm) (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *b, float eps);
  /* y = x · rsqrt(mean(x^2) + eps) · w over the last dim; w may be NULL. */
  void (*rms_norm)   (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps);

  void (*unary)      (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x);
  /* y = a (op) b where b is a or repeats over a's leading dims
   * (numel(a) % numel(b) == 0 and b is a suffix-shape of a). */
  void (*binary)     (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b);
  /* y = a + alpha · b (same broadcast rule as binary). */
  void (*axpy)       (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b);
  /* y = x · (1 + scale) + shift; scale/shift repeat over leading dims as in binary. */
  void (*modulate)   (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift,
                      const LaTensor *scale);
  /* Softmax over the last dim. */
  void (*softmax)    (LaBackend *be, LaTensor *y, const LaTensor *x);

  /* Multi-head softmax attention, non-causal:
   * q [Lq, H·D], k and v [Lk, H·D] -> out [Lq, H·D]; logits = scale · q·k^T (+ bias [H, Lq, Lk]). */
  void (*attention)  (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                      const LaTensor *v, int n_heads, float scale, const LaTensor *bias);

  /* 3-D convolution without padding (callers pad, e.g. causally):
   * x [Cin, T, H, W], w [Cout, Cin, kt, kh, kw], b [Cout] or NULL -> y [Cout, T', H', W']. */
  void (*conv3d)     (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *b, const int stride[3]);
  /* Grouped 1-D convolution, time-major (wav2vec2, audio encoder):
   * x [T, B, Cin] (or [T, Cin]: B = 1; or, when x_cf, PyTorch's [B, Cin, T] / [Cin, T]),
   * w [Cout, Cin/groups, K], b [Cout] or NULL -> y [T', B, Cout] (or [T', Cout]),
   * y[t, b, o] = b[o] + sum_{i in group(o), k} w[o, i, k] · xp[t·stride + k, b, i], where xp is x
   * padded by pad_l / pad_r steps of zeros, or of copies of the edge step when replicate;
   * T' = (T + pad_l + pad_r − K) / stride + 1. */
  void (*conv1d)     (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                      const LaTensor *b, int stride, int pad_l, int pad_r, gboolean replicate,
                      int groups, gboolean x_cf);

  /* VAE ops (lib/cpu/ops-vae.c).  Channel-first x [C, ...]:
   * y[c,p] = x[c,p] / max(sqrt(sum_c x[c,p]^2), eps) · sqrt(C) · gamma[c] (Wan RMS_norm). */
  void (*channel_rms_norm) (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma,
                            float eps);
  /* Box copy between 4-D tensors: y[yo + i] = x[xo + i] for i < count (per dim); rest of y untouched. */
  void (*copy4d)     (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
                      const int64_t xoff[4], const int64_t count[4]);
  /* Nearest x2 in the last two dims: x [C, T, H, W] -> y [C, T, 2H, 2W]. */
  void (*upsample2x) (LaBackend *be, LaTensor *y, const LaTensor *x);
  /* Per-channel latent (de)normalisation on x [C, ...]:
   * encode y = (x − mean[c]) · inv_std[c]; decode (!encode) y = x / inv_std[c] + mean[c]. */
  void (*latent_norm) (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                       const LaTensor *inv_std, gboolean encode);
  /* y = min(max(x, lo), hi). */
  void (*clamp)      (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi);

  /* DiT RoPE on interleaved pairs, all heads share the table: x, y [L, H·HD],
   * freqs [L, HD/2, 2] = (cos, sin); (a, b) -> (a·cos − b·sin, a·sin + b·cos),
   * computed in double, rounded once (y may be x). */
  void (*rope)       (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads);
  /* Patches of a conv with stride = kernel k = (kt, kh, kw) (im2col; the DiT's
   * patch embedding and FramePack projections are then one linear):
   * x [C, T, H, W] -> y [T/kt · H/kh · W/kw, C·kt·kh·kw], token order (t, i, j),
   * column order (c, a, b, d) as PyTorch flattens a Conv3d weight. */
  void (*patchify)   (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
  /* The DiT head's inverse layout (channels last in a patch):
   * y[c, t·kt + a, i·kh + b, j·kw + d] = x[token (t, i, j)][((a·kh + b)·kw + d)·C + c],
   * x [T/kt · H/kh · W/kw, kt·kh·kw·C] -> y [C, T, H, W]. */
  void (*unpatchify) (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
  /* Temporal RoPE columns of a table freqs [R, P, 2]: row r has position
   * pos0 + r / rows_per_pos (pos0 >= 0); its pairs k < n_pairs get
   * la_rope_f16_pair (pos, k, n_pairs) (la-ops.h), pairs >= n_pairs are untouched. */
  void (*rope_table) (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs);

  /* Optional: capture of queued ops for replay (CUDA graphs).  Between
   * graph_begin and graph_end the ops are recorded instead of run; graph_end
   * returns an opaque handle that graph_launch replays on the backend's queue
   * (same tensors, same addresses) and graph_free releases.  Inside a capture
   * no host copy and no sync may run.  Backends without them (CPU, dry run)
   * leave all four NULL and their callers run eagerly (la_graph_supported). */
  gboolean (*graph_begin)  (LaBackend *be, GError **error);
  gpointer (*graph_end)    (LaBackend *be, GError **error);
  gboolean (*graph_launch) (LaBackend *be, gpointer graph, GError **error);
  void     (*graph_free)   (LaBackend *be, gpointer graph);

  /* TRUE if t lives in this backend's memory (not a host tensor), for the
   * copy statistics.  May be NULL: then t->device == the backend's device. */
  gboolean (*resident) (LaBackend *be, const LaTensor *t);

  /* Waits for the queued work; device failures go to la_backend_record_error().
   * The sticky error itself is reported by la-backend.c.  May be NULL. */
  void     (*sync)   (LaBackend *be);
  /* Frees the backend's own state; la-backend.c then frees the common part. */
  void     (*destroy)(LaBackend *be);

  /* VAE frames to 8-bit RGBA for video output (lib/cpu/ops-frames.c, cuda/frames.cu):
   * x [3, F, H, W] float -> y u8 [F, H, W, 4], RGB = (uint8) ((clamp (x, -1, 1) + 1) / 2 · 255)
   * in f32 (truncation, bit-identical to la_vae_frames_to_rgb8), A = 255. */
  void (*frames_to_rgba8) (LaBackend *be, LaTensor *y, const LaTensor *x);
  /* RGBA8 [F, H, W, 4] -> NV12 u8 [F, 3H/2, W] (la-ops.h: la_rgba8_to_nv12). */
  void (*rgba8_to_nv12) (LaBackend *be, LaTensor *y, const LaTensor *x, int matrix);

  /* Ops whose position is read from backend memory when they execute, so
   * that one captured graph serves every block (the DiT's KV ring;
   * lib/dit/dit-session.c).  pos / n_keys: a 1-element I32 backend tensor.
   * dst rows [p, p + rows(src)) = src (cast to dst's dtype), p = *pos; a p
   * with p < 0 or p + rows(src) > rows(dst) writes nothing (CUDA: silently,
   * the kernel cannot report; CPU: records LA_ERROR_INVALID_ARG). */
  void (*copy_rows_at) (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos);
  /* attention (no bias) over the first n = *n_keys rows of k and v only,
   * equal bit for bit to attention on the n-row views; n outside
   * [0, rows(k)] writes nothing (CPU: records LA_ERROR_INVALID_ARG). */
  void (*attention_n)  (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                        const LaTensor *v, int n_heads, float scale, const LaTensor *n_keys);
};

struct _LaBackend {
  const LaBackendOps *ops;
  LaDeviceType device;
  int device_index;
  gint ref_count;
  int n_threads;
  /*< private to la-backend.c >*/
  GMutex error_lock;
  GError *error;          /* sticky first error, handed out by la_backend_sync() */
  LaBackendStats stats;   /* guarded by error_lock */
};

/* Fills in the common part of a backend the caller allocated (zeroed). */
void la_backend_init (LaBackend *be, const LaBackendOps *ops, LaDeviceType device, int device_index,
                      int n_threads);
/* Counts one host<->backend transfer of the copy op (la-ops.c). */
void la_backend_count_copy (LaBackend *be, const LaTensor *dst, const LaTensor *src);
/* Counts one graph capture / launch (la-ops.c). */
void la_backend_count_graph (LaBackend *be, gboolean capture);
/* Keeps the first error since the last sync (thread-safe); later ones are dropped. */
void la_backend_record_error (LaBackend *be, LaErrorCode code, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* The CPU backend's la_backend_adopt (lib/cpu/backend-cpu.c). */
LaTensor *la_cpu_adopt (LaTensor *host);

/* The CUDA backend's table, readable without a device (NULL when the build
 * has no CUDA backend): a test hook, so tests/check/cuda/test-cuda-table.c
 * can check on any machine that no op is missing on CUDA. */
const LaBackendOps *la_cuda_ops_table (void);

G_END_DECLS
