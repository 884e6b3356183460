/* lib-cublaslt.cc — emulated cuBLASLt (issue 15): the descriptors, the
 * heuristic query and cublasLtMatmul, interpreted into the reference GEMM of
 * lib-cublas.cc.
 *
 *   D = epilogue(alpha · scaleA · scaleB · op(A)·op(B) + beta · C)
 *
 * with A, B, C, D column-major as their layouts say, op() from TRANSA/TRANSB,
 * scaleA/scaleB read from their device pointers when the work runs, BIAS
 * epilogue adding bias[row] before the one rounding into D's type.
 * Validation, the same at the heuristic and at the matmul:
 *  - shapes: op(A) is m × k, op(B) k × n, C and D m × n, ld ≥ rows
 *    (INVALID_VALUE); C and D the same layout when they are one buffer;
 *  - types, compute 32F / scale 32F: A = B ∈ {f32, f16, bf16} with C = D of
 *    A's type or f32 (f32 only for f32 A); or FP8: A, B e4m3 (B may be e5m2 —
 *    not emulated), "TN" only (TRANSA = T, TRANSB = N), lda/ldb multiples of
 *    16, C = D ∈ {bf16, f16, f32}.  Bias: D's type, or bf16 for an FP8 GEMM
 *    with bf16/f32 D.  A/B scale pointers only with FP8 inputs.  Anything
 *    else → NOT_SUPPORTED (and the heuristic returns no algorithm);
 *  - D scale, amax, aux epilogues, pointer mode device, row-major or batched
 *    layouts → abort naming the attribute (not emulated).
 * An algorithm from the heuristic remembers the minimum alignments of its
 * preference (default 256 bytes); a matmul with a less aligned A/B/C/D than
 * its algorithm assumed aborts, since a GPU kernel picked that way may fault.
 * FAST_ACCUM is accepted and ignored: the emulator always accumulates in f32
 * (a GPU's FP8 fast accumulation is less precise: compare with tolerance).
 */
#include <cuda_runtime.h>
#include <cublasLt.h>
#include <mutex>
#include <set>
#include "emu-internal.h"
#include "emu-libs.h"

#define ALGO_TAG 0x4c41454d554c5431ull   /* "LAEMULT1" */

struct cublasLtContext {
  int device;
};

struct cublasLtMatmulDescOpaque_st {
  cublasOperation_t ta, tb;
  cublasLtEpilogue_t epilogue;
  const void *bias;
  int32_t bias_type;           /* -1: the default (D's type) */
  const float *scale_a, *scale_b;
  int8_t fast_accum;
};

struct cublasLtMatrixLayoutOpaque_st {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};

struct cublasLtMatmulPreferenceOpaque_st {
  uint64_t max_workspace;
  uint32_t align[4];           /* A, B, C, D */
};

static std::mutex live_lock;
static std::set<const void *> live;

static void
track (const void *p)
{
  std::lock_guard<std::mutex> g (live_lock);
  live.insert (p);
}

static void
untrack (const void *p)
{
  std::lock_guard<std::mutex> g (live_lock);
  live.erase (p);
}

/* A destroyed or never-created object is a use-after-free on a GPU: abort. */
template <typename T>
static T *
live_or_die (T *p, const char *call, const char *what)
{
  if (!p)
    return nullptr;
  std::lock_guard<std::mutex> g (live_lock);
  if (!live.count (p))
    la_emu_fail ("%s: %s %p was never created or is already destroyed", call, what, (const void *) p);
  return p;
}

