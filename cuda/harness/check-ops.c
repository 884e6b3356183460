/* check-ops.c — check-and-time harness for every CUDA op (llm.c dev/cuda style).
 *
 *   liveavatar-cuda-check [GROUP...]     groups: memory elementwise norms gemm
 *                                         fp8 attention conv vae rope dit alloc graph streams
 *                                         threads
 *                                         (none given: all)
 *   liveavatar-cuda-check --bench        the 14B hot-loop shapes, timed only: GEMMs,
 *                                         attention, the VAE's big conv, and one whole
 *                                         DiT block (FP8 / bf16, eager / CUDA graph)
 *   liveavatar-cuda-check --versions     CUDA driver / runtime, cuBLAS(Lt), cuDNN, NCCL
 *                                         versions of the libraries this process loaded
 *                                         (no device needed)
 *   LA_CHECK_HANG=GROUP                  that group sleeps instead of running (exercises
 *                                         run-gpu-checks.sh's timeouts)
 *
 * Each case makes random host inputs, runs the CPU backend's op (the f32
 * reference) and the CUDA op on the same data (uploaded as f32, then as
 * bf16: the bf16 reference is computed from the bf16-rounded inputs, so
 * only the device's own roundings remain), downloads, and prints max-abs /
 * rel-L2 against the reference, the tolerance (check-compare.h) and the CUDA
 * time per call; a failing case also names its worst element.  Sizes are
 * deliberately odd (not multiples of the kernels' tiles) so edge handling
 * is exercised.
 * Exit status: 0 all pass, 1 a case failed, 77 no CUDA device (skip).
 */
#include "liveavatar/liveavatar.h"
#include "liveavatar/la-cuda.h"
#include "la-ops.h"
#include "check-compare.h"
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static LaBackend *cpu, *gpu;
static GError *timed_error;     /* a device error seen while timing, reported by the next compare */
static int n_fail, n_pass;

/* ------------------------------------------------------------ helpers */

static guint32 rng_state = 12345;

static float
frand (void)        /* uniform [-1, 1) */
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float) (rng_state >> 8) / 8388608.0f - 1.0f;
}

static LaTensor *
rnd (int ndim, const int64_t *shape, float scale)
{
  LaTensor *t = la_tensor_new (LA_DTYPE_F32, ndim, shape);
  float *p = la_tensor_f32 (t);
  for (int64_t i = 0; i < la_tensor_numel (t); i++)
    p[i] = scale * frand ();
  return t;
}

#define SH(...) ((const int64_t[]) { __VA_ARGS__ })
#define R(nd, scale, ...) rnd (nd, SH (__VA_ARGS__), scale)

/* h as the device holds it after up (h, dt): rounded to dt, as f32 (for f32,
 * a new reference to h).  References for 16-bit runs are computed from these. */
static LaTensor *
rin (const LaTensor *h, LaDType dt)
{
  if (!h)
    return NULL;
  if (dt == LA_DTYPE_F32)
    return la_tensor_ref ((LaTensor *) h);
  LaTensor *n = la_tensor_to_dtype (h, dt), *r = la_tensor_to_dtype (n, LA_DTYPE_F32);
  la_tensor_unref (n);
  return r;
}

static void
unref_all (LaTensor **t, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (t[i])
      la_tensor_unref (t[i]);
}
#define UNREF(...) do { LaTensor *all_[] = { __VA_ARGS__ }; unref_all (all_, G_N_ELEMENTS (all_)); } while (0)

static LaTensor *
up (const LaTensor *h, LaDType dt)
{
  if (!h)
    return NULL;
  LaTensor *d = la_alloc (gpu, dt, h->ndim, h->shape);
  la_copy (gpu, d, h);
  return d;
}

static LaTensor *
down (const LaTensor *d)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, d->ndim, d->shape);
  la_copy (gpu, h, d);
  return h;
}

static LaTensor *
like (const LaTensor *h, LaDType dt)   /* zeroed device tensor of h's shape */
{
  return la_alloc (gpu, dt, h->ndim, h->shape);
}

static LaTensor *
cpu_like (const LaTensor *h)
{
  return la_tensor_new (LA_DTYPE_F32, h->ndim, h->shape);
}

/* dev against ref; tolerance tol + roundings · u(dev's dtype) (check-compare.h). */
static void
compare_n (const char *name, LaDType dt, const LaTensor *ref, const LaTensor *dev, double tol, int roundings,
           double ms)
{
  GError *error = g_steal_pointer (&timed_error);
  if (error || !la_backend_sync (gpu, &error)) {
    printf ("FAIL %-34s %-4s device error: %s\n", name, la_dtype_name (dt), error->message);
    g_clear_error (&error);
    n_fail++;
    return;
  }
  const int64_t n = la_tensor_numel (ref);
  if (la_tensor_numel (dev) != n) {
    printf ("FAIL %-34s %-4s %" G_GINT64_FORMAT " elements, reference has %" G_GINT64_FORMAT "\n", name,
            la_dtype_name (dt), la_tensor_numel (dev), n);
    n_fail++;
    return;
  }
  LaTensor *got = down (dev);
  const float *a = la_tensor_f32 (ref), *b = la_tensor_f32 (got);
  LaCheckStats st;
  la_check_stats (a, b, n, &st);
  tol = la_check_tol (tol, dev->dtype, roundings);
  const gboolean ok = st.n_nonfinite == 0 && st.rel <= tol;
  printf ("%s %-34s %-4s max-abs %.3e rel-L2 %.3e (tol %.1e)  %8.3f ms", ok ? "pass" : "FAIL", name,
          la_dtype_name (dt), st.maxabs, st.rel, tol, ms);
  if (st.n_nonfinite)
    printf ("  %" G_GINT64_FORMAT " non-finite", st.n_nonfinite);
  if (!ok && st.worst >= 0) {
    char *at = la_check_coords (ref->ndim, ref->shape, st.worst);
    printf ("  worst %s: got %.6g want %.6g", at, (double) b[st.worst], (double) a[st.worst]);
    g_free (at);
  }
  printf ("\n");
  ok ? n_pass++ : n_fail++;
  la_tensor_unref (got);
}

/* One rounding into dev's dtype: an op that computes in fp32 and stores once. */
#define compare(name, dt, ref, dev, tol, ms) compare_n (name, dt, ref, dev, tol, 1, ms)

/* Runs `stmt` (a CUDA op) once to warm up, then reps times; ms per call.
 * LA_CHECK_TIMING=0 (the meson tests: correctness only, and the emulated
 * device is slow) runs it once and reports 0 ms. */
static gboolean
timing (void)
{
  static int on = -1;
  if (on < 0)
    on = g_strcmp0 (g_getenv ("LA_CHECK_TIMING"), "0") != 0;
  return on;
}

#define TIMED(ms, reps, stmt) do { \
    stmt; \
    if (!timed_error) la_backend_sync (gpu, &timed_error); \
    (ms) = 0; \
    if (!timing ()) break; \
    gint64 t0_ = g_get_monotonic_time (); \
    for (int r_ = 0; r_ < (reps); r_++) { stmt; } \
    if (!timed_error) la_backend_sync (gpu, &timed_error); \
    (ms) = (g_get_monotonic_time () - t0_) / 1000.0 / (reps); } while (0)

static const LaDType DTS[] = { LA_DTYPE_F32, LA_DTYPE_BF16 };
#define FOR_DT for (size_t di_ = 0; di_ < G_N_ELEMENTS (DTS); di_++) for (LaDType dt = DTS[di_], once_ = 1; once_; once_ = 0)

/* ------------------------------------------------------------ groups */

static void
g_memory (void)
{
  /* copies in every direction and float dtype pair, against la_convert */
  LaTensor *x = R (2, 3.0f, 37, 129);
  const LaDType types[] = { LA_DTYPE_F32, LA_DTYPE_BF16, LA_DTYPE_F16, LA_DTYPE_F8_E4M3 };
  for (size_t i = 0; i < G_N_ELEMENTS (types); i++) {
    LaTensor *ref_n = la_tensor_to_dtype (x, types[i]);
    LaTensor *ref = la_tensor_to_dtype (ref_n, LA_DTYPE_F32);
    LaTensor *d = up (x, types[i]);                       /* host f32 -> device t (device cast) */
    LaTensor *d2 = la_alloc (gpu, LA_DTYPE_F32, 2, x->shape);
    la_copy (gpu, d2, d);                          /* device t -> device f32 */
    char name[64];
    g_snprintf (name, sizeof name, "copy f32->%s->f32", la_dtype_name (types[i]));
    compare (name, types[i], ref, d2, 0.0, 0);
    LaTensor *h = la_tensor_new (types[i], 2, x->shape);  /* device t -> host t (raw) */
    la_copy (gpu, h, d);
    gboolean same = memcmp (h->data, ref_n->data, la_tensor_nbytes (h)) == 0;
    printf ("%s %-34s %-4s bit-exact with la_convert\n", same ? "pass" : "FAIL", "copy download raw",
            la_dtype_name (types[i]));
    same ? n_pass++ : n_fail++;
    la_tensor_unref (h);
    la_tensor_unref (d2);
    la_tensor_unref (d);
    la_tensor_unref (ref);
    la_tensor_unref (ref_n);
  }
  FOR_DT {
    LaTensor *ref = cpu_like (x), *d = like (x, dt);
    double ms;
    la_fill (cpu, ref, 0.375f);
    TIMED (ms, 10, la_fill (gpu, d, 0.375f));
    compare_n ("fill", dt, ref, d, 0.0, 0, ms);      /* 0.375 is exact in every type */
    la_tensor_unref (ref);
    la_tensor_unref (d);
  }
  la_tensor_unref (x);
}

