/* check-compare.h — how the CUDA check harness (check-ops.c) judges a device
 * result against the CPU reference; device-free, so tests/check/cuda's
 * cuda-check-compare runs it in every build.
 *
 * Tolerance.  The reference is the CPU op on the very inputs the device saw
 * (16-bit inputs are rounded on the host first), so the only differences are
 * fp32 evaluation order (the op's `tol`) and the roundings the device makes
 * into a narrower type.  Round-to-nearest into a p-bit significand is off by
 * at most u = 2^-p relative per element, hence at most u in rel-L2:
 *   tol_total = tol + roundings · u(dtype),  u = 2^-8 (bf16), 2^-11 (f16),
 *   2^-4 (e4m3), 0 (f32).
 * `roundings` counts the successive roundings into that type (1 for an op
 * that stores its result; 2 when a bias is added to an already rounded
 * GEMM output, or attention's P is rounded before P·V; 0 for pure data
 * movement, which must be exact).
 *
 * Non-finite values.  fmax() drops NaN, so a NaN output would otherwise
 * report max-abs 0: non-finite values are counted apart (a got that is not
 * finite where the reference is, or a different non-finite value), never
 * enter max-abs / rel-L2, and fail the case; the worst element (the first
 * non-finite mismatch, else the largest |got − ref|) is reported with its
 * coordinates.
 */
#pragma once
#include "liveavatar/liveavatar.h"

typedef struct {
  double maxabs;          /* over elements where both are finite */
  double rel;             /* ‖got − ref‖ / ‖ref‖ over the same elements (‖got − ref‖ if ‖ref‖ = 0) */
  int64_t n_nonfinite;    /* non-finite mismatches */
  int64_t worst;          /* index of the worst element, -1 when n = 0 */
} LaCheckStats;

void   la_check_stats (const float *ref, const float *got, int64_t n, LaCheckStats *st);
/* Unit roundoff of a float dtype (0 for f32 and the non-16/8-bit types). */
double la_check_unit_roundoff (LaDType t);
/* tol + roundings · u(out) (see above). */
double la_check_tol (double tol, LaDType out, int roundings);
/* "[i0, i1, ...]" of flat index i in shape (row-major); g_free it. */
char  *la_check_coords (int ndim, const int64_t *shape, int64_t i);
