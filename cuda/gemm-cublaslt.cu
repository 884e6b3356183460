/* gemm-cublaslt.cu — linear and matmul.
 *
 *  linear  y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N])   (nn.Linear layout)
 *  matmul  c = alpha · op(a) · op(b) + beta · c, batched over leading dims
 *          (b may have batch 1: broadcast)
 *
 * Row-major to cuBLAS column-major: a row-major [R, C] matrix is a
 * column-major [C, R] one, so y = x·wᵀ becomes yᵀ[N, M] = w(col [K, N], T) ·
 * xᵀ(col [K, M], N), and c = op(a)·op(b) becomes cᵀ = op(b)ᵀ·op(a)ᵀ.
 *
 * Dtypes: inputs are brought to one type (w's type for linear; f32 if either
 * matmul operand is f32, else bf16/f16) in scratch; fp32 accumulation always
 * (CUBLAS_COMPUTE_32F, no TF32, so f32 GEMMs match the CPU reference).
 *
 * FP8 (w is e4m3, docs/design/model.md §2.3): x is quantised per call with its
 * own amax (fp8.cu), then cuBLASLt e4m3 × e4m3 "TN" GEMM with A/B scale
 * pointers = the dequantisation scales 1/s_w, 1/s_x, FAST_ACCUM = 1, bias
 * epilogue with a bf16 bias, bf16 D, then cast to y's dtype — the same
 * roundings as torch._scaled_mm(..., out_dtype=bf16, use_fast_accum=True).
 */
#include "cuda-internal.h"
#include <limits.h>

/* cuBLAS accepts C in the input type or f32 (for 16-bit inputs). */
static gboolean
c_type_ok (LaDType in_t, LaDType c_t)
{
  return c_t == in_t || (c_t == LA_DTYPE_F32 && in_t != LA_DTYPE_F32);
}