static void
g_elementwise (void)
{
  LaTensor *x0 = R (3, 4.0f, 3, 41, 67), *b0 = R (1, 1.0f, 67), *b20 = R (2, 1.0f, 41, 67);
  static const char *unames[] = { "gelu_tanh", "gelu_erf", "silu", "relu", "tanh", "sigmoid" };
  FOR_DT {
    LaTensor *x = rin (x0, dt), *b = rin (b0, dt), *b2 = rin (b20, dt);
    LaTensor *dx = up (x, dt), *db = up (b, dt), *db2 = up (b2, dt), *dy = like (x, dt);
    LaTensor *ref = cpu_like (x);
    double ms;
    char name[64];
    for (int op = LA_UNARY_GELU_TANH; op <= LA_UNARY_SIGMOID; op++) {
      la_unary (cpu, op, ref, x);
      TIMED (ms, 10, la_unary (gpu, op, dy, dx));
      g_snprintf (name, sizeof name, "unary %s", unames[op]);
      compare (name, dt, ref, dy, 1e-6, ms);
    }
    static const char *bnames[] = { "add", "sub", "mul" };
    for (int op = LA_BINARY_ADD; op <= LA_BINARY_MUL; op++) {
      la_binary (cpu, op, ref, x, b);
      TIMED (ms, 10, la_binary (gpu, op, dy, dx, db));
      g_snprintf (name, sizeof name, "binary %s (row broadcast)", bnames[op]);
      compare (name, dt, ref, dy, 1e-6, ms);
      la_binary (cpu, op, ref, x, b2);
      la_binary (gpu, op, dy, dx, db2);
      g_snprintf (name, sizeof name, "binary %s (2-D broadcast)", bnames[op]);
      compare (name, dt, ref, dy, 1e-6, 0);
    }
    la_axpy (cpu, ref, x, -0.625f, b2);
    TIMED (ms, 10, la_axpy (gpu, dy, dx, -0.625f, db2));
    compare ("axpy", dt, ref, dy, 1e-6, ms);
    la_modulate (cpu, ref, x, b2, b);
    TIMED (ms, 10, la_modulate (gpu, dy, dx, db2, db));
    compare ("modulate", dt, ref, dy, 1e-6, ms);
    la_clamp (cpu, ref, x, -1.5f, 2.25f);
    TIMED (ms, 10, la_clamp (gpu, dy, dx, -1.5f, 2.25f));
    compare_n ("clamp", dt, ref, dy, 0.0, 0, ms);   /* picks an input or a bound: exact */
    /* in place: y == x */
    LaTensor *xin = la_tensor_to_dtype (x, LA_DTYPE_F32), *dxin = up (x, dt);
    la_unary (cpu, LA_UNARY_SILU, xin, xin);
    la_unary (gpu, LA_UNARY_SILU, dxin, dxin);
    compare ("unary silu in place", dt, xin, dxin, 1e-6, 0);
    la_tensor_unref (xin);
    la_tensor_unref (dxin);
    UNREF (ref, dx, db, db2, dy, x, b, b2);
  }
  UNREF (x0, b0, b20);
}

static void
g_norms (void)
{
  LaTensor *x0 = R (2, 3.0f, 77, 5120), *w0 = R (1, 1.0f, 5120), *bb0 = R (1, 1.0f, 5120);
  LaTensor *xs0 = R (3, 5.0f, 5, 29, 1003);
  LaTensor *xc0 = R (4, 2.0f, 96, 3, 17, 29), *g0 = R (1, 1.0f, 96);
  FOR_DT {
    LaTensor *x = rin (x0, dt), *w = rin (w0, dt), *bb = rin (bb0, dt), *xs = rin (xs0, dt), *xc = rin (xc0, dt);
    LaTensor *g = rin (g0, dt);
    LaTensor *dx = up (x, dt), *dw = up (w, dt), *db = up (bb, dt), *dy = like (x, dt), *ref = cpu_like (x);
    double ms;
    la_layer_norm (cpu, ref, x, w, bb, 1e-6f);
    TIMED (ms, 10, la_layer_norm (gpu, dy, dx, dw, db, 1e-6f));
    compare ("layer_norm affine [77,5120]", dt, ref, dy, 1e-5, ms);
    la_layer_norm (cpu, ref, x, NULL, NULL, 1e-6f);
    la_layer_norm (gpu, dy, dx, NULL, NULL, 1e-6f);
    compare ("layer_norm plain", dt, ref, dy, 1e-5, 0);
    la_rms_norm (cpu, ref, x, w, 1e-6f);
    TIMED (ms, 10, la_rms_norm (gpu, dy, dx, dw, 1e-6f));
    compare ("rms_norm [77,5120]", dt, ref, dy, 1e-5, ms);
    la_rms_norm (gpu, dx, dx, NULL, 1e-6f);      /* in place */
    la_rms_norm (cpu, ref, x, NULL, 1e-6f);
    compare ("rms_norm in place, no gain", dt, ref, dx, 1e-5, 0);
    LaTensor *dxs = up (xs, dt), *dys = like (xs, dt), *refs = cpu_like (xs);
    la_softmax (cpu, refs, xs);
    TIMED (ms, 10, la_softmax (gpu, dys, dxs));
    compare ("softmax [5,29,1003]", dt, refs, dys, 1e-5, ms);
    LaTensor *dxc = up (xc, dt), *dg = up (g, dt), *dyc = like (xc, dt), *refc = cpu_like (xc);
    la_channel_rms_norm (cpu, refc, xc, g, 1e-12f);
    TIMED (ms, 10, la_channel_rms_norm (gpu, dyc, dxc, dg, 1e-12f));
    compare ("channel_rms_norm [96,3,17,29]", dt, refc, dyc, 1e-5, ms);
    UNREF (dx, dw, db, dy, ref, dxs, dys, refs, dxc, dg, dyc, refc, x, w, bb, xs, xc, g);
  }
  UNREF (x0, w0, bb0, xs0, xc0, g0);
}

static void
g_gemm (void)
{
  LaTensor *x0 = R (3, 1.0f, 2, 67, 320), *w0 = R (2, 0.1f, 136, 320), *b0 = R (1, 1.0f, 136);
  FOR_DT {
    LaTensor *x = rin (x0, dt), *w = rin (w0, dt), *b = rin (b0, dt);
    LaTensor *dx = up (x, dt), *dw = up (w, dt), *db = up (b, dt);
    LaTensor *ref = la_tensor_new (LA_DTYPE_F32, 3, SH (2, 67, 136)), *dy = la_alloc (gpu, dt, 3, ref->shape);
    double ms;
    la_linear (cpu, ref, x, w, b);
    TIMED (ms, 10, la_linear (gpu, dy, dx, dw, db));
    /* 16-bit y: the GEMM stores y, then the bias is added to it (two roundings) */
    compare_n ("linear + bias [134,320]x[136,320]T", dt, ref, dy, 1e-5, 2, ms);
    la_linear (cpu, ref, x, w, NULL);
    la_linear (gpu, dy, dx, dw, NULL);
    compare ("linear no bias", dt, ref, dy, 1e-5, 0);
    /* mixed: f32 activations (cast to the weight's type on the device: the
     * reference's x is rounded too), weight in dt, f32 output: no rounding */
    LaTensor *dx32 = up (x, LA_DTYPE_F32), *dy32 = la_alloc (gpu, LA_DTYPE_F32, 3, ref->shape);
    la_linear (gpu, dy32, dx32, dw, NULL);
    compare ("linear f32 x, weight in dtype", dt, ref, dy32, 1e-5, 0);
    la_tensor_unref (dx32);
    la_tensor_unref (dy32);
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int bb = 0; bb < 2; bb++) {
          const int64_t B = 3, M = 19, K = 45, N = 23;
          LaTensor *a = ta ? R (3, 1.0f, B, K, M) : R (3, 1.0f, B, M, K);
          LaTensor *bm = bb ? (tb ? R (2, 1.0f, N, K) : R (2, 1.0f, K, N)) : (tb ? R (3, 1.0f, B, N, K) : R (3, 1.0f, B, K, N));
          LaTensor *c = R (3, 1.0f, B, M, N), *dc;
          LaTensor *da = up (a, dt), *dbm = up (bm, dt);
          dc = up (c, dt);
          LaTensor *cref = la_tensor_to_dtype (c, LA_DTYPE_F32);
          if (dt != LA_DTYPE_F32) {     /* the reference starts from the bf16-rounded c */
            la_tensor_unref (cref);
            cref = down (dc);
          }
          LaTensor *ar = rin (a, dt), *bmr = rin (bm, dt);
          la_matmul (cpu, cref, ar, bmr, ta, tb, 0.75f, 0.5f);
          UNREF (ar, bmr);
          la_matmul (gpu, dc, da, dbm, ta, tb, 0.75f, 0.5f);
          char name[64];
          g_snprintf (name, sizeof name, "matmul ta=%d tb=%d b-bcast=%d beta", ta, tb, bb);
          compare (name, dt, cref, dc, 1e-5, 0);
          la_tensor_unref (a);
          la_tensor_unref (bm);
          la_tensor_unref (c);
          la_tensor_unref (cref);
          la_tensor_unref (da);
          la_tensor_unref (dbm);
          la_tensor_unref (dc);
        }
    UNREF (dx, dw, db, ref, dy, x, w, b);
  }
  UNREF (x0, w0, b0);
}

