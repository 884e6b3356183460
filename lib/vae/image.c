/* image.c — reference-image preprocessing, docs/design/image.md.
 *
 *  size:   WanS2V.get_size_less_than_area (double precision, same operation
 *          order as the Python, incl. its "2ac" discriminant quirk);
 *  resize: torchvision Resize(min(H,W)) on a PIL image = Pillow's
 *          ImagingResample BILINEAR (antialiased: support scales with the
 *          reduction factor), horizontal pass then vertical, 8-bit
 *          intermediate, 22-bit fixed-point weights;
 *  crop:   torchvision CenterCrop: black padding (left/top = d//2,
 *          right/bottom = (d+1)//2) then offset round-half-even((h'-H)/2);
 *  values: u8/255·2 − 1, layout [3, 1, H, W].
 *
 * Decoding uses gdk-pixbuf; its JPEG path is libjpeg with default settings
 * (JDCT_ISLOW, fancy upsampling), bit-identical to plain libjpeg and so to
 * PIL (tests/check/vae/test-image.c checks it).  EXIF orientation is deliberately NOT applied
 * (gdk_pixbuf_new_from_file does not, and neither does the reference's
 * PIL Image.open(...).convert('RGB')), so the pixels match the reference.
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include "liveavatar/la-image.h"
#include "liveavatar/la-error.h"

gboolean
la_image_target_size (int h0, int w0, gint64 area, int divisor, int *out_h, int *out_w,
                      GError **error)
{
  if (h0 <= 0 || w0 <= 0 || area <= 0 || divisor <= 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_INVALID_ARG,
                 "image target size: bad arguments (h %d, w %d, area %" G_GINT64_FORMAT
                 ", divisor %d)", h0, w0, area, divisor);
    return FALSE;
  }
  double s_min, s_max;
  gint64 a = (gint64) h0 * w0;
  if (a <= area) {
    s_max = 1.0;
    s_min = 0.1;
  } else {
    gint64 d = divisor - 1;
    gint64 b = d * (h0 + w0);
    gint64 c = d * d - area;
    /* Python evaluates b**2 - 2*a*c exactly in integers, then sqrt(float). */
    s_min = (-(double) b + sqrt ((double) (b * b - 2 * a * c))) / (2.0 * (double) a);
    s_max = sqrt ((double) area / (double) a);
  }
  for (int i = 0; i < 100; i++) {
    double s = s_max - (s_max - s_min) * i / 100;
    gint64 nh = (gint64) (h0 * s), nw = (gint64) (w0 * s);
    /* The reference pads with a literal 64 (== divisor in every call). */
    nh += (divisor - nh % divisor) % divisor;
    nw += (divisor - nw % divisor) % divisor;
    if (nh * nw <= area) {
      *out_h = (int) nh;
      *out_w = (int) nw;
      return TRUE;
    }
  }
  /* Fallback (not reached in practice): floor(sqrt(A·ar)/d)·d. */
  double ar = (double) w0 / h0;
  int tw = (int) (floor (sqrt (area * ar) / divisor) * divisor);
  int th = (int) (floor (sqrt (area / ar) / divisor) * divisor);
  if (tw >= w0 || th >= h0) {
    tw = w0 / divisor * divisor;
    th = h0 / divisor * divisor;
  }
  *out_h = th;
  *out_w = tw;
  return TRUE;
}

/* Pillow precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter. */
#define PRECISION_BITS (32 - 8 - 2)

