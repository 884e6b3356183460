/* test-emu-cublas.cc — the emulated cuBLAS and cuBLASLt (cuda/emu/lib-cublas.cc,
 * lib-cublaslt.cc) against GEMMs computed here from the logical matrices:
 *  - every transpose combination, leading dimensions above the minimum with
 *    NaN in the padding (reading it, i.e. a wrong ld or a swapped transpose,
 *    shows as NaN or a wrong value; writing it, as a changed pad), batches
 *    with a broadcast B, alpha/beta, beta = 0 over a NaN C, f32/f16/bf16 in
 *    and out;
 *  - the documented refusals: ld < rows → INVALID_VALUE, bad type
 *    combinations → NOT_SUPPORTED, FP8 not "TN" → no algorithm;
 *  - FP8 e4m3 × e4m3 with A/B scale pointers and a bf16 bias epilogue;
 *  - aborts in a child process: an operand past its allocation, a destroyed
 *    handle, an unaligned D for the heuristic's algorithm, an epilogue that
 *    is not emulated.
 */
#include <cublasLt.h>
#include <cstdio>
#include "emu-test.h"

struct Case {
  cudaDataType_t in, out;
  bool ta, tb;
  int m, n, k, pad, batch;
  bool bcast_b;
  float alpha, beta;
};

static const float NaN = __builtin_nanf ("");

/* Stores the logical rows × cols matrices (one per batch) of `v` column-major
 * through op() with leading dimension ld and batch stride, NaN elsewhere. */
static std::vector<float>
store (const std::vector<float> &v, int rows, int cols, bool trans, int ld, int64_t stride, int batch)
{
  std::vector<float> s ((size_t) (stride * (batch - 1) + (int64_t) ld * (trans ? rows : cols)), NaN);
  for (int b = 0; b < batch; b++)
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++)
        s[(size_t) (b * stride + (trans ? j + (int64_t) i * ld : i + (int64_t) j * ld))] =
            v[((size_t) b * rows + i) * cols + j];
  return s;
}