static float
scale_of (const LaTensor *q)
{
  float s = 0;
  LaTensor *h = la_tensor_new (LA_DTYPE_F32, 1, SH (1));
  /* the scale slot is a device float; read it with a 1-element f32 view */
  GBytes *bytes = g_bytes_new_static (la_cuda_fp8_scale_ptr (q), sizeof (float));
  LaTensor *v = la_tensor_new_view (LA_DTYPE_F32, 1, SH (1), bytes, la_cuda_fp8_scale_ptr (q), LA_DEVICE_CUDA,
                                    q->device_index);
  la_copy (gpu, h, v);
  s = la_tensor_f32 (h)[0];
  la_tensor_unref (v);
  g_bytes_unref (bytes);
  la_tensor_unref (h);
  return s;
}

static void
g_fp8 (void)
{
  /* docs/design/model.md §2.3: amax 1000, 448, 1, 0.5, 0 -> s = 0.448, 1, 448, 448, 448 (slot holds 1/s) */
  const float amax[] = { 1000.0f, 448.0f, 1.0f, 0.5f, 0.0f }, want_s[] = { 0.448f, 1.0f, 448.0f, 448.0f, 448.0f };
  for (int i = 0; i < 5; i++) {
    LaTensor *x = R (2, amax[i] * 0.5f, 16, 32);
    la_tensor_f32 (x)[77] = -amax[i];
    LaTensor *dx = up (x, LA_DTYPE_F32), *q = la_alloc (gpu, LA_DTYPE_F8_E4M3, 2, x->shape);
    GError *error = NULL;
    la_cuda_quantize_fp8 (gpu, q, dx, &error);
    float got = scale_of (q), want = 1.0f / want_s[i];
    gboolean ok = !error && fabsf (got - want) <= 1e-6f * want;
    printf ("%s %-34s amax %g: 1/s %.6g (want %.6g)\n", ok ? "pass" : "FAIL", "fp8 quantiser scale", amax[i],
            got, want);
    ok ? n_pass++ : n_fail++;
    /* dequantised values vs x: e4m3 keeps 3 mantissa bits */
    LaTensor *deq = la_tensor_new (LA_DTYPE_F32, 2, x->shape), *qh = la_tensor_new (LA_DTYPE_F8_E4M3, 2, x->shape);
    la_copy (gpu, qh, q);
    la_convert (deq->data, LA_DTYPE_F32, qh->data, LA_DTYPE_F8_E4M3, (size_t) la_tensor_numel (x));
    for (int64_t j = 0; j < la_tensor_numel (x); j++)
      la_tensor_f32 (deq)[j] *= got;
    LaTensor *ddeq = up (deq, LA_DTYPE_F32);
    if (amax[i] > 0)
      compare ("fp8 quantise round trip", LA_DTYPE_F8_E4M3, x, ddeq, 0.07, 0);
    la_tensor_unref (ddeq);
    la_tensor_unref (deq);
    la_tensor_unref (qh);
    g_clear_error (&error);
    la_tensor_unref (x);
    la_tensor_unref (dx);
    la_tensor_unref (q);
  }
  /* NaN stays NaN (e4m3 0x7f / 0xff) and does not enter amax; every other
   * element is the host's e4m3(x·s), bit for bit (fp8.cu's header). */
  {
    LaTensor *x = R (2, 3.0f, 8, 40);
    float *p = la_tensor_f32 (x), amax = 0;
    p[5] = NAN;
    p[77] = -NAN;
    p[300] = -5.0f;
    for (int64_t j = 0; j < la_tensor_numel (x); j++)
      if (!isnan (p[j]))
        amax = fmaxf (amax, fabsf (p[j]));
    const float s = fminf (448.0f / fmaxf (amax, 1e-12f), 448.0f);
    LaTensor *dx = up (x, LA_DTYPE_F32), *q = la_alloc (gpu, LA_DTYPE_F8_E4M3, 2, x->shape);
    LaTensor *qh = la_tensor_new (LA_DTYPE_F8_E4M3, 2, x->shape);
    GError *error = NULL;
    la_cuda_quantize_fp8 (gpu, q, dx, &error);
    la_copy (gpu, qh, q);
    const uint8_t *qb = qh->data;
    int64_t bad = -1;
    for (int64_t j = 0; j < la_tensor_numel (x) && bad < 0; j++)
      if (isnan (p[j]) ? (qb[j] & 0x7f) != 0x7f : qb[j] != la_f32_to_e4m3 (p[j] * s))
        bad = j;
    const float got_s = scale_of (q);
    const gboolean ok = !error && bad < 0 && got_s == 1.0f / s;
    printf ("%s %-34s NaN kept, 1/s %.6g (want %.6g)", ok ? "pass" : "FAIL", "fp8 quantiser with NaN", got_s,
            1.0f / s);
    if (bad >= 0)
      printf ("; element %" G_GINT64_FORMAT ": x %g -> 0x%02x, want 0x%02x", bad, p[bad], qb[bad],
              isnan (p[bad]) ? 0x7f : la_f32_to_e4m3 (p[bad] * s));
    printf ("%s%s\n", error ? ": " : "", error ? error->message : "");
    ok ? n_pass++ : n_fail++;
    g_clear_error (&error);
    UNREF (x, dx, q, qh);
  }
  /* FP8 linear vs the reference on the bf16 inputs it was given (docs/design/model.md
   * §2.3: rel Frobenius <~ 3 % with fast accumulation; 5e-2 covers both
   * e4m3 roundings and the bf16 output) */
  const int64_t shapes[][3] = { { 96, 512, 256 }, { 333, 5120, 5120 }, { 333, 13824, 5120 }, { 333, 5120, 13824 } };
  for (int s = 0; s < 4; s++) {
    const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    LaTensor *x = R (2, 2.0f, M, K), *w = R (2, 0.02f, N, K), *b = R (1, 0.5f, N);
    LaTensor *ref = la_tensor_new (LA_DTYPE_F32, 2, SH (M, N));
    LaTensor *xr = rin (x, LA_DTYPE_BF16), *wr = rin (w, LA_DTYPE_BF16), *br = rin (b, LA_DTYPE_BF16);
    la_linear (cpu, ref, xr, wr, br);
    UNREF (xr, wr, br);
    LaTensor *dw = up (w, LA_DTYPE_BF16), *q = la_alloc (gpu, LA_DTYPE_F8_E4M3, 2, w->shape);
    la_cuda_quantize_fp8 (gpu, q, dw, NULL);
    LaTensor *dx = up (x, LA_DTYPE_BF16), *db = up (b, LA_DTYPE_BF16), *dy = la_alloc (gpu, LA_DTYPE_BF16, 2, ref->shape);
    double ms;
    TIMED (ms, 5, la_linear (gpu, dy, dx, q, db));
    char name[64];
    g_snprintf (name, sizeof name, "fp8 linear+bias [%ld,%ld]x[%ld,%ld]T", (long) M, (long) K, (long) N, (long) K);
    compare_n (name, LA_DTYPE_F8_E4M3, ref, dy, 0.05, 0, ms);
    if (ms > 0)
      printf ("     %.1f TFLOP/s\n", 2.0 * M * N * K / (ms * 1e-3) / 1e12);
    LaTensor *objs[] = { x, w, b, ref, dw, q, dx, db, dy };
    for (size_t i = 0; i < G_N_ELEMENTS (objs); i++)
      la_tensor_unref (objs[i]);
  }
  /* dynamic activation scale: two calls with different amax must both be right */
  {
    LaTensor *w = R (2, 0.05f, 64, 128), *x1 = R (2, 1.0f, 8, 128), *x2 = R (2, 300.0f, 8, 128);
    LaTensor *r1 = la_tensor_new (LA_DTYPE_F32, 2, SH (8, 64)), *r2 = la_tensor_new (LA_DTYPE_F32, 2, SH (8, 64));
    la_linear (cpu, r1, x1, w, NULL);
    la_linear (cpu, r2, x2, w, NULL);
    LaTensor *dw = up (w, LA_DTYPE_F32), *q = la_alloc (gpu, LA_DTYPE_F8_E4M3, 2, w->shape);
    la_cuda_quantize_fp8 (gpu, q, dw, NULL);
    LaTensor *d1 = up (x1, LA_DTYPE_F32), *d2 = up (x2, LA_DTYPE_F32);
    LaTensor *y1 = la_alloc (gpu, LA_DTYPE_F32, 2, r1->shape), *y2 = la_alloc (gpu, LA_DTYPE_F32, 2, r2->shape);
    la_linear (gpu, y1, d1, q, NULL);
    la_linear (gpu, y2, d2, q, NULL);
    compare ("fp8 linear call 1 (amax ~1)", LA_DTYPE_F8_E4M3, r1, y1, 0.05, 0);
    compare ("fp8 linear call 2 (amax ~300)", LA_DTYPE_F8_E4M3, r2, y2, 0.05, 0);
    /* pre-quantised activation: must equal the per-call quantisation exactly */
    LaTensor *x8 = la_alloc (gpu, LA_DTYPE_F8_E4M3, 2, x2->shape), *y3 = la_alloc (gpu, LA_DTYPE_F32, 2, r2->shape);
    la_cuda_quantize_fp8 (gpu, x8, d2, NULL);
    la_linear (gpu, y3, x8, q, NULL);
    LaTensor *h2 = down (y2);
    compare ("fp8 linear, pre-quantised x", LA_DTYPE_F8_E4M3, h2, y3, 0.0, 0);
    la_tensor_unref (h2);
    la_tensor_unref (x8);
    la_tensor_unref (y3);
    LaTensor *objs[] = { w, x1, x2, r1, r2, dw, q, d1, d2, y1, y2 };
    for (size_t i = 0; i < G_N_ELEMENTS (objs); i++)
      la_tensor_unref (objs[i]);
  }
}

