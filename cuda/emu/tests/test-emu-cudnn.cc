/* test-emu-cudnn.cc — the emulated cuDNN (cuda/emu/lib-cudnn.cc) against
 * convolutions computed here: 3-D bf16 with strides, padding and dilation
 * (the VAE's NCDHW conv3d and more), 2-D f16 in CONVOLUTION mode (flipped
 * filter) with a strided (non-packed) x and beta ≠ 0, 1-D f32 with FMA math;
 * cuDNN's BAD_PARAM cases; aborts in a child process for a y past its
 * allocation and an f32 conv a GPU may run in TF32. */
#include <cudnn.h>
#include <cstdio>
#include "emu-test.h"

struct Conv {
  cudnnDataType_t type;
  int nsp;                     /* spatial dims */
  int n, c, k, in[3], f[3], pad[3], str[3], dil[3];
  cudnnConvolutionMode_t mode;
  int x_gap;                   /* extra elements between x's channels (a strided x) */
  float alpha, beta;
};

static cudaDataType_t
ct (cudnnDataType_t t)
{
  return t == CUDNN_DATA_FLOAT ? CUDA_R_32F : t == CUDNN_DATA_HALF ? CUDA_R_16F : CUDA_R_16BF;
}

struct Descs {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t c;
  int ydim[5], ys[5], xs[5], xdim[5], wdim[5];
  int64_t xn, yn, wn;
};

static cudnnStatus_t
describe (const Conv &v, Descs *d, const int *ydim_override)
{
  const int nb = v.nsp + 2;
  d->xdim[0] = v.n, d->xdim[1] = v.c;
  d->wdim[0] = v.k, d->wdim[1] = v.c;
  d->ydim[0] = v.n, d->ydim[1] = v.k;
  for (int i = 0; i < v.nsp; i++) {
    d->xdim[2 + i] = v.in[i];
    d->wdim[2 + i] = v.f[i];
    d->ydim[2 + i] = 1 + (v.in[i] + 2 * v.pad[i] - ((v.f[i] - 1) * v.dil[i] + 1)) / v.str[i];
  }
  if (ydim_override)
    memcpy (d->ydim, ydim_override, nb * sizeof (int));
  d->xs[nb - 1] = d->ys[nb - 1] = 1;
  for (int i = nb - 2; i >= 0; i--) {
    d->xs[i] = d->xs[i + 1] * d->xdim[i + 1] + (i == 1 ? v.x_gap : 0);   /* channels x_gap apart beyond packed */
    d->ys[i] = d->ys[i + 1] * d->ydim[i + 1];
  }
  d->xn = (int64_t) d->xs[0] * v.n;
  d->yn = (int64_t) d->ys[0] * v.n;
  d->wn = 1;
  for (int i = 0; i < nb; i++)
    d->wn *= d->wdim[i];
  cudnnCreateTensorDescriptor (&d->x);
  cudnnCreateTensorDescriptor (&d->y);
  cudnnCreateFilterDescriptor (&d->w);
  cudnnCreateConvolutionDescriptor (&d->c);
  cudnnStatus_t s;
  if ((s = cudnnSetTensorNdDescriptor (d->x, v.type, nb, d->xdim, d->xs)) ||
      (s = cudnnSetTensorNdDescriptor (d->y, v.type, nb, d->ydim, d->ys)) ||
      (s = cudnnSetFilterNdDescriptor (d->w, v.type, CUDNN_TENSOR_NCHW, nb, d->wdim)) ||
      (s = cudnnSetConvolutionNdDescriptor (d->c, v.nsp, v.pad, v.str, v.dil, v.mode, CUDNN_DATA_FLOAT)) ||
      (s = cudnnSetConvolutionMathType (d->c, v.type == CUDNN_DATA_FLOAT ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH)))
    return s;
  return CUDNN_STATUS_SUCCESS;
}

static void
undescribe (Descs *d)
{
  cudnnDestroyTensorDescriptor (d->x);
  cudnnDestroyTensorDescriptor (d->y);
  cudnnDestroyFilterDescriptor (d->w);
  cudnnDestroyConvolutionDescriptor (d->c);
}

