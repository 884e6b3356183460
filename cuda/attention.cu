/* attention.cu — multi-head softmax attention, non-causal, flash style:
 *   q [Lq, H·D], k, v [Lk, H·D] -> out [Lq, H·D]
 *   out_h = softmax(scale · q_h k_hᵀ (+ bias[h])) v_h,  bias [H, Lq, Lk] optional.
 *
 * One thread block per (16 query rows, head): 4 warps × 4 rows.  Keys and
 * values stream through shared memory in tiles of 32 (fp32, K padded to
 * D+1 so lane j reading key j hits distinct banks); lane j scores key j of
 * the tile, the online softmax (running max m, running sum l, rescale
 * exp(m_old − m_new)) keeps everything in fp32 registers, and each lane
 * accumulates output dims lane, lane+32, lane+64, lane+96 (D <= 128).
 * Never materialises the [Lq, Lk] logits, so Lk of 15 k costs no memory.
 *
 * This is the correctness kernel (CUDA cores, fp32 math, any D <= 128 for
 * the tiny golden models).
 *
 * Tensor-core paths for 16-bit q, k, v: the fused WMMA kernel below (the
 * default when D is a multiple of 16), or (LA_CUDA_ATTN=gemm):
 * per group of heads and chunk of query rows, S = scale·QKᵀ (+ bias) by a
 * strided-batched cuBLAS GEMM into fp32, softmax rows into a 16-bit P (the
 * rounding FlashAttention also applies before P·V), O = P·V by a second
 * batched GEMM.  Scratch is bounded (~1.5 GB at most); logits never exceed
 * it.  A fused mma.sync FlashAttention-2 kernel or cuDNN SDPA is the planned
 * replacement (docs/cuda.md).  LA_CUDA_ATTN=flash|gemm|wmma forces a path.
 *
 * attention_n: the key count comes from a device I32 read by the kernel
 * itself (a step graph's keys grow while clip 0 fills the KV ring), which
 * then runs exactly as over an n-row k — so bit-identical to attention on
 * the n-row views.  The GEMM path cannot (its shapes are host values): it
 * falls back to the fused kernels.
 */
#include "cuda-internal.h"
#include <math.h>

#define BQ 16
#define BK 32
#define DMAX 128
#define WARPS 4

/* Keys a kernel reads: all Lk, or attention_n's first *nk (read on the
 * device, so a captured graph stays right); -1 when *nk is out of range. */
__device__ inline int64_t
keys_used (int64_t Lk, const int32_t *nk)
{
  if (!nk)
    return Lk;
  const int64_t n = *nk;
  return n < 0 || n > Lk ? -1 : n;
}