/* A device I32 scalar holding v (the position operand of copy_rows_at / attention_n). */
static LaTensor *
up_i32 (int32_t v)
{
  LaTensor *h = la_tensor_new (LA_DTYPE_I32, 1, SH (1)), *d = la_alloc (gpu, LA_DTYPE_I32, 1, SH (1));
  ((int32_t *) h->data)[0] = v;
  la_copy (gpu, d, h);
  la_tensor_unref (h);
  return d;
}

/* Two device tensors equal bit for bit (as f32 after download: exact for f32 and bf16). */
static void
same_bits (const char *name, LaDType dt, const LaTensor *a, const LaTensor *b)
{
  GError *error = NULL;
  if (!la_backend_sync (gpu, &error)) {
    printf ("FAIL %-34s %-4s device error: %s\n", name, la_dtype_name (dt), error->message);
    g_clear_error (&error);
    n_fail++;
    return;
  }
  LaTensor *ha = down (a), *hb = down (b);
  const gboolean ok = memcmp (ha->data, hb->data, la_tensor_nbytes (ha)) == 0;
  printf ("%s %-34s %-4s %s\n", ok ? "pass" : "FAIL", name, la_dtype_name (dt), ok ? "bit-identical" : "differs");
  ok ? n_pass++ : n_fail++;
  UNREF (ha, hb);
}

static void attention_second_device (void);

/* attention_n over k, v with 7 more rows than the n = Lk it is told on the
 * device: bit for bit the attention on the n-row views (dout, what the
 * caller just ran), except on the GEMM path, which gives way to the fused
 * kernels there: within the attention tolerance of the CPU reference. */
static void
attention_n_case (const LaTensor *q, const LaTensor *k, const LaTensor *v, int64_t H, float scale, LaDType dt,
                  const LaTensor *ref, const LaTensor *dout)
{
  const int64_t Lk = k->shape[0], HD = k->shape[1];
  LaTensor *kx = R (2, 1.0f, Lk + 7, HD), *vx = R (2, 1.0f, Lk + 7, HD);
  memcpy (kx->data, k->data, la_tensor_nbytes (k));
  memcpy (vx->data, v->data, la_tensor_nbytes (v));
  LaTensor *dq = up (q, dt), *dk = up (kx, dt), *dv = up (vx, dt), *dn = up_i32 ((int32_t) Lk), *out = like (q, dt);
  la_attention_n (gpu, out, dq, dk, dv, (int) H, scale, dn);
  char name[64];
  g_snprintf (name, sizeof name, "attention_n Lk%ld of %ld rows", (long) Lk, (long) (Lk + 7));
  if (g_strcmp0 (g_getenv ("LA_CUDA_ATTN"), "gemm") == 0)
    compare_n (name, dt, ref, out, 1e-5, 2, 0);
  else
    same_bits (name, dt, dout, out);
  UNREF (kx, vx, dq, dk, dv, dn, out);
}

static void
g_attention (void)
{
  /* (Lq, Lk, H, D, bias): odd lengths; D = 128 (the real head dim) and tiny-model D */
  const int cases[][5] = { { 77, 301, 2, 128, 0 }, { 50, 45, 3, 16, 1 }, { 1, 1, 1, 8, 0 }, { 129, 64, 4, 40, 1 } };
  for (size_t c = 0; c < G_N_ELEMENTS (cases); c++) {
    const int64_t Lq = cases[c][0], Lk = cases[c][1], H = cases[c][2], D = cases[c][3];
    LaTensor *q = R (2, 1.0f, Lq, H * D), *k = R (2, 1.0f, Lk, H * D), *v = R (2, 1.0f, Lk, H * D);
    LaTensor *bias = cases[c][4] ? R (3, 2.0f, H, Lq, Lk) : NULL;
    const float scale = 1.0f / sqrtf ((float) D);
    FOR_DT {
      LaTensor *qr = rin (q, dt), *kr = rin (k, dt), *vr = rin (v, dt), *br = rin (bias, dt), *ref = cpu_like (q);
      la_attention (cpu, ref, qr, kr, vr, (int) H, scale, br);
      LaTensor *dq = up (q, dt), *dk = up (k, dt), *dv = up (v, dt), *db = up (bias, dt), *dout = like (q, dt);
      double ms;
      TIMED (ms, 5, la_attention (gpu, dout, dq, dk, dv, (int) H, scale, db));
      char name[64];
      g_snprintf (name, sizeof name, "attention Lq%ld Lk%ld H%ld D%ld%s", (long) Lq, (long) Lk, (long) H, (long) D,
                  bias ? " bias" : "");
      /* 16-bit: the WMMA and GEMM paths round P before P·V, then the output */
      compare_n (name, dt, ref, dout, 1e-5, 2, ms);
      if (!bias)
        attention_n_case (q, k, v, H, scale, dt, ref, dout);
      UNREF (dq, dk, dv, db, dout, qr, kr, vr, br, ref);
    }
    UNREF (q, k, v, bias);
  }
  attention_second_device ();
}

/* The WMMA kernel's shared-memory opt-in is per device: a second device must
 * run it too (it used to be made once per process, for the first device only). */
static void
attention_second_device (void)
{
  if (la_cuda_device_count () < 2) {
    printf ("skip %-34s one device\n", "attention on device 1");
    return;
  }
  GError *error = NULL;
  LaBackend *g1 = la_backend_cuda_new (1, &error);
  if (!g1) {
    printf ("FAIL %-34s %s\n", "attention on device 1", error->message);
    g_clear_error (&error);
    n_fail++;
    return;
  }
  const int64_t Lq = 40, Lk = 70, H = 2, D = 64;
  LaTensor *q = R (2, 1.0f, Lq, H * D), *k = R (2, 1.0f, Lk, H * D), *v = R (2, 1.0f, Lk, H * D);
  LaTensor *qr = rin (q, LA_DTYPE_BF16), *kr = rin (k, LA_DTYPE_BF16), *vr = rin (v, LA_DTYPE_BF16);
  LaTensor *ref = cpu_like (q);
  la_attention (cpu, ref, qr, kr, vr, (int) H, 0.125f, NULL);
  LaTensor *dq = la_alloc (g1, LA_DTYPE_BF16, 2, q->shape), *dk = la_alloc (g1, LA_DTYPE_BF16, 2, k->shape);
  LaTensor *dv = la_alloc (g1, LA_DTYPE_BF16, 2, v->shape), *dout = la_alloc (g1, LA_DTYPE_BF16, 2, q->shape);
  la_copy (g1, dq, q);
  la_copy (g1, dk, k);
  la_copy (g1, dv, v);
  la_attention (g1, dout, dq, dk, dv, (int) H, 0.125f, NULL);
  if (!la_backend_sync (g1, &error)) {
    printf ("FAIL %-34s %s\n", "attention on device 1", error->message);
    g_clear_error (&error);
    n_fail++;
  } else {
    /* back through the host onto device 0, where compare reads (bf16 both ways: exact) */
    LaTensor *h = cpu_like (q), *d0;
    la_copy (g1, h, dout);
    d0 = up (h, LA_DTYPE_BF16);
    compare_n ("attention on device 1", LA_DTYPE_BF16, ref, d0, 1e-5, 2, 0);
    UNREF (h, d0);
  }
  UNREF (q, k, v, qr, kr, vr, ref, dq, dk, dv, dout);
  la_backend_unref (g1);
}

