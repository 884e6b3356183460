/* lib-cudnn.cc — emulated cuDNN (issue 15): the Nd convolution forward path of
 * conv-cudnn.cu, computed as a reference convolution on the CPU.
 *
 *   y[n, k, o] = alpha · Σ_c Σ_f x[n, c, o·stride − pad + f·dilation] · w[k, c, f'] + beta · y[n, k, o]
 *
 * over 1–3 spatial dims, f' = f (CROSS_CORRELATION) or the flipped filter
 * (CONVOLUTION), x and y addressed through their descriptors' strides, w
 * packed KCRS…; f32 accumulation, one rounding into y's type; y not read when
 * beta == 0.  The checks cuDNN documents for cudnnConvolutionForward come
 * first (BAD_PARAM: dimension counts, channels, data types, y's dims against
 * 1 + (in + 2·pad − ((f − 1)·dil + 1)) / stride), then every buffer against
 * its allocation, then the work is enqueued on the handle's stream.
 * Configurations: PSEUDO_HALF / PSEUDO_BFLOAT16 (16-bit data, FLOAT compute)
 * and FLOAT with CUDNN_FMA_MATH.  f32 data with DEFAULT or TENSOR_OP math
 * aborts: a GPU may run it in TF32, which the emulator cannot vouch for.
 * The v7 query returns one algorithm, IMPLICIT_GEMM, with no workspace.
 */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <mutex>
#include <set>
#include <vector>
#include "emu-internal.h"
#include "emu-libs.h"

struct cudnnContext {
  int device;
  cudaStream_t stream;
};

struct cudnnTensorStruct {
  bool set;
  cudnnDataType_t type;
  int nb;
  int dim[CUDNN_DIM_MAX], stride[CUDNN_DIM_MAX];
};

struct cudnnFilterStruct {
  bool set;
  cudnnDataType_t type;
  int nb;
  int dim[CUDNN_DIM_MAX];
};

struct cudnnConvolutionStruct {
  bool set;
  int n;                                       /* spatial dims */
  int pad[CUDNN_DIM_MAX], stride[CUDNN_DIM_MAX], dil[CUDNN_DIM_MAX];
  cudnnConvolutionMode_t mode;
  cudnnDataType_t compute;
  cudnnMathType_t math;
};

static std::mutex live_lock;
static std::set<const void *> live;

template <typename T>
static T *
make (T **out)
{
  T *p = new T ();
  std::lock_guard<std::mutex> g (live_lock);
  live.insert (p);
  *out = p;
  return p;
}

template <typename T>
static cudnnStatus_t
destroy (T *p, const char *call)
{
  if (!p)
    return CUDNN_STATUS_SUCCESS;
  {
    std::lock_guard<std::mutex> g (live_lock);
    if (!live.erase (p))
      la_emu_fail ("%s: %p was never created or is already destroyed", call, (const void *) p);
  }
  delete p;
  return CUDNN_STATUS_SUCCESS;
}

template <typename T>
static T *
live_or_die (T *p, const char *call)
{
  if (!p)
    return nullptr;
  std::lock_guard<std::mutex> g (live_lock);
  if (!live.count (p))
    la_emu_fail ("%s: object %p was never created or is already destroyed", call, (const void *) p);
  return p;
}

extern "C" size_t
cudnnGetVersion (void)
{
  return CUDNN_VERSION;
}

