/* lib-cublas.cc — emulated cuBLAS (issue 15): handles and the two GEMM entry
 * points the backend uses, plus the reference GEMM shared with cuBLASLt.
 *
 * cublasGemmEx is interpreted as the documentation defines it: column-major
 * C[m, n] = alpha·op(A)·op(B) + beta·C with op(X) = X or Xᵀ, element (r, c)
 * of an untransposed operand at X[r + c·ld].  The documented argument checks
 * come first (handle, transposes, negative sizes, ld < rows, batchCount →
 * INVALID_VALUE; a type combination outside the COMPUTE_32F table →
 * NOT_SUPPORTED), then every operand is checked against its allocation, then
 * the work is enqueued on the handle's stream (so graph capture records it).
 * alpha and beta are host scalars read at the call, as in cuBLAS's default
 * pointer mode.  What cuBLAS allows but the emulator does not compute (TF32
 * or 16-bit compute types, int8, complex) aborts with its name: a GPU run
 * would give other numbers than the emulator could vouch for.
 *
 * The product runs through OpenBLAS's sgemm on f32 copies of op(A) and op(B):
 * 16-bit and 8-bit inputs convert to f32 exactly, so the result is a true f32
 * GEMM of the same values (summation order aside) in CI time.
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cblas.h>
#include <cmath>
#include <mutex>
#include <set>
#include <vector>
#include "emu-internal.h"
#include "emu-libs.h"

const char *
la_emu_type_name (cudaDataType_t t)
{
  switch (t) {
  case CUDA_R_32F: return "CUDA_R_32F";
  case CUDA_R_64F: return "CUDA_R_64F";
  case CUDA_R_16F: return "CUDA_R_16F";
  case CUDA_R_16BF: return "CUDA_R_16BF";
  case CUDA_R_8I: return "CUDA_R_8I";
  case CUDA_R_8U: return "CUDA_R_8U";
  case CUDA_R_32I: return "CUDA_R_32I";
  case CUDA_R_8F_E4M3: return "CUDA_R_8F_E4M3";
  case CUDA_R_8F_E5M2: return "CUDA_R_8F_E5M2";
  case CUDA_C_32F: return "CUDA_C_32F";
  case CUDA_C_64F: return "CUDA_C_64F";
  case CUDA_C_16F: return "CUDA_C_16F";
  case CUDA_C_16BF: return "CUDA_C_16BF";
  }
  return "(unknown cudaDataType_t)";
}

void
la_emu_check_matrix (const char *what, const void *p, cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld,
                     int64_t stride, int64_t batch)
{
  if (rows == 0 || cols == 0 || batch == 0)
    return;
  if (!p)
    la_emu_fail ("%s: NULL pointer for a %lld x %lld matrix", what, (long long) rows, (long long) cols);
  const int64_t last = (rows - 1) + (cols - 1) * ld;     /* last element of batch 0 */
  const int64_t span = (batch - 1) * stride;
  const int64_t lo = span < 0 ? span : 0, hi = (span > 0 ? span : 0) + last;
  const size_t es = la_emu_type_size (t);
  la_emu_check_device_range ((const char *) p + lo * (int64_t) es, (size_t) (hi - lo + 1) * es, what);
}

/* dst (rows × cols, packed column-major, f32) = op(src); the type switch is
 * outside the loops (the FP8 GEMMs of the harness are 70 M elements). */
template <typename T, typename Cvt>
static void
load_panel_t (float *dst, const T *src, bool trans, int64_t ld, int64_t rows, int64_t cols, Cvt cvt)
{
  if (!trans) {
    for (int64_t c = 0; c < cols; c++)
      for (int64_t r = 0; r < rows; r++)
        dst[r + c * rows] = cvt (src[r + c * ld]);
    return;
  }
  const int64_t B = 64;   /* a transposed copy in tiles, so neither side strides through memory */
  for (int64_t r0 = 0; r0 < rows; r0 += B)
    for (int64_t c0 = 0; c0 < cols; c0 += B)
      for (int64_t r = r0; r < std::min (rows, r0 + B); r++)
        for (int64_t c = c0; c < std::min (cols, c0 + B); c++)
          dst[r + c * rows] = cvt (src[c + r * ld]);
}