static void
g_conv (void)
{
  /* conv3d: (Ci, T, H, W, Co, kt, kh, kw, st, sh, sw) */
  const int c3[][11] = { { 5, 4, 11, 13, 7, 3, 3, 3, 1, 1, 1 }, { 4, 3, 12, 10, 6, 1, 3, 3, 1, 2, 2 },
                         { 6, 5, 7, 9, 8, 1, 1, 1, 1, 1, 1 }, { 3, 7, 5, 6, 4, 3, 1, 1, 2, 1, 1 },
                         { 16, 1, 24, 40, 12, 1, 1, 1, 1, 1, 1 } };
  for (size_t c = 0; c < G_N_ELEMENTS (c3); c++) {
    const int *p = c3[c];
    const int stride[3] = { p[8], p[9], p[10] };
    LaTensor *x = R (4, 1.0f, p[0], p[1], p[2], p[3]), *w = R (5, 0.2f, p[4], p[0], p[5], p[6], p[7]);
    LaTensor *b = R (1, 1.0f, p[4]);
    const int64_t To = (p[1] - p[5]) / p[8] + 1, Ho = (p[2] - p[6]) / p[9] + 1, Wo = (p[3] - p[7]) / p[10] + 1;
    FOR_DT {
      LaTensor *xr = rin (x, dt), *wr = rin (w, dt), *br = rin (b, dt);
      LaTensor *ref = la_tensor_new (LA_DTYPE_F32, 4, SH (p[4], To, Ho, Wo));
      la_conv3d (cpu, ref, xr, wr, br, stride);
      LaTensor *dx = up (x, dt), *dw = up (w, dt), *db = up (b, dt), *dy = like (ref, dt);
      double ms;
      TIMED (ms, 5, la_conv3d (gpu, dy, dx, dw, db, stride));
      char name[64];
      g_snprintf (name, sizeof name, "conv3d k%dx%dx%d s%d,%d,%d Ci%d Co%d", p[5], p[6], p[7], p[8], p[9], p[10],
                  p[0], p[4]);
      compare_n (name, dt, ref, dy, 1e-5, 2, ms);    /* 16-bit: GEMM/cuDNN output, then + bias */
      UNREF (dx, dw, db, dy, xr, wr, br, ref);
    }
    UNREF (x, w, b);
  }
  /* conv1d: (T, B, Cin, Cout, K, stride, pad_l, pad_r, replicate, groups, x_cf, bias) */
  const int c1[][12] = { { 57, 1, 8, 12, 5, 1, 2, 2, 0, 1, 0, 1 }, { 400, 1, 1, 16, 10, 5, 0, 0, 0, 1, 1, 0 },
                         { 33, 2, 16, 16, 7, 1, 3, 3, 0, 4, 0, 1 }, { 21, 1, 6, 9, 3, 2, 2, 0, 1, 3, 1, 1 } };
  for (size_t c = 0; c < G_N_ELEMENTS (c1); c++) {
    const int *p = c1[c];
    const int64_t T = p[0], B = p[1], Cin = p[2], Cout = p[3], K = p[4];
    LaTensor *x = p[10] ? (B > 1 ? R (3, 1.0f, B, Cin, T) : R (2, 1.0f, Cin, T))
                        : (B > 1 ? R (3, 1.0f, T, B, Cin) : R (2, 1.0f, T, Cin));
    LaTensor *w = R (3, 0.3f, Cout, Cin / p[9], K), *b = p[11] ? R (1, 1.0f, Cout) : NULL;
    const int64_t Tout = (T + p[6] + p[7] - K) / p[5] + 1;
    FOR_DT {
      LaTensor *xr = rin (x, dt), *wr = rin (w, dt), *br = rin (b, dt);
      LaTensor *ref = B > 1 ? la_tensor_new (LA_DTYPE_F32, 3, SH (Tout, B, Cout))
                            : la_tensor_new (LA_DTYPE_F32, 2, SH (Tout, Cout));
      la_conv1d (cpu, ref, xr, wr, br, p[5], p[6], p[7], p[8], p[9], p[10]);
      LaTensor *dx = up (x, dt), *dw = up (w, dt), *db = up (b, dt), *dy = like (ref, dt);
      double ms;
      TIMED (ms, 5, la_conv1d (gpu, dy, dx, dw, db, p[5], p[6], p[7], p[8], p[9], p[10]));
      char name[64];
      g_snprintf (name, sizeof name, "conv1d T%d B%d K%d s%d g%d%s%s", p[0], p[1], p[4], p[5], p[9],
                  p[8] ? " repl" : "", p[10] ? " cf" : "");
      compare_n (name, dt, ref, dy, 1e-5, b ? 2 : 1, ms);   /* 16-bit: GEMM output (+ bias) */
      UNREF (dx, dw, db, dy, xr, wr, br, ref);
    }
    UNREF (x, w, b);
  }
}

static void
g_vae (void)
{
  LaTensor *x0 = R (4, 2.0f, 6, 5, 7, 9), *m0 = R (1, 1.0f, 6), *s0 = R (1, 1.0f, 6);
  for (int i = 0; i < 6; i++)
    la_tensor_f32 (s0)[i] = 1.5f + la_tensor_f32 (s0)[i];     /* inv_std away from 0 */
  FOR_DT {
    LaTensor *x = rin (x0, dt), *m = rin (m0, dt), *s = rin (s0, dt);
    LaTensor *dx = up (x, dt), *dm = up (m, dt), *ds = up (s, dt);
    double ms;
    LaTensor *ref = la_tensor_new (LA_DTYPE_F32, 4, SH (6, 5, 14, 18)), *dy = like (ref, dt);
    la_upsample2x (cpu, ref, x);
    TIMED (ms, 10, la_upsample2x (gpu, dy, dx));
    compare_n ("upsample2x", dt, ref, dy, 0.0, 0, ms);    /* copies: exact */
    la_tensor_unref (ref);
    la_tensor_unref (dy);
    for (int enc = 0; enc < 2; enc++) {
      LaTensor *r2 = cpu_like (x), *dy2 = like (x, dt);
      la_latent_norm (cpu, r2, x, m, s, enc);
      la_latent_norm (gpu, dy2, dx, dm, ds, enc);
      compare (enc ? "latent_norm encode" : "latent_norm decode", dt, r2, dy2, 1e-6, 0);
      la_tensor_unref (r2);
      la_tensor_unref (dy2);
    }
    /* copy4d into a bigger box, rest untouched (starts from a non-zero fill) */
    LaTensor *r3 = la_tensor_new (LA_DTYPE_F32, 4, SH (8, 6, 9, 11)), *dy3 = like (r3, dt);
    la_fill (cpu, r3, -3.0f);
    la_fill (gpu, dy3, -3.0f);
    const int64_t yoff[4] = { 1, 2, 1, 0 }, xoff[4] = { 2, 1, 0, 3 }, cnt[4] = { 4, 4, 7, 6 };
    la_copy4d (cpu, r3, yoff, x, xoff, cnt);
    TIMED (ms, 10, la_copy4d (gpu, dy3, yoff, dx, xoff, cnt));
    compare_n ("copy4d", dt, r3, dy3, 0.0, 0, ms);        /* copies: exact */
    UNREF (r3, dy3, dx, dm, ds, x, m, s);
  }
  UNREF (x0, m0, s0);
}

static void
g_rope (void)
{
  const int64_t L = 37, H = 3, HD = 128;
  LaTensor *x0 = R (2, 2.0f, L, H * HD), *f = la_tensor_new (LA_DTYPE_F32, 3, SH (L, HD / 2, 2));
  for (int64_t i = 0; i < L * HD / 2; i++) {      /* fp16-rounded cos/sin as the DiT builds them */
    double a = 0.37 * (double) (i / (HD / 2)) * pow (10000.0, -(double) (i % (HD / 2)) / (HD / 2));
    la_tensor_f32 (f)[2 * i] = la_round_f16 ((float) cos (a));
    la_tensor_f32 (f)[2 * i + 1] = la_round_f16 ((float) sin (a));
  }
  FOR_DT {
    LaTensor *x = rin (x0, dt);
    LaTensor *dx = up (x, dt), *df = up (f, LA_DTYPE_F32), *dy = like (x, dt), *ref = cpu_like (x);
    double ms;
    la_rope (cpu, ref, x, f, (int) H);
    TIMED (ms, 10, la_rope (gpu, dy, dx, df, (int) H));
    compare ("rope [37, 3x128]", dt, ref, dy, 1e-7, ms);
    la_rope (gpu, dx, dx, df, (int) H);         /* in place */
    compare ("rope in place", dt, ref, dx, 1e-7, 0);
    UNREF (dx, df, dy, ref, x);
  }
  UNREF (x0, f);
}

/* The DiT step's layout ops: patchify and unpatchify with an odd kernel
 * (kt > 1, kh != kw) and odd sizes, exact; rope_table at a large position
 * (past the official 45,000-row table) over a table that is not all
 * temporal, so the untouched pairs are checked as well. */
/* copy_rows_at: 4 rows into an 11-row dst at a device row, exact against
 * the CPU op; a row range out of dst (8 + 4 > 11, or -1) writes nothing and
 * records no error (a kernel cannot report). */
static void
g_copy_rows_at (void)
{
  LaTensor *d0 = R (2, 1.0f, 11, 24), *s0 = R (2, 1.0f, 4, 24);
  FOR_DT {
    LaTensor *dr = rin (d0, dt), *sr = rin (s0, dt), *ref = cpu_like (d0), *cpos = la_alloc (cpu, LA_DTYPE_I32, 1, SH (1));
    la_copy (cpu, ref, dr);
    ((int32_t *) cpos->data)[0] = 5;
    la_copy_rows_at (cpu, ref, sr, cpos);
    LaTensor *dd = up (dr, dt), *ds = up (sr, dt), *p5 = up_i32 (5), *p8 = up_i32 (8), *pm = up_i32 (-1);
    double ms;
    TIMED (ms, 10, la_copy_rows_at (gpu, dd, ds, p5));
    compare_n ("copy_rows_at [4,24] at row 5 of 11", dt, ref, dd, 0.0, 0, ms);
    la_copy_rows_at (gpu, dd, ds, p8);
    la_copy_rows_at (gpu, dd, ds, pm);
    compare_n ("copy_rows_at rows 8..12, -1..3: none", dt, ref, dd, 0.0, 0, 0);
    UNREF (dr, sr, ref, cpos, dd, ds, p5, p8, pm);
  }
  UNREF (d0, s0);
}

