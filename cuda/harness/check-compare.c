/* check-compare.c — the harness's comparison statistics and tolerance
 * (the why is in check-compare.h). */
#include "check-compare.h"
#include <math.h>

/* Same non-finite value: both NaN, or the same infinity. */
static gboolean
same_nonfinite (float a, float b)
{
  return (isnan (a) && isnan (b)) || (isinf (a) && a == b);
}

void
la_check_stats (const float *ref, const float *got, int64_t n, LaCheckStats *st)
{
  double num = 0, den = 0, worst_d = -1;
  st->maxabs = 0;
  st->n_nonfinite = 0;
  st->worst = -1;
  for (int64_t i = 0; i < n; i++) {
    const float a = ref[i], b = got[i];
    if (!isfinite (a) || !isfinite (b)) {
      if (same_nonfinite (a, b))
        continue;
      if (st->n_nonfinite++ == 0)
        st->worst = i;
      continue;
    }
    const double d = (double) b - a;
    if (fabs (d) > st->maxabs)
      st->maxabs = fabs (d);
    if (st->n_nonfinite == 0 && fabs (d) > worst_d) {
      worst_d = fabs (d);
      st->worst = i;
    }
    num += d * d;
    den += (double) a * a;
  }
  st->rel = den > 0 ? sqrt (num / den) : sqrt (num);
}

double
la_check_unit_roundoff (LaDType t)
{
  switch (t) {
    case LA_DTYPE_BF16: return 0x1p-8;        /* 8-bit significand */
    case LA_DTYPE_F16: return 0x1p-11;        /* 11-bit significand */
    case LA_DTYPE_F8_E4M3: return 0x1p-4;     /* 4-bit significand */
    default: return 0;
  }
}

double
la_check_tol (double tol, LaDType out, int roundings)
{
  return tol + roundings * la_check_unit_roundoff (out);
}

char *
la_check_coords (int ndim, const int64_t *shape, int64_t i)
{
  int64_t idx[LA_TENSOR_MAX_DIMS] = { 0 };
  for (int d = ndim - 1; d >= 0; d--) {
    const int64_t s = shape[d] > 0 ? shape[d] : 1;
    idx[d] = i % s;
    i /= s;
  }
  GString *s = g_string_new ("[");
  for (int d = 0; d < ndim; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? ", " : "", idx[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}
