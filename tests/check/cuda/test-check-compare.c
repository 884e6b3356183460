/* test-check-compare.c — runs everywhere: the CUDA harness's judge
 * (cuda/harness/check-compare.c).  A NaN or infinity in the device result
 * must fail the case and be located (fmax() used to drop NaN and report
 * max-abs 0), matching non-finite values must not, and the 16-bit
 * tolerance is tol + roundings · 2^-p. */
#include "../../../cuda/harness/check-compare.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static int bad;

#define EXPECT(cond) do { if (!(cond)) { printf ("FAIL line %d: %s\n", __LINE__, #cond); bad++; } } while (0)

int
main (void)
{
  LaCheckStats st;
  const float ref[6] = { 1.0f, -2.0f, 0.5f, 3.0f, NAN, INFINITY };
  float got[6];

  memcpy (got, ref, sizeof got);
  la_check_stats (ref, got, 6, &st);               /* identical, incl. the NaN and the inf */
  EXPECT (st.n_nonfinite == 0 && st.maxabs == 0 && st.rel == 0);

  got[2] = NAN;                                    /* a NaN where the reference is finite */
  got[4] = 7.0f;                                   /* a number where the reference is NaN */
  got[3] = 3.25f;
  la_check_stats (ref, got, 6, &st);
  EXPECT (st.n_nonfinite == 2);
  EXPECT (st.worst == 2);                          /* the first non-finite mismatch, not the 0.25 error */
  EXPECT (fabs (st.maxabs - 0.25) < 1e-12);        /* finite pairs only: not NaN, not 0 */
  EXPECT (isfinite (st.rel) && st.rel > 0);

  memcpy (got, ref, sizeof got);
  got[5] = -INFINITY;                              /* the other infinity */
  la_check_stats (ref, got, 6, &st);
  EXPECT (st.n_nonfinite == 1 && st.worst == 5);

  memcpy (got, ref, sizeof got);
  got[1] = -2.5f;
  got[0] = 1.125f;
  la_check_stats (ref, got, 6, &st);               /* all finite: worst = largest |d| */
  EXPECT (st.n_nonfinite == 0 && st.worst == 1);
  EXPECT (fabs (st.rel - sqrt ((0.25 + 0.015625) / (1 + 4 + 0.25 + 9))) < 1e-12);

  EXPECT (la_check_tol (1e-5, LA_DTYPE_F32, 2) == 1e-5);
  EXPECT (la_check_tol (0, LA_DTYPE_BF16, 1) == 1.0 / 256);
  EXPECT (la_check_tol (1e-5, LA_DTYPE_BF16, 2) == 1e-5 + 2.0 / 256);
  EXPECT (la_check_tol (0, LA_DTYPE_F16, 1) == 1.0 / 2048);
  EXPECT (la_check_tol (0, LA_DTYPE_BF16, 0) == 0);
  /* the review's case: a race worth rel-L2 9e-3 must not pass a bf16 op with one rounding */
  EXPECT (la_check_tol (1e-5, LA_DTYPE_BF16, 1) < 9e-3);

  const int64_t shape[3] = { 3, 41, 67 };
  char *c = la_check_coords (3, shape, (int64_t) 2 * 41 * 67 + 5 * 67 + 66);
  EXPECT (strcmp (c, "[2, 5, 66]") == 0);
  g_free (c);
  c = la_check_coords (0, shape, 0);
  EXPECT (strcmp (c, "[]") == 0);
  g_free (c);

  printf ("%s\n", bad ? "FAIL" : "pass");
  return bad ? 1 : 0;
}