static void
g_dit (void)
{
  const int k[3] = { 2, 3, 2 };
  const int64_t C = 5, T = 4, H = 9, W = 6, ntok = (T / 2) * (H / 3) * (W / 2), K = C * 2 * 3 * 2;
  LaTensor *x0 = R (4, 2.0f, C, T, H, W), *p0 = R (2, 2.0f, ntok, K);
  FOR_DT {
    LaTensor *x = rin (x0, dt), *p = rin (p0, dt);
    LaTensor *dx = up (x, dt), *dp = up (p, dt);
    double ms;
    LaTensor *ref = cpu_like (p), *dy = like (p, dt);
    la_patchify (cpu, ref, x, k);
    TIMED (ms, 10, la_patchify (gpu, dy, dx, k));
    compare_n ("patchify [5,4,9,6] k (2,3,2)", dt, ref, dy, 0.0, 0, ms);
    LaTensor *ref2 = cpu_like (x), *dy2 = like (x, dt);
    la_unpatchify (cpu, ref2, p, k);
    TIMED (ms, 10, la_unpatchify (gpu, dy2, dp, k));
    compare_n ("unpatchify [36,60] k (2,3,2)", dt, ref2, dy2, 0.0, 0, ms);
    UNREF (ref, dy, ref2, dy2, dx, dp, x, p);
  }
  /* rope_table: rows 0..40, 7 rows per position, 11 of 21 pairs temporal */
  LaTensor *t0 = R (3, 1.0f, 41, 21, 2);
  LaTensor *ref = la_tensor_new (LA_DTYPE_F32, 3, SH (41, 21, 2));
  la_copy (cpu, ref, t0);
  LaTensor *dt0 = up (t0, LA_DTYPE_F32);
  double ms;
  la_rope_table (cpu, ref, 123457, 7, 11);
  TIMED (ms, 10, la_rope_table (gpu, dt0, 123457, 7, 11));
  compare_n ("rope_table [41,21,2] pos 123457", LA_DTYPE_F32, ref, dt0, 0.0, 0, ms);
  UNREF (t0, ref, dt0, x0, p0);
  g_copy_rows_at ();
}

/* The same shapes allocated every "block": after the first, nothing is cudaMalloc'd. */
static void
g_alloc (void)
{
  LaCudaMemStats s0, s1;
  for (int blk = 0; blk < 4; blk++) {
    if (blk == 1)
      la_cuda_mem_stats (gpu, &s0);
    LaTensor *a = la_alloc (gpu, LA_DTYPE_BF16, 2, SH (300, 5120));
    LaTensor *b = la_alloc (gpu, LA_DTYPE_F32, 2, SH (300, 5120));
    LaTensor *w = la_alloc (gpu, LA_DTYPE_BF16, 2, SH (512, 5120));
    la_linear (gpu, b, a, w, NULL);
    la_tensor_unref (a);
    la_tensor_unref (b);
    la_tensor_unref (w);
  }
  la_backend_sync (gpu, NULL);
  la_cuda_mem_stats (gpu, &s1);
  gboolean ok = s1.n_malloc == s0.n_malloc && s1.n_reuse > s0.n_reuse;
  printf ("%s %-34s cudaMalloc %lu -> %lu, reuses %lu -> %lu, peak %.1f MiB\n", ok ? "pass" : "FAIL",
          "allocator steady state", (unsigned long) s0.n_malloc, (unsigned long) s1.n_malloc,
          (unsigned long) s0.n_reuse, (unsigned long) s1.n_reuse, s1.peak / 1048576.0);
  ok ? n_pass++ : n_fail++;
}

/* Capture layer_norm -> linear -> silu, replay after changing the input in place. */
static void
g_graph (void)
{
  LaTensor *x = R (2, 1.0f, 40, 256), *w = R (2, 0.1f, 96, 256), *x2 = R (2, 3.0f, 40, 256);
  LaTensor *ref = la_tensor_new (LA_DTYPE_F32, 2, SH (40, 96)), *tmp = cpu_like (x);
  LaTensor *dx = up (x, LA_DTYPE_F32), *dw = up (w, LA_DTYPE_F32), *dy = la_alloc (gpu, LA_DTYPE_F32, 2, ref->shape);
  LaTensor *dx2 = up (x2, LA_DTYPE_F32);
  GError *error = NULL;
  for (int pass = 0; pass < 2; pass++) {     /* eager warm-up, then capture */
    if (pass == 1 && !la_cuda_graph_begin (gpu, &error))
      break;
    LaTensor *n = la_alloc (gpu, LA_DTYPE_F32, 2, x->shape);
    la_layer_norm (gpu, n, dx, NULL, NULL, 1e-6f);
    la_linear (gpu, dy, n, dw, NULL);
    la_unary (gpu, LA_UNARY_SILU, dy, dy);
    la_tensor_unref (n);
  }
  LaCudaGraph *g = error ? NULL : la_cuda_graph_end (gpu, &error);
  if (!g) {
    printf ("FAIL %-34s %s\n", "graph capture", error ? error->message : "?");
    g_clear_error (&error);
    n_fail++;
  } else {
    for (int rep = 0; rep < 2; rep++) {
      LaTensor *src = rep ? x2 : x;
      if (rep)
        la_copy (gpu, dx, dx2);                  /* new input, same address */
      la_cuda_graph_launch (g, NULL);
      la_layer_norm (cpu, tmp, src, NULL, NULL, 1e-6f);
      la_linear (cpu, ref, tmp, w, NULL);
      la_unary (cpu, LA_UNARY_SILU, ref, ref);
      compare (rep ? "graph replay, new input" : "graph replay", LA_DTYPE_F32, ref, dy, 1e-5, 0);
    }
    la_cuda_graph_free (g);
  }
  LaTensor *objs[] = { x, w, x2, ref, tmp, dx, dw, dy, dx2 };
  for (size_t i = 0; i < G_N_ELEMENTS (objs); i++)
    la_tensor_unref (objs[i]);
}

/* Two backends (two streams) on one device: A produces, B consumes after an event. */
static void
g_streams (void)
{
  GError *error = NULL;
  LaBackend *b2 = la_backend_cuda_new (0, &error);
  if (!b2) {
    printf ("FAIL %-34s %s\n", "second backend", error->message);
    g_clear_error (&error);
    n_fail++;
    return;
  }
  LaTensor *x = R (2, 2.0f, 512, 4096), *ref = cpu_like (x);
  la_unary (cpu, LA_UNARY_SILU, ref, x);
  la_unary (cpu, LA_UNARY_TANH, ref, ref);
  LaTensor *dx = up (x, LA_DTYPE_F32), *ya = like (x, LA_DTYPE_F32);
  LaTensor *yb = la_alloc (b2, LA_DTYPE_F32, 2, x->shape);
  for (int i = 0; i < 20; i++)                 /* make A's stream busy for a while */
    la_unary (gpu, LA_UNARY_SILU, ya, dx);
  LaCudaEvent *ev = la_cuda_event_record (gpu, &error);
  gboolean ok = ev && la_cuda_event_wait (b2, ev, &error);
  if (ok) {
    la_unary (b2, LA_UNARY_TANH, yb, ya);  /* B reads A's tensor directly */
    ok = la_backend_sync (b2, &error);
  }
  if (ok)
    compare ("two streams, event ordered", LA_DTYPE_F32, ref, yb, 1e-6, 0);
  else {
    printf ("FAIL %-34s %s\n", "two streams", error ? error->message : "?");
    g_clear_error (&error);
    n_fail++;
  }
  la_cuda_event_free (ev);
  la_tensor_unref (yb);
  la_tensor_unref (ya);
  la_tensor_unref (dx);
  la_tensor_unref (x);
  la_tensor_unref (ref);
  la_backend_unref (b2);
}

/* One backend shared by threads (cuda-internal.h: every entry point holds the
 * backend's op lock; a graph capture holds it from begin to end):
 *  - two threads run op chains on their own tensors at the same time and
 *    both get the right answer;
 *  - while this thread captures a graph, another thread's ops wait for the
 *    end of the capture: they neither enter the graph nor meet the capture
 *    (a sync inside a capture is an error). */
typedef struct {
  const LaTensor *x, *w;      /* host inputs */
  LaTensor *dy;               /* device result: silu(linear(layer_norm(x), w)) */
  int reps;
  gint done;
  GError *error;
} ThreadJob;

static gpointer
thread_job (gpointer data)
{
  ThreadJob *j = data;
  LaTensor *dx = up (j->x, LA_DTYPE_F32), *dw = up (j->w, LA_DTYPE_F32), *n = like (j->x, LA_DTYPE_F32);
  j->dy = la_alloc (gpu, LA_DTYPE_F32, 2, SH (j->x->shape[0], j->w->shape[0]));
  for (int r = 0; r < j->reps; r++) {
    la_layer_norm (gpu, n, dx, NULL, NULL, 1e-6f);
    la_linear (gpu, j->dy, n, dw, NULL);
    la_unary (gpu, LA_UNARY_SILU, j->dy, j->dy);
  }
  la_backend_sync (gpu, &j->error);
  UNREF (dx, dw, n);
  g_atomic_int_set (&j->done, 1);
  return NULL;
}

static void
job_ref (LaTensor *ref, const LaTensor *x, const LaTensor *w)
{
  LaTensor *n = cpu_like (x);
  la_layer_norm (cpu, n, x, NULL, NULL, 1e-6f);
  la_linear (cpu, ref, n, w, NULL);
  la_unary (cpu, LA_UNARY_SILU, ref, ref);
  la_tensor_unref (n);
}

