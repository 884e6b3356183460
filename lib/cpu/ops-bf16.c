/* ops-bf16.c — linear / matmul with bf16 operands on the CPU backend.
 *
 *   y[M, N] = x[M, K] · w[N, K]^T (+ bias),  w bf16, x and y f32
 *
 * bf16 -> f32 is exact (a 16-bit shift), so converting a panel of w's rows
 * to f32 and running sgemm on it gives the fp32-accumulated product of the
 * resident bf16 weight with the f32 activations — no activation rounding.
 * OpenBLAS' cblas_sbgemm would round x to bf16 as well, and Debian 12's
 * OpenBLAS 0.3.21 (pthread, openmp and serial builds) does not export it
 * (built without BUILD_BFLOAT16): the header declares it, the link fails.
 * The panel is sized to stay in the last-level cache-ish range (~8 MiB of
 * f32) and never below 64 rows, so sgemm keeps a useful N; performance
 * figures are in docs/performance.md.
 */
#include "backend-cpu.h"
#include "la-parallel.h"
#include <cblas.h>
#include <string.h>

static int64_t
panel_rows (int64_t N, int64_t K)
{
  int64_t p = ((int64_t) 2 << 20) / MAX (K, 1);
  p = MAX (64, p & ~(int64_t) 15);
  return MIN (p, N);
}

typedef struct { float *dst; const uint16_t *src; } Bf16Widen;

static void
bf16_widen_range (int64_t begin, int64_t end, gpointer data)
{
  Bf16Widen *a = data;
  for (int64_t i = begin; i < end; i++) {
    uint32_t u = (uint32_t) a->src[i] << 16;
    memcpy (a->dst + i, &u, 4);
  }
}

static void
bf16_rows_to_f32 (float *dst, const uint16_t *src, int64_t n)
{
  Bf16Widen a = { dst, src };
  la_parallel_for (n, n, bf16_widen_range, &a);
}

void
la_cpu_linear_bf16w (int64_t M, int64_t N, int64_t K, const float *x, const uint16_t *w, float *y,
                     const float *bias)
{
  if (M == 0 || N == 0)
    return;
  const int64_t P = panel_rows (N, K);
  float *pan = g_malloc ((size_t) (P * K) * sizeof (float));
  for (int64_t n0 = 0; n0 < N; n0 += P) {
    int64_t np = MIN (P, N - n0);
    bf16_rows_to_f32 (pan, w + n0 * K, np * K);
    la_cpu_gemm_nt (M, np, K, x, K, pan, K, y + n0, N, bias ? bias + n0 : NULL);
  }
  g_free (pan);
}

/* An f32 host copy of a bf16 matmul operand (whole tensor: matmul operands
 * are activations or small mixing matrices, never the big linears). */
const LaTensor *
la_cpu_as_f32_operand (const LaTensor *t, LaTensor **tmp)
{
  *tmp = NULL;
  if (t->dtype == LA_DTYPE_F32)
    return t;
  *tmp = la_tensor_new (LA_DTYPE_F32, t->ndim, t->shape);
  la_convert ((*tmp)->data, LA_DTYPE_F32, t->data, t->dtype, (size_t) la_tensor_numel (t));
  return *tmp;
}