static int
precompute_coeffs (int in_size, int out_size, int **bounds_out, gint32 **kk_out)
{
  double scale = (double) in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * filterscale;
  int ksize = (int) ceil (support) * 2 + 1;
  int *bounds = g_new (int, out_size * 2);
  gint32 *kk = g_new0 (gint32, (gsize) out_size * ksize);
  double *k = g_new (double, ksize);
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int) (center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    int xmax = (int) (center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double t = fabs ((x + xmin - center + 0.5) * ss);
      double w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++) {
      double v = ww != 0.0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = v < 0 ? (gint32) (-0.5 + v * (1 << PRECISION_BITS))
                                 : (gint32) (0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  g_free (k);
  *bounds_out = bounds;
  *kk_out = kk;
  return ksize;
}

static inline guint8
clip8 (gint32 in)
{
  if (in >= (1 << PRECISION_BITS << 8))
    return 255;
  if (in <= 0)
    return 0;
  return (guint8) (in >> PRECISION_BITS);
}

guint8 *
la_image_resize_bilinear (const guint8 *rgb, int w, int h, int out_w, int out_h)
{
  int *bh, *bv;
  gint32 *kh, *kv;
  int ksh = precompute_coeffs (w, out_w, &bh, &kh);
  int ksv = precompute_coeffs (h, out_h, &bv, &kv);
  gboolean need_h = out_w != w, need_v = out_h != h;
  /* Only the source rows the vertical pass reads go through the horizontal pass. */
  int y_first = bv[0], y_last = bv[2 * out_h - 2] + bv[2 * out_h - 1];
  const guint8 *src = rgb;
  int src_w = w, row0 = 0;
  guint8 *tmp = NULL;
  if (need_h) {
    int rows = y_last - y_first;
    tmp = g_malloc ((gsize) rows * out_w * 3);
    for (int y = 0; y < rows; y++) {
      const guint8 *in = rgb + (gsize) (y + y_first) * w * 3;
      guint8 *out = tmp + (gsize) y * out_w * 3;
      for (int xx = 0; xx < out_w; xx++) {
        int xmin = bh[2 * xx], xmax = bh[2 * xx + 1];
        const gint32 *k = kh + (gsize) xx * ksh;
        gint32 s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < xmax; x++) {
          const guint8 *p = in + (x + xmin) * 3;
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        out[xx * 3 + 0] = clip8 (s0);
        out[xx * 3 + 1] = clip8 (s1);
        out[xx * 3 + 2] = clip8 (s2);
      }
    }
    src = tmp;
    src_w = out_w;
    row0 = y_first;   /* bounds_vert are shifted by ybox_first */
  }
  guint8 *dst = g_malloc ((gsize) out_h * out_w * 3);
  if (need_v) {
    for (int yy = 0; yy < out_h; yy++) {
      int ymin = bv[2 * yy] - row0, ymax = bv[2 * yy + 1];
      const gint32 *k = kv + (gsize) yy * ksv;
      guint8 *out = dst + (gsize) yy * out_w * 3;
      for (int xx = 0; xx < out_w * 3; xx++) {
        gint32 s = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++)
          s += src[(gsize) (y + ymin) * src_w * 3 + xx] * k[y];
        out[xx] = clip8 (s);
      }
    }
  } else {
    memcpy (dst, src + (gsize) (need_h ? 0 : 0), (gsize) out_h * out_w * 3);
  }
  g_free (tmp);
  g_free (bh);
  g_free (bv);
  g_free (kh);
  g_free (kv);
  return dst;
}

void
la_image_resize_size (int w, int h, int S, int *out_w, int *out_h)
{
  int shorter = w <= h ? w : h, longer = w <= h ? h : w;
  /* Python: int(S * long / short) — integer product, float division, truncation. */
  int new_long = (int) ((double) ((gint64) S * longer) / shorter);
  if (w <= h) {
    *out_w = S;
    *out_h = new_long;
  } else {
    *out_w = new_long;
    *out_h = S;
  }
}

guint8 *
la_image_resize_crop (const guint8 *rgb, int w, int h, int H, int W, int *pad_left, int *pad_right)
{
  int rw, rh;
  la_image_resize_size (w, h, MIN (H, W), &rw, &rh);
  guint8 *r = (rw == w && rh == h) ? g_memdup2 (rgb, (gsize) w * h * 3)
                                   : la_image_resize_bilinear (rgb, w, h, rw, rh);
  /* Pad to at least the crop size, black. */
  int pl = W > rw ? (W - rw) / 2 : 0, pr = W > rw ? (W - rw + 1) / 2 : 0;
  int pt = H > rh ? (H - rh) / 2 : 0, pb = H > rh ? (H - rh + 1) / 2 : 0;
  int pw = rw + pl + pr, ph = rh + pt + pb;
  /* rint = round half to even under the default rounding mode, like Python's round(). */
  int top = (int) rint ((ph - H) / 2.0), left = (int) rint ((pw - W) / 2.0);
  guint8 *out = g_malloc0 ((gsize) H * W * 3);
  for (int y = 0; y < H; y++) {
    int sy = y + top - pt;             /* row in the resized image */
    if (sy < 0 || sy >= rh)
      continue;
    for (int x = 0; x < W; x++) {
      int sx = x + left - pl;
      if (sx < 0 || sx >= rw)
        continue;
      memcpy (out + ((gsize) y * W + x) * 3, r + ((gsize) sy * rw + sx) * 3, 3);
    }
  }
  if (pad_left)
    *pad_left = pl;
  if (pad_right)
    *pad_right = pr;
  g_free (r);
  return out;
}

LaTensor *
la_image_to_tensor (const guint8 *rgb, int w, int h)
{
  LaTensor *t = la_tensor_new_v (LA_DTYPE_F32, 3, 1, h, w, -1);
  float *d = la_tensor_f32 (t);
  gsize plane = (gsize) h * w;
  for (gsize i = 0; i < plane; i++)
    for (int c = 0; c < 3; c++)
      /* ToTensor: u8/255 in f32, then x*2-1 in f32, as the reference. */
      d[c * plane + i] = (float) rgb[i * 3 + c] / 255.0f * 2.0f - 1.0f;
  return t;
}

guint8 *
la_image_load (const char *path, gint64 max_pixels, int *out_w, int *out_h, GError **error)
{
  GStatBuf st;
  if (max_pixels <= 0)
    max_pixels = (gint64) 1 << 28;
  if (g_stat (path, &st) != 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_IO, "image '%s': cannot read the file", path);
    return NULL;
  }
  if (st.st_size == 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "image '%s': the file is empty", path);
    return NULL;
  }
  int iw = 0, ih = 0;
  /* Size from the header first, so an absurd size is refused before decoding. */
  if (!gdk_pixbuf_get_file_info (path, &iw, &ih)) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT,
                 "image '%s': not a decodable image (unknown format or corrupt header)", path);
    return NULL;
  }
  if (iw <= 0 || ih <= 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "image '%s': zero-sized image (%dx%d)",
                 path, iw, ih);
    return NULL;
  }
  if ((gint64) iw * ih > max_pixels) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED,
                 "image '%s': %dx%d is larger than the %" G_GINT64_FORMAT "-pixel limit",
                 path, iw, ih, max_pixels);
    return NULL;
  }
  GError *e = NULL;
  GdkPixbuf *pb = gdk_pixbuf_new_from_file (path, &e);
  if (!pb) {
    g_set_error (error, LA_ERROR, LA_ERROR_FORMAT, "image '%s': %s", path,
                 e ? e->message : "decode failed");
    g_clear_error (&e);
    return NULL;
  }
  int w = gdk_pixbuf_get_width (pb), h = gdk_pixbuf_get_height (pb);
  int nc = gdk_pixbuf_get_n_channels (pb), stride = gdk_pixbuf_get_rowstride (pb);
  if (w <= 0 || h <= 0 || gdk_pixbuf_get_bits_per_sample (pb) != 8 || nc < 3
      || (gint64) w * h > max_pixels) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "image '%s': unsupported pixel layout (%dx%d, %d channels)",
                 path, w, h, nc);
    g_object_unref (pb);
    return NULL;
  }
  const guint8 *px = gdk_pixbuf_read_pixels (pb);
  guint8 *rgb = g_malloc ((gsize) w * h * 3);
  /* convert('RGB'): alpha is dropped without compositing. */
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      memcpy (rgb + ((gsize) y * w + x) * 3, px + (gsize) y * stride + (gsize) x * nc, 3);
  g_object_unref (pb);
  *out_w = w;
  *out_h = h;
  return rgb;
}

LaTensor *
la_image_preprocess_file (const char *path, gint64 area, GError **error)
{
  int w, h, H, W;
  guint8 *rgb = la_image_load (path, 0, &w, &h, error);
  if (!rgb)
    return NULL;
  if (!la_image_target_size (h, w, area, 64, &H, &W, error)) {
    g_prefix_error (error, "image '%s': ", path);
    g_free (rgb);
    return NULL;
  }
  guint8 *out = la_image_resize_crop (rgb, w, h, H, W, NULL, NULL);
  LaTensor *t = la_image_to_tensor (out, W, H);
  g_free (rgb);
  g_free (out);
  return t;
}