static void
run_case (cublasHandle_t h, const Case &c, GRand *r)
{
  const int nb_b = c.bcast_b ? 1 : c.batch;
  std::vector<float> a ((size_t) c.batch * c.m * c.k), b ((size_t) nb_b * c.k * c.n), c0 ((size_t) c.batch * c.m * c.n);
  for (float &x : a) x = rnd_val (r);
  for (float &x : b) x = rnd_val (r);
  for (float &x : c0) x = c.beta != 0.0f ? rnd_val (r) : NaN;
  const int lda = (c.ta ? c.k : c.m) + c.pad, ldb = (c.tb ? c.n : c.k) + c.pad, ldc = c.m + c.pad;
  const int64_t sa = (int64_t) lda * (c.ta ? c.m : c.k) + c.pad, sb = c.bcast_b ? 0 : (int64_t) ldb * (c.tb ? c.k : c.n);
  const int64_t sc = (int64_t) ldc * c.n + 1;
  std::vector<float> as = store (a, c.m, c.k, c.ta, lda, sa, c.batch), bs = store (b, c.k, c.n, c.tb, ldb, sb, nb_b);
  std::vector<float> cs = store (c0, c.m, c.n, false, ldc, sc, c.batch);
  std::vector<uint8_t> ap = pack (as, c.in), bp = pack (bs, c.in), cp = pack (cs, c.out);
  uint8_t *ad = to_dev (ap), *bd = to_dev (bp), *cd = to_dev (cp);
  cublasStatus_t st;
  if (c.batch == 1)
    st = cublasGemmEx (h, c.ta ? CUBLAS_OP_T : CUBLAS_OP_N, c.tb ? CUBLAS_OP_T : CUBLAS_OP_N, c.m, c.n, c.k,
                       &c.alpha, ad, c.in, lda, bd, c.in, ldb, &c.beta, cd, c.out, ldc, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT);
  else
    st = cublasGemmStridedBatchedEx (h, c.ta ? CUBLAS_OP_T : CUBLAS_OP_N, c.tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     c.m, c.n, c.k, &c.alpha, ad, c.in, lda, sa, bd, c.in, ldb, sb, &c.beta,
                                     cd, c.out, ldc, sc, c.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  g_assert_cmpint (st, ==, CUBLAS_STATUS_SUCCESS);
  std::vector<float> got = unpack (from_dev (cd, cp.size ()), c.out);
  for (int bt = 0; bt < c.batch; bt++)
    for (int i = 0; i < c.m; i++)
      for (int j = 0; j < c.n; j++) {
        double want = 0;
        for (int p = 0; p < c.k; p++)
          want += (double) a[((size_t) bt * c.m + i) * c.k + p] * b[((size_t) (c.bcast_b ? 0 : bt) * c.k + p) * c.n + j];
        want *= c.alpha;
        if (c.beta != 0.0f)
          want += (double) c.beta * c0[((size_t) bt * c.m + i) * c.n + j];
        const float g = got[(size_t) (bt * sc + i + (int64_t) j * ldc)];
        if (!close_to (g, want, c.out))
          g_error ("%s %s %c%c m%d n%d k%d batch %d: C[%d](%d, %d) = %g, want %g", la_emu_type_name (c.in),
                   la_emu_type_name (c.out), c.ta ? 'T' : 'N', c.tb ? 'T' : 'N', c.m, c.n, c.k, c.batch, bt, i, j,
                   g, want);
        got[(size_t) (bt * sc + i + (int64_t) j * ldc)] = NaN;   /* what is left must be the untouched padding */
      }
  for (size_t i = 0; i < got.size (); i++)
    if (!std::isnan (got[i]))
      g_error ("%s: padding element %zu of C was written (%g)", la_emu_type_name (c.out), i, got[i]);
  cudaFree (ad);
  cudaFree (bd);
  cudaFree (cd);
}

static void
test_gemm (void)
{
  cublasHandle_t h;
  g_assert_cmpint (cublasCreate (&h), ==, CUBLAS_STATUS_SUCCESS);
  GRand *r = g_rand_new_with_seed (7);
  const cudaDataType_t combos[][2] = { { CUDA_R_32F, CUDA_R_32F }, { CUDA_R_16BF, CUDA_R_16BF },
                                       { CUDA_R_16BF, CUDA_R_32F }, { CUDA_R_16F, CUDA_R_16F },
                                       { CUDA_R_16F, CUDA_R_32F } };
  int n = 0;
  for (auto &ty : combos)
    for (int t = 0; t < 4; t++)
      for (int batch : { 1, 3 }) {
        Case c = { ty[0], ty[1], (t & 1) != 0, (t & 2) != 0, 5, 7, 6, 2, batch, batch == 3 && t == 1, 0.5f,
                   t == 2 ? 0.0f : 1.5f };
        run_case (h, c, r);
        c.pad = 0, c.m = 16, c.n = 3, c.k = 9;
        run_case (h, c, r);
        n += 2;
      }
  Case k0 = { CUDA_R_32F, CUDA_R_32F, false, false, 4, 4, 0, 1, 1, false, 1.0f, 2.0f };   /* k = 0: C = beta·C */
  run_case (h, k0, r);
  g_print ("# %d GEMM cases match\n", n + 1);
  g_rand_free (r);
  cublasDestroy (h);
}

/* The documented argument checks: nothing is computed or touched. */
static void
test_refusals (void)
{
  cublasHandle_t h;
  cublasCreate (&h);
  float *buf;
  cudaMalloc ((void **) &buf, 4096);
  const float one = 1.0f, zero = 0.0f;
  auto gemm = [&] (cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc,
                   cudaDataType_t at, cudaDataType_t bt, cudaDataType_t ct) {
    return cublasGemmEx (h, ta, tb, m, n, k, &one, buf, at, lda, buf, bt, ldb, &zero, buf, ct, ldc,
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  };
  const cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  const cudaDataType_t F = CUDA_R_32F, B = CUDA_R_16BF, H = CUDA_R_16F;
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 4, 4, 4, F, F, F), ==, CUBLAS_STATUS_SUCCESS);
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 3, 4, 4, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);   /* lda < m */
  g_assert_cmpint (gemm (T, N, 8, 4, 4, 7, 4, 8, F, F, F), ==, CUBLAS_STATUS_SUCCESS);         /* lda ≥ k */
  g_assert_cmpint (gemm (T, N, 8, 4, 5, 4, 5, 8, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);   /* lda < k */
  g_assert_cmpint (gemm (N, N, 4, 4, 5, 4, 4, 4, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);   /* ldb < k */
  g_assert_cmpint (gemm (N, T, 4, 6, 4, 4, 5, 4, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);   /* ldb < n */
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 4, 4, 3, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);   /* ldc < m */
  g_assert_cmpint (gemm (N, N, -1, 4, 4, 4, 4, 4, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);
  g_assert_cmpint (gemm ((cublasOperation_t) 7, N, 4, 4, 4, 4, 4, 4, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 0, 4, 4, F, F, F), ==, CUBLAS_STATUS_INVALID_VALUE);   /* ld ≥ 1 */
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 4, 4, 4, F, F, B), ==, CUBLAS_STATUS_NOT_SUPPORTED);
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 4, 4, 4, B, H, F), ==, CUBLAS_STATUS_NOT_SUPPORTED);
  g_assert_cmpint (gemm (N, N, 4, 4, 4, 4, 4, 4, H, H, B), ==, CUBLAS_STATUS_NOT_SUPPORTED);
  g_assert_cmpint (gemm (N, N, 0, 4, 4, 1, 4, 1, F, F, F), ==, CUBLAS_STATUS_SUCCESS);         /* empty */
  g_assert_cmpint (cublasGemmEx (NULL, N, N, 4, 4, 4, &one, buf, F, 4, buf, F, 4, &zero, buf, F, 4,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), ==, CUBLAS_STATUS_NOT_INITIALIZED);
  g_assert_cmpint (cublasGemmStridedBatchedEx (h, N, N, 4, 4, 4, &one, buf, F, 4, 16, buf, F, 4, 16, &zero, buf, F,
                                               4, 16, -1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   ==, CUBLAS_STATUS_INVALID_VALUE);
  g_assert_cmpint (cublasSetWorkspace (h, (char *) buf + 16, 256), ==, CUBLAS_STATUS_INVALID_VALUE);   /* alignment */
  g_assert_cmpstr (cublasGetStatusName (CUBLAS_STATUS_INVALID_VALUE), ==, "CUBLAS_STATUS_INVALID_VALUE");
  cudaFree (buf);
  cublasDestroy (h);
}

