/* test-t5-bucket.c — the bidirectional relative-position bucket table of
 * docs/design/text.md §4 for the distances listed in docs/design/text.md §7 (32 buckets, max_dist 128). */
#include <liveavatar/liveavatar.h>
#include "la-text.h"

/* half-bucket for n = |rel| (n 0-7 -> n; 8-11 -> 8; 12-15 -> 9; 16-22 -> 10;
 * 23-31 -> 11; 32-45 -> 12; 46-63 -> 13; 64-90 -> 14; >= 91 -> 15) */
static int
table (int n)
{
  static const struct { int lo, b; } t[] = {
    { 91, 15 }, { 64, 14 }, { 46, 13 }, { 32, 12 }, { 23, 11 }, { 16, 10 }, { 12, 9 }, { 8, 8 } };
  for (guint i = 0; i < G_N_ELEMENTS (t); i++)
    if (n >= t[i].lo)
      return t[i].b;
  return n;
}

static void
test_listed (void)
{
  static const int d[] = { 0, 1, 7, 8, 11, 12, 15, 16, 22, 23, 31, 32, 45, 46, 63, 64, 90, 91, 511 };
  for (guint i = 0; i < G_N_ELEMENTS (d); i++)
    for (int s = -1; s <= 1; s += 2) {
      int rel = s * d[i];
      int want = (rel > 0 ? 16 : 0) + table (d[i]);
      int got = la_t5_relative_bucket (rel, 32, 128);
      if (got != want)
        g_error ("bucket(%d) = %d, expected %d", rel, got, want);
    }
}

static void
test_all (void)
{
  for (int rel = -600; rel <= 600; rel++) {
    int n = ABS (rel);
    g_assert_cmpint (la_t5_relative_bucket (rel, 32, 128), ==, (rel > 0 ? 16 : 0) + table (n));
  }
}

static void
test_other_config (void)
{
  /* 64 buckets / max_dist 256 (not the umT5 values): exact region 0..15,
   * log region saturating at 31; monotone in |rel| */
  int prev = -1;
  for (int n = 0; n < 2000; n++) {
    int b = la_t5_relative_bucket (-n, 64, 256);
    g_assert_cmpint (b, >=, prev);
    g_assert_cmpint (b, <=, 31);
    if (n < 16)
      g_assert_cmpint (b, ==, n);
    g_assert_cmpint (la_t5_relative_bucket (n, 64, 256), ==, n ? 32 + b : 0);
    prev = b;
  }
  g_assert_cmpint (prev, ==, 31);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/text/t5-bucket/listed", test_listed);
  g_test_add_func ("/text/t5-bucket/all", test_all);
  g_test_add_func ("/text/t5-bucket/other-config", test_other_config);
  return g_test_run ();
}
