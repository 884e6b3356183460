/* elementwise.cu — fill, unary (GELU tanh/erf, SiLU, ReLU, tanh, sigmoid),
 * binary add/sub/mul, axpy, modulate, clamp, dtype casts and bias adds.
 *
 * Broadcast rule (la-backend.h): the second operand b repeats over a's
 * leading dims, so element i of a pairs with b[i % numel(b)].  Every kernel
 * loads and stores through la_ld/la_st, computing in fp32 whatever the
 * storage dtype (f32, bf16, f16), and is a grid-stride loop; y may alias x.
 */
#include "cuda-internal.h"

#define THREADS 256

__global__ void
k_fill (void *y, int yt, int64_t n, float v)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, v);
}

extern "C" void
la_cuda_fill (LaBackend *be, LaTensor *y, float value)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t n = la_tensor_numel (y);
  if (n == 0 || !la_cuda_dtype_ok (self, "fill", y))
    return;
  k_fill<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> (y->data, y->dtype, n, value);
  LA_CU_CHECK (self, cudaGetLastError ());
}

/* Same formulas as unary1() in backend-cpu.c. */
__device__ __forceinline__ float
unary1 (int op, float v)
{
  switch (op) {
    case LA_UNARY_GELU_TANH: {
      const float k = 0.7978845608028654f;
      return 0.5f * v * (1.0f + tanhf (k * (v + 0.044715f * v * v * v)));
    }
    case LA_UNARY_GELU_ERF: return 0.5f * v * (1.0f + erff (v * 0.7071067811865476f));
    case LA_UNARY_SILU: return v / (1.0f + expf (-v));
    case LA_UNARY_RELU: return v > 0 ? v : 0;
    case LA_UNARY_TANH: return tanhf (v);
    case LA_UNARY_SIGMOID: return 1.0f / (1.0f + expf (-v));
  }
  return v;
}

__global__ void
k_unary (int op, void *y, int yt, const void *x, int xt, int64_t n)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, unary1 (op, la_ld (x, xt, i)));
}

extern "C" void
la_cuda_unary (LaBackend *be, LaUnaryOp op, LaTensor *y, const LaTensor *x)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t n = la_tensor_numel (x);
  if (n == 0 || !la_cuda_dtype_ok (self, "unary", y) || !la_cuda_dtype_ok (self, "unary", x))
    return;
  k_unary<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> ((int) op, y->data, y->dtype, x->data, x->dtype, n);
  LA_CU_CHECK (self, cudaGetLastError ());
}

/* y = a (op) b, or y = a + alpha·b for op == -1 (axpy). */
__global__ void
k_binary (int op, float alpha, void *y, int yt, const void *a, int at, const void *b, int bt, int64_t n, int64_t m)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x) {
    float u = la_ld (a, at, i), v = la_ld (b, bt, m == n ? i : i % m);
    float r = op == LA_BINARY_ADD ? u + v : op == LA_BINARY_SUB ? u - v : op == LA_BINARY_MUL ? u * v : u + alpha * v;
    la_st (y, yt, i, r);
  }
}

static void
launch_binary (LaCudaBackend *self, const char *name, int op, float alpha, LaTensor *y, const LaTensor *a,
               const LaTensor *b)
{
  int64_t n = la_tensor_numel (a), m = la_tensor_numel (b);
  if (n == 0)
    return;
  if (m == 0 || n % m != 0) {
    la_cuda_record_error (self, name, "numel(b) does not divide numel(a)");
    return;
  }
  if (!la_cuda_dtype_ok (self, name, y) || !la_cuda_dtype_ok (self, name, a) || !la_cuda_dtype_ok (self, name, b))
    return;
  k_binary<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> (op, alpha, y->data, y->dtype, a->data, a->dtype,
                                                                       b->data, b->dtype, n, m);
  LA_CU_CHECK (self, cudaGetLastError ());
}

extern "C" void
la_cuda_binary (LaBackend *be, LaBinaryOp op, LaTensor *y, const LaTensor *a, const LaTensor *b)
{
  launch_binary (la_cuda_self (be), "binary", (int) op, 0.0f, y, a, b);
}

