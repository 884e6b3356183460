/* la-noise.h — the session's Gaussian noise: a seeded, platform-independent
 * generator (xoshiro256** + Box-Muller in double).  The reference draws its
 * noise from PyTorch's CUDA Philox generator, which is not reproduced
 * (docs/design/streaming.md §2): same seed, same noise here on every machine and backend. */
#pragma once
#include <glib.h>

/* Fills n standard normal floats, deterministic for (seed, stream). */
void la_noise_fill (float *out, gsize n, guint64 seed, guint64 stream);