__global__ void __launch_bounds__ (WARPS * 32)
k_attention (void *out, int ot, const void *q, int qt, const void *k, int kt, const void *v, int vt,
             const void *bias, int bt, int64_t Lq, int64_t Lk, int64_t HD, int D, float scale, const int32_t *nk)
{
  Lk = keys_used (Lk, nk);
  if (Lk < 0)                               /* block-uniform exit */
    return;
  __shared__ float Qs[BQ][DMAX];
  __shared__ float Ks[BK][DMAX + 1];
  __shared__ float Vs[BK][DMAX];
  const int h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t q0 = (int64_t) blockIdx.x * BQ;
  const int64_t col0 = (int64_t) h * D;

  for (int i = threadIdx.x; i < BQ * D; i += blockDim.x) {
    int r = i / D, d = i % D;
    Qs[r][d] = q0 + r < Lq ? la_ld (q, qt, (q0 + r) * HD + col0 + d) : 0.0f;
  }

  float m[4], l[4], acc[4][4];
  for (int r = 0; r < 4; r++) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    for (int j = 0; j < 4; j++)
      acc[r][j] = 0.0f;
  }

  for (int64_t k0 = 0; k0 < Lk; k0 += BK) {
    __syncthreads ();                       /* previous tile fully used (and Qs written) */
    for (int i = threadIdx.x; i < BK * D; i += blockDim.x) {
      int r = i / D, d = i % D;
      gboolean in = k0 + r < Lk;
      Ks[r][d] = in ? la_ld (k, kt, (k0 + r) * HD + col0 + d) : 0.0f;
      Vs[r][d] = in ? la_ld (v, vt, (k0 + r) * HD + col0 + d) : 0.0f;
    }
    __syncthreads ();
    const int64_t key = k0 + lane;
    for (int r = 0; r < 4; r++) {
      const int row = warp * 4 + r;
      const int64_t qi = q0 + row;
      if (qi >= Lq)                         /* warp-uniform */
        continue;
      float s = -INFINITY;
      if (key < Lk) {
        float dot = 0.0f;
        for (int d = 0; d < D; d++)
          dot = fmaf (Qs[row][d], Ks[lane][d], dot);
        s = scale * dot;
        if (bias)
          s += la_ld (bias, bt, ((int64_t) h * Lq + qi) * Lk + key);
      }
      float tmax = s;
      for (int o = 16; o > 0; o >>= 1)
        tmax = fmaxf (tmax, __shfl_xor_sync (0xffffffffu, tmax, o));
      const float mnew = fmaxf (m[r], tmax);
      if (mnew == -INFINITY)                /* nothing finite yet (all masked) */
        continue;
      const float p = key < Lk ? expf (s - mnew) : 0.0f;
      const float corr = expf (m[r] - mnew); /* 0 when m was -inf */
      float psum = p;
      for (int o = 16; o > 0; o >>= 1)
        psum += __shfl_xor_sync (0xffffffffu, psum, o);
      l[r] = l[r] * corr + psum;
      m[r] = mnew;
      for (int j = 0; j < 4; j++)
        acc[r][j] *= corr;
      const int nk = (int) MIN ((int64_t) BK, Lk - k0);
      for (int kk = 0; kk < nk; kk++) {
        const float pk = __shfl_sync (0xffffffffu, p, kk);
        for (int j = 0; j < 4; j++) {
          const int d = lane + 32 * j;
          if (d < D)
            acc[r][j] = fmaf (pk, Vs[kk][d], acc[r][j]);
        }
      }
    }
  }

  for (int r = 0; r < 4; r++) {
    const int64_t qi = q0 + warp * 4 + r;
    if (qi >= Lq)
      continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    for (int j = 0; j < 4; j++) {
      const int d = lane + 32 * j;
      if (d < D)
        la_st (out, ot, qi * HD + col0 + d, acc[r][j] * inv);
    }
  }
}

__global__ void
k_add_bias_tile (float *s, const void *bias, int bt, int64_t Lq, int64_t Lk, int64_t h0, int64_t nh, int64_t r0,
                 int64_t nr)
{
  const int64_t total = nh * nr * Lk;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    int64_t j = i % Lk, r = (i / Lk) % nr, h = i / (Lk * nr);
    s[i] += la_ld (bias, bt, ((h0 + h) * Lq + r0 + r) * Lk + j);
  }
}

/* softmax rows of fp32 S into 16-bit P (la_cuda_softmax's kernel works on tensors; this is the raw form) */
__global__ void
k_softmax_rows (void *p, int pt, const float *s, int64_t N)
{
  __shared__ float red[32];
  const int64_t base = blockIdx.x * N;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    mx = fmaxf (mx, s[base + i]);
  for (int o = 16; o > 0; o >>= 1)
    mx = fmaxf (mx, __shfl_xor_sync (0xffffffffu, mx, o));
  if (threadIdx.x % 32 == 0)
    red[threadIdx.x / 32] = mx;
  __syncthreads ();
  mx = -INFINITY;
  for (int w = 0; w < (int) (blockDim.x / 32); w++)
    mx = fmaxf (mx, red[w]);
  __syncthreads ();
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    sum += mx == -INFINITY ? 0.0f : expf (s[base + i] - mx);
  for (int o = 16; o > 0; o >>= 1)
    sum += __shfl_xor_sync (0xffffffffu, sum, o);
  if (threadIdx.x % 32 == 0)
    red[threadIdx.x / 32] = sum;
  __syncthreads ();
  sum = 0.0f;
  for (int w = 0; w < (int) (blockDim.x / 32); w++)
    sum += red[w];
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    la_st (p, pt, base + i, mx == -INFINITY ? 0.0f : expf (s[base + i] - mx) * inv);
}