static void
job_check (const char *name, ThreadJob *j, const LaTensor *ref)
{
  if (j->error) {
    printf ("FAIL %-34s %s\n", name, j->error->message);
    g_clear_error (&j->error);
    n_fail++;
  } else
    compare (name, LA_DTYPE_F32, ref, j->dy, 1e-5, 0);
  la_tensor_unref (j->dy);
}

static void
g_threads (void)
{
  LaTensor *x1 = R (2, 1.0f, 64, 256), *x2 = R (2, 2.0f, 64, 256), *w = R (2, 0.1f, 96, 256);
  LaTensor *r1 = la_tensor_new (LA_DTYPE_F32, 2, SH (64, 96)), *r2 = cpu_like (r1);
  job_ref (r1, x1, w);
  job_ref (r2, x2, w);
  ThreadJob j1 = { x1, w, NULL, 20, 0, NULL }, j2 = { x2, w, NULL, 20, 0, NULL };
  GThread *t1 = g_thread_new ("la-check-1", thread_job, &j1), *t2 = g_thread_new ("la-check-2", thread_job, &j2);
  g_thread_join (t1);
  g_thread_join (t2);
  job_check ("two threads, one backend (1)", &j1, r1);
  job_check ("two threads, one backend (2)", &j2, r2);

  /* a capture on this thread, a job on another */
  LaTensor *gx = up (x1, LA_DTYPE_F32), *gy = like (x1, LA_DTYPE_F32), *gref = cpu_like (x1);
  la_unary (cpu, LA_UNARY_TANH, gref, x1);
  ThreadJob j3 = { x2, w, NULL, 1, 0, NULL };
  GError *error = NULL;
  LaCudaGraph *g = NULL;
  gboolean entered = FALSE;
  if (la_cuda_graph_begin (gpu, &error)) {
    GThread *t3 = g_thread_new ("la-check-3", thread_job, &j3);
    g_usleep (100000);                   /* room for the job to run, were it not held back */
    entered = g_atomic_int_get (&j3.done);
    la_unary (gpu, LA_UNARY_TANH, gy, gx);
    g = la_cuda_graph_end (gpu, &error);
    g_thread_join (t3);
  }
  if (!g || entered) {
    printf ("FAIL %-34s %s\n", "capture while another thread works",
            error ? error->message : "the other thread's ops ran during the capture");
    g_clear_error (&error);
    n_fail++;
    if (j3.dy)
      la_tensor_unref (j3.dy);
    g_clear_error (&j3.error);
  } else {
    job_check ("other thread's ops, after a capture", &j3, r2);
    la_cuda_graph_launch (g, NULL);
    compare ("graph captured beside a thread", LA_DTYPE_F32, gref, gy, 1e-6, 0);
  }
  la_cuda_graph_free (g);
  UNREF (x1, x2, w, r1, r2, gx, gy, gref);
}

/* One Wan2.2-S2V-14B transformer block at 704x384 (docs/design/model.md §3.6,
 * §1.2): 3168 query tokens, 15312 self-attention keys (rolling
 * window + sink), 512 text tokens; weights random on the GPU (FP8 or bf16),
 * activations bf16, residual f32.  Prints ms per block, TFLOP/s and the
 * forward / FPS it implies for 40 blocks and 4 steps on one GPU (audio
 * injection, embeddings and the head not included: < 5 % of the FLOPs). */
static void
bench_block (gboolean fp8, gboolean graph)
{
  GError *error = NULL;
  const int64_t M = 3168, C = 5120, F = 13824, H = 40, D = 128, LKV = 15312, LT = 512;
  const LaDType wt = fp8 ? LA_DTYPE_F8_E4M3 : LA_DTYPE_BF16, bf = LA_DTYPE_BF16;
  guint64 seed = 100;
#define RW(dt, std, ...) la_cuda_random_weight (gpu, dt, G_N_ELEMENTS (SH (__VA_ARGS__)), SH (__VA_ARGS__), seed++, std, &error)
  LaTensor *w[8] = { RW (wt, 0.02f, C, C), RW (wt, 0.02f, C, C), RW (wt, 0.02f, C, C), RW (wt, 0.02f, C, C),
                     RW (wt, 0.02f, C, C), RW (wt, 0.02f, C, C), RW (wt, 0.02f, F, C), RW (wt, 0.02f, C, F) };
  LaTensor *bC = RW (bf, 0.02f, C), *bF = RW (bf, 0.02f, F), *g = RW (LA_DTYPE_F32, 0.5f, C);
  LaTensor *sh = RW (LA_DTYPE_F32, 0.1f, C), *sc = RW (LA_DTYPE_F32, 0.1f, C), *gate = RW (LA_DTYPE_F32, 0.5f, C);
  LaTensor *kc = RW (bf, 1.0f, LKV, C), *vc = RW (bf, 1.0f, LKV, C), *tk = RW (bf, 1.0f, LT, C), *tv = RW (bf, 1.0f, LT, C);
  LaTensor *x = RW (LA_DTYPE_F32, 1.0f, M, C), *fr = RW (LA_DTYPE_F32, 0.7f, M, D / 2, 2);
#undef RW
  if (error) {
    printf ("bench block: %s\n", error->message);
    g_clear_error (&error);
    n_fail++;
    return;
  }
  LaTensor *n = la_alloc (gpu, bf, 2, SH (M, C)), *q = la_alloc (gpu, bf, 2, SH (M, C)), *a = la_alloc (gpu, bf, 2, SH (M, C));
  LaTensor *o = la_alloc (gpu, LA_DTYPE_F32, 2, SH (M, C)), *h = la_alloc (gpu, bf, 2, SH (M, F));
  /* this block's keys/values are the last M rows of the caches */
  const size_t tail = (size_t) (LKV - M) * C * 2;
  LaTensor *kn = la_tensor_new_view (bf, 2, SH (M, C), kc->storage, (char *) kc->data + tail, LA_DEVICE_CUDA, 0);
  LaTensor *vn = la_tensor_new_view (bf, 2, SH (M, C), vc->storage, (char *) vc->data + tail, LA_DEVICE_CUDA, 0);
  /* FP8: q, k and v share one quantisation of their input (la-cuda.h) */
  LaTensor *n8 = fp8 ? la_alloc (gpu, LA_DTYPE_F8_E4M3, 2, SH (M, C)) : la_tensor_ref (n), *nin = n8;
  const float sm = 1.0f / sqrtf ((float) D);
#define BLOCK() do { \
    la_layer_norm (gpu, n, x, NULL, NULL, 1e-6f); la_modulate (gpu, n, n, sh, sc); \
    if (fp8) la_cuda_quantize_fp8 (gpu, n8, n, NULL); \
    la_linear (gpu, q, nin, w[0], bC); la_linear (gpu, kn, nin, w[1], bC); la_linear (gpu, vn, nin, w[2], bC); \
    la_rms_norm (gpu, q, q, g, 1e-6f); la_rms_norm (gpu, kn, kn, g, 1e-6f); \
    la_rope (gpu, q, q, fr, (int) H); la_rope (gpu, kn, kn, fr, (int) H); \
    la_attention (gpu, a, q, kc, vc, (int) H, sm, NULL); \
    la_linear (gpu, o, a, w[3], bC); la_binary (gpu, LA_BINARY_MUL, o, o, gate); la_binary (gpu, LA_BINARY_ADD, x, x, o); \
    la_layer_norm (gpu, n, x, g, g, 1e-6f); la_linear (gpu, q, n, w[4], bC); \
    la_attention (gpu, a, q, tk, tv, (int) H, sm, NULL); \
    la_linear (gpu, o, a, w[5], bC); la_binary (gpu, LA_BINARY_ADD, x, x, o); \
    la_layer_norm (gpu, n, x, NULL, NULL, 1e-6f); la_modulate (gpu, n, n, sh, sc); \
    la_linear (gpu, h, n, w[6], bF); la_unary (gpu, LA_UNARY_GELU_TANH, h, h); \
    la_linear (gpu, o, h, w[7], bC); la_binary (gpu, LA_BINARY_MUL, o, o, gate); la_binary (gpu, LA_BINARY_ADD, x, x, o); \
  } while (0)
  double ms = 0;
  LaCudaGraph *gr = NULL;
  if (graph) {
    BLOCK ();                                   /* warm-up: allocator, cuBLASLt algorithm cache */
    if (la_cuda_graph_begin (gpu, &error)) {
      BLOCK ();
      gr = la_cuda_graph_end (gpu, &error);
    }
    if (gr)
      TIMED (ms, 5, la_cuda_graph_launch (gr, NULL));
  } else
    TIMED (ms, 5, BLOCK ());
#undef BLOCK
  if (!error)
    la_backend_sync (gpu, &error);
  if (!error && timed_error)
    error = g_steal_pointer (&timed_error);
  const double flop = 2.0 * M * (6.0 * C * C + 2.0 * C * F) + 4.0 * M * (LKV + LT) * C;
  if (error) {
    printf ("bench block %s%s: %s\n", fp8 ? "fp8" : "bf16", graph ? " graph" : "", error->message);
    g_clear_error (&error);
    n_fail++;
  } else {
    LaCudaMemStats st;
    la_cuda_mem_stats (gpu, &st);
    printf ("bench DiT block %s%-6s %8.2f ms  %6.1f TFLOP/s  -> forward (40 blocks) %7.1f ms, 4 steps: %5.2f FPS on one GPU"
            "  (pool peak %.2f GiB)\n", fp8 ? "fp8 " : "bf16", graph ? " graph" : "", ms, flop / (ms * 1e-3) / 1e12,
            40 * ms, 12.0 / (4 * 40 * ms * 1e-3), st.peak / 1073741824.0);
  }
  la_cuda_graph_free (gr);
  LaTensor *all[] = { w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], bC, bF, g, sh, sc, gate, kc, vc, tk, tv, x, fr,
                      n, q, a, o, h, kn, vn, n8 };
  for (size_t i = 0; i < G_N_ELEMENTS (all); i++)
    la_tensor_unref (all[i]);
}