/* ------------------------------------------------------------ cuBLASLt */

/* The backend's FP8 linear: D[N, M] (bf16) = sA·sB · W(K×N)ᵀ · X(K×M) + bias. */
static void
test_lt_fp8 (void)
{
  const int M = 5, N = 32, K = 48;
  GRand *r = g_rand_new_with_seed (3);
  std::vector<uint8_t> w ((size_t) N * K), x ((size_t) K * M);
  for (uint8_t &v : w) do v = (uint8_t) g_rand_int_range (r, 0, 256); while ((v & 0x7f) == 0x7f || (v & 0x78) > 0x50);
  for (uint8_t &v : x) do v = (uint8_t) g_rand_int_range (r, 0, 256); while ((v & 0x7f) == 0x7f || (v & 0x78) > 0x50);
  std::vector<float> biasf (N);
  for (float &v : biasf) v = rnd_val (r);
  std::vector<uint8_t> bias = pack (biasf, CUDA_R_16BF);
  const std::vector<float> scales = { 0.25f, 3.0f };
  uint8_t *wd = to_dev (w), *xd = to_dev (x), *bd = to_dev (bias), *dd;
  float *sd = to_dev (scales);
  cudaMalloc ((void **) &dd, (size_t) N * M * 2);
  cublasLtHandle_t lt;
  cublasLtCreate (&lt);
  cublasLtMatmulDesc_t op;
  g_assert_cmpint (cublasLtMatmulDescCreate (&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), ==, CUBLAS_STATUS_SUCCESS);
  const int32_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
  const float *sa = sd, *sb = sd + 1;
  const void *bp = bd;
  const uint32_t epi = CUBLASLT_EPILOGUE_BIAS;
  const int32_t bt = CUDA_R_16BF;
  const int8_t fast = 1;
  g_assert_cmpint (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, 4), ==, 0);
  g_assert_cmpint (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, 4), ==, 0);
  g_assert_cmpint (cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, 8), ==,
                   CUBLAS_STATUS_INVALID_VALUE);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, 1);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, 4);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, 4);
  cublasLtMatrixLayout_t la, lb, lc, lbad;
  cublasLtMatrixLayoutCreate (&la, CUDA_R_8F_E4M3, K, N, K);
  cublasLtMatrixLayoutCreate (&lb, CUDA_R_8F_E4M3, K, M, K);
  cublasLtMatrixLayoutCreate (&lc, CUDA_R_16BF, N, M, N);
  cublasLtMatrixLayoutCreate (&lbad, CUDA_R_16BF, N, M, N - 1);
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate (&pref);
  const uint64_t wsz = 0;
  cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, 8);
  cublasLtMatmulHeuristicResult_t heur;
  int found = 0;
  g_assert_cmpint (cublasLtMatmulAlgoGetHeuristic (lt, op, la, lb, lc, lc, pref, 1, &heur, &found), ==, 0);
  g_assert_cmpint (found, ==, 1);
  g_assert_cmpint (cublasLtMatmulAlgoGetHeuristic (lt, op, la, lb, lbad, lbad, pref, 1, &heur, &found), ==,
                   CUBLAS_STATUS_INVALID_VALUE);   /* ld < rows */
  const float alpha = 1.0f, beta = 0.0f;
  g_assert_cmpint (cublasLtMatmul (lt, op, &alpha, wd, la, xd, lb, &beta, dd, lc, dd, lc, &heur.algo, NULL, 0, 0),
                   ==, CUBLAS_STATUS_SUCCESS);
  std::vector<float> got = unpack (from_dev (dd, (size_t) N * M * 2), CUDA_R_16BF);
  for (int j = 0; j < M; j++)
    for (int i = 0; i < N; i++) {
      double acc = 0;
      for (int p = 0; p < K; p++)
        acc += (double) la_emu_e4m3_to_f32 (w[(size_t) i * K + p]) * la_emu_e4m3_to_f32 (x[(size_t) j * K + p]);
      const double want = 0.75 * acc + la_emu_load (bias.data (), CUDA_R_16BF, i);
      if (!close_to (got[(size_t) j * N + i], want, CUDA_R_16BF))
        g_error ("FP8: D(%d, %d) = %g, want %g", i, j, got[(size_t) j * N + i], want);
    }
  /* FP8 is "TN" only: TT (shapes consistent) has no algorithm; a bias type other than bf16 for a bf16 D neither */
  const int32_t tt = CUBLAS_OP_T, f16 = CUDA_R_16F;
  cublasLtMatrixLayout_t lbt;
  cublasLtMatrixLayoutCreate (&lbt, CUDA_R_8F_E4M3, M, K, 16);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSB, &tt, 4);
  g_assert_cmpint (cublasLtMatmulAlgoGetHeuristic (lt, op, la, lbt, lc, lc, pref, 1, &heur, &found), ==,
                   CUBLAS_STATUS_NOT_SUPPORTED);
  g_assert_cmpint (found, ==, 0);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, 4);
  cublasLtMatrixLayoutDestroy (lbt);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &f16, 4);
  g_assert_cmpint (cublasLtMatmulAlgoGetHeuristic (lt, op, la, lb, lc, lc, pref, 1, &heur, &found), ==,
                   CUBLAS_STATUS_NOT_SUPPORTED);
  /* scale pointers are for FP8 inputs only */
  cublasLtMatrixLayout_t ba, bb;
  cublasLtMatrixLayoutCreate (&ba, CUDA_R_16BF, K, N, K);
  cublasLtMatrixLayoutCreate (&bb, CUDA_R_16BF, K, M, K);
  cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, 4);
  g_assert_cmpint (cublasLtMatmulAlgoGetHeuristic (lt, op, ba, bb, lc, lc, pref, 1, &heur, &found), ==,
                   CUBLAS_STATUS_NOT_SUPPORTED);
  for (auto l : { la, lb, lc, lbad, ba, bb })
    cublasLtMatrixLayoutDestroy (l);
  cublasLtMatmulPreferenceDestroy (pref);
  cublasLtMatmulDescDestroy (op);
  cublasLtDestroy (lt);
  for (void *p : { (void *) wd, (void *) xd, (void *) bd, (void *) dd, (void *) sd })
    cudaFree (p);
  g_rand_free (r);
}