static void
attention_gemm (LaCudaBackend *self, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                int64_t H, int64_t D, int64_t Lq, int64_t Lk, float scale, const LaTensor *bias)
{
  const int64_t HD = H * D;
  const LaDType in_t = q->dtype;            /* bf16 or f16, same for k and v (checked by the caller) */
  /* Budget of ~256 M logits (1 GiB fp32 S + 0.5 GiB P): rows of one head, then heads per group. */
  const int64_t budget = (int64_t) 256 << 20;
  const int64_t nr = MAX (1, MIN (Lq, budget / MAX (1, Lk)));
  const int64_t nh = nr < Lq ? 1 : MAX (1, MIN (H, budget / MAX (1, Lq * Lk)));
  float *S = (float *) la_cuda_scratch_get (self, (size_t) (nh * nr * Lk) * sizeof (float) + 16);
  void *P = la_cuda_scratch_get (self, (size_t) (nh * nr * Lk) * la_dtype_size (in_t) + 16);
  void *O = out->data;
  LaDType ot = out->dtype;
  void *otmp = NULL;
  if (!(ot == in_t || ot == LA_DTYPE_F32)) {
    ot = LA_DTYPE_F32;
    O = otmp = la_cuda_scratch_get (self, (size_t) la_tensor_numel (out) * sizeof (float) + 16);
  }
  const size_t ie = la_dtype_size (in_t), oe = la_dtype_size (ot);
  if (S && P && O)
    for (int64_t h0 = 0; h0 < H; h0 += nh) {
      const int64_t gh = MIN (nh, H - h0);
      for (int64_t r0 = 0; r0 < Lq; r0 += nr) {
        const int64_t rows = MIN (nr, Lq - r0);
        /* Sᵀ_h (col-major [Lk, rows]) = K_h (col-major [D, Lk] ld HD, T) · Q_hᵀ (col-major [D, rows] ld HD) */
        la_cuda_gemm (self, CUBLAS_OP_T, CUBLAS_OP_N, Lk, rows, D, scale,
                      (const char *) k->data + (size_t) (h0 * D) * ie, HD, D,
                      (const char *) q->data + (size_t) (r0 * HD + h0 * D) * ie, HD, D, in_t,
                      0.0f, S, LA_DTYPE_F32, Lk, rows * Lk, gh);
        if (bias) {
          const int64_t total = gh * rows * Lk;
          k_add_bias_tile<<<la_cuda_blocks (total, 256), 256, 0, self->stream>>> (S, bias->data, bias->dtype, Lq, Lk,
                                                                                h0, gh, r0, rows);
        }
        k_softmax_rows<<<(unsigned) (gh * rows), 256, 0, self->stream>>> (P, in_t, S, Lk);
        LA_CU_CHECK (self, cudaGetLastError ());
        /* O_hᵀ (col-major [D, rows] ld HD) = V_hᵀ (col-major [D, Lk] ld HD) · P_hᵀ (col-major [Lk, rows]) */
        la_cuda_gemm (self, CUBLAS_OP_N, CUBLAS_OP_N, D, rows, Lk, 1.0f,
                      (const char *) v->data + (size_t) (h0 * D) * ie, HD, D, P, Lk, rows * Lk, in_t,
                      0.0f, (char *) O + (size_t) (r0 * HD + h0 * D) * oe, ot, HD, D, gh);
      }
    }
  if (otmp)
    la_cuda_convert (self, out->data, out->dtype, otmp, LA_DTYPE_F32, la_tensor_numel (out));
  la_cuda_scratch_put (self, S);
  la_cuda_scratch_put (self, P);
  la_cuda_scratch_put (self, otmp);
}

/* ---------------------------------------------------------------- WMMA
 * Fused tensor-core attention (FlashAttention-2 structure with the WMMA API),
 * 16-bit q/k/v, D a multiple of 16 up to 128.  Block = 4 warps = 64 query
 * rows of one head.  Each warp keeps its 16×D slice of Q in registers (WMMA
 * fragments, loaded once); K/V tiles of 64 keys stream through shared
 * memory (16-bit).  Per tile each warp computes S[16×64] = Q_w·Kᵀ into fp32
 * shared memory (reusing the Q staging area), lane pairs (one row each, 32
 * columns each) do the online softmax in fp32 (scale, bias, mask), write P
 * in 16-bit and rescale the fp32 output rows kept in shared memory, then
 * O_w += P·V.  The row sum l adds the 16-bit-rounded p that P·V really uses.
 * Shared memory: 95 232 B (dynamic; fits sm_89's 99 KB and sm_90's 227 KB).
 */
