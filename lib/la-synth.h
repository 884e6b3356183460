/* la-synth.h — synthetic weights for generated model trees (internal).
 *
 * A full-width tree (dim 5120, a 256k-row umT5 embedding) cannot be drawn at
 * random in memory or written densely in reasonable time.  The generators
 * therefore make every tensor of at least la_synth_zero_from elements a view
 * of one shared, read-only, never-touched zero mapping: it costs no memory,
 * and the writers turn it into a hole in the file (la_write_sparse), so the
 * 14B layout takes seconds and almost no disk.  Smaller tensors (norms,
 * biases, convolutions, LoRA factors) stay seeded random.  The default
 * (G_MAXINT64) keeps every tensor random, as the tiny model needs.
 */
#pragma once
#include <stdio.h>
#include "liveavatar/la-tensor.h"
#include "la-checkpoint.h"
#include "la-rng.h"

G_BEGIN_DECLS

extern gint64 la_synth_zero_from;

/* TRUE when a generator should emit zeros for a tensor of `numel` elements. */
static inline gboolean
la_synth_wants_zeros (gint64 numel)
{
  return numel >= la_synth_zero_from;
}

/* A host tensor of zeros viewing the shared zero mapping (read-only). */
LaTensor *la_synth_zeros (LaDType dtype, int ndim, const int64_t *shape);

/* Adds `name` to ck as the generators draw it: zeros when
 * la_synth_wants_zeros, else f32 mean + std · (uniform in (0, 1) or normal)
 * draws from r, element by element. */
void      la_synth_add_random (LaCheckpoint *ck, LaRng *r, const char *name, int ndim, const int64_t *shape,
                               double mean, double std, gboolean uniform);

/* Whether [data, data + n) lies in the shared zero mapping. */
gboolean  la_synth_is_zeros (const void *data, guint64 n);

/* fwrite() that seeks over runs of zero bytes (leaving holes on file
 * systems that support them); the file still ends at the right size. */
gboolean  la_write_sparse (FILE *f, const void *data, guint64 n);

G_END_DECLS
