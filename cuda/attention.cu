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
 * the tiny golden models).  The tensor-core kernel for D = 128 bf16
 * (mma.sync m16n8k16, FA2 tiling) or cuDNN's fused SDPA is the planned fast
 * path; see docs/cuda.md.
 */
#include "cuda-internal.h"
#include <math.h>

#define BQ 16
#define BK 32
#define DMAX 128
#define WARPS 4

__global__ void __launch_bounds__ (WARPS * 32)
k_attention (void *out, int ot, const void *q, int qt, const void *k, int kt, const void *v, int vt,
             const void *bias, int bt, int64_t Lq, int64_t Lk, int64_t HD, int D, float scale)
{
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

extern "C" void
la_cuda_attention (LaBackend *be, LaTensor *out, const LaTensor *q, const LaTensor *k, const LaTensor *v,
                   int n_heads, float scale, const LaTensor *bias)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  const int64_t HD = q->shape[q->ndim - 1], Lq = HD ? la_tensor_numel (q) / HD : 0;
  const int64_t Lk = k->shape[k->ndim - 1] ? la_tensor_numel (k) / k->shape[k->ndim - 1] : 0;
  if (n_heads <= 0 || HD % n_heads || HD / n_heads > DMAX || k->shape[k->ndim - 1] != HD ||
      v->shape[v->ndim - 1] != HD || la_tensor_numel (v) != la_tensor_numel (k)) {
    la_cuda_record_error (self, "attention", "needs q, k, v of width H·D with D <= 128 and k, v of equal shape");
    return;
  }
  if (Lq == 0 || !la_cuda_dtype_ok (self, "attention", out) || !la_cuda_dtype_ok (self, "attention", q) ||
      !la_cuda_dtype_ok (self, "attention", k) || !la_cuda_dtype_ok (self, "attention", v) ||
      (bias && !la_cuda_dtype_ok (self, "attention", bias)))
    return;
  if ((Lq + BQ - 1) / BQ > 2147483647 || n_heads > 65535) {
    la_cuda_record_error (self, "attention", "grid too large");
    return;
  }
  dim3 grid ((unsigned) ((Lq + BQ - 1) / BQ), (unsigned) n_heads);
  k_attention<<<grid, WARPS * 32, 0, self->stream>>> (out->data, out->dtype, q->data, q->dtype, k->data, k->dtype,
                                                     v->data, v->dtype, bias ? bias->data : NULL,
                                                     bias ? bias->dtype : 0, Lq, Lk, HD, (int) (HD / n_heads), scale);
  LA_CU_CHECK (self, cudaGetLastError ());
}