#include <mma.h>

#define WQ 64                 /* query rows per block (16 per warp) */
#define WK 64                 /* keys per tile */
#define LDQ (DMAX + 8)        /* 16-bit rows of Q, K, V in shared memory */
#define LDS (WK + 4)          /* fp32 S rows */
#define LDP (WK + 8)          /* 16-bit P rows */
#define LDO (DMAX + 4)        /* fp32 O rows */
/* Q staging (16-bit, 64 rows) and S (fp32, 4 warps × 16 rows) share one area */
#define QS_BYTES (WQ * LDQ * 2 > WARPS * 16 * LDS * 4 ? WQ * LDQ * 2 : WARPS * 16 * LDS * 4)
#define WMMA_SMEM (QS_BYTES + 2 * WK * LDQ * 2 + WARPS * 16 * (LDP * 2 + LDO * 4))

template <typename T>
__global__ void __launch_bounds__ (WARPS * 32)
k_attention_wmma (void *out, int ot, const void *q, int qt, const void *k, int kt, const void *v, int vt,
                  const void *bias, int bt, int64_t Lq, int64_t Lk, int64_t HD, int D, float scale, const int32_t *nk)
{
  Lk = keys_used (Lk, nk);
  if (Lk < 0)                               /* block-uniform exit */
    return;
  using namespace nvcuda;
  extern __shared__ __align__ (128) unsigned char smem[];
  T *Qs = (T *) smem;
  float *Ss = (float *) smem;                          /* after the Q fragments are loaded */
  T *Ks = (T *) (smem + QS_BYTES);
  T *Vs = Ks + WK * LDQ;
  T *Ps = Vs + WK * LDQ;
  float *Os = (float *) (Ps + WARPS * 16 * LDP);
  const int h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t q0 = (int64_t) blockIdx.x * WQ, col0 = (int64_t) h * D;
  float *Sw = Ss + warp * 16 * LDS, *Ow = Os + warp * 16 * LDO;
  T *Pw = Ps + warp * 16 * LDP;
  const int nd = D / 16;

  for (int i = threadIdx.x; i < WQ * D; i += blockDim.x) {
    int r = i / D, d = i % D;
    float x = q0 + r < Lq ? la_ld (q, qt, (q0 + r) * HD + col0 + d) : 0.0f;
    Qs[r * LDQ + d] = (T) x;
  }
  for (int i = lane; i < 16 * D; i += 32)
    Ow[(i / D) * LDO + i % D] = 0.0f;
  __syncthreads ();
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qa[DMAX / 16];
#pragma unroll
  for (int kk = 0; kk < DMAX / 16; kk++)
    if (kk < nd)
      wmma::load_matrix_sync (qa[kk], Qs + warp * 16 * LDQ + kk * 16, LDQ);

  /* lane pair (2r, 2r+1) owns row r of this warp's 16 rows */
  const int r = lane >> 1, half = lane & 1;
  const int64_t qi = q0 + warp * 16 + r;
  float m = -INFINITY, l = 0.0f;

  for (int64_t k0 = 0; k0 < Lk; k0 += WK) {
    __syncthreads ();     /* every warp has its Q fragments (Ss overwrites Qs) and is done with the last tile */
    for (int i = threadIdx.x; i < WK * D; i += blockDim.x) {
      int kr = i / D, d = i % D;
      gboolean in = k0 + kr < Lk;
      Ks[kr * LDQ + d] = (T) (in ? la_ld (k, kt, (k0 + kr) * HD + col0 + d) : 0.0f);
      Vs[kr * LDQ + d] = (T) (in ? la_ld (v, vt, (k0 + kr) * HD + col0 + d) : 0.0f);
    }
    __syncthreads ();

    /* S = Q_w · Kᵀ: K stored [key][d] is Kᵀ in column-major with ldm LDQ */
#pragma unroll
    for (int j = 0; j < WK / 16; j++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment (acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < DMAX / 16; kk++)
        if (kk < nd) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
          wmma::load_matrix_sync (b, Ks + j * 16 * LDQ + kk * 16, LDQ);
          wmma::mma_sync (acc, qa[kk], b, acc);
        }
      wmma::store_matrix_sync (Sw + j * 16, acc, LDS, wmma::mem_row_major);
    }
    __syncwarp ();

    /* online softmax on row r, columns half·32 .. +32 */
    float sv[WK / 2], tmax = -INFINITY;
#pragma unroll
    for (int c = 0; c < WK / 2; c++) {
      const int64_t key = k0 + half * (WK / 2) + c;
      float x = -INFINITY;
      if (key < Lk && qi < Lq) {
        x = scale * Sw[r * LDS + half * (WK / 2) + c];
        if (bias)
          x += la_ld (bias, bt, ((int64_t) h * Lq + qi) * Lk + key);
      }
      sv[c] = x;
      tmax = fmaxf (tmax, x);
    }
    tmax = fmaxf (tmax, __shfl_xor_sync (0xffffffffu, tmax, 1));
    const float mnew = fmaxf (m, tmax);
    const float corr = mnew == -INFINITY ? 1.0f : expf (m - mnew);
    float psum = 0.0f;
#pragma unroll
    for (int c = 0; c < WK / 2; c++) {
      const float p = mnew == -INFINITY ? 0.0f : expf (sv[c] - mnew);
      const T pt = (T) p;
      Pw[r * LDP + half * (WK / 2) + c] = pt;
      psum += (float) pt;        /* the sum of what P·V actually uses */
    }
    psum += __shfl_xor_sync (0xffffffffu, psum, 1);
    l = l * corr + psum;
    m = mnew;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); c++)
      Ow[r * LDO + c] *= corr;
    __syncwarp ();

    /* O_w += P · V */
    for (int j = 0; j < nd; j++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync (acc, Ow + j * 16, LDO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < WK / 16; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
        wmma::load_matrix_sync (a, Pw + kk * 16, LDP);
        wmma::load_matrix_sync (b, Vs + kk * 16 * LDQ + j * 16, LDQ);
        wmma::mma_sync (acc, a, b, acc);
      }
      wmma::store_matrix_sync (Ow + j * 16, acc, LDO, wmma::mem_row_major);
    }
    __syncwarp ();
  }

  if (qi < Lq) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); c++)
      la_st (out, ot, qi * HD + col0 + c, Ow[r * LDO + c] * inv);
  }
}

