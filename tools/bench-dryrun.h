/* bench-dryrun.h — liveavatar-bench --dry-run: the model code on the
 * recording backend, priced by the roofline (lib/dryrun). */
#pragma once
#include "la-dit.h"
#include "dryrun/la-roofline.h"

typedef struct {
  const char *label;        /* preset name */
  LaDitConfig dit;
  int width, height;        /* pixels (latent = /8) */
  int vae_dim;              /* 0: Wan2.1's 96 */
  int text_tokens;          /* prompt length before padding to text_len */
  LaRoofline rl;
} BenchDry;

gboolean bench_dryrun (const BenchDry *a, GError **error);