static cudaDataType_t
cuda_type (LaDType t)
{
  return t == LA_DTYPE_BF16 ? CUDA_R_16BF : t == LA_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

void
la_cuda_gemm (LaCudaBackend *self, cublasOperation_t ta, cublasOperation_t tb,
              int64_t m, int64_t n, int64_t k, float alpha,
              const void *A, int64_t lda, int64_t strideA,
              const void *B, int64_t ldb, int64_t strideB,
              LaDType in_t, float beta, void *C, LaDType c_t, int64_t ldc, int64_t strideC, int64_t batch)
{
  if (m == 0 || n == 0 || batch == 0)
    return;
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX ||
      batch > INT_MAX) {
    la_cuda_record_error (self, "gemm", "a dimension exceeds 2^31");
    return;
  }
  cublasStatus_t st;
  if (batch == 1)
    st = cublasGemmEx (self->blas, ta, tb, (int) m, (int) n, (int) k, &alpha, A, cuda_type (in_t), (int) lda,
                       B, cuda_type (in_t), (int) ldb, &beta, C, cuda_type (c_t), (int) ldc,
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  else
    st = cublasGemmStridedBatchedEx (self->blas, ta, tb, (int) m, (int) n, (int) k, &alpha,
                                     A, cuda_type (in_t), (int) lda, strideA,
                                     B, cuda_type (in_t), (int) ldb, strideB, &beta,
                                     C, cuda_type (c_t), (int) ldc, strideC, (int) batch,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    la_cuda_record_error (self, "cublasGemmEx", cublasGetStatusString (st));
}

/* p cast to type t in scratch (or p itself when it already is); *tmp gets the scratch to put back. */
static const void *
as_type (LaCudaBackend *self, const LaTensor *x, LaDType t, void **tmp)
{
  *tmp = NULL;
  if (x->dtype == t)
    return x->data;
  int64_t n = la_tensor_numel (x);
  *tmp = la_cuda_scratch_get (self, (size_t) n * la_dtype_size (t) + 16);
  if (*tmp)
    la_cuda_convert (self, *tmp, t, x->data, x->dtype, n);
  return *tmp;
}

static void fp8_linear (LaCudaBackend *self, LaTensor *y, const LaTensor *x, const LaTensor *w,
                        const LaTensor *bias, int64_t M, int64_t N, int64_t K);

extern "C" void
la_cuda_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias)
{
  LaCudaBackend *self = la_cuda_self (be);
  const int64_t K = x->shape[x->ndim - 1], M = K ? la_tensor_numel (x) / K : 0, N = w->shape[0];
  /* An e4m3 x (from la_cuda_quantize_fp8, carrying its scale) is taken as
   * already quantised: q, k and v of one input then share one quantisation. */
  if ((x->dtype != LA_DTYPE_F8_E4M3 || w->dtype != LA_DTYPE_F8_E4M3) && !la_cuda_dtype_ok (self, "linear", x))
    return;
  if (!la_cuda_dtype_ok (self, "linear", y) || (bias && !la_cuda_dtype_ok (self, "linear", bias)))
    return;
  if (w->dtype == LA_DTYPE_F8_E4M3) {
    fp8_linear (self, y, x, w, bias, M, N, K);
    return;
  }
  if (!la_cuda_dtype_ok (self, "linear", w))
    return;
  const LaDType in_t = w->dtype;
  void *xtmp = NULL, *ytmp = NULL;
  const void *xd = as_type (self, x, in_t, &xtmp);
  void *yd = y->data;
  LaDType yt = y->dtype;
  if (!c_type_ok (in_t, yt)) {
    yt = LA_DTYPE_F32;
    yd = ytmp = la_cuda_scratch_get (self, (size_t) (M * N) * sizeof (float) + 16);
  }
  if (xd && yd) {
    la_cuda_gemm (self, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, 1.0f, w->data, K, 0, xd, K, 0, in_t,
                  0.0f, yd, yt, N, 0, 1);
    if (bias)   /* in the wider type when there is a scratch output: one rounding of the sum */
      la_cuda_add_bias_rows (self, yd, yt, bias->data, bias->dtype, M, N);
    if (ytmp)
      la_cuda_convert (self, y->data, y->dtype, ytmp, LA_DTYPE_F32, M * N);
  }
  la_cuda_scratch_put (self, xtmp);
  la_cuda_scratch_put (self, ytmp);
}

extern "C" void
la_cuda_matmul (LaBackend *be, LaTensor *c, const LaTensor *a, const LaTensor *b,
                gboolean trans_a, gboolean trans_b, float alpha, float beta)
{
  LaCudaBackend *self = la_cuda_self (be);
  if (!la_cuda_dtype_ok (self, "matmul", a) || !la_cuda_dtype_ok (self, "matmul", b) ||
      !la_cuda_dtype_ok (self, "matmul", c))
    return;
  const int nd = a->ndim;
  const int64_t ar = a->shape[nd - 2], ac = a->shape[nd - 1];
  const int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
  const int64_t M = trans_a ? ac : ar, K = trans_a ? ar : ac, N = trans_b ? br : bc;
  if (ar * ac == 0 || br * bc == 0)
    return;
  const int64_t batch = la_tensor_numel (a) / (ar * ac), bbatch = la_tensor_numel (b) / (br * bc);
  if (bbatch != 1 && bbatch != batch) {
    la_cuda_record_error (self, "matmul", "batch of b is neither 1 nor a's batch");
    return;
  }
  const LaDType in_t = (a->dtype == LA_DTYPE_F32 || b->dtype == LA_DTYPE_F32) ? LA_DTYPE_F32
                       : a->dtype == b->dtype ? a->dtype : LA_DTYPE_BF16;
  void *at = NULL, *bt = NULL, *ct = NULL;
  const void *ad = as_type (self, a, in_t, &at), *bd = as_type (self, b, in_t, &bt);
  void *cd = c->data;
  LaDType c_t = c->dtype;
  const int64_t nc = batch * M * N;
  if (!c_type_ok (in_t, c_t)) {
    c_t = LA_DTYPE_F32;
    cd = ct = la_cuda_scratch_get (self, (size_t) nc * sizeof (float) + 16);
    if (ct && beta != 0.0f)
      la_cuda_convert (self, ct, LA_DTYPE_F32, c->data, c->dtype, nc);
  }
  if (ad && bd && cd) {
    la_cuda_gemm (self, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                  N, M, K, alpha, bd, bc, bbatch == 1 ? 0 : br * bc, ad, ac, ar * ac, in_t,
                  beta, cd, c_t, N, M * N, batch);
    if (ct)
      la_cuda_convert (self, c->data, c->dtype, ct, LA_DTYPE_F32, nc);
  }
  la_cuda_scratch_put (self, at);
  la_cuda_scratch_put (self, bt);
  la_cuda_scratch_put (self, ct);
}

/* ------------------------------------------------------------------ FP8 */

#define LT(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) { \
      la_cuda_record_error (self, #call, cublasGetStatusString (s_)); goto done; } } while (0)

static void
fp8_linear (LaCudaBackend *self, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias,
            int64_t M, int64_t N, int64_t K)
{
  if (M == 0 || N == 0)
    return;
  if (w->device != LA_DEVICE_CUDA || (x->dtype == LA_DTYPE_F8_E4M3 && x->device != LA_DEVICE_CUDA)) {
    la_cuda_record_error (self, "linear (FP8)", "weight or activation is a host tensor");
    return;
  }
  if (K % 16 || N % 16 || w->ndim != 2 || w->shape[1] != K || ((uintptr_t) w->data & 255)) {
    la_cuda_record_error (self, "linear (FP8)", "weight must be a whole (256-byte aligned) [N, K] tensor with N and K multiples of 16");
    return;
  }
  const float *w_scale = la_cuda_fp8_scale_ptr (w);
  cublasLtMatmulDesc_t op = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasLtMatmulPreference_t pref = NULL;
  void *xq = NULL, *btmp = NULL, *ytmp = NULL;
  const void *bias_bf16 = NULL;
  float *x_scale;
  void *d;
  const float alpha = 1.0f, beta = 0.0f;
  const cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
  const int8_t fast = 1;
  cublasLtMatmulAlgo_t algo;
  char *key = NULL;

  /* Activations: e4m3 copy of x with its dequantisation scale after the data
   * (or x itself when the caller quantised it already, 256-byte aligned). */
  const void *xa;
  if (x->dtype == LA_DTYPE_F8_E4M3) {
    if ((uintptr_t) x->data & 255) {     /* a view: its scale slot is not where la_cuda_fp8_scale_ptr looks */
      la_cuda_record_error (self, "linear (FP8)", "an e4m3 activation must be a whole tensor, not a view");
      return;
    }
    xa = x->data;
    x_scale = la_cuda_fp8_scale_ptr (x);
  } else {
    const size_t xbytes = la_cuda_scale_offset ((size_t) (M * K));
    xq = la_cuda_scratch_get (self, xbytes + 256);
    if (!xq)
      goto done;
    x_scale = (float *) ((char *) xq + xbytes);
    la_cuda_fp8_quantize_raw (self, xq, x->data, x->dtype, M * K, x_scale);
    xa = xq;
  }
  /* cuBLASLt's heuristics assume 256-byte aligned pointers (the default
   * preference); row views into bigger tensors may not be, so such bias / D
   * go through aligned scratch. */
  if (bias) {
    if (bias->dtype == LA_DTYPE_BF16 && !((uintptr_t) bias->data & 255))
      bias_bf16 = bias->data;
    else {
      btmp = la_cuda_scratch_get (self, (size_t) N * 2 + 16);
      if (!btmp)
        goto done;
      la_cuda_convert (self, btmp, LA_DTYPE_BF16, bias->data, bias->dtype, N);
      bias_bf16 = btmp;
    }
  }
  d = y->data;
  if (y->dtype != LA_DTYPE_BF16 || ((uintptr_t) y->data & 255)) {
    d = ytmp = la_cuda_scratch_get (self, (size_t) (M * N) * 2 + 16);
    if (!ytmp)
      goto done;
  }

  LT (cublasLtMatmulDescCreate (&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA));
  LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB));
  LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof w_scale));
  LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof x_scale));
  LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
  if (bias_bf16) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bt = CUDA_R_16BF;
    LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_bf16, sizeof bias_bf16));
    LT (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
  }
  /* A = w: column-major [K, N] (transposed by TRANSA); B = x8: [K, M]; C = D = yᵀ: [N, M] bf16. */
  LT (cublasLtMatrixLayoutCreate (&la, CUDA_R_8F_E4M3, (uint64_t) K, (uint64_t) N, K));
  LT (cublasLtMatrixLayoutCreate (&lb, CUDA_R_8F_E4M3, (uint64_t) K, (uint64_t) M, K));
  LT (cublasLtMatrixLayoutCreate (&lc, CUDA_R_16BF, (uint64_t) N, (uint64_t) M, N));

  key = g_strdup_printf ("fp8 %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %d",
                         M, N, K, bias_bf16 != NULL);
  {
    g_mutex_lock (&self->lock);
    const cublasLtMatmulAlgo_t *cached = (const cublasLtMatmulAlgo_t *) g_hash_table_lookup (self->lt_algos, key);
    if (cached)
      algo = *cached;
    g_mutex_unlock (&self->lock);
    if (!cached) {
      cublasLtMatmulHeuristicResult_t heur;
      int found = 0;
      LT (cublasLtMatmulPreferenceCreate (&pref));
      LT (cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &self->lt_workspace_size, sizeof self->lt_workspace_size));
      LT (cublasLtMatmulAlgoGetHeuristic (self->lt, op, la, lb, lc, lc, pref, 1, &heur, &found));
      if (found < 1) {
        la_cuda_record_error (self, "linear (FP8)", "cuBLASLt has no algorithm for this shape");
        goto done;
      }
      algo = heur.algo;
      g_mutex_lock (&self->lock);
      g_hash_table_insert (self->lt_algos, g_strdup (key), g_memdup2 (&algo, sizeof algo));
      g_mutex_unlock (&self->lock);
    }
  }
  LT (cublasLtMatmul (self->lt, op, &alpha, w->data, la, xa, lb, &beta, d, lc, d, lc, &algo,
                      self->lt_workspace, self->lt_workspace_size, self->stream));
  if (ytmp)
    la_cuda_convert (self, y->data, y->dtype, ytmp, LA_DTYPE_BF16, M * N);
done:
  g_free (key);
  if (pref)
    cublasLtMatmulPreferenceDestroy (pref);
  if (la)
    cublasLtMatrixLayoutDestroy (la);
  if (lb)
    cublasLtMatrixLayoutDestroy (lb);
  if (lc)
    cublasLtMatrixLayoutDestroy (lc);
  if (op)
    cublasLtMatmulDescDestroy (op);
  la_cuda_scratch_put (self, xq);
  la_cuda_scratch_put (self, btmp);
  la_cuda_scratch_put (self, ytmp);
}
