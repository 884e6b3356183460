/* la-t5-bucket.c — T5 relative-position buckets (docs/design/text.md §4) and the
 * per-layer bias [H, Lq, Lk] built from a layer's [num_buckets, H] table.
 *
 * Bidirectional bucket of rel = j - i (key minus query), nb = num_buckets/2:
 *   base = rel > 0 ? nb : 0;  n = |rel|;  max_exact = nb/2
 *   n < max_exact : base + n
 *   else          : base + min(nb-1, max_exact + trunc(log(n/max_exact)
 *                                  / log(max_dist/max_exact) * (nb - max_exact)))
 * The reference evaluates the log term in fp32 (rel_pos.float()), so do we:
 * with 32 buckets and 128 the fp32 boundaries at n = 16, 32, 64 are exact.
 * The bias is pure bookkeeping on a tiny table, so it is built on the host.
 */
#include <math.h>
#include "la-text-private.h"

int
la_t5_relative_bucket (int rel, int num_buckets, int max_dist)
{
  int nb = num_buckets / 2;
  int base = rel > 0 ? nb : 0;
  int n = rel < 0 ? -rel : rel;
  int max_exact = nb / 2;
  if (n < max_exact)
    return base + n;
  float r = logf ((float) n / (float) max_exact)
            / (float) log ((double) max_dist / (double) max_exact)
            * (float) (nb - max_exact);
  int large = max_exact + (int) r;   /* .long() truncates toward zero; r >= 0 here */
  if (large > nb - 1)
    large = nb - 1;
  return base + large;
}

void
la_t5_fill_bias (float *bias, const float *table, int num_buckets, int n_heads,
                 int lq, int lk, int max_dist)
{
  /* bucket depends only on j - i: one lookup per distance */
  int nrel = lq + lk - 1;
  int *bucket = g_new (int, nrel);
  for (int d = 0; d < nrel; d++)
    bucket[d] = la_t5_relative_bucket (d - (lq - 1), num_buckets, max_dist);
  for (int h = 0; h < n_heads; h++)
    for (int i = 0; i < lq; i++) {
      float *row = bias + ((size_t) h * lq + i) * lk;
      for (int j = 0; j < lk; j++)
        row[j] = table[(size_t) bucket[j - i + lq - 1] * n_heads + h];
    }
  g_free (bucket);
}
