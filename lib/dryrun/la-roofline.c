/* la-roofline.c — the roofline of la-roofline.h over dry-run records. */
#include "la-roofline.h"
#include <string.h>

void
la_roofline_init_h100_sxm (LaRoofline *r)
{
  r->name = "H100 SXM5 (spec sheet)";
  r->bf16_tflops = 989;
  r->fp8_tflops = 1979;
  r->fp32_tflops = 67;
  r->hbm_tbs = 3.35;
  r->pcie_gbs = 25;
  r->launch_eager_us = 5;
  r->launch_graph_us = 1;
  r->sync_us = 10;
  r->efficiency = 1.0;
  r->fp8 = FALSE;
  r->act_bytes = 2;
}

static double
op_bytes (const LaRoofline *r, const LaDryOp *o)
{
  double act = o->act_bytes;
  if (r->act_bytes > 0 && o->cls != LA_DRY_COPY_H2D && o->cls != LA_DRY_COPY_D2H) {
    act -= o->act_f32 * (4.0 - r->act_bytes);     /* the f32 share re-priced */
  }
  double w = o->w_bytes;
  if (r->fp8 && o->fp8_eligible)
    w = o->w_elems;      /* e4m3: one byte; the bias (f32) is under 0.02 % of it */
  return act + w;
}

void
la_roofline_sum (const LaRoofline *r, LaBackend *be, guint first, guint last, LaRoofSum *s)
{
  memset (s, 0, sizeof *s);
  const double eff = r->efficiency > 0 ? r->efficiency : 1.0;
  for (guint i = first; i < last; i++) {
    const LaDryOp *o = la_dryrun_op (be, i);
    const int c = o->cls;
    double bytes = op_bytes (r, o), t = 0, launch = 0, glaunch = 0;
    gboolean compute = FALSE;
    switch (o->cls) {
    case LA_DRY_GEMM:
    case LA_DRY_ATTENTION:
    case LA_DRY_CONV:
    case LA_DRY_NORM:
    case LA_DRY_ELEMENTWISE:
    case LA_DRY_COPY_D2D: {
      double peak = o->cls == LA_DRY_NORM || o->cls == LA_DRY_ELEMENTWISE || o->cls == LA_DRY_COPY_D2D
                        ? r->fp32_tflops
                        : (r->fp8 && o->fp8_eligible ? r->fp8_tflops : r->bf16_tflops) * eff;
      double kernels = 1, qbytes = 0;
      if (r->fp8 && o->fp8_eligible && o->cls == LA_DRY_GEMM) {
        /* The FP8 linear of the CUDA backend (cuda/gemm-cublaslt.cu) quantises x
         * itself: an amax pass (reads x), the scale, a quantise pass (reads x,
         * writes e4m3); the GEMM then reads one byte per x element. */
        const double a = r->act_bytes > 0 ? r->act_bytes : la_dtype_size (o->dt_x);
        const double xe = (double) o->dims[0] * o->dims[2];
        bytes -= xe * (a - 1);
        qbytes = xe * (2 * a + 1);
        kernels = 4;
        s->fp8_flops += o->flops;
      }
      const double bw = r->hbm_tbs * 1e12, tc = o->flops / (peak * 1e12), tm = bytes / bw;
      compute = tc > tm;
      t = MAX (tc, tm) + qbytes / bw;
      bytes += qbytes;
      launch = kernels * r->launch_eager_us * 1e-6;
      glaunch = kernels * r->launch_graph_us * 1e-6;
      s->n_launch += (guint) kernels - 1;
      break;
    }
    case LA_DRY_COPY_H2D:
    case LA_DRY_COPY_D2H:
      /* the host side of the copy is read or written once: half the recorded bytes cross the link */
      t = bytes / 2 / (r->pcie_gbs * 1e9);
      launch = glaunch = r->launch_eager_us * 1e-6;
      break;
    case LA_DRY_SYNC:
      launch = glaunch = r->sync_us * 1e-6;
      break;
    case LA_DRY_COPY_H2H:
    default:
      break;
    }
    s->n[c]++;
    s->flops[c] += o->flops;
    s->bytes[c] += bytes;
    s->t_work[c] += t;
    s->t_eager[c] += t + launch;
    s->t_graph[c] += t + glaunch;
    s->n_bound_compute[c] += compute;
    if (c != LA_DRY_COPY_H2H && c != LA_DRY_SYNC)
      s->n_launch++;
  }
  for (int c = 0; c < LA_DRY_N_CLASSES; c++) {
    s->n_total += s->n[c];
    s->flops_total += s->flops[c];
    s->bytes_total += s->bytes[c];
    s->t_eager_total += s->t_eager[c];
    s->t_graph_total += s->t_graph[c];
  }
}

