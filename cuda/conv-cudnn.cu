/* conv-cudnn.cu — conv3d through cuDNN for 16-bit tensors (the VAE in bf16).
 *
 * Same op as conv.cu (x [Ci, T, H, W] = NCDHW with N = 1, w [Co, Ci, kt, kh,
 * kw], no padding, cross-correlation), computed by cudnnConvolutionForward
 * with tensor-op math and fp32 accumulation (CUDNN_DATA_FLOAT compute type).
 * Used only when x, w and y share one 16-bit dtype; the algorithm comes from
 * cuDNN's heuristics (no benchmarking, so graph capture is fine) and is
 * cached per shape; its workspace comes from the pool.  Any cuDNN failure
 * returns FALSE and conv.cu's im2col path runs instead, so cuDNN is an
 * accelerator, never a new failure mode.  A refusal is cached too (per
 * shape, or for the backend when no handle can be made): the VAE calls the
 * same shapes every frame, and asking cuDNN again costs descriptor set-up
 * and a heuristic query per call for the same answer.  f32 convs never come here (cuDNN
 * would use TF32; the golden cases need true fp32).  LA_CUDA_CONV=im2col
 * disables this path.
 */
#include "cuda-internal.h"

#ifdef LA_HAVE_CUDNN
#include <cudnn.h>

typedef struct {
  cudnnConvolutionFwdAlgo_t algo;
  size_t workspace;
  gboolean refused;         /* cuDNN declined this shape: im2col from now on */
} ConvAlgo;

static void
cache_put (LaCudaBackend *self, const char *key, const ConvAlgo *ca)
{
  g_mutex_lock (&self->lock);
  g_hash_table_insert (self->lt_algos, g_strdup (key), g_memdup2 (ca, sizeof *ca));
  g_mutex_unlock (&self->lock);
}

