/* la-rng.h — the seeded generator behind every random-weight generator
 * (tiny models, unseen-config tests, benches): splitmix64, uniforms in
 * (0, 1), Box-Muller normals.  Portable and deterministic for a seed; it is
 * not PyTorch's generator, and nothing compares against torch draws. */
#pragma once
#include <glib.h>
#include <math.h>

typedef struct { guint64 s; } LaRng;

static inline guint64
la_rng_next (LaRng *r)
{
  guint64 z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in the open interval (0, 1): safe under log(). */
static inline double
la_rng_uniform (LaRng *r)
{
  return ((la_rng_next (r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double
la_rng_normal (LaRng *r)
{
  double u1 = la_rng_uniform (r), u2 = la_rng_uniform (r);
  return sqrt (-2.0 * log (u1)) * cos (2 * G_PI * u2);
}
