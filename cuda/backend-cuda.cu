/* backend-cuda.cu — the CUDA backend's device, memory and GEMM core.
 *
 * Memory lives in GBytes whose free function is cudaFree, so LaTensor
 * refcounting works unchanged on the device.  GEMMs go through cuBLAS with
 * fp32 accumulation.  The remaining ops of LaBackendOps (norms, attention,
 * convolutions, FP8 GEMMs) are issue 10's work: their table entries are NULL
 * here, and model code must not run on this backend until they exist.
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <string.h>

extern "C" {
#include "liveavatar/la-backend.h"
#include "liveavatar/la-error.h"
}

struct LaCudaBackend {
  LaBackend parent;
  cublasHandle_t blas;
  cudaStream_t stream;
  GMutex lock;
  GError *error;
};

static void
record_error (LaCudaBackend *self, const char *what, const char *detail)
{
  g_mutex_lock (&self->lock);
  if (!self->error)
    self->error = g_error_new (LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: %s: %s",
                               self->parent.device_index, what, detail);
  g_mutex_unlock (&self->lock);
}

#define CU_CHECK(self, call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) record_error ((self), #call, cudaGetErrorString (e_)); } while (0)

static void
free_device (gpointer p)
{
  cudaFree (p);
}

static LaTensor *
cuda_alloc (LaBackend *be, LaDType dtype, int ndim, const int64_t *shape)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  LaTensor probe;
  memset (&probe, 0, sizeof probe);
  probe.dtype = dtype;
  probe.ndim = ndim;
  for (int i = 0; i < ndim; i++)
    probe.shape[i] = shape[i];
  size_t n = la_tensor_nbytes (&probe);
  void *p = NULL;
  cudaSetDevice (be->device_index);
  cudaError_t e = cudaMalloc (&p, n ? n : 256);
  if (e != cudaSuccess) {
    record_error (self, "cudaMalloc", cudaGetErrorString (e));
    return NULL;
  }
  cudaMemsetAsync (p, 0, n, self->stream);
  GBytes *b = g_bytes_new_with_free_func (p, n, free_device, p);
  LaTensor *t = la_tensor_new_view (dtype, ndim, shape, b, p, LA_DEVICE_CUDA, be->device_index);
  g_bytes_unref (b);
  return t;
}

/* Same dtype: a plain memcpy of any direction.  Otherwise convert on the host. */
static void
cuda_copy (LaBackend *be, LaTensor *dst, const LaTensor *src)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  size_t n = (size_t) la_tensor_numel (src);
  if (dst->dtype == src->dtype) {
    CU_CHECK (self, cudaMemcpyAsync (dst->data, src->data, la_tensor_nbytes (src), cudaMemcpyDefault, self->stream));
    CU_CHECK (self, cudaStreamSynchronize (self->stream));
    return;
  }
  void *hs = g_malloc (la_tensor_nbytes (src)), *hd = g_malloc (la_tensor_nbytes (dst));
  CU_CHECK (self, cudaMemcpyAsync (hs, src->data, la_tensor_nbytes (src), cudaMemcpyDefault, self->stream));
  CU_CHECK (self, cudaStreamSynchronize (self->stream));
  la_convert (hd, dst->dtype, hs, src->dtype, n);
  CU_CHECK (self, cudaMemcpyAsync (dst->data, hd, la_tensor_nbytes (dst), cudaMemcpyDefault, self->stream));
  CU_CHECK (self, cudaStreamSynchronize (self->stream));
  g_free (hs);
  g_free (hd);
}

__global__ void
fill_f32 (float *p, int64_t n, float v)
{
  int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x;
  if (i < n)
    p[i] = v;
}

__global__ void
fill_bf16 (__nv_bfloat16 *p, int64_t n, float v)
{
  int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x;
  if (i < n)
    p[i] = __float2bfloat16_rn (v);
}

