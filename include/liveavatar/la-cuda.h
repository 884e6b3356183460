/* la-cuda.h — what the CUDA backend offers beyond the common ops:
 * resident weight precision (bf16 / FP8 e4m3 with a per-tensor scale),
 * on-GPU random weights for benchmarks, the caching allocator's figures, and
 * CUDA-graph capture of a sequence of ops.  All functions take a backend made
 * by la_backend_cuda_new(); given any other backend they fail with
 * LA_ERROR_INVALID_ARG (or return a zero/NULL result).
 *
 * FP8 tensors.  An LA_DTYPE_F8_E4M3 tensor allocated by the CUDA backend
 * carries its fp32 *dequantisation* scale (1/s of docs/design/model.md §2.3) in a trailing
 * slot of its storage: la_cuda_fp8_scale_ptr() gives its device address.
 * `linear` with an e4m3 weight runs the FP8 path of docs/design/model.md §2.3:
 * dynamic per-tensor activation scale, cuBLASLt e4m3 x e4m3 GEMM with fast
 * accumulation, bf16 bias epilogue, bf16 output (then cast to y's dtype).
 * An e4m3 x (made by la_cuda_quantize_fp8, a whole tensor, not a view) is
 * used as already quantised, so several linears of one input (q, k, v)
 * share one activation quantisation — same result, one pass instead of three.
 */
#pragma once
#include <glib.h>
#include "la-backend.h"

G_BEGIN_DECLS

typedef enum {
  LA_CUDA_WEIGHTS_F32,    /* as given (the golden-case setting) */
  LA_CUDA_WEIGHTS_BF16,   /* bf16 resident weights, bf16 GEMMs, fp32 accumulation */
  LA_CUDA_WEIGHTS_FP8,    /* e4m3 + per-tensor scale for FP8-eligible linears, bf16 for the rest */
} LaCudaWeights;

/* Precision that la_cuda_upload_weight() uses (default LA_CUDA_WEIGHTS_F32). */
gboolean  la_cuda_set_weights (LaBackend *be, LaCudaWeights weights, GError **error);
LaCudaWeights la_cuda_get_weights (LaBackend *be);

/* Uploads a host weight (any float dtype; LoRA already merged on the host)
 * in the backend's weight precision.  fp8_eligible: the caller says whether
 * this tensor is one of the 460 FP8 linears of docs/design/model.md §2.3 (2-D, K and N
 * multiples of 16); otherwise FP8 mode stores it as bf16. */
LaTensor *la_cuda_upload_weight (LaBackend *be, const LaTensor *host, gboolean fp8_eligible,
                                 GError **error);

/* TRUE for the 460 DiT linear weights the FP8 mode quantises (docs/design/model.md §2.3):
 * blocks.N.{self_attn,cross_attn}.{q,k,v,o}, blocks.N.ffn.{0,2},
 * audio_injector.injector.J.{q,k,v,o}, audio_injector.injector_adain_layers.J.linear
 * (".weight", 2-D).  Works in every build (pure string test). */
gboolean  la_cuda_fp8_eligible (const char *name, int ndim);

/* dst (e4m3, device) <- quant_fp8(src) of docs/design/model.md §2.3, entirely on the GPU:
 * amax = max|src|; s = min(448 / max(amax, 1e-12), 448); dst = e4m3(clamp(src·s)),
 * and dst's scale slot <- 1/s.  src: f32/bf16/f16 device tensor, same numel. */
gboolean  la_cuda_quantize_fp8 (LaBackend *be, LaTensor *dst, const LaTensor *src, GError **error);
/* Device address of an e4m3 tensor's fp32 dequantisation scale (NULL if none). */
float    *la_cuda_fp8_scale_ptr (const LaTensor *t);

/* Random weights generated on the GPU (counter-based hash, reproducible from
 * seed): uniform in [-a, a] with a = std·sqrt(3) (so the standard deviation is
 * std).  dtype f32, bf16 or e4m3 (then the scale slot is set from a so that
 * the values use the e4m3 range as quant_fp8 would).  For the 14B bench
 * without a checkpoint. */
LaTensor *la_cuda_random_weight (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape,
                                 guint64 seed, float std, GError **error);

/* Caching allocator figures (bytes).  la_alloc on this backend takes blocks
 * from per-size free lists and tensor unref returns them there, so a loop
 * that allocates the same shapes every step reaches zero cudaMalloc calls
 * after its first iteration. */
typedef struct {
  guint64 in_use;      /* held by live tensors */
  guint64 cached;      /* free blocks kept for reuse */
  guint64 peak;        /* max of in_use + cached */
  guint64 n_malloc;    /* cudaMalloc calls so far */
  guint64 n_reuse;     /* allocations served from the cache */
} LaCudaMemStats;
void      la_cuda_mem_stats (LaBackend *be, LaCudaMemStats *out);
/* Frees every cached (unused) block back to the driver. */
void      la_cuda_mem_trim (LaBackend *be);

/* CUDA graphs.  Between begin and end, ops are captured instead of run
 * (relaxed capture mode on the backend's stream).  Host<->device copies and
 * sync are not allowed inside a capture (they record an error).  Blocks that
 * tensors free during the capture are kept by the graph until it is freed,
 * so replaying it never touches memory that was handed to someone else.
 * Typical use (DiT session): run a block's step once eagerly (warms the
 * allocator), then capture the same calls with the same tensors, and replay
 * with la_cuda_graph_launch() for every later block after updating the
 * inputs in place (copy into the captured input tensors). */
typedef struct _LaCudaGraph LaCudaGraph;
gboolean  la_cuda_graph_begin (LaBackend *be, GError **error);
LaCudaGraph *la_cuda_graph_end (LaBackend *be, GError **error);
gboolean  la_cuda_graph_launch (LaCudaGraph *g, GError **error);
void      la_cuda_graph_free (LaCudaGraph *g);

/* Cross-stream ordering.  Each CUDA backend has its own stream (and pool);
 * a second backend on the same device runs concurrently (e.g. the VAE
 * decoding block n while the DiT denoises block n+1), and a backend per
 * device gives TPP stages.  A tensor made on backend A and read on backend B
 * (copy works across backends and devices: peer copies through UVA) must be
 * ordered: ev = la_cuda_event_record (A) after A's producing ops, then
 * la_cuda_event_wait (B, ev) before B's consuming ops — no host blocking.
 * The producer must keep the tensor alive until B's use has completed
 * (la_cuda_event_record (B) + la_cuda_event_query/sync), since A's pool may
 * reuse a freed block immediately. */
typedef struct _LaCudaEvent LaCudaEvent;
LaCudaEvent *la_cuda_event_record (LaBackend *be, GError **error);
gboolean  la_cuda_event_wait (LaBackend *be, LaCudaEvent *ev, GError **error);
gboolean  la_cuda_event_query (LaCudaEvent *ev);     /* TRUE once the recorded work has finished */
void      la_cuda_event_free (LaCudaEvent *ev);

/* Number of CUDA devices (0 when none or no CUDA build). */
int       la_cuda_device_count (void);

G_END_DECLS