static void
attention_wmma (LaCudaBackend *self, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                int64_t H, int64_t D, int64_t Lq, int64_t Lk, float scale, const LaTensor *bias, const int32_t *nk)
{
  /* The opt-in to > 48 KB of dynamic shared memory is a per-device function
   * attribute: done once per backend (each backend has one device; a second
   * backend on the same device repeats it harmlessly), and checked, since a
   * launch without it fails with an unhelpful "invalid argument". */
  if (self->wmma_smem == 0) {
    cudaError_t e = cudaFuncSetAttribute (k_attention_wmma<__nv_bfloat16>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          WMMA_SMEM);
    if (e == cudaSuccess)
      e = cudaFuncSetAttribute (k_attention_wmma<__half>, cudaFuncAttributeMaxDynamicSharedMemorySize, WMMA_SMEM);
    self->wmma_smem = e == cudaSuccess ? 1 : -1;
    if (e != cudaSuccess) {
      (void) cudaGetLastError ();
      char *msg = g_strdup_printf ("%d bytes of dynamic shared memory for the WMMA kernel refused: %s "
                                   "(LA_CUDA_ATTN=flash avoids this kernel)", WMMA_SMEM, cudaGetErrorString (e));
      la_cuda_record_error (self, "attention: cudaFuncSetAttribute", msg);
      g_free (msg);
    }
  }
  if (self->wmma_smem < 0) {
    la_cuda_record_error (self, "attention", "the WMMA kernel is unusable on this device (shared-memory opt-in failed)");
    return;
  }
  dim3 grid ((unsigned) ((Lq + WQ - 1) / WQ), (unsigned) H);
  const void *bd = bias ? bias->data : NULL;
  const int bt = bias ? bias->dtype : 0;
  if (q->dtype == LA_DTYPE_F16)
    k_attention_wmma<__half><<<grid, WARPS * 32, WMMA_SMEM, self->stream>>> (
        out->data, out->dtype, q->data, q->dtype, k->data, k->dtype, v->data, v->dtype, bd, bt, Lq, Lk, H * D, (int) D,
        scale, nk);
  else
    k_attention_wmma<__nv_bfloat16><<<grid, WARPS * 32, WMMA_SMEM, self->stream>>> (
        out->data, out->dtype, q->data, q->dtype, k->data, k->dtype, v->data, v->dtype, bd, bt, Lq, Lk, H * D, (int) D,
        scale, nk);
  LA_CU_CHECK (self, cudaGetLastError ());
}