static void
cuda_fill (LaBackend *be, LaTensor *y, float value)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  int64_t n = la_tensor_numel (y);
  unsigned blocks = (unsigned) ((n + 255) / 256);
  if (n == 0)
    return;
  if (y->dtype == LA_DTYPE_F32)
    fill_f32<<<blocks, 256, 0, self->stream>>> ((float *) y->data, n, value);
  else if (y->dtype == LA_DTYPE_BF16)
    fill_bf16<<<blocks, 256, 0, self->stream>>> ((__nv_bfloat16 *) y->data, n, value);
  else
    record_error (self, "fill", "dtype not supported");
  CU_CHECK (self, cudaGetLastError ());
}

static cudaDataType_t
cuda_type (LaDType t)
{
  return t == LA_DTYPE_BF16 ? CUDA_R_16BF : t == LA_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* y[M,N] = x[M,K] w[N,K]^T: in column-major terms y^T = w . x^T. */
static void
cuda_linear (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *w, const LaTensor *bias)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  int64_t K = x->shape[x->ndim - 1], M = la_tensor_numel (x) / K, N = w->shape[0];
  float one = 1.0f, zero = 0.0f;
  if (bias)
    record_error (self, "linear", "bias epilogue not implemented in the CUDA backend yet");
  cublasStatus_t st = cublasGemmEx (self->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int) N, (int) M, (int) K, &one,
                                    w->data, cuda_type (w->dtype), (int) K, x->data, cuda_type (x->dtype), (int) K,
                                    &zero, y->data, cuda_type (y->dtype), (int) N,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    record_error (self, "cublasGemmEx", cublasGetStatusString (st));
}

static gboolean
cuda_sync (LaBackend *be, GError **error)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  CU_CHECK (self, cudaStreamSynchronize (self->stream));
  g_mutex_lock (&self->lock);
  GError *e = self->error;
  self->error = NULL;
  g_mutex_unlock (&self->lock);
  if (e) {
    g_propagate_error (error, e);
    return FALSE;
  }
  return TRUE;
}

static void
cuda_destroy (LaBackend *be)
{
  LaCudaBackend *self = (LaCudaBackend *) be;
  cublasDestroy (self->blas);
  cudaStreamDestroy (self->stream);
  g_clear_error (&self->error);
  g_mutex_clear (&self->lock);
  g_free (self);
}

static LaBackendOps
make_ops (void)
{
  LaBackendOps o;
  memset (&o, 0, sizeof o);
  o.name = "cuda";
  o.alloc = cuda_alloc;
  o.copy = cuda_copy;
  o.fill = cuda_fill;
  o.linear = cuda_linear;
  o.sync = cuda_sync;
  o.destroy = cuda_destroy;
  return o;
}

static const LaBackendOps cuda_ops = make_ops ();

extern "C" LaBackend *
la_backend_cuda_new (int device_index, GError **error)
{
  int count = 0;
  cudaError_t e = cudaGetDeviceCount (&count);
  if (e != cudaSuccess || device_index < 0 || device_index >= count) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: not available (%d devices%s%s)",
                 device_index, e == cudaSuccess ? count : 0,
                 e == cudaSuccess ? "" : ": ", e == cudaSuccess ? "" : cudaGetErrorString (e));
    return NULL;
  }
  cudaSetDevice (device_index);
  LaCudaBackend *self = g_new0 (LaCudaBackend, 1);
  self->parent.ops = &cuda_ops;
  self->parent.device = LA_DEVICE_CUDA;
  self->parent.device_index = device_index;
  self->parent.ref_count = 1;
  self->parent.n_threads = 1;
  g_mutex_init (&self->lock);
  if (cudaStreamCreateWithFlags (&self->stream, cudaStreamNonBlocking) != cudaSuccess ||
      cublasCreate (&self->blas) != CUBLAS_STATUS_SUCCESS) {
    g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "CUDA device %d: cannot create a stream or cuBLAS handle", device_index);
    g_mutex_clear (&self->lock);
    g_free (self);
    return NULL;
  }
  cublasSetStream (self->blas, self->stream);
  return &self->parent;
}
