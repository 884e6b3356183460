/* ops-dit.c — CPU ops added for the DiT (contracts in la-backend-impl.h).
 *
 * rope: rotary embedding on interleaved pairs, shared by all heads:
 *   x [L, H·HD], freqs [L, HD/2, 2] = (cos, sin) per pair;
 *   (a, b) -> (a·cos − b·sin, a·sin + b·cos)
 * evaluated in double and rounded to f32 once, as the official rope_apply
 * does (x.to(float64) * complex table, then .float()).  y may alias x.
 *
 * patchify / unpatchify: pure index permutations (exact), so a DiT step can
 * take its latent in and give its velocity out without leaving the backend.
 * rope_table: the temporal columns of a RoPE table from a position, through
 * the same la_rope_f16_pair as the host tables, so a step's tables are made
 * on the backend with no upload.
 * copy_rows_at: a row copy whose first row is read from a backend I32 at
 * run time (the KV ring slot of a step graph); the CPU can report a row out
 * of range, so it records an error where the CUDA kernel only skips.
 */
#include "backend-cpu.h"
#include "la-parallel.h"
#include <string.h>

typedef struct {
  float *ys;
  const float *xs, *fs;
  int64_t W, hd;
  int n_heads;
} RopeArgs;

static void
rope_rows (int64_t begin, int64_t end, gpointer data)
{
  const RopeArgs *ra = data;
  const float *xs = ra->xs, *fs = ra->fs;
  float *ys = ra->ys;
  const int64_t W = ra->W, hd = ra->hd, c = hd / 2;
  const int n_heads = ra->n_heads;
  for (int64_t r = begin; r < end; r++) {
    const float *f = fs + r * hd;
    for (int64_t h = 0; h < n_heads; h++) {
      const float *a = xs + r * W + h * hd;
      float *o = ys + r * W + h * hd;
      for (int64_t k = 0; k < c; k++) {
        double re = a[2 * k], im = a[2 * k + 1], cs = f[2 * k], sn = f[2 * k + 1];
        o[2 * k] = (float) (re * cs - im * sn);
        o[2 * k + 1] = (float) (re * sn + im * cs);
      }
    }
  }
}

void
la_cpu_rope (LaBackend *be, LaTensor *y, const LaTensor *x, const LaTensor *freqs, int n_heads)
{
  int64_t L = 1;
  for (int i = 0; i < x->ndim - 1; i++)
    L *= x->shape[i];
  int64_t W = x->shape[x->ndim - 1];
  RopeArgs a = { y->data, x->data, freqs->data, W, W / n_heads, n_heads };
  la_parallel_for (L, L * W, rope_rows, &a);
}

typedef struct {
  float *y;
  const float *x;
  int64_t C, T, H, W, nh, nw;
  int kt, kh, kw;
} PatchArgs;

/* One token (t, i, j) per iteration; the element pairing is the contract's. */
static void
patchify_tokens (int64_t begin, int64_t end, gpointer data)
{
  const PatchArgs *p = data;
  const int64_t K = p->C * p->kt * p->kh * p->kw;
  for (int64_t tok = begin; tok < end; tok++) {
    int64_t t = tok / (p->nh * p->nw), i = tok / p->nw % p->nh, j = tok % p->nw;
    float *o = p->y + tok * K;
    for (int64_t c = 0; c < p->C; c++)
      for (int a = 0; a < p->kt; a++)
        for (int b = 0; b < p->kh; b++)
          for (int d = 0; d < p->kw; d++)
            *o++ = p->x[((c * p->T + t * p->kt + a) * p->H + i * p->kh + b) * p->W + j * p->kw + d];
  }
}

static void
unpatchify_tokens (int64_t begin, int64_t end, gpointer data)
{
  const PatchArgs *p = data;
  const int64_t K = p->C * p->kt * p->kh * p->kw;
  for (int64_t tok = begin; tok < end; tok++) {
    int64_t t = tok / (p->nh * p->nw), i = tok / p->nw % p->nh, j = tok % p->nw;
    const float *row = p->x + tok * K;
    for (int a = 0; a < p->kt; a++)
      for (int b = 0; b < p->kh; b++)
        for (int d = 0; d < p->kw; d++)
          for (int64_t c = 0; c < p->C; c++)
            p->y[((c * p->T + t * p->kt + a) * p->H + i * p->kh + b) * p->W + j * p->kw + d] =
              row[((a * p->kh + b) * p->kw + d) * p->C + c];
  }
}

static void
patch_run (LaTensor *y, const LaTensor *x, const LaTensor *grid, const int k[3], LaRangeFunc fn)
{
  PatchArgs p = { y->data, x->data, grid->shape[0], grid->shape[1], grid->shape[2], grid->shape[3],
                  grid->shape[2] / k[1], grid->shape[3] / k[2], k[0], k[1], k[2] };
  int64_t ntok = grid->shape[1] / k[0] * p.nh * p.nw;
  la_parallel_for (ntok, la_tensor_numel (x), fn, &p);
}

void
la_cpu_patchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  patch_run (y, x, x, k, patchify_tokens);
}

void
la_cpu_unpatchify (LaBackend *be, LaTensor *y, const LaTensor *x, const int k[3])
{
  patch_run (y, x, y, k, unpatchify_tokens);
}

void
la_cpu_rope_table (LaBackend *be, LaTensor *freqs, int64_t pos0, int64_t rows_per_pos, int n_pairs)
{
  const int64_t R = freqs->shape[0], P = freqs->shape[1];
  float *f = freqs->data;
  /* rows of one position share their values: evaluate once per position */
  for (int64_t r0 = 0; r0 < R; r0 += rows_per_pos) {
    float *first = f + r0 * P * 2;
    for (int k = 0; k < n_pairs; k++)
      la_rope_f16_pair (pos0 + r0 / rows_per_pos, k, n_pairs, first + 2 * k, first + 2 * k + 1);
    for (int64_t r = r0 + 1; r < MIN (R, r0 + rows_per_pos); r++)
      memcpy (f + r * P * 2, first, sizeof (float) * 2 * n_pairs);
  }
}

void
la_cpu_copy_rows_at (LaBackend *be, LaTensor *dst, const LaTensor *src, const LaTensor *pos)
{
  const int64_t p = *(const int32_t *) pos->data, rows = la_cpu_rows (src), cols = la_cpu_cols (dst);
  if (p < 0 || p + rows > la_cpu_rows (dst)) {
    la_backend_record_error (be, LA_ERROR_INVALID_ARG, "cpu backend: copy_rows_at: rows [%" G_GINT64_FORMAT
                             ", %" G_GINT64_FORMAT ") out of dst (tensor %s) of %" G_GINT64_FORMAT " rows",
                             p, p + rows, dst->name ? dst->name : "(unnamed)", la_cpu_rows (dst));
    return;
  }
  la_convert ((char *) dst->data + (size_t) (p * cols) * la_dtype_size (dst->dtype), dst->dtype, src->data,
              src->dtype, (size_t) la_tensor_numel (src));
}