extern "C" cublasStatus_t
cublasLtCreate (cublasLtHandle_t *handle)
{
  if (!handle)
    return CUBLAS_STATUS_INVALID_VALUE;
  cublasLtContext *c = new cublasLtContext ();
  c->device = la_emu_current_device ();
  track (c);
  *handle = c;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtDestroy (cublasLtHandle_t handle)
{
  if (!live_or_die (handle, "cublasLtDestroy", "handle"))
    return CUBLAS_STATUS_NOT_INITIALIZED;
  untrack (handle);
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ matmul desc */

extern "C" cublasStatus_t
cublasLtMatmulDescCreate (cublasLtMatmulDesc_t *desc, cublasComputeType_t compute, cudaDataType_t scale)
{
  if (!desc)
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC) || scale != CUDA_R_32F)
    la_emu_fail ("cublasLtMatmulDescCreate: compute type %d with scale type %s is not emulated "
                 "(only CUBLAS_COMPUTE_32F with CUDA_R_32F)", (int) compute, la_emu_type_name (scale));
  cublasLtMatmulDescOpaque_st *d = new cublasLtMatmulDescOpaque_st ();
  d->ta = d->tb = CUBLAS_OP_N;
  d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  d->bias_type = -1;
  track (d);
  *desc = d;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtMatmulDescDestroy (cublasLtMatmulDesc_t desc)
{
  if (!live_or_die (desc, "cublasLtMatmulDescDestroy", "matmul descriptor"))
    return CUBLAS_STATUS_INVALID_VALUE;
  untrack (desc);
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

#define SET(field, type) do { if (size != sizeof (type)) return CUBLAS_STATUS_INVALID_VALUE; \
    type v_; memcpy (&v_, buf, sizeof v_); d->field = (decltype (d->field)) v_; } while (0)

extern "C" cublasStatus_t
cublasLtMatmulDescSetAttribute (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void *buf,
                                size_t size)
{
  cublasLtMatmulDescOpaque_st *d = live_or_die (desc, "cublasLtMatmulDescSetAttribute", "matmul descriptor");
  if (!d || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
  case CUBLASLT_MATMUL_DESC_TRANSA: {
    SET (ta, int32_t);   /* cublasOperation_t is stored as int32 */
    if (d->ta != CUBLAS_OP_N && d->ta != CUBLAS_OP_T && d->ta != CUBLAS_OP_C)
      return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
  }
  case CUBLASLT_MATMUL_DESC_TRANSB:
    SET (tb, int32_t);
    if (d->tb != CUBLAS_OP_N && d->tb != CUBLAS_OP_T && d->tb != CUBLAS_OP_C)
      return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_EPILOGUE: {
    uint32_t e;
    if (size != sizeof e)
      return CUBLAS_STATUS_INVALID_VALUE;
    memcpy (&e, buf, sizeof e);
    if (e != CUBLASLT_EPILOGUE_DEFAULT && e != CUBLASLT_EPILOGUE_BIAS)
      la_emu_fail ("cublasLtMatmulDescSetAttribute: epilogue %u is not emulated (only DEFAULT and BIAS)", e);
    d->epilogue = (cublasLtEpilogue_t) e;
    return CUBLAS_STATUS_SUCCESS;
  }
  case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
    SET (bias, const void *);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
    SET (bias_type, int32_t);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_A_SCALE_POINTER:
    SET (scale_a, const float *);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_B_SCALE_POINTER:
    SET (scale_b, const float *);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_FAST_ACCUM:
    SET (fast_accum, int8_t);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_POINTER_MODE: {
    int32_t pm;
    if (size != sizeof pm)
      return CUBLAS_STATUS_INVALID_VALUE;
    memcpy (&pm, buf, sizeof pm);
    if (pm != CUBLASLT_POINTER_MODE_HOST)
      la_emu_fail ("cublasLtMatmulDescSetAttribute: pointer mode %d is not emulated (only HOST)", pm);
    return CUBLAS_STATUS_SUCCESS;
  }
  default:
    break;
  }
  la_emu_fail ("cublasLtMatmulDescSetAttribute: attribute %d is not emulated", (int) attr);
}

/* ------------------------------------------------------------ layouts */

extern "C" cublasStatus_t
cublasLtMatrixLayoutCreate (cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows, uint64_t cols,
                            int64_t ld)
{
  if (!layout)
    return CUBLAS_STATUS_INVALID_VALUE;
  cublasLtMatrixLayoutOpaque_st *l = new cublasLtMatrixLayoutOpaque_st ();
  l->type = type;
  l->rows = rows;
  l->cols = cols;
  l->ld = ld;
  track (l);
  *layout = l;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtMatrixLayoutDestroy (cublasLtMatrixLayout_t layout)
{
  if (!live_or_die (layout, "cublasLtMatrixLayoutDestroy", "matrix layout"))
    return CUBLAS_STATUS_INVALID_VALUE;
  untrack (layout);
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

/* Only the defaults are emulated (column order, batch 1): setting them to
 * their default value is accepted, anything else aborts. */
extern "C" cublasStatus_t
cublasLtMatrixLayoutSetAttribute (cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                  const void *buf, size_t size)
{
  if (!live_or_die (layout, "cublasLtMatrixLayoutSetAttribute", "matrix layout") || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((attr == CUBLASLT_MATRIX_LAYOUT_ORDER || attr == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT) && size == 4) {
    int32_t v;
    memcpy (&v, buf, 4);
    if ((attr == CUBLASLT_MATRIX_LAYOUT_ORDER && v == CUBLASLT_ORDER_COL) ||
        (attr == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT && v == 1))
      return CUBLAS_STATUS_SUCCESS;
  }
  la_emu_fail ("cublasLtMatrixLayoutSetAttribute: attribute %d (size %zu) is not emulated "
               "(column order, batch 1 only)", (int) attr, size);
}

/* ------------------------------------------------------------ preference */

extern "C" cublasStatus_t
cublasLtMatmulPreferenceCreate (cublasLtMatmulPreference_t *pref)
{
  if (!pref)
    return CUBLAS_STATUS_INVALID_VALUE;
  cublasLtMatmulPreferenceOpaque_st *p = new cublasLtMatmulPreferenceOpaque_st ();
  for (int i = 0; i < 4; i++)
    p->align[i] = 256;
  track (p);
  *pref = p;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtMatmulPreferenceDestroy (cublasLtMatmulPreference_t pref)
{
  if (!live_or_die (pref, "cublasLtMatmulPreferenceDestroy", "preference"))
    return CUBLAS_STATUS_INVALID_VALUE;
  untrack (pref);
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtMatmulPreferenceSetAttribute (cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
                                      const void *buf, size_t size)
{
  cublasLtMatmulPreferenceOpaque_st *p = live_or_die (pref, "cublasLtMatmulPreferenceSetAttribute", "preference");
  if (!p || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (size != sizeof (uint64_t))
      return CUBLAS_STATUS_INVALID_VALUE;
    memcpy (&p->max_workspace, buf, 8);
    return CUBLAS_STATUS_SUCCESS;
  }
  if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
    if (size != sizeof (uint32_t))
      return CUBLAS_STATUS_INVALID_VALUE;
    memcpy (&p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, 4);
    return CUBLAS_STATUS_SUCCESS;
  }
  la_emu_fail ("cublasLtMatmulPreferenceSetAttribute: attribute %d is not emulated", (int) attr);
}

/* ------------------------------------------------------------ validation */

static bool
is_fp8 (cudaDataType_t t)
{
  return t == CUDA_R_8F_E4M3 || t == CUDA_R_8F_E5M2;
}

/* The checks shared by the heuristic and the matmul (see the header). */
static cublasStatus_t
validate (const char *call, const cublasLtMatmulDescOpaque_st *d, const cublasLtMatrixLayoutOpaque_st *a,
          const cublasLtMatrixLayoutOpaque_st *b, const cublasLtMatrixLayoutOpaque_st *c,
          const cublasLtMatrixLayoutOpaque_st *dl, int64_t *m, int64_t *n, int64_t *k, cudaDataType_t *bias_t)
{
  if (!d || !a || !b || !c || !dl)
    return CUBLAS_STATUS_INVALID_VALUE;
  for (const cublasLtMatrixLayoutOpaque_st *l : { a, b, c, dl })
    if (l->rows > INT64_MAX / 2 || l->cols > INT64_MAX / 2 || l->ld < (int64_t) std::max<uint64_t> (1, l->rows))
      return CUBLAS_STATUS_INVALID_VALUE;
  const bool ta = d->ta != CUBLAS_OP_N, tb = d->tb != CUBLAS_OP_N;
  *m = (int64_t) (ta ? a->cols : a->rows);
  *k = (int64_t) (ta ? a->rows : a->cols);
  *n = (int64_t) (tb ? b->rows : b->cols);
  if ((int64_t) (tb ? b->cols : b->rows) != *k || (int64_t) dl->rows != *m || (int64_t) dl->cols != *n ||
      c->rows != dl->rows || c->cols != dl->cols)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (is_fp8 (dl->type))
    la_emu_fail ("%s: an FP8 D (%s) is not emulated (it needs the D scale and amax)", call,
                 la_emu_type_name (dl->type));
  if (c->type != dl->type)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool fp8 = is_fp8 (a->type) || is_fp8 (b->type);
  if (fp8) {
    if (a->type == CUDA_R_8F_E5M2 || b->type == CUDA_R_8F_E5M2) {
      if (a->type == CUDA_R_8F_E5M2 && b->type == CUDA_R_8F_E5M2)
        return CUBLAS_STATUS_NOT_SUPPORTED;
      la_emu_fail ("%s: e5m2 operands are valid in cuBLASLt but not emulated", call);
    }
    if (a->type != b->type)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->ta != CUBLAS_OP_T || d->tb != CUBLAS_OP_N || a->ld % 16 || b->ld % 16)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    if (dl->type != CUDA_R_16BF && dl->type != CUDA_R_16F && dl->type != CUDA_R_32F)
      return CUBLAS_STATUS_NOT_SUPPORTED;
  } else {
    if (d->scale_a || d->scale_b)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    if (a->type != b->type)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    if (a->type == CUDA_R_32F) {
      if (dl->type != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    } else if (a->type == CUDA_R_16F || a->type == CUDA_R_16BF) {
      if (dl->type != a->type && dl->type != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    } else {
      la_emu_fail ("%s: A/B type %s is not emulated", call, la_emu_type_name (a->type));
    }
  }
  *bias_t = dl->type;
  if (d->epilogue == CUBLASLT_EPILOGUE_BIAS) {
    const cudaDataType_t want = d->bias_type >= 0 ? (cudaDataType_t) d->bias_type
                                : fp8 && dl->type == CUDA_R_32F ? CUDA_R_16BF : dl->type;
    const bool ok = fp8 ? (dl->type == CUDA_R_16F ? want == CUDA_R_16F : want == CUDA_R_16BF) : want == dl->type;
    if (!ok)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    *bias_t = want;
  }
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtMatmulAlgoGetHeuristic (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t Adesc,
                                cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc,
                                cublasLtMatrixLayout_t Ddesc, cublasLtMatmulPreference_t pref, int requested,
                                cublasLtMatmulHeuristicResult_t results[], int *returned)
{
  const char *call = "cublasLtMatmulAlgoGetHeuristic";
  if (!live_or_die (handle, call, "handle"))
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!live_or_die (pref, call, "preference") || requested < 1 || !results || !returned)
    return CUBLAS_STATUS_INVALID_VALUE;
  live_or_die (desc, call, "matmul descriptor");
  for (cublasLtMatrixLayout_t l : { Adesc, Bdesc, Cdesc, Ddesc })
    live_or_die (l, call, "matrix layout");
  int64_t m, n, k;
  cudaDataType_t bias_t;
  *returned = 0;
  cublasStatus_t st = validate (call, desc, Adesc, Bdesc, Cdesc, Ddesc, &m, &n, &k, &bias_t);
  if (st != CUBLAS_STATUS_SUCCESS)
    return st;
  memset (&results[0], 0, sizeof results[0]);
  results[0].algo.data[0] = ALGO_TAG;
  for (int i = 0; i < 4; i++)
    results[0].algo.data[1 + i] = pref->align[i];
  results[0].workspaceSize = 0;
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1.0f;
  *returned = 1;
  return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t
cublasLtMatmul (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
                cublasLtMatrixLayout_t Adesc, const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta,
                const void *C, cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
                const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_size, cudaStream_t stream)
{
  const char *call = "cublasLtMatmul";
  if (!live_or_die (handle, call, "handle"))
    return CUBLAS_STATUS_NOT_INITIALIZED;
  live_or_die (desc, call, "matmul descriptor");
  for (cublasLtMatrixLayout_t l : { Adesc, Bdesc, Cdesc, Ddesc })
    live_or_die (l, call, "matrix layout");
  if (!alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  int64_t m, n, k;
  cudaDataType_t bias_t;
  cublasStatus_t st = validate (call, desc, Adesc, Bdesc, Cdesc, Ddesc, &m, &n, &k, &bias_t);
  if (st != CUBLAS_STATUS_SUCCESS)
    return st;
  if (C == D && Cdesc->ld != Ddesc->ld)   /* in place needs one layout */
    return CUBLAS_STATUS_INVALID_VALUE;
  if (algo) {
    if (algo->data[0] != ALGO_TAG)
      la_emu_fail ("%s: the algorithm was not filled by cublasLtMatmulAlgoGetHeuristic", call);
    const void *ptr[4] = { A, B, C, D };
    static const char names[] = "ABCD";
    for (int i = 0; i < 4; i++)
      if (algo->data[1 + i] && (uintptr_t) ptr[i] % algo->data[1 + i])
        la_emu_fail ("%s: %c = %p is not %llu-byte aligned, which the algorithm from the heuristic assumed "
                     "(the preference's MIN_ALIGNMENT_%c_BYTES)", call, names[i], ptr[i],
                     (unsigned long long) algo->data[1 + i], names[i]);
  }
  if (workspace_size)
    la_emu_check_device_range (workspace, workspace_size, "cublasLtMatmul workspace");
  if (m == 0 || n == 0)
    return CUBLAS_STATUS_SUCCESS;
  if (la_emu_stream_device (stream) != la_emu_current_device ())
    la_emu_fail ("%s: a stream of cuda:%d used with cuda:%d current", call, la_emu_stream_device (stream),
                 la_emu_current_device ());
  LaEmuGemm g;
  g.m = m, g.n = n, g.k = k, g.batch = 1;
  g.alpha = *(const float *) alpha, g.beta = *(const float *) beta;
  g.a = { A, Adesc->type, desc->ta != CUBLAS_OP_N, Adesc->ld, 0 };
  g.b = { B, Bdesc->type, desc->tb != CUBLAS_OP_N, Bdesc->ld, 0 };
  g.c = { C, Cdesc->type, false, Cdesc->ld, 0 };
  g.d = D, g.d_type = Ddesc->type, g.ldd = Ddesc->ld, g.stride_d = 0;
  g.scale_a = desc->scale_a, g.scale_b = desc->scale_b;
  g.bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS ? desc->bias : nullptr;
  g.bias_type = bias_t;
  if (desc->epilogue == CUBLASLT_EPILOGUE_BIAS && !desc->bias)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (k > 0) {
    la_emu_check_matrix ("cublasLtMatmul A", A, Adesc->type, (int64_t) Adesc->rows, (int64_t) Adesc->cols,
                         Adesc->ld, 0, 1);
    la_emu_check_matrix ("cublasLtMatmul B", B, Bdesc->type, (int64_t) Bdesc->rows, (int64_t) Bdesc->cols,
                         Bdesc->ld, 0, 1);
  }
  if (g.beta != 0.0f)
    la_emu_check_matrix ("cublasLtMatmul C", C, Cdesc->type, m, n, Cdesc->ld, 0, 1);
  la_emu_check_matrix ("cublasLtMatmul D", D, Ddesc->type, m, n, Ddesc->ld, 0, 1);
  if (g.scale_a)
    la_emu_check_device_range (g.scale_a, sizeof (float), "cublasLtMatmul A_SCALE_POINTER");
  if (g.scale_b)
    la_emu_check_device_range (g.scale_b, sizeof (float), "cublasLtMatmul B_SCALE_POINTER");
  if (g.bias)
    la_emu_check_device_range (g.bias, (size_t) m * la_emu_type_size (bias_t), "cublasLtMatmul BIAS_POINTER");
  la_emu_enqueue (stream, [g] () { la_emu_gemm_run (g); });
  return CUBLAS_STATUS_SUCCESS;
}