static void
load_panel (float *dst, const void *src, const LaEmuOperand &o, int64_t rows, int64_t cols)
{
  switch (o.type) {
  case CUDA_R_32F:
    load_panel_t (dst, (const float *) src, o.trans, o.ld, rows, cols, [] (float v) { return v; });
    return;
  case CUDA_R_16F:
    load_panel_t (dst, (const uint16_t *) src, o.trans, o.ld, rows, cols, la_emu_f16_to_f32);
    return;
  case CUDA_R_16BF:
    load_panel_t (dst, (const uint16_t *) src, o.trans, o.ld, rows, cols, la_emu_bf16_to_f32);
    return;
  case CUDA_R_8F_E4M3: {
    static const std::vector<float> table = [] {
      std::vector<float> t (256);
      for (int i = 0; i < 256; i++)
        t[i] = la_emu_e4m3_to_f32 ((uint8_t) i);
      return t;
    } ();
    const float *tab = table.data ();
    load_panel_t (dst, (const uint8_t *) src, o.trans, o.ld, rows, cols, [tab] (uint8_t v) { return tab[v]; });
    return;
  }
  default:
    break;
  }
  la_emu_fail ("emulated GEMM: operand type %s reached the reference GEMM", la_emu_type_name (o.type));
}

void
la_emu_gemm_run (const LaEmuGemm &g)
{
  const int64_t m = g.m, n = g.n, k = g.k;
  const float sa = g.scale_a ? *g.scale_a : 1.0f, sb = g.scale_b ? *g.scale_b : 1.0f;
  const float alpha = g.alpha * sa * sb;
  std::vector<float> af ((size_t) (m * k)), bf ((size_t) (k * n)), acc ((size_t) (m * n));
  for (int64_t b = 0; b < g.batch; b++) {
    const void *A = (const char *) g.a.p + b * g.a.stride * (int64_t) la_emu_type_size (g.a.type);
    const void *B = (const char *) g.b.p + b * g.b.stride * (int64_t) la_emu_type_size (g.b.type);
    load_panel (af.data (), A, g.a, m, k);
    load_panel (bf.data (), B, g.b, k, n);
    if (k > 0)
      cblas_sgemm (CblasColMajor, CblasNoTrans, CblasNoTrans, (int) m, (int) n, (int) k, 1.0f, af.data (), (int) m,
                   bf.data (), (int) k, 0.0f, acc.data (), (int) m);
    else
      std::fill (acc.begin (), acc.end (), 0.0f);
    const void *C = g.beta != 0.0f ? (const char *) g.c.p + b * g.c.stride * (int64_t) la_emu_type_size (g.c.type)
                                   : nullptr;
    void *D = (char *) g.d + b * g.stride_d * (int64_t) la_emu_type_size (g.d_type);
    for (int64_t j = 0; j < n; j++)
      for (int64_t i = 0; i < m; i++) {
        float v = alpha * acc[i + j * m];
        if (C)
          v += g.beta * la_emu_load (C, g.c.type, i + j * g.c.ld);
        if (g.bias)
          v += la_emu_load (g.bias, g.bias_type, i);
        la_emu_store (D, g.d_type, i + j * g.ldd, v);
      }
  }
}

/* ------------------------------------------------------------ handles */

struct cublasContext {
  int device;
  cudaStream_t stream;
  void *workspace;
  size_t workspace_size;
  cublasMath_t math;
};

static std::mutex live_lock;
static std::set<const cublasContext *> live;

