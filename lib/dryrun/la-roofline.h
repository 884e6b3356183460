/* la-roofline.h — predicted device time of recorded ops (la-dryrun.h).
 *
 * Per op:  t = max(FLOPs / (peak · efficiency), bytes / HBM) + launch,
 * peak = the FP8 tensor-core rate for a linear the FP8 mode quantises, the
 * bf16 tensor-core rate for the other GEMMs, attention and convolutions
 * (implicit GEMM), the fp32 CUDA-core rate for norms and elementwise ops;
 * launch = one kernel launch per op, eager or as a CUDA-graph node.  Host
 * copies take bytes / PCIe plus an eager launch (they cannot be graph nodes
 * here: the host buffers change every call), a sync adds `sync_us`; host
 * work (im2col, unpatchify, Euler update on the CPU) is not modelled.
 *
 * Bytes.  The engine's activations and KV caches are f32 today; the CUDA
 * plan keeps them in bf16.  act_bytes = 2 (default) re-prices every
 * recorded f32 activation element at 2 bytes; 0 keeps the recorded dtypes.
 * Weights are priced as recorded (bf16 linears, f32 small tensors), at one
 * byte per element for the FP8-eligible linears in FP8 mode, where such a
 * linear also pays the CUDA backend's activation quantisation (amax pass,
 * scale, quantise pass: 3 more kernels, x read twice and written as e4m3)
 * and its GEMM reads x at one byte.
 *
 * Every figure this produces is a prediction, not a measurement.
 */
#pragma once
#include <stdio.h>
#include "la-dryrun.h"

G_BEGIN_DECLS

typedef struct {
  const char *name;
  double bf16_tflops, fp8_tflops, fp32_tflops;   /* dense peaks */
  double hbm_tbs, pcie_gbs;
  double launch_eager_us, launch_graph_us, sync_us;
  double efficiency;                             /* share of the tensor-core peak reached (1 = SOL) */
  gboolean fp8;                                  /* FP8 for the eligible linears */
  int act_bytes;                                 /* 2 = bf16 activations/KV, 0 = as recorded */
} LaRoofline;

/* H100 SXM5 spec sheet: 989 / 1979 / 67 TFLOP/s, HBM3 3.35 TB/s, PCIe Gen5
 * 25 GB/s (pageable host memory, not the 64 GB/s link), launch 5 µs eager,
 * 1 µs per graph node, sync 10 µs, efficiency 1, bf16. */
void la_roofline_init_h100_sxm (LaRoofline *r);

typedef struct {
  guint  n[LA_DRY_N_CLASSES];
  double flops[LA_DRY_N_CLASSES], bytes[LA_DRY_N_CLASSES];
  double t_work[LA_DRY_N_CLASSES];               /* s: max(compute, memory) (+ PCIe), no launch */
  double t_eager[LA_DRY_N_CLASSES], t_graph[LA_DRY_N_CLASSES];   /* s, with launches */
  guint  n_bound_compute[LA_DRY_N_CLASSES];      /* ops limited by FLOPs rather than bytes */
  double fp8_flops;                              /* GEMM FLOPs at the FP8 rate */
  double flops_total, bytes_total, t_eager_total, t_graph_total;
  guint  n_total, n_launch;                      /* records; kernel launches (no h2h, no sync) */
} LaRoofSum;

/* Sums records [first, last) of a dry-run (or tracing) backend. */
void la_roofline_sum (const LaRoofline *r, LaBackend *be, guint first, guint last, LaRoofSum *out);
/* Adds b into a (per class and totals). */
void la_roofline_add (LaRoofSum *a, const LaRoofSum *b);
/* One table: a line per op class, then the total (times in ms, "predicted"). */
void la_roofline_print (FILE *f, const char *title, const LaRoofSum *s);
/* The assumptions, one line each (printed with every prediction). */
void la_roofline_print_params (FILE *f, const LaRoofline *r);

G_END_DECLS
