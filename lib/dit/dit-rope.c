/* dit-rope.c — 3-D RoPE positions and tables (docs/design/model.md §3.5), host side.
 *
 * head_dim HD = 2c complex pairs, interleaved (x[2m], x[2m+1]).  Pairs are
 * split [c − 2⌊c/3⌋, ⌊c/3⌋, ⌊c/3⌋] between the time, height and width axes;
 * an axis with n pairs uses θ_k = 1 / 10000^(2k / 2n) (fp64, as rope_params).
 * The official rope_precompute stores the table as complex32, so cos/sin of
 * pos·θ (fp64) are rounded straight to fp16 (round-to-nearest-even, no fp32
 * detour).  A negative temporal position means the complex conjugate of the
 * entry at |pos| (time pairs only).
 *
 * Past the official 45,000-row table: we evaluate the same formula for any
 * 64-bit position instead of reading a table, so positions never overflow and
 * the first 45,000 positions are identical to the official table
 * (docs/design/model.md §4.3).
 */
#include <math.h>
#include <string.h>
#include "dit-internal.h"
#include "la-ops.h"

void
dit_linspace_trunc (double start, double stop, int num, gint64 *out)
{
  /* numpy.linspace (endpoint=True) in fp64, then astype(int) (trunc). */
  if (num <= 0)
    return;
  if (num == 1) {
    out[0] = (gint64) start;
    return;
  }
  double div = num - 1, delta = stop - start, step = delta / div;
  for (int k = 0; k < num; k++) {
    double y = (step == 0) ? (k / div) * delta : k * step;
    y += start;
    if (k == num - 1)
      y = stop;
    out[k] = (gint64) y;
  }
}

void
dit_rope_group_grid (DitRopeGroup *g, int nf, const gint64 *f, int nh, int gh_extent, int nw, int gw_extent)
{
  g->nf = nf;
  memcpy (g->f, f, sizeof (gint64) * nf);
  g->nh = nh;
  g->nw = nw;
  g->h = g_new (gint64, nh);
  g->w = g_new (gint64, nw);
  dit_linspace_trunc (0, gh_extent - 1, nh, g->h);
  dit_linspace_trunc (0, gw_extent - 1, nw, g->w);
}

void
dit_rope_group_clear (DitRopeGroup *g)
{
  g_clear_pointer (&g->h, g_free);
  g_clear_pointer (&g->w, g_free);
}

static void
axis_pair (float *dst, gint64 pos, int k, int n, gboolean conj)
{
  la_rope_f16_pair (pos, k, n, dst, dst + 1);
  if (conj)
    dst[1] = -dst[1];
}

int
dit_rope_fill_group (float *freqs, int HD, const DitRopeGroup *g)
{
  int c = HD / 2, nh_p = c / 3, nt_p = c - 2 * nh_p;
  float *tab_t = g_new (float, 2 * nt_p), *tab_h = g_new (float, 2 * nh_p), *tab_w = g_new (float, 2 * nh_p);
  int n = 0;
  for (int fi = 0; fi < g->nf; fi++) {
    gint64 fp = g->f[fi];
    gboolean conj = fp < 0;
    for (int k = 0; k < nt_p; k++)
      axis_pair (tab_t + 2 * k, conj ? -fp : fp, k, nt_p, conj);
    for (int hi = 0; hi < g->nh; hi++) {
      for (int k = 0; k < nh_p; k++)
        axis_pair (tab_h + 2 * k, g->h[hi], k, nh_p, FALSE);
      for (int wi = 0; wi < g->nw; wi++) {
        for (int k = 0; k < nh_p; k++)
          axis_pair (tab_w + 2 * k, g->w[wi], k, nh_p, FALSE);
        float *row = freqs + (gint64) n * HD;
        memcpy (row, tab_t, sizeof (float) * 2 * nt_p);
        memcpy (row + 2 * nt_p, tab_h, sizeof (float) * 2 * nh_p);
        memcpy (row + 2 * (nt_p + nh_p), tab_w, sizeof (float) * 2 * nh_p);
        n++;
      }
    }
  }
  g_free (tab_t);
  g_free (tab_h);
  g_free (tab_w);
  return n;
}