static void
run_conv (cudnnHandle_t h, const Conv &v, GRand *r)
{
  Descs d;
  g_assert_cmpint (describe (v, &d, NULL), ==, CUDNN_STATUS_SUCCESS);
  const int nb = v.nsp + 2;
  std::vector<float> x ((size_t) d.xn), w ((size_t) d.wn), y0 ((size_t) d.yn);
  for (float &e : x) e = rnd_val (r);
  for (float &e : w) e = rnd_val (r);
  for (float &e : y0) e = v.beta != 0.0f ? rnd_val (r) : __builtin_nanf ("");
  const cudaDataType_t t = ct (v.type);
  std::vector<uint8_t> xp = pack (x, t), wp = pack (w, t), yp = pack (y0, t);
  uint8_t *xd = to_dev (xp), *wd = to_dev (wp), *yd = to_dev (yp);
  cudnnConvolutionFwdAlgoPerf_t perf[4];
  int got_n = 0;
  g_assert_cmpint (cudnnGetConvolutionForwardAlgorithm_v7 (h, d.x, d.w, d.c, d.y, 4, &got_n, perf), ==, 0);
  g_assert_cmpint (got_n, ==, 1);
  g_assert_cmpint (perf[0].status, ==, CUDNN_STATUS_SUCCESS);
  g_assert_cmpint (cudnnConvolutionForward (h, &v.alpha, d.x, xd, d.w, wd, d.c, perf[0].algo, NULL, 0, &v.beta, d.y,
                                            yd), ==, CUDNN_STATUS_SUCCESS);
  std::vector<float> y = unpack (from_dev (yd, yp.size ()), t);
  int ydim3[3] = { 1, 1, 1 }, f3[3] = { 1, 1, 1 }, in3[3] = { 1, 1, 1 };
  for (int i = 0; i < v.nsp; i++)
    ydim3[i] = d.ydim[2 + i], f3[i] = v.f[i], in3[i] = v.in[i];
  int checked = 0;
  for (int n = 0; n < v.n; n++)
    for (int k = 0; k < v.k; k++)
      for (int o0 = 0; o0 < ydim3[0]; o0++)
        for (int o1 = 0; o1 < ydim3[1]; o1++)
          for (int o2 = 0; o2 < ydim3[2]; o2++) {
            const int o[3] = { o0, o1, o2 };
            double acc = 0;
            for (int c = 0; c < v.c; c++)
              for (int a = 0; a < f3[0]; a++)
                for (int b = 0; b < f3[1]; b++)
                  for (int e = 0; e < f3[2]; e++) {
                    const int fi[3] = { a, b, e };
                    int64_t xi = (int64_t) n * d.xs[0] + (int64_t) c * d.xs[1], wi = (int64_t) k * v.c + c;
                    bool inside = true;
                    for (int s = 0; s < 3; s++) {
                      const int pos = s < v.nsp ? o[s] * v.str[s] - v.pad[s] + fi[s] * v.dil[s] : 0;
                      inside = inside && pos >= 0 && pos < in3[s];
                      if (s < v.nsp)
                        xi += (int64_t) pos * d.xs[2 + s];
                      wi = wi * f3[s] + (v.mode == CUDNN_CONVOLUTION ? f3[s] - 1 - fi[s] : fi[s]);
                    }
                    if (inside)
                      acc += (double) x[(size_t) xi] * w[(size_t) wi];
                  }
            int64_t yi = (int64_t) n * d.ys[0] + (int64_t) k * d.ys[1];
            for (int s = 0; s < v.nsp; s++)
              yi += (int64_t) o[s] * d.ys[2 + s];
            double want = v.alpha * acc + (v.beta != 0.0f ? v.beta * y0[(size_t) yi] : 0.0);
            if (!close_to (y[(size_t) yi], want, t))
              g_error ("conv %dd type %d: y[%lld] = %g, want %g", v.nsp, (int) v.type, (long long) yi, y[(size_t) yi],
                       want);
            checked++;
          }
  g_assert_cmpint (checked, ==, d.yn);
  (void) nb;
  cudaFree (xd);
  cudaFree (wd);
  cudaFree (yd);
  undescribe (&d);
}

static void
test_conv (void)
{
  cudnnHandle_t h;
  g_assert_cmpint (cudnnCreate (&h), ==, CUDNN_STATUS_SUCCESS);
  GRand *r = g_rand_new_with_seed (11);
  const Conv cases[] = {
    /* the VAE's conv3d: N = 1, no padding, stride (1, 2, 2) */
    { CUDNN_DATA_BFLOAT16, 3, 1, 3, 4, { 3, 6, 7 }, { 2, 3, 3 }, { 0, 0, 0 }, { 1, 2, 2 }, { 1, 1, 1 },
      CUDNN_CROSS_CORRELATION, 0, 1.0f, 0.0f },
    { CUDNN_DATA_BFLOAT16, 3, 2, 2, 3, { 4, 5, 6 }, { 3, 2, 3 }, { 1, 0, 2 }, { 2, 1, 1 }, { 1, 2, 1 },
      CUDNN_CROSS_CORRELATION, 0, 1.0f, 0.0f },
    { CUDNN_DATA_HALF, 2, 1, 3, 2, { 6, 5 }, { 3, 2 }, { 1, 1 }, { 1, 2 }, { 1, 1 }, CUDNN_CONVOLUTION, 3, 0.5f, 2.0f },
    { CUDNN_DATA_FLOAT, 1, 2, 4, 3, { 9 }, { 3 }, { 2 }, { 2 }, { 2 }, CUDNN_CROSS_CORRELATION, 1, 1.0f, 1.0f },
  };
  for (const Conv &v : cases)
    run_conv (h, v, r);
  g_rand_free (r);
  cudnnDestroy (h);
}

