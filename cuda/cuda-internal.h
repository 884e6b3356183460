/* cuda-internal.h — shared by the CUDA backend's .cu files: the backend
 * struct, the caching allocator, error recording, element load/store for the
 * activation dtypes (f32, bf16, f16; e4m3 where an op says so) and the op
 * entry points each file exports to the table in backend-cuda.cu.
 */
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cublas_v2.h>
#include <cublasLt.h>
#include <stdint.h>

extern "C" {
#include "la-backend-impl.h"
#include "liveavatar/la-cuda.h"
#include "liveavatar/la-error.h"
}

/* Caching allocator (backend-cuda.cu).  Refcounted apart from the backend so
 * a tensor that outlives its backend can still return its block. */
struct LaCudaPool;

/* Threads.  A backend may be shared by threads: every entry point (the ops
 * table and la-cuda.h) holds op_lock, so the cuBLAS/cuDNN handles, the
 * stream's order of work and the capture flag see one caller at a time.
 * A graph capture holds op_lock from la_cuda_graph_begin to _end (another
 * thread's ops would otherwise be captured into the graph instead of run),
 * so begin and end must be called on the same thread.  `lock` only guards
 * the sticky error and the algorithm cache (taken inside ops, never around
 * another lock). */
struct LaCudaBackend {
  LaBackend parent;
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  cudaStream_t stream;
  GRecMutex op_lock;        /* held by every op and la-cuda.h call (one thread at a time) */
  GMutex lock;              /* guards lt_algos (the sticky error is la-backend.c's) */
  LaCudaPool *pool;
  void *lt_workspace;       /* cuBLASLt workspace, allocated once */
  size_t lt_workspace_size;
  void *cudnn;               /* cudnnHandle_t, created on first use (conv-cudnn.cu) */
  gboolean cudnn_refused;    /* cudnnCreate failed once: never retried */
  GHashTable *lt_algos;     /* shape key -> cuBLASLt / cuDNN algorithm or cuDNN refusal (heuristics are slow) */
  int wmma_smem;            /* attention.cu's > 48 KB shared-memory opt-in on this device: 0 not yet, 1 done, -1 failed */
  LaCudaWeights weights;
  gboolean capturing;       /* inside la_cuda_graph_begin/end */
};

/* la_backend_record_error with the device named: "CUDA device N: what: detail". */
void la_cuda_record_error (LaCudaBackend *self, const char *what, const char *detail);

/* Every op starts here: the calling thread's current device must be the
 * backend's (TPP runs one backend per GPU, each from its stage's thread;
 * cudaSetDevice to the current device costs next to nothing). */
static inline LaCudaBackend *
la_cuda_self (LaBackend *be)
{
  cudaSetDevice (be->device_index);
  return (LaCudaBackend *) be;
}

/* Holds the backend's op_lock for a scope (see the struct's comment). */
struct LaCudaOpLock {
  LaCudaBackend *self;
  explicit LaCudaOpLock (LaCudaBackend *s) : self (s) { g_rec_mutex_lock (&self->op_lock); }
  ~LaCudaOpLock () { g_rec_mutex_unlock (&self->op_lock); }
  LaCudaOpLock (const LaCudaOpLock &) = delete;
  LaCudaOpLock &operator= (const LaCudaOpLock &) = delete;
};