void
la_roofline_add (LaRoofSum *a, const LaRoofSum *b)
{
  for (int c = 0; c < LA_DRY_N_CLASSES; c++) {
    a->n[c] += b->n[c];
    a->flops[c] += b->flops[c];
    a->bytes[c] += b->bytes[c];
    a->t_work[c] += b->t_work[c];
    a->t_eager[c] += b->t_eager[c];
    a->t_graph[c] += b->t_graph[c];
    a->n_bound_compute[c] += b->n_bound_compute[c];
  }
  a->fp8_flops += b->fp8_flops;
  a->flops_total += b->flops_total;
  a->bytes_total += b->bytes_total;
  a->t_eager_total += b->t_eager_total;
  a->t_graph_total += b->t_graph_total;
  a->n_total += b->n_total;
  a->n_launch += b->n_launch;
}

void
la_roofline_print (FILE *f, const char *title, const LaRoofSum *s)
{
  fprintf (f, "%s (predicted)\n", title);
  fprintf (f, "  %-12s %7s %12s %10s %10s %10s %10s %9s\n", "class", "ops", "GFLOP", "GB", "work ms",
           "eager ms", "graph ms", "FLOP-bound");
  for (int c = 0; c < LA_DRY_N_CLASSES; c++) {
    if (!s->n[c])
      continue;
    fprintf (f, "  %-12s %7u %12.1f %10.3f %10.3f %10.3f %10.3f %9u\n", la_dryrun_class_name (c), s->n[c],
             s->flops[c] / 1e9, s->bytes[c] / 1e9, s->t_work[c] * 1e3, s->t_eager[c] * 1e3, s->t_graph[c] * 1e3,
             s->n_bound_compute[c]);
  }
  fprintf (f, "  %-12s %7u %12.1f %10.3f %10s %10.3f %10.3f   (%u launches)\n", "total", s->n_total,
           s->flops_total / 1e9, s->bytes_total / 1e9, "", s->t_eager_total * 1e3, s->t_graph_total * 1e3,
           s->n_launch);
}

void
la_roofline_print_params (FILE *f, const LaRoofline *r)
{
  fprintf (f, "# roofline for %s — every figure below is predicted, none measured\n", r->name);
  fprintf (f, "#   dense bf16 %.0f TFLOP/s, FP8 %.0f TFLOP/s (tensor cores, x efficiency %.2f); fp32 %.0f TFLOP/s "
           "(norms, elementwise)\n", r->bf16_tflops, r->fp8_tflops, r->efficiency, r->fp32_tflops);
  fprintf (f, "#   HBM %.2f TB/s, host link %.0f GB/s; launch %.1f us eager, %.1f us per CUDA-graph node; "
           "sync %.0f us\n", r->hbm_tbs, r->pcie_gbs, r->launch_eager_us, r->launch_graph_us, r->sync_us);
  fprintf (f, "#   weights: %s; activations and KV: %s\n",
           r->fp8 ? "FP8 e4m3 for the eligible DiT linears, bf16 other linears" : "bf16 linears",
           r->act_bytes > 0 ? (r->act_bytes == 2 ? "bf16 (f32 records re-priced at 2 bytes)" : "re-priced")
                            : "as recorded (f32)");
}