/* 0 auto, 1 flash kernel, 2 GEMM path, 3 WMMA kernel (LA_CUDA_ATTN=flash|gemm|wmma, read once). */
static int
attention_mode (void)
{
  static gsize once = 0;
  static int mode = 0;
  if (g_once_init_enter (&once)) {
    const char *e = g_getenv ("LA_CUDA_ATTN");
    mode = !e ? 0 : g_str_equal (e, "flash") ? 1 : g_str_equal (e, "gemm") ? 2 : g_str_equal (e, "wmma") ? 3 : 0;
    g_once_init_leave (&once, 1);
  }
  return mode;
}

/* The dispatch of attention and attention_n (nk: the device key count, or
 * NULL).  The GEMM path sizes its logits and GEMMs from the host's Lk, so
 * with a device key count it gives way to the fused kernels (WMMA for 16-bit
 * inputs with D % 16 == 0, else the flash kernel), which read nk themselves. */
static void
attention_run (LaCudaBackend *self, const char *op, LaTensor *out, const LaTensor *q, const LaTensor *k,
               const LaTensor *v, int n_heads, float scale, const LaTensor *bias, const int32_t *nk)
{
  const int64_t HD = q->shape[q->ndim - 1], Lq = HD ? la_tensor_numel (q) / HD : 0;
  const int64_t Lk = k->shape[k->ndim - 1] ? la_tensor_numel (k) / k->shape[k->ndim - 1] : 0;
  if (n_heads <= 0 || HD % n_heads || HD / n_heads > DMAX || k->shape[k->ndim - 1] != HD ||
      v->shape[v->ndim - 1] != HD || la_tensor_numel (v) != la_tensor_numel (k)) {
    la_cuda_record_error (self, op, "needs q, k, v of width H·D with D <= 128 and k, v of equal shape");
    return;
  }
  if (Lq == 0 || !la_cuda_dtype_ok (self, op, out) || !la_cuda_dtype_ok (self, op, q) ||
      !la_cuda_dtype_ok (self, op, k) || !la_cuda_dtype_ok (self, op, v) ||
      (bias && !la_cuda_dtype_ok (self, op, bias)))
    return;
  if ((Lq + BQ - 1) / BQ > 2147483647 || n_heads > 65535) {
    la_cuda_record_error (self, op, "grid too large");
    return;
  }
  const gboolean half = (q->dtype == LA_DTYPE_BF16 || q->dtype == LA_DTYPE_F16) && k->dtype == q->dtype &&
                        v->dtype == q->dtype;
  const int mode = attention_mode ();
  const int64_t D = HD / n_heads;
  if (half && mode == 2 && !nk) {
    attention_gemm (self, out, q, k, v, n_heads, D, Lq, Lk, scale, bias);
    return;
  }
  if (half && mode != 1 && D % 16 == 0 && (Lq + WQ - 1) / WQ <= 2147483647) {
    attention_wmma (self, out, q, k, v, n_heads, D, Lq, Lk, scale, bias, nk);
    return;
  }
  dim3 grid ((unsigned) ((Lq + BQ - 1) / BQ), (unsigned) n_heads);
  k_attention<<<grid, WARPS * 32, 0, self->stream>>> (out->data, out->dtype, q->data, q->dtype, k->data, k->dtype,
                                                     v->data, v->dtype, bias ? bias->data : NULL,
                                                     bias ? bias->dtype : 0, Lq, Lk, HD, (int) (HD / n_heads), scale,
                                                     nk);
  LA_CU_CHECK (self, cudaGetLastError ());
}

extern "C" void
la_cuda_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                   int n_heads, float scale, const LaTensor *bias)
{
  attention_run (la_cuda_self (be), "attention", out, q, k, v, n_heads, scale, bias, NULL);
}

extern "C" void
la_cuda_attention_n (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                     int n_heads, float scale, const LaTensor *n_keys)
{
  attention_run (la_cuda_self (be), "attention_n", out, q, k, v, n_heads, scale, NULL,
                 (const int32_t *) n_keys->data);
}