gboolean
la_cuda_conv3d_cudnn (LaCudaBackend *self, LaTensor *y, const LaTensor *x, const LaTensor *w, const int stride[3])
{
  static gsize once = 0;
  static gboolean disabled = FALSE;
  if (g_once_init_enter (&once)) {
    const char *e = g_getenv ("LA_CUDA_CONV");
    disabled = e && g_str_equal (e, "im2col");
    g_once_init_leave (&once, 1);
  }
  if (disabled || !(x->dtype == LA_DTYPE_BF16 || x->dtype == LA_DTYPE_F16) || w->dtype != x->dtype ||
      y->dtype != x->dtype)
    return FALSE;
  if (self->cudnn_refused)
    return FALSE;
  if (!self->cudnn) {
    cudnnHandle_t h;
    if (cudnnCreate (&h) != CUDNN_STATUS_SUCCESS) {
      self->cudnn_refused = TRUE;
      return FALSE;
    }
    self->cudnn = h;
  }
  cudnnHandle_t h = (cudnnHandle_t) self->cudnn;
  const cudnnDataType_t dt = x->dtype == LA_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  const int xdim[5] = { 1, (int) x->shape[0], (int) x->shape[1], (int) x->shape[2], (int) x->shape[3] };
  const int ydim[5] = { 1, (int) y->shape[0], (int) y->shape[1], (int) y->shape[2], (int) y->shape[3] };
  const int wdim[5] = { (int) w->shape[0], (int) w->shape[1], (int) w->shape[2], (int) w->shape[3], (int) w->shape[4] };
  int xs[5], ys[5];
  xs[4] = ys[4] = 1;
  for (int i = 3; i >= 0; i--) {
    xs[i] = xs[i + 1] * xdim[i + 1];
    ys[i] = ys[i + 1] * ydim[i + 1];
  }
  const int pad[3] = { 0, 0, 0 }, dil[3] = { 1, 1, 1 };
  cudnnTensorDescriptor_t xd = NULL, yd = NULL;
  cudnnFilterDescriptor_t wd = NULL;
  cudnnConvolutionDescriptor_t cd = NULL;
  gboolean ok = FALSE;
  void *ws = NULL;
  ConvAlgo ca = { CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0, TRUE };
  gboolean have = FALSE, refused = FALSE;
  char *key = g_strdup_printf ("cudnn %d %d %d %d %d %d %d %d %d %d %d %d", (int) dt, xdim[1], xdim[2], xdim[3],
                               xdim[4], wdim[0], wdim[2], wdim[3], wdim[4], stride[0], stride[1], stride[2]);
  const float alpha = 1.0f, beta = 0.0f;
  {
    g_mutex_lock (&self->lock);
    const ConvAlgo *cached = (const ConvAlgo *) g_hash_table_lookup (self->lt_algos, key);
    if (cached) {
      ca = *cached;
      have = TRUE;
    }
    g_mutex_unlock (&self->lock);
  }
  if (have && ca.refused)
    goto done;
  refused = TRUE;       /* any cuDNN failure from here on is a refusal of this shape */
  if (cudnnSetStream (h, self->stream) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateTensorDescriptor (&xd) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateTensorDescriptor (&yd) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateFilterDescriptor (&wd) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateConvolutionDescriptor (&cd) != CUDNN_STATUS_SUCCESS ||
      cudnnSetTensorNdDescriptor (xd, dt, 5, xdim, xs) != CUDNN_STATUS_SUCCESS ||
      cudnnSetTensorNdDescriptor (yd, dt, 5, ydim, ys) != CUDNN_STATUS_SUCCESS ||
      cudnnSetFilterNdDescriptor (wd, dt, CUDNN_TENSOR_NCHW, 5, wdim) != CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionNdDescriptor (cd, 3, pad, stride, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) !=
          CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionMathType (cd, CUDNN_TENSOR_OP_MATH) != CUDNN_STATUS_SUCCESS)
    goto done;
  if (!have) {
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int n = 0;
    if (cudnnGetConvolutionForwardAlgorithm_v7 (h, xd, wd, cd, yd, 8, &n, perf) != CUDNN_STATUS_SUCCESS)
      goto done;
    int best = -1;
    for (int i = 0; i < n && best < 0; i++)    /* heuristic order; skip failures and > 1 GiB workspaces */
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ((size_t) 1 << 30))
        best = i;
    if (best < 0)
      goto done;
    ca.algo = perf[best].algo;
    ca.workspace = perf[best].memory;
    ca.refused = FALSE;
    cache_put (self, key, &ca);
  }
  if (ca.workspace && !(ws = la_cuda_scratch_get (self, ca.workspace))) {
    refused = FALSE;    /* out of memory (recorded by the pool), not cuDNN's answer */
    goto done;
  }
  ok = cudnnConvolutionForward (h, &alpha, xd, x->data, wd, w->data, cd, ca.algo, ws, ca.workspace, &beta, yd,
                                y->data) == CUDNN_STATUS_SUCCESS;
done:
  if (!ok && refused) {
    ConvAlgo no = ca;
    no.refused = TRUE;
    cache_put (self, key, &no);      /* replaces a cached algorithm that cuDNN then refused to run */
  }
  la_cuda_scratch_put (self, ws);
  g_free (key);
  if (cd)
    cudnnDestroyConvolutionDescriptor (cd);
  if (wd)
    cudnnDestroyFilterDescriptor (wd);
  if (yd)
    cudnnDestroyTensorDescriptor (yd);
  if (xd)
    cudnnDestroyTensorDescriptor (xd);
  return ok;
}

void
la_cuda_cudnn_destroy (LaCudaBackend *self)
{
  if (self->cudnn)
    cudnnDestroy ((cudnnHandle_t) self->cudnn);
  self->cudnn = NULL;
}

#else

gboolean
la_cuda_conv3d_cudnn (LaCudaBackend *self, LaTensor *y, const LaTensor *x, const LaTensor *w, const int stride[3])
{
  return FALSE;
}

void
la_cuda_cudnn_destroy (LaCudaBackend *self)
{
}

#endif
