/* tpp-svg.c — the TPP timeline as an SVG Gantt chart: one row per stage,
 * one bar per event (DiT steps of a block, sink prefill, output/VAE), the
 * block number written on each bar, so that fill, steady state, drain and
 * the clip-1 refresh bubble can be seen at a glance.
 */
#include <stdio.h>
#include <liveavatar/la-tpp.h>
#include <liveavatar/la-error.h>
#include "la-tpp-pipeline.h"

gboolean
la_tpp_timeline_svg (const LaTppEvent *ev, int n, int n_stages, const char *title, const char *path, GError **error)
{
  double tmax = 1e-9;
  for (int i = 0; i < n; i++)
    tmax = MAX (tmax, ev[i].t1);
  const int W = 1200, left = 90, row = 36, top = 40;
  int H = top + row * n_stages + 48;
  double sx = (W - left - 20) / tmax;
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                          "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                          W, H);
  g_autofree char *esc = g_markup_escape_text (title ? title : "TPP timeline", -1);
  g_string_append_printf (s, "<text x=\"%d\" y=\"20\" font-size=\"14\">%s</text>\n", left, esc);
  for (int k = 0; k < n_stages; k++)
    g_string_append_printf (s, "<text x=\"8\" y=\"%d\">stage %d</text>\n", top + row * k + row / 2 + 4, k);
  for (int i = 0; i < n; i++) {
    const LaTppEvent *e = &ev[i];
    const char *fill = e->what == 'S' ? (e->block % 2 ? "#4a90d9" : "#7fb3e6") : e->what == 'P' ? "#e0a030" : "#5cb85c";
    double x = left + e->t0 * sx, w = MAX ((e->t1 - e->t0) * sx, 1.0);
    int y = top + row * e->stage + 4;
    g_string_append_printf (s, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" stroke=\"#333\" "
                            "stroke-width=\"0.5\"><title>stage %d %c block %" G_GINT64_FORMAT " %.3f-%.3f s</title></rect>\n",
                            x, y, w, row - 8, fill, e->stage, e->what, e->block, e->t0, e->t1);
    if (w > 14 && e->block >= 0)
      g_string_append_printf (s, "<text x=\"%.1f\" y=\"%d\" fill=\"white\">%" G_GINT64_FORMAT "</text>\n", x + 3,
                              y + row / 2, e->block);
  }
  int ya = top + row * n_stages + 12;
  g_string_append_printf (s, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", left, ya, W - 20, ya);
  for (int i = 0; i <= 10; i++) {
    double tt = tmax * i / 10;
    g_string_append_printf (s, "<text x=\"%.1f\" y=\"%d\">%.2fs</text>\n", left + tt * sx - 10, ya + 14, tt);
  }
  g_string_append_printf (s, "<text x=\"%d\" y=\"%d\">blue: DiT steps of block N, orange: sink prefill, green: "
                          "output (VAE); hover a bar for times</text>\n", left, H - 4);
  g_string_append (s, "</svg>\n");
  gboolean ok = g_file_set_contents (path, s->str, s->len, error);
  g_string_free (s, TRUE);
  return ok;
}