extern "C" void
la_cuda_axpy (LaBackend *be, LaTensor *y, const LaTensor *a, float alpha, const LaTensor *b)
{
  launch_binary (la_cuda_self (be), "axpy", -1, alpha, y, a, b);
}

__global__ void
k_modulate (void *y, int yt, const void *x, int xt, const void *sh, int sht, int64_t ms,
            const void *sc, int sct, int64_t mc, int64_t n)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, la_ld (x, xt, i) * (1.0f + la_ld (sc, sct, i % mc)) + la_ld (sh, sht, i % ms));
}

extern "C" void
la_cuda_modulate (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *shift, const LaTensor *scale)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t n = la_tensor_numel (x), ms = la_tensor_numel (shift), mc = la_tensor_numel (scale);
  if (n == 0)
    return;
  if (ms == 0 || mc == 0 || n % ms || n % mc) {
    la_cuda_record_error (self, "modulate", "shift/scale size does not divide numel(x)");
    return;
  }
  if (!la_cuda_dtype_ok (self, "modulate", y) || !la_cuda_dtype_ok (self, "modulate", x) ||
      !la_cuda_dtype_ok (self, "modulate", shift) || !la_cuda_dtype_ok (self, "modulate", scale))
    return;
  k_modulate<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype,
                                                                         shift->data, shift->dtype, ms,
                                                                         scale->data, scale->dtype, mc, n);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_clamp (void *y, int yt, const void *x, int xt, int64_t n, float lo, float hi)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x) {
    float v = la_ld (x, xt, i);
    la_st (y, yt, i, v < lo ? lo : (v > hi ? hi : v));     /* NaN passes through, as on the CPU */
  }
}

extern "C" void
la_cuda_clamp (LaBackend *be, LaTensor *y, const LaTensor *x, float lo, float hi)
{
  LaCudaBackend *self = la_cuda_self (be);
  int64_t n = la_tensor_numel (x);
  if (n == 0 || !la_cuda_dtype_ok (self, "clamp", y) || !la_cuda_dtype_ok (self, "clamp", x))
    return;
  k_clamp<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> (y->data, y->dtype, x->data, x->dtype, n, lo, hi);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_convert (void *y, int yt, const void *x, int xt, int64_t n)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < n; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, la_ld (x, xt, i));
}

/* f32/bf16/f16/e4m3 in any pair (RNE; e4m3 saturating as la_f32_to_e4m3). */
void
la_cuda_convert (LaCudaBackend *self, void *dst, LaDType dt, const void *src, LaDType st, int64_t n)
{
  if (n == 0)
    return;
  k_convert<<<la_cuda_blocks (n, THREADS), THREADS, 0, self->stream>>> (dst, dt, src, st, n);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_bias_rows (void *y, int yt, const void *b, int bt, int64_t total, int64_t n)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, la_ld (y, yt, i) + la_ld (b, bt, i % n));
}

void
la_cuda_add_bias_rows (LaCudaBackend *self, void *y, LaDType yt, const void *b, LaDType bt, int64_t rows, int64_t n)
{
  int64_t total = rows * n;
  if (total == 0)
    return;
  k_bias_rows<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (y, yt, b, bt, total, n);
  LA_CU_CHECK (self, cudaGetLastError ());
}

__global__ void
k_bias_channels (void *y, int yt, const void *b, int bt, int64_t total, int64_t P)
{
  for (int64_t i = blockIdx.x * (int64_t) blockDim.x + threadIdx.x; i < total; i += (int64_t) gridDim.x * blockDim.x)
    la_st (y, yt, i, la_ld (y, yt, i) + la_ld (b, bt, i / P));
}

void
la_cuda_add_bias_channels (LaCudaBackend *self, void *y, LaDType yt, const void *b, LaDType bt, int64_t C, int64_t P)
{
  int64_t total = C * P;
  if (total == 0)
    return;
  k_bias_channels<<<la_cuda_blocks (total, THREADS), THREADS, 0, self->stream>>> (y, yt, b, bt, total, P);
  LA_CU_CHECK (self, cudaGetLastError ());
}