/* A destroyed or never-created handle is a use-after-free on a GPU: abort. */
static cublasContext *
handle_of (cublasHandle_t h, const char *call)
{
  if (!h)
    return nullptr;
  std::lock_guard<std::mutex> g (live_lock);
  if (!live.count (h))
    la_emu_fail ("%s: handle %p was never created or is already destroyed", call, (void *) h);
  return h;
}

extern "C" cublasStatus_t
cublasCreate (cublasHandle_t *handle)
{
  if (!handle)
    return CUBLAS_STATUS_INVALID_VALUE;
  cublasContext *c = new cublasContext ();
  c->device = la_emu_current_device ();
  c->math = CUBLAS_DEFAULT_MATH;
  std::lock_guard<std::mutex> g (live_lock);
  live.insert (c);
  *handle = c;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasDestroy (cublasHandle_t handle)
{
  cublasContext *c = handle_of (handle, "cublasDestroy");
  if (!c)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  {
    std::lock_guard<std::mutex> g (live_lock);
    live.erase (c);
  }
  delete c;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasSetStream (cublasHandle_t handle, cudaStream_t stream)
{
  cublasContext *c = handle_of (handle, "cublasSetStream");
  if (!c)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream && la_emu_stream_device (stream) != c->device)
    la_emu_fail ("cublasSetStream: a stream of cuda:%d on a handle created on cuda:%d",
                 la_emu_stream_device (stream), c->device);
  c->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasGetStream (cublasHandle_t handle, cudaStream_t *stream)
{
  cublasContext *c = handle_of (handle, "cublasGetStream");
  if (!c)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream)
    return CUBLAS_STATUS_INVALID_VALUE;
  *stream = c->stream;
  return CUBLAS_STATUS_SUCCESS;
}

/* The documented alignment: 256 bytes.  The emulator never uses the
 * workspace, but checks it is device memory of the stated size. */
extern "C" cublasStatus_t
cublasSetWorkspace (cublasHandle_t handle, void *workspace, size_t size)
{
  cublasContext *c = handle_of (handle, "cublasSetWorkspace");
  if (!c)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (size && (!workspace || ((uintptr_t) workspace & 255)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (size)
    la_emu_check_device_range (workspace, size, "cublasSetWorkspace workspace");
  c->workspace = workspace;
  c->workspace_size = size;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasSetMathMode (cublasHandle_t handle, cublasMath_t mode)
{
  cublasContext *c = handle_of (handle, "cublasSetMathMode");
  if (!c)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  const unsigned base = (unsigned) mode & ~(unsigned) CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
  if (base == CUBLAS_TENSOR_OP_MATH || base == CUBLAS_TF32_TENSOR_OP_MATH)
    la_emu_fail ("cublasSetMathMode: mode %u (tensor-op / TF32 math) is not emulated: it changes fp32 results",
                 (unsigned) mode);
  if (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_PEDANTIC_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  c->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasGetMathMode (cublasHandle_t handle, cublasMath_t *mode)
{
  cublasContext *c = handle_of (handle, "cublasGetMathMode");
  if (!c)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode)
    return CUBLAS_STATUS_INVALID_VALUE;
  *mode = c->math;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" const char *
cublasGetStatusName (cublasStatus_t s)
{
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

extern "C" const char *
cublasGetStatusString (cublasStatus_t s)
{
  switch (s) {
  case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
  case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
  case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  case CUBLAS_STATUS_LICENSE_ERROR: return "an error was detected when checking the current licensing";
  }
  return "unknown error";
}

/* ------------------------------------------------------------- GEMMs */

static bool
op_ok (cublasOperation_t op)
{
  return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

static cublasStatus_t
gemm (const char *call, cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
      const void *alpha, const void *A, cudaDataType_t at, int lda, long long sa,
      const void *B, cudaDataType_t bt, int ldb, long long sb, const void *beta,
      void *C, cudaDataType_t ct, int ldc, long long sc, int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
  cublasContext *h = handle_of (handle, call);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  /* the documented INVALID_VALUE conditions */
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (!op_ok (ta) || !op_ok (tb) || m < 0 || n < 0 || k < 0 || batch < 0 ||
      lda < std::max (1, a_rows) || ldb < std::max (1, b_rows) || ldc < std::max (1, m) || !alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!((algo >= CUBLAS_GEMM_DEFAULT && algo <= CUBLAS_GEMM_ALGO23) ||
        (algo >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && algo <= CUBLAS_GEMM_ALGO15_TENSOR_OP)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC)
    la_emu_fail ("%s: compute type %d is not emulated (only CUBLAS_COMPUTE_32F[_PEDANTIC])", call, (int) compute);
  /* cublasGemmEx's table for CUBLAS_COMPUTE_32F, real types */
  if (at != bt)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  switch (at) {
  case CUDA_R_32F:
    if (ct != CUDA_R_32F)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    break;
  case CUDA_R_16F: case CUDA_R_16BF:
    if (ct != at && ct != CUDA_R_32F)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    break;
  case CUDA_R_8I: case CUDA_C_32F: case CUDA_C_16F: case CUDA_C_16BF:
    la_emu_fail ("%s: A/B type %s with CUBLAS_COMPUTE_32F is valid in cuBLAS but not emulated", call,
                 la_emu_type_name (at));
  default:
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m == 0 || n == 0 || batch == 0)
    return CUBLAS_STATUS_SUCCESS;
  if (la_emu_current_device () != h->device)
    la_emu_fail ("%s: called with cuda:%d current on a handle of cuda:%d (cuBLAS assumes the handle's device "
                 "stays current)", call, la_emu_current_device (), h->device);
  if (batch > 1 && sc == 0)
    la_emu_fail ("%s: strideC 0 with batchCount %d: the outputs overlap", call, batch);
  LaEmuGemm g;
  g.m = m, g.n = n, g.k = k, g.batch = batch;
  g.alpha = *(const float *) alpha, g.beta = *(const float *) beta;
  g.a = { A, at, ta != CUBLAS_OP_N, lda, sa };
  g.b = { B, bt, tb != CUBLAS_OP_N, ldb, sb };
  g.c = { C, ct, false, ldc, sc };
  g.d = C, g.d_type = ct, g.ldd = ldc, g.stride_d = sc;
  g.scale_a = g.scale_b = nullptr;
  g.bias = nullptr;
  g.bias_type = CUDA_R_32F;
  char what[64];
  if (k > 0) {
    snprintf (what, sizeof what, "%s A", call);
    la_emu_check_matrix (what, A, at, a_rows, ta == CUBLAS_OP_N ? k : m, lda, sa, batch);
    snprintf (what, sizeof what, "%s B", call);
    la_emu_check_matrix (what, B, bt, b_rows, tb == CUBLAS_OP_N ? n : k, ldb, sb, batch);
  }
  snprintf (what, sizeof what, "%s C", call);
  la_emu_check_matrix (what, C, ct, m, n, ldc, sc, batch);
  la_emu_enqueue (h->stream, [g] () { la_emu_gemm_run (g); });
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasGemmEx (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
              const void *alpha, const void *A, cudaDataType_t Atype, int lda, const void *B, cudaDataType_t Btype,
              int ldb, const void *beta, void *C, cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
              cublasGemmAlgo_t algo)
{
  return gemm ("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta,
               C, Ctype, ldc, 0, 1, computeType, algo);
}

extern "C" cublasStatus_t
cublasGemmStridedBatchedEx (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType_t Atype, int lda, long long int strideA,
                            const void *B, cudaDataType_t Btype, int ldb, long long int strideB, const void *beta,
                            void *C, cudaDataType_t Ctype, int ldc, long long int strideC, int batchCount,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo)
{
  return gemm ("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA,
               B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo);
}
