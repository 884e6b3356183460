/* dit-ops.cu — the DiT step's layout ops, so that a step runs without the host
 * (contracts in lib/la-backend-impl.h; CPU versions in lib/cpu/ops-dit.c):
 *  patchify    x [C, T, H, W] -> y [tokens (t, i, j), (c, a, b, d)] for a
 *              stride = kernel conv (kt, kh, kw);
 *  unpatchify  x [tokens, (a, b, d, c)] -> y [C, T, H, W] (the head's layout);
 *  rope_table  the temporal (cos, sin) pairs of a RoPE table from a position,
 *              through la_rope_f16_pair (la-ops.h), the host tables' formula.
 *  copy_rows_at dst rows [p, p + rows(src)) = src with p read on the device
 *              (the KV ring slot of a step graph); p out of range: every
 *              thread returns, nothing is written (a kernel cannot report).
 * One thread per output element (per table entry for rope_table); the layout
 * ops only move elements (dtype casts on the fly), so they are exact.
 */
#include "cuda-internal.h"

#define THREADS 256

/* Input element of output element i of patchify, which is also the output
 * element of unpatchify's input element i with the patch columns reordered:
 * i = (tok, col) with col = (c, a, b, d) for patchify, (a, b, d, c) for unpatchify. */
__device__ __forceinline__ int64_t
grid_index (int64_t tok, int64_t c, int64_t a, int64_t b, int64_t d, int64_t T, int64_t H, int64_t W, int64_t nh,
            int64_t nw, int kt, int kh, int kw)
{
  const int64_t t = tok / (nh * nw), i = tok / nw % nh, j = tok % nw;
  return ((c * T + t * kt + a) * H + i * kh + b) * W + j * kw + d;
}

__global__ void
k_patchify (void *y, int yt, const void *x, int xt, int64_t C, int64_t T, int64_t H, int64_t W, int kt, int kh,
            int kw, int64_t total)
{
  const int64_t K = C * kt * kh * kw, nh = H / kh, nw = W / kw;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    const int64_t tok = i / K, col = i % K;
    const int64_t d = col % kw, b = col / kw % kh, a = col / (kw * kh) % kt, c = col / (kw * kh * kt);
    la_st (y, yt, i, la_ld (x, xt, grid_index (tok, c, a, b, d, T, H, W, nh, nw, kt, kh, kw)));
  }
}

__global__ void
k_unpatchify (void *y, int yt, const void *x, int xt, int64_t C, int64_t T, int64_t H, int64_t W, int kt, int kh,
              int kw, int64_t total)
{
  const int64_t K = C * kt * kh * kw, nh = H / kh, nw = W / kw;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    const int64_t tok = i / K, col = i % K;
    const int64_t c = col % C, d = col / C % kw, b = col / (C * kw) % kh, a = col / (C * kw * kh);
    la_st (y, yt, grid_index (tok, c, a, b, d, T, H, W, nh, nw, kt, kh, kw), la_ld (x, xt, i));
  }
}

static gboolean
patch_ok (LaCudaBackend *self, const char *op, const LaTensor *y, const LaTensor *x, const LaTensor *grid,
          const int k[3])
{
  if (grid->ndim != 4 || k[0] < 1 || k[1] < 1 || k[2] < 1) {
    la_cuda_record_error (self, op, "the latent must be 4-D and the kernel positive");
    return FALSE;
  }
  return la_cuda_dtype_ok (self, op, y) && la_cuda_dtype_ok (self, op, x);
}

extern "C" void
la_cuda_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t total = la_tensor_numel (x);
  if (total == 0 || !patch_ok (self, "patchify", y, x, x, k))
    return;
  const int64_t *s = x->shape;
  k_patchify<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
      y->data, y->dtype, x->data, x->dtype, s[0], s[1], s[2], s[3], k[0], k[1], k[2], total);
  LA_CU_CHECK (self, cudaGetLastError ());
}

extern "C" void
la_cuda_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t total = la_tensor_numel (x);
  if (total == 0 || !patch_ok (self, "unpatchify", y, x, y, k))
    return;
  const int64_t *s = y->shape;
  k_unpatchify<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
      y->data, y->dtype, x->data, x->dtype, s[0], s[1], s[2], s[3], k[0], k[1], k[2], total);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_rope_table (void *f, int ft, int64_t R, int64_t P, int64_t pos0, int64_t rows_per_pos, int n_pairs)
{
  const int64_t total = R * n_pairs;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x) {
    const int64_t r = i / n_pairs;
    const int k = (int) (i % n_pairs);
    float cs, sn;
    la_rope_f16_pair (pos0 + r / rows_per_pos, k, n_pairs, &cs, &sn);
    la_st (f, ft, (r * P + k) * 2, cs);
    la_st (f, ft, (r * P + k) * 2 + 1, sn);
  }
}

extern "C" void
la_cuda_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t R = freqs->shape[0], P = freqs->shape[1];
  if (R == 0)
    return;
  if (!la_cuda_dtype_ok (self, "rope_table", freqs))
    return;
  k_rope_table<<<la_cuda_blocks (R * n_pairs, THREADS), THREADS, 0, self->stream>>> (
      freqs->data, freqs->dtype, R, P, pos0, rows_per_pos, n_pairs);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_copy_rows_at (void *dst, int dt, const void *src, int st, const int32_t *pos, int64_t dst_rows, int64_t rows,
                int64_t cols)
{
  const int64_t p = *pos, total = rows * cols;
  if (p < 0 || p + rows > dst_rows)
    return;
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x)
    la_st (dst, dt, p * cols + i, la_ld (src, st, i));
}

extern "C" void
la_cuda_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t total = la_tensor_numel (src), cols = dst->shape[dst->ndim - 1];
  if (total == 0 || !la_cuda_dtype_ok (self, "copy_rows_at", dst) || !la_cuda_dtype_ok (self, "copy_rows_at", src))
    return;
  k_copy_rows_at<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (
      dst->data, dst->dtype, src->data, src->dtype, (const int32_t *) pos->data, la_tensor_numel (dst) / cols,
      total / cols, cols);
  LA_CU_CHECK (self, cudaGetLastError ());
}
