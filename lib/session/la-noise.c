#include "la-noise.h"
#include <math.h>

static guint64
splitmix64 (guint64 *x)
{
  guint64 z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline guint64 rotl (guint64 x, int k) { return (x << k) | (x >> (64 - k)); }

static guint64
xoshiro (guint64 s[4])
{
  guint64 r = rotl (s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
  s[2] ^= t; s[3] = rotl (s[3], 45);
  return r;
}

void
la_noise_fill (float *out, gsize n, guint64 seed, guint64 stream)
{
  guint64 sm = seed ^ (stream * 0xD1B54A32D192ED03ull), s[4];
  for (int i = 0; i < 4; i++)
    s[i] = splitmix64 (&sm);
  for (gsize i = 0; i < n; i += 2) {
    /* u1 in (0, 1], u2 in [0, 1) */
    double u1 = ((xoshiro (s) >> 11) + 1) * 0x1p-53, u2 = (xoshiro (s) >> 11) * 0x1p-53;
    double r = sqrt (-2.0 * log (u1));
    out[i] = (float) (r * cos (2 * G_PI * u2));
    if (i + 1 < n)
      out[i + 1] = (float) (r * sin (2 * G_PI * u2));
  }
}