/* The VAE decoder's heaviest conv (docs/design/vae.md §4: 96 channels at 384x704, 3x3x3). */
static void
bench_conv (void)
{
  GError *error = NULL;
  LaTensor *x = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 4, SH (96, 6, 386, 706), 1, 1.0f, &error);
  LaTensor *w = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 5, SH (96, 96, 3, 3, 3), 2, 0.05f, &error);
  if (!x || !w) {
    printf ("bench conv: %s\n", error ? error->message : "?");
    g_clear_error (&error);
    return;
  }
  LaTensor *y = la_alloc (gpu, LA_DTYPE_BF16, 4, SH (96, 4, 384, 704));
  const int stride[3] = { 1, 1, 1 };
  double ms;
  TIMED (ms, 3, la_conv3d (gpu, y, x, w, NULL, stride));
  printf ("bench conv3d 96->96 3x3x3 [4 frames 384x704] bf16  %8.3f ms  %6.1f TFLOP/s\n", ms,
          2.0 * 96 * 96 * 27 * 4 * 384 * 704 / (ms * 1e-3) / 1e12);
  la_tensor_unref (x);
  la_tensor_unref (w);
  la_tensor_unref (y);
}

/* 14B hot-loop shapes (docs/design/model.md §5): times only. */
static void
bench (void)
{
  GError *error = NULL;
  const int64_t M = 3168;
  const int64_t gemms[][2] = { { 5120, 5120 }, { 13824, 5120 }, { 5120, 13824 } };
  for (int fp8 = 0; fp8 < 2; fp8++)
    for (int i = 0; i < 3; i++) {
      const int64_t N = gemms[i][0], K = gemms[i][1];
      LaTensor *w = la_cuda_random_weight (gpu, fp8 ? LA_DTYPE_F8_E4M3 : LA_DTYPE_BF16, 2, SH (N, K), 7, 0.02f, &error);
      LaTensor *x = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 2, SH (M, K), 8, 1.0f, &error);
      LaTensor *b = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 1, SH (N), 9, 0.1f, &error);
      if (!w || !x || !b) {
        printf ("bench: %s\n", error ? error->message : "?");
        g_clear_error (&error);
        return;
      }
      LaTensor *y = la_alloc (gpu, LA_DTYPE_BF16, 2, SH (M, N));
      double ms;
      TIMED (ms, 20, la_linear (gpu, y, x, w, b));
      printf ("bench linear %s [%ld,%ld]x[%ld,%ld]T  %8.3f ms  %6.1f TFLOP/s\n", fp8 ? "fp8 " : "bf16", (long) M,
              (long) K, (long) N, (long) K, ms, 2.0 * M * N * K / (ms * 1e-3) / 1e12);
      la_tensor_unref (w);
      la_tensor_unref (x);
      la_tensor_unref (b);
      la_tensor_unref (y);
    }
  const int64_t Lq = 3168, Lk = 15312, H = 40, D = 128;
  LaTensor *q = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 2, SH (Lq, H * D), 1, 1.0f, &error);
  LaTensor *k = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 2, SH (Lk, H * D), 2, 1.0f, &error);
  LaTensor *v = la_cuda_random_weight (gpu, LA_DTYPE_BF16, 2, SH (Lk, H * D), 3, 1.0f, &error);
  LaTensor *o = la_alloc (gpu, LA_DTYPE_BF16, 2, SH (Lq, H * D));
  double ms;
  TIMED (ms, 3, la_attention (gpu, o, q, k, v, (int) H, 1.0f / sqrtf ((float) D), NULL));
  printf ("bench attention Lq %ld Lk %ld H %ld D %ld  %8.3f ms  %6.1f TFLOP/s\n", (long) Lq, (long) Lk, (long) H,
          (long) D, ms, 4.0 * Lq * Lk * H * D / (ms * 1e-3) / 1e12);
  la_tensor_unref (q);
  la_tensor_unref (k);
  la_tensor_unref (v);
  la_tensor_unref (o);
  if ((error = g_steal_pointer (&timed_error)) || !la_backend_sync (gpu, &error)) {
    printf ("bench: %s\n", error->message);
    g_clear_error (&error);
    n_fail++;
  }
}

/* Versions through the symbols the process already has (the backend links
 * cudart, cuBLAS(Lt) and maybe cuDNN), else from the library dlopen'ed by
 * its soname (NCCL is linked only by what uses TPP): no CUDA header is needed
 * here, and a library that is absent (or emulated without that call) says so. */
static void *
find_sym (const char *sym, const char *soname, const char **how)
{
  void *f = dlsym (RTLD_DEFAULT, sym);
  *how = "";
  if (!f) {
    void *h = dlopen (soname, RTLD_LAZY | RTLD_LOCAL);
    f = h ? dlsym (h, sym) : NULL;
    *how = f ? " (not linked by this binary: the machine's library by soname)" : "";
  }
  return f;
}

static void
print_versions (void)
{
  typedef int (*IntOut) (int *);
  typedef size_t (*SizeRet) (void);
  typedef int (*Prop) (int, int *);
  static const char *int_calls[][3] = { { "CUDA driver API", "cudaDriverGetVersion", "libcudart.so.13" },
                                        { "CUDA runtime", "cudaRuntimeGetVersion", "libcudart.so.13" },
                                        { "NCCL", "ncclGetVersion", "libnccl.so.2" } };
  const char *how;
  for (size_t i = 0; i < G_N_ELEMENTS (int_calls); i++) {
    IntOut f = (IntOut) find_sym (int_calls[i][1], int_calls[i][2], &how);
    int v = 0;
    if (f && f (&v) == 0)
      printf ("version %-16s %d%s\n", int_calls[i][0], v, how);
    else
      printf ("version %-16s %s\n", int_calls[i][0], f ? "call failed" : "not found");
  }
  Prop prop = (Prop) find_sym ("cublasGetProperty", "libcublas.so.13", &how);  /* MAJOR 0, MINOR 1, PATCH 2 */
  int ma = 0, mi = 0, pa = 0;
  if (prop && prop (0, &ma) == 0 && prop (1, &mi) == 0 && prop (2, &pa) == 0)
    printf ("version %-16s %d.%d.%d%s\n", "cuBLAS", ma, mi, pa, how);
  else
    printf ("version %-16s %s\n", "cuBLAS", prop ? "call failed" : "not found");
  static const char *size_calls[][3] = { { "cuBLASLt", "cublasLtGetVersion", "libcublasLt.so.13" },
                                         { "cuDNN", "cudnnGetVersion", "libcudnn.so.9" } };
  for (size_t i = 0; i < G_N_ELEMENTS (size_calls); i++) {
    SizeRet f = (SizeRet) find_sym (size_calls[i][1], size_calls[i][2], &how);
    if (f)
      printf ("version %-16s %zu%s\n", size_calls[i][0], f (), how);
    else
      printf ("version %-16s not found\n", size_calls[i][0]);
  }
}

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "--versions") == 0) {
    print_versions ();
    return 0;
  }
  const char *hang = g_getenv ("LA_CHECK_HANG");
  for (int a = 1; hang && a < argc; a++)
    if (strcmp (argv[a], hang) == 0) {
      printf ("LA_CHECK_HANG=%s: sleeping instead of running the group\n", hang);
      fflush (stdout);
      for (;;)
        g_usleep (G_USEC_PER_SEC);
    }
  if (la_cuda_device_count () == 0) {
    printf ("SKIP: no CUDA device\n");
    return 77;
  }
  GError *error = NULL;
  gpu = la_backend_cuda_new (0, &error);
  if (!gpu) {
    printf ("SKIP: %s\n", error->message);
    return 77;
  }
  cpu = la_backend_cpu_new (0);
  static const struct { const char *name; void (*fn) (void); } groups[] = {
    { "memory", g_memory }, { "elementwise", g_elementwise }, { "norms", g_norms }, { "gemm", g_gemm },
    { "fp8", g_fp8 }, { "attention", g_attention }, { "conv", g_conv }, { "vae", g_vae }, { "rope", g_rope }, { "dit", g_dit },
    { "alloc", g_alloc }, { "graph", g_graph }, { "streams", g_streams }, { "threads", g_threads },
  };
  if (argc > 1 && strcmp (argv[1], "--bench") == 0) {
    bench ();
    bench_conv ();
    for (int fp8 = 1; fp8 >= 0; fp8--)
      for (int graph = 0; graph < 2; graph++)
        bench_block (fp8, graph);
  }
  else
    for (size_t i = 0; i < G_N_ELEMENTS (groups); i++) {
      gboolean want = argc <= 1;
      for (int a = 1; a < argc; a++)
        want |= strcmp (argv[a], groups[i].name) == 0;
      if (want) {
        printf ("== %s\n", groups[i].name);
        groups[i].fn ();
      }
    }
  la_backend_unref (gpu);
  la_backend_unref (cpu);
  printf ("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail ? 1 : 0;
}