/* ------------------------------------------------------------ aborts */

/* B's last column lies past its allocation: ldb too large for the buffer. */
static void
death_out_of_allocation (void)
{
  if (g_test_subprocess ()) {
    cublasHandle_t h;
    cublasCreate (&h);
    float *a, *b, *c;
    cudaMalloc ((void **) &a, 16 * 4);
    cudaMalloc ((void **) &b, 16 * 4);
    cudaMalloc ((void **) &c, 16 * 4);
    const float one = 1.0f, zero = 0.0f;
    cublasGemmEx (h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a, CUDA_R_32F, 4, b, CUDA_R_32F, 5, &zero, c,
                  CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cublasGemmEx B*not inside one*allocation*");
}

static void
death_batch_past_end (void)
{
  if (g_test_subprocess ()) {
    cublasHandle_t h;
    cublasCreate (&h);
    float *a, *c;
    cudaMalloc ((void **) &a, 2 * 16 * 4);
    cudaMalloc ((void **) &c, 3 * 16 * 4);
    const float one = 1.0f, zero = 0.0f;
    cublasGemmStridedBatchedEx (h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, a, CUDA_R_32F, 4, 16, a, CUDA_R_32F, 4,
                                0, &zero, c, CUDA_R_32F, 4, 16, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cublasGemmStridedBatchedEx A*");
}

static void
death_destroyed_handle (void)
{
  if (g_test_subprocess ()) {
    cublasHandle_t h;
    cublasCreate (&h);
    cublasDestroy (h);
    cublasSetStream (h, 0);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cublasSetStream: handle*already destroyed*");
}

static void
death_wrong_device (void)
{
  if (g_test_subprocess ()) {
    cublasHandle_t h;
    cudaSetDevice (0);
    cublasCreate (&h);
    cudaStream_t s;
    cudaSetDevice (1);
    cudaStreamCreateWithFlags (&s, cudaStreamNonBlocking);
    cublasSetStream (h, s);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cublasSetStream: a stream of cuda:1 on a handle created on cuda:0*");
}

static void
death_lt_unaligned_d (void)
{
  if (g_test_subprocess ()) {
    cublasLtHandle_t lt;
    cublasLtCreate (&lt);
    cublasLtMatmulDesc_t op;
    cublasLtMatmulDescCreate (&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasLtMatrixLayout_t l;
    cublasLtMatrixLayoutCreate (&l, CUDA_R_32F, 4, 4, 4);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate (&pref);
    cublasLtMatmulHeuristicResult_t heur;
    int found;
    cublasLtMatmulAlgoGetHeuristic (lt, op, l, l, l, l, pref, 1, &heur, &found);
    float *buf;
    cudaMalloc ((void **) &buf, 4096);
    const float one = 1.0f, zero = 0.0f;
    float *a = (float *) (((uintptr_t) buf + 255) & ~(uintptr_t) 255);
    cublasLtMatmul (lt, op, &one, a, l, a, l, &zero, a + 16, l, a + 16, l, &heur.algo, NULL, 0, 0);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cublasLtMatmul: C = *not 256-byte aligned*");
}

static void
death_lt_epilogue (void)
{
  if (g_test_subprocess ()) {
    cublasLtMatmulDesc_t op;
    cublasLtMatmulDescCreate (&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const uint32_t e = CUBLASLT_EPILOGUE_GELU_BIAS;
    cublasLtMatmulDescSetAttribute (op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, 4);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cublasLtMatmulDescSetAttribute: epilogue 36 is not emulated*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/emu-cublas/gemm", test_gemm);
  g_test_add_func ("/emu-cublas/refusals", test_refusals);
  g_test_add_func ("/emu-cublas/lt-fp8", test_lt_fp8);
  g_test_add_func ("/emu-cublas/death/out-of-allocation", death_out_of_allocation);
  g_test_add_func ("/emu-cublas/death/batch-past-end", death_batch_past_end);
  g_test_add_func ("/emu-cublas/death/destroyed-handle", death_destroyed_handle);
  g_test_add_func ("/emu-cublas/death/wrong-device", death_wrong_device);
  g_test_add_func ("/emu-cublas/death/lt-unaligned-d", death_lt_unaligned_d);
  g_test_add_func ("/emu-cublas/death/lt-epilogue", death_lt_epilogue);
  return g_test_run ();
}