#define LA_CU_CHECK(self, call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) la_cuda_record_error ((self), #call, cudaGetErrorString (e_)); } while (0)
#define LA_CUBLAS_CHECK(self, call) do { cublasStatus_t s_ = (call); \
    if (s_ != CUBLAS_STATUS_SUCCESS) la_cuda_record_error ((self), #call, cublasGetStatusString (s_)); } while (0)

/* Stream-ordered scratch from the caching allocator (single stream, so a
 * block freed after enqueuing its last use may be handed out again). */
void *la_cuda_scratch_get (LaCudaBackend *self, size_t bytes);
void  la_cuda_scratch_put (LaCudaBackend *self, void *p);

/* Bytes of data before the fp32 scale slot of an e4m3 tensor. */
static inline size_t la_cuda_scale_offset (size_t nbytes) { return (nbytes + 255) & ~(size_t) 255; }

/* TRUE if t is a device tensor of an element type the ops accept (f32, bf16,
 * f16); records an error naming the op and the tensor otherwise. */
gboolean la_cuda_dtype_ok (LaCudaBackend *self, const char *op, const LaTensor *t);

static inline unsigned la_cuda_blocks (int64_t n, int threads)
{
  int64_t b = (n + threads - 1) / threads;
  return (unsigned) (b < 1 ? 1 : b > (1 << 20) ? (1 << 20) : b);   /* grid-stride loops cover the rest */
}

/* Element access by runtime dtype (uniform across a launch, so the branch is free). */
__device__ __forceinline__ float
la_ld (const void *p, int dt, int64_t i)
{
  switch (dt) {
    case LA_DTYPE_BF16: return __bfloat162float (((const __nv_bfloat16 *) p)[i]);
    case LA_DTYPE_F16: return __half2float (((const __half *) p)[i]);
    case LA_DTYPE_F8_E4M3: {
      __nv_fp8_e4m3 v;
      v.__x = ((const __nv_fp8_storage_t *) p)[i];
      return (float) v;
    }
    default: return ((const float *) p)[i];
  }
}

__device__ __forceinline__ void
la_st (void *p, int dt, int64_t i, float v)
{
  switch (dt) {
    case LA_DTYPE_BF16: ((__nv_bfloat16 *) p)[i] = __float2bfloat16_rn (v); break;
    case LA_DTYPE_F16: ((__half *) p)[i] = __float2half_rn (v); break;
    case LA_DTYPE_F8_E4M3:
      /* saturating RNE cast, as la_f32_to_e4m3 (NaN stays NaN) */
      ((__nv_fp8_storage_t *) p)[i] = __nv_cvt_float_to_fp8 (v, __NV_SATFINITE, __NV_E4M3);
      break;
    default: ((float *) p)[i] = v;
  }
}

/* Device-side dtype conversion of n elements (both on the device). */
void la_cuda_convert (LaCudaBackend *self, void *dst, LaDType dt, const void *src, LaDType st, int64_t n);

/* y[rows, n] += bias[n] (row broadcast) — used after GEMMs without an epilogue. */
void la_cuda_add_bias_rows (LaCudaBackend *self, void *y, LaDType yt, const void *b, LaDType bt,
                            int64_t rows, int64_t n);
/* y[c, p] += bias[c] over a channel-first [C, P] tensor. */
void la_cuda_add_bias_channels (LaCudaBackend *self, void *y, LaDType yt, const void *b, LaDType bt,
                                int64_t C, int64_t P);

/* Plain cuBLAS GEMM in column-major terms with a common input type
 * (f32 or bf16) and output f32 or bf16, fp32 accumulation; batched with
 * strides when batch > 1 (gemm-cublaslt.cu). */
void la_cuda_gemm (LaCudaBackend *self, cublasOperation_t ta, cublasOperation_t tb,
                   int64_t m, int64_t n, int64_t k, float alpha,
                   const void *A, int64_t lda, int64_t strideA,
                   const void *B, int64_t ldb, int64_t strideB,
                   LaDType in_t, float beta, void *C, LaDType c_t, int64_t ldc, int64_t strideC,
                   int64_t batch);

/* Ops, one file each (see the header comment of each file for the math). */
extern "C" {
/* gemm-cublaslt.cu */
void la_cuda_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias);
void la_cuda_matmul (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b,
                     gboolean trans_a, gboolean trans_b, float alpha, float beta);
/* norms.cu */
void la_cuda_layer_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                         const LaTensor *b, float eps);
void la_cuda_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, float eps);
void la_cuda_softmax (LaBackend *be, LaTensor *y, const LaTensor *x);
void la_cuda_channel_rms_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *gamma, float eps);
/* elementwise.cu */
void la_cuda_fill (LaBackend *be, LaTensor *y, float value);
void la_cuda_unary (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x);
void la_cuda_binary (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b);
void la_cuda_axpy (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b);
void la_cuda_modulate (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift,
                       const LaTensor *scale);
void la_cuda_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi);
/* rope.cu */
void la_cuda_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads);
void la_cuda_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
void la_cuda_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3]);
void la_cuda_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs);
void la_cuda_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos);
/* attention.cu */
void la_cuda_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                        const LaTensor *v, int n_heads, float scale, const LaTensor *bias);
void la_cuda_attention_n (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k,
                          const LaTensor *v, int n_heads, float scale, const LaTensor *n_keys);
/* conv.cu */
void la_cuda_conv3d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                     const LaTensor *b, const int stride[3]);
void la_cuda_conv1d (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w,
                     const LaTensor *b, int stride, int pad_l, int pad_r, gboolean replicate,
                     int groups, gboolean x_cf);
/* vae-ops.cu */
void la_cuda_copy4d (LaBackend *be, LaTensor *y, const int64_t yoff[4], const LaTensor *x,
                     const int64_t xoff[4], const int64_t count[4]);
void la_cuda_upsample2x (LaBackend *be, LaTensor *y, const LaTensor *x);
void la_cuda_latent_norm (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *mean,
                          const LaTensor *inv_std, gboolean encode);
}

/* conv-cudnn.cu: conv3d by cuDNN for 16-bit x, w, y (FALSE: not done, use im2col). */
gboolean la_cuda_conv3d_cudnn (LaCudaBackend *self, LaTensor *y, const LaTensor *x, const LaTensor *w,
                               const int stride[3]);
void la_cuda_cudnn_destroy (LaCudaBackend *self);

/* fp8.cu: amax -> scale -> cast on the device; scale_out gets 1/s. */
void la_cuda_fp8_quantize_raw (LaCudaBackend *self, void *dst, const void *src, LaDType st, int64_t n,
                               float *scale_out);