extern "C" const char *
cudnnGetErrorString (cudnnStatus_t s)
{
  switch (s) {
  case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
  case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
  case CUDNN_STATUS_ALLOC_FAILED: return "CUDNN_STATUS_ALLOC_FAILED";
  case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
  case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
  case CUDNN_STATUS_INVALID_VALUE: return "CUDNN_STATUS_INVALID_VALUE";
  case CUDNN_STATUS_ARCH_MISMATCH: return "CUDNN_STATUS_ARCH_MISMATCH";
  case CUDNN_STATUS_MAPPING_ERROR: return "CUDNN_STATUS_MAPPING_ERROR";
  case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

extern "C" cudnnStatus_t
cudnnCreate (cudnnHandle_t *handle)
{
  if (!handle)
    return CUDNN_STATUS_BAD_PARAM;
  make (handle)->device = la_emu_current_device ();
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnDestroy (cudnnHandle_t handle)
{
  return destroy (handle, "cudnnDestroy");
}

extern "C" cudnnStatus_t
cudnnSetStream (cudnnHandle_t handle, cudaStream_t stream)
{
  cudnnContext *h = live_or_die (handle, "cudnnSetStream");
  if (!h)
    return CUDNN_STATUS_BAD_PARAM;
  if (stream && la_emu_stream_device (stream) != h->device)
    la_emu_fail ("cudnnSetStream: a stream of cuda:%d on a handle created on cuda:%d", la_emu_stream_device (stream),
                 h->device);
  h->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}

static cudaDataType_t
elem_type (cudnnDataType_t t)
{
  return t == CUDNN_DATA_FLOAT ? CUDA_R_32F : t == CUDNN_DATA_HALF ? CUDA_R_16F : CUDA_R_16BF;
}

static bool
type_known (cudnnDataType_t t)
{
  switch (t) {
  case CUDNN_DATA_FLOAT: case CUDNN_DATA_DOUBLE: case CUDNN_DATA_HALF: case CUDNN_DATA_INT8: case CUDNN_DATA_INT32:
  case CUDNN_DATA_UINT8: case CUDNN_DATA_BFLOAT16: case CUDNN_DATA_INT64: case CUDNN_DATA_FP8_E4M3:
  case CUDNN_DATA_FP8_E5M2:
    return true;
  }
  return false;
}

/* ------------------------------------------------------------ descriptors */

extern "C" cudnnStatus_t
cudnnCreateTensorDescriptor (cudnnTensorDescriptor_t *d)
{
  if (!d)
    return CUDNN_STATUS_BAD_PARAM;
  make (d);
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnDestroyTensorDescriptor (cudnnTensorDescriptor_t d)
{
  return destroy (d, "cudnnDestroyTensorDescriptor");
}

extern "C" cudnnStatus_t
cudnnSetTensorNdDescriptor (cudnnTensorDescriptor_t desc, cudnnDataType_t type, int nb, const int dim[],
                            const int stride[])
{
  cudnnTensorStruct *d = live_or_die (desc, "cudnnSetTensorNdDescriptor");
  if (!d || !dim || !stride || !type_known (type))
    return CUDNN_STATUS_BAD_PARAM;
  if (nb > CUDNN_DIM_MAX)
    return CUDNN_STATUS_NOT_SUPPORTED;
  if (nb < 3)
    return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < nb; i++)
    if (dim[i] <= 0 || stride[i] <= 0)
      return CUDNN_STATUS_BAD_PARAM;
  d->type = type;
  d->nb = nb;
  memcpy (d->dim, dim, nb * sizeof (int));
  memcpy (d->stride, stride, nb * sizeof (int));
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnCreateFilterDescriptor (cudnnFilterDescriptor_t *d)
{
  if (!d)
    return CUDNN_STATUS_BAD_PARAM;
  make (d);
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnDestroyFilterDescriptor (cudnnFilterDescriptor_t d)
{
  return destroy (d, "cudnnDestroyFilterDescriptor");
}

extern "C" cudnnStatus_t
cudnnSetFilterNdDescriptor (cudnnFilterDescriptor_t desc, cudnnDataType_t type, cudnnTensorFormat_t format, int nb,
                            const int dim[])
{
  cudnnFilterStruct *d = live_or_die (desc, "cudnnSetFilterNdDescriptor");
  if (!d || !dim || !type_known (type))
    return CUDNN_STATUS_BAD_PARAM;
  if (nb > CUDNN_DIM_MAX)
    return CUDNN_STATUS_NOT_SUPPORTED;
  if (nb < 3)
    return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < nb; i++)
    if (dim[i] <= 0)
      return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NCHW)
    la_emu_fail ("cudnnSetFilterNdDescriptor: filter format %d is not emulated (only CUDNN_TENSOR_NCHW)",
                 (int) format);
  d->type = type;
  d->nb = nb;
  memcpy (d->dim, dim, nb * sizeof (int));
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnCreateConvolutionDescriptor (cudnnConvolutionDescriptor_t *d)
{
  if (!d)
    return CUDNN_STATUS_BAD_PARAM;
  make (d)->math = CUDNN_DEFAULT_MATH;
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnDestroyConvolutionDescriptor (cudnnConvolutionDescriptor_t d)
{
  return destroy (d, "cudnnDestroyConvolutionDescriptor");
}

extern "C" cudnnStatus_t
cudnnSetConvolutionNdDescriptor (cudnnConvolutionDescriptor_t desc, int n, const int pad[], const int stride[],
                                 const int dil[], cudnnConvolutionMode_t mode, cudnnDataType_t compute)
{
  cudnnConvolutionStruct *d = live_or_die (desc, "cudnnSetConvolutionNdDescriptor");
  if (!d || !pad || !stride || !dil || n < 1 || !type_known (compute) ||
      (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION))
    return CUDNN_STATUS_BAD_PARAM;
  if (n > CUDNN_DIM_MAX - 2)
    return CUDNN_STATUS_NOT_SUPPORTED;
  for (int i = 0; i < n; i++)
    if (pad[i] < 0 || stride[i] <= 0 || dil[i] <= 0)
      return CUDNN_STATUS_BAD_PARAM;
  d->n = n;
  memcpy (d->pad, pad, n * sizeof (int));
  memcpy (d->stride, stride, n * sizeof (int));
  memcpy (d->dil, dil, n * sizeof (int));
  d->mode = mode;
  d->compute = compute;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t
cudnnSetConvolutionMathType (cudnnConvolutionDescriptor_t desc, cudnnMathType_t math)
{
  cudnnConvolutionStruct *d = live_or_die (desc, "cudnnSetConvolutionMathType");
  if (!d || math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH)
    return CUDNN_STATUS_BAD_PARAM;
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ forward */

/* cudnnConvolutionForward's documented BAD_PARAM / NOT_SUPPORTED conditions. */
static cudnnStatus_t
validate (const char *call, const cudnnTensorStruct *x, const cudnnFilterStruct *w, const cudnnConvolutionStruct *c,
          const cudnnTensorStruct *y)
{
  if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set)
    return CUDNN_STATUS_BAD_PARAM;
  const int nb = c->n + 2;
  if (x->nb != nb || w->nb != nb || y->nb != nb)
    return CUDNN_STATUS_BAD_PARAM;
  if (x->type != w->type || x->type != y->type)
    return CUDNN_STATUS_BAD_PARAM;
  if (x->dim[1] != w->dim[1] || y->dim[0] != x->dim[0] || y->dim[1] != w->dim[0])
    return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < c->n; i++) {
    const int span = (w->dim[2 + i] - 1) * c->dil[i] + 1, in = x->dim[2 + i] + 2 * c->pad[i];
    if (in < span || y->dim[2 + i] != 1 + (in - span) / c->stride[i])
      return CUDNN_STATUS_BAD_PARAM;
  }
  const cudnnDataType_t t = x->type;
  if ((t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16) && c->compute == CUDNN_DATA_FLOAT)
    return CUDNN_STATUS_SUCCESS;
  if (t == CUDNN_DATA_FLOAT && c->compute == CUDNN_DATA_FLOAT) {
    if (c->math != CUDNN_FMA_MATH)
      la_emu_fail ("%s: f32 convolution with math type %d is not emulated: a GPU may compute it in TF32 "
                   "(use CUDNN_FMA_MATH for true f32)", call, (int) c->math);
    return CUDNN_STATUS_SUCCESS;
  }
  if (t == CUDNN_DATA_HALF && c->compute == CUDNN_DATA_HALF)
    la_emu_fail ("%s: TRUE_HALF_CONFIG (half compute) is not emulated", call);
  if (t == CUDNN_DATA_DOUBLE || t == CUDNN_DATA_INT8 || t == CUDNN_DATA_UINT8)
    la_emu_fail ("%s: data type %d is not emulated", call, (int) t);
  return CUDNN_STATUS_NOT_SUPPORTED;
}

extern "C" cudnnStatus_t
cudnnGetConvolutionForwardAlgorithm_v7 (cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                        const cudnnFilterDescriptor_t wd, const cudnnConvolutionDescriptor_t cd,
                                        const cudnnTensorDescriptor_t yd, int requested, int *returned,
                                        cudnnConvolutionFwdAlgoPerf_t *perf)
{
  const char *call = "cudnnGetConvolutionForwardAlgorithm_v7";
  if (!live_or_die (handle, call) || requested < 1 || !returned || !perf)
    return CUDNN_STATUS_BAD_PARAM;
  cudnnStatus_t st = validate (call, live_or_die (xd, call), live_or_die (wd, call), live_or_die (cd, call),
                               live_or_die (yd, call));
  if (st != CUDNN_STATUS_SUCCESS)
    return st;
  memset (&perf[0], 0, sizeof perf[0]);
  perf[0].algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  perf[0].status = CUDNN_STATUS_SUCCESS;
  perf[0].time = -1.0f;
  perf[0].memory = 0;
  perf[0].determinism = CUDNN_DETERMINISTIC;
  perf[0].mathType = cd->math;
  *returned = 1;
  return CUDNN_STATUS_SUCCESS;
}

static int64_t
extent (const cudnnTensorStruct *t)
{
  int64_t last = 0;
  for (int i = 0; i < t->nb; i++)
    last += (int64_t) (t->dim[i] - 1) * t->stride[i];
  return last + 1;
}

struct Conv {
  cudnnTensorStruct x, y;
  cudnnFilterStruct w;
  cudnnConvolutionStruct c;
  const void *xp, *wp;
  void *yp;
  float alpha, beta;
};

/* Spatial dims padded to 3 (size 1, stride 1) so one loop nest serves 1–3. */
static void
conv_run (const Conv &v)
{
  const int S = v.c.n, N = v.x.dim[0], C = v.x.dim[1], K = v.w.dim[0];
  int xs[3], ys[3], fs[3], xst[3], yst[3], pad[3], str[3], dil[3];
  for (int i = 0; i < 3; i++) {
    const bool on = i < S;
    xs[i] = on ? v.x.dim[2 + i] : 1;
    ys[i] = on ? v.y.dim[2 + i] : 1;
    fs[i] = on ? v.w.dim[2 + i] : 1;
    xst[i] = on ? v.x.stride[2 + i] : 0;
    yst[i] = on ? v.y.stride[2 + i] : 0;
    pad[i] = on ? v.c.pad[i] : 0;
    str[i] = on ? v.c.stride[i] : 1;
    dil[i] = on ? v.c.dil[i] : 1;
  }
  const int64_t fvol = (int64_t) fs[0] * fs[1] * fs[2];
  const cudaDataType_t xt = elem_type (v.x.type), yt = elem_type (v.y.type);
  std::vector<float> w ((size_t) (K * C * fvol));
  for (size_t i = 0; i < w.size (); i++)
    w[i] = la_emu_load (v.wp, xt, (int64_t) i);
  const bool flip = v.c.mode == CUDNN_CONVOLUTION;
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++)
      for (int o0 = 0; o0 < ys[0]; o0++)
        for (int o1 = 0; o1 < ys[1]; o1++)
          for (int o2 = 0; o2 < ys[2]; o2++) {
            float acc = 0.0f;
            for (int c = 0; c < C; c++)
              for (int f0 = 0; f0 < fs[0]; f0++) {
                const int i0 = o0 * str[0] - pad[0] + f0 * dil[0];
                if (i0 < 0 || i0 >= xs[0])
                  continue;
                for (int f1 = 0; f1 < fs[1]; f1++) {
                  const int i1 = o1 * str[1] - pad[1] + f1 * dil[1];
                  if (i1 < 0 || i1 >= xs[1])
                    continue;
                  for (int f2 = 0; f2 < fs[2]; f2++) {
                    const int i2 = o2 * str[2] - pad[2] + f2 * dil[2];
                    if (i2 < 0 || i2 >= xs[2])
                      continue;
                    const int64_t xi = (int64_t) n * v.x.stride[0] + (int64_t) c * v.x.stride[1] +
                                       (int64_t) i0 * xst[0] + (int64_t) i1 * xst[1] + (int64_t) i2 * xst[2];
                    const int64_t fi = flip ? ((int64_t) (fs[0] - 1 - f0) * fs[1] + (fs[1] - 1 - f1)) * fs[2] +
                                                  (fs[2] - 1 - f2)
                                            : ((int64_t) f0 * fs[1] + f1) * fs[2] + f2;
                    acc += la_emu_load (v.xp, xt, xi) * w[((size_t) k * C + c) * fvol + fi];
                  }
                }
              }
            const int64_t yi = (int64_t) n * v.y.stride[0] + (int64_t) k * v.y.stride[1] + (int64_t) o0 * yst[0] +
                               (int64_t) o1 * yst[1] + (int64_t) o2 * yst[2];
            float r = v.alpha * acc;
            if (v.beta != 0.0f)
              r += v.beta * la_emu_load (v.yp, yt, yi);
            la_emu_store (v.yp, yt, yi, r);
          }
}

extern "C" cudnnStatus_t
cudnnConvolutionForward (cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
                         const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,
                         cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_size, const void *beta,
                         const cudnnTensorDescriptor_t yd, void *y)
{
  const char *call = "cudnnConvolutionForward";
  cudnnContext *h = live_or_die (handle, call);
  if (!h)
    return CUDNN_STATUS_BAD_PARAM;
  if (!alpha || !beta || !x || !w || !y)
    return CUDNN_STATUS_BAD_PARAM;
  cudnnStatus_t st = validate (call, live_or_die (xd, call), live_or_die (wd, call), live_or_die (cd, call),
                               live_or_die (yd, call));
  if (st != CUDNN_STATUS_SUCCESS)
    return st;
  if (algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT)
    return CUDNN_STATUS_BAD_PARAM;
  if (algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
    la_emu_fail ("%s: algorithm %d is not emulated (only the IMPLICIT_GEMM family)", call, (int) algo);
  if (la_emu_current_device () != h->device)
    la_emu_fail ("%s: called with cuda:%d current on a handle of cuda:%d", call, la_emu_current_device (), h->device);
  const size_t es = la_emu_type_size (elem_type (xd->type));
  int64_t wn = 1;
  for (int i = 0; i < wd->nb; i++)
    wn *= wd->dim[i];
  la_emu_check_device_range (x, (size_t) extent (xd) * es, "cudnnConvolutionForward x");
  la_emu_check_device_range (w, (size_t) wn * es, "cudnnConvolutionForward w");
  la_emu_check_device_range (y, (size_t) extent (yd) * es, "cudnnConvolutionForward y");
  if (ws_size)
    la_emu_check_device_range (ws, ws_size, "cudnnConvolutionForward workspace");
  Conv v;
  v.x = *xd, v.y = *yd, v.w = *wd, v.c = *cd;
  v.xp = x, v.wp = w, v.yp = y;
  v.alpha = *(const float *) alpha, v.beta = *(const float *) beta;
  la_emu_enqueue (h->stream, [v] () { conv_run (v); });
  return CUDNN_STATUS_SUCCESS;
}