static void
test_bad_param (void)
{
  cudnnHandle_t h;
  cudnnCreate (&h);
  Conv v = { CUDNN_DATA_BFLOAT16, 3, 1, 3, 4, { 3, 6, 7 }, { 2, 3, 3 }, { 0, 0, 0 }, { 1, 1, 1 }, { 1, 1, 1 },
             CUDNN_CROSS_CORRELATION, 0, 1.0f, 0.0f };
  cudnnConvolutionFwdAlgoPerf_t perf;
  int n;
  Descs d;
  const int wrong_y[5] = { 1, 4, 2, 4, 4 };   /* the right one is { 1, 4, 2, 4, 5 } */
  g_assert_cmpint (describe (v, &d, wrong_y), ==, CUDNN_STATUS_SUCCESS);
  g_assert_cmpint (cudnnGetConvolutionForwardAlgorithm_v7 (h, d.x, d.w, d.c, d.y, 1, &n, &perf), ==,
                   CUDNN_STATUS_BAD_PARAM);
  undescribe (&d);
  const int wrong_k[5] = { 1, 3, 2, 4, 5 };   /* y channels != filters */
  describe (v, &d, wrong_k);
  g_assert_cmpint (cudnnGetConvolutionForwardAlgorithm_v7 (h, d.x, d.w, d.c, d.y, 1, &n, &perf), ==,
                   CUDNN_STATUS_BAD_PARAM);
  /* mixed data types */
  int dims[5] = { 1, 3, 3, 6, 7 }, st[5] = { 378, 126, 42, 7, 1 };
  g_assert_cmpint (cudnnSetTensorNdDescriptor (d.x, CUDNN_DATA_HALF, 5, dims, st), ==, CUDNN_STATUS_SUCCESS);
  g_assert_cmpint (cudnnGetConvolutionForwardAlgorithm_v7 (h, d.x, d.w, d.c, d.y, 1, &n, &perf), ==,
                   CUDNN_STATUS_BAD_PARAM);
  int zero[5] = { 1, 0, 3, 6, 7 };
  g_assert_cmpint (cudnnSetTensorNdDescriptor (d.x, CUDNN_DATA_HALF, 5, zero, st), ==, CUDNN_STATUS_BAD_PARAM);
  const int pad[3] = { 0, -1, 0 }, one[3] = { 1, 1, 1 };
  g_assert_cmpint (cudnnSetConvolutionNdDescriptor (d.c, 3, pad, one, one, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                   ==, CUDNN_STATUS_BAD_PARAM);
  undescribe (&d);
  cudnnDestroy (h);
}

static void
death_y_past_allocation (void)
{
  if (g_test_subprocess ()) {
    cudnnHandle_t h;
    cudnnCreate (&h);
    Conv v = { CUDNN_DATA_BFLOAT16, 3, 1, 3, 4, { 3, 6, 7 }, { 2, 3, 3 }, { 0, 0, 0 }, { 1, 1, 1 }, { 1, 1, 1 },
               CUDNN_CROSS_CORRELATION, 0, 1.0f, 0.0f };
    Descs d;
    describe (v, &d, NULL);
    void *x, *w, *y;
    cudaMalloc (&x, (size_t) d.xn * 2);
    cudaMalloc (&w, (size_t) d.wn * 2);
    cudaMalloc (&y, (size_t) d.yn * 2 - 2);   /* one element short */
    cudnnConvolutionForward (h, &v.alpha, d.x, x, d.w, w, d.c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0,
                             &v.beta, d.y, y);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cudnnConvolutionForward y*not inside one*allocation*");
}

static void
death_f32_tf32 (void)
{
  if (g_test_subprocess ()) {
    cudnnHandle_t h;
    cudnnCreate (&h);
    Conv v = { CUDNN_DATA_FLOAT, 1, 1, 2, 2, { 5 }, { 3 }, { 0 }, { 1 }, { 1 }, CUDNN_CROSS_CORRELATION, 0, 1, 0 };
    Descs d;
    describe (v, &d, NULL);
    cudnnSetConvolutionMathType (d.c, CUDNN_DEFAULT_MATH);
    cudnnConvolutionFwdAlgoPerf_t perf;
    int n;
    cudnnGetConvolutionForwardAlgorithm_v7 (h, d.x, d.w, d.c, d.y, 1, &n, &perf);
    return;
  }
  EXPECT_DEATH ("*cuda-emu: cudnnGetConvolutionForwardAlgorithm_v7: f32 convolution*TF32*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/emu-cudnn/conv", test_conv);
  g_test_add_func ("/emu-cudnn/bad-param", test_bad_param);
  g_test_add_func ("/emu-cudnn/death/y-past-allocation", death_y_past_allocation);
  g_test_add_func ("/emu-cudnn/death/f32-tf32", death_f32_tf32);
  return g_test_run ();
}
