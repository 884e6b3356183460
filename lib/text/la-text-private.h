/* la-text-private.h — helpers shared inside lib/text. */
#pragma once
#include "la-text.h"

G_BEGIN_DECLS

/* bias[h, i, j] = table[bucket(j - i), h]; table is host f32 [num_buckets, H],
 * bias host f32 [H, lq, lk]. */
void la_t5_fill_bias (float *bias, const float *table, int num_buckets, int n_heads,
                      int lq, int lk, int max_dist);

G_END_DECLS
