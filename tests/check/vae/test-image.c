/* test-image.c — reference-image preprocessing (docs/design/image.md):
 * the docs/design/image.md §1 size table, resize sizes and black bars (720x400 -> 691x384 with
 * 6 | 7 black columns; 1344x768 -> 672x384 with 16 | 16), round-half-even
 * crop offsets, Pillow fixed-point sanity values, gdk-pixbuf decoding
 * (RGB, RGBA with alpha dropped), and bad files that must give a GError
 * naming the file.
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <liveavatar/liveavatar.h>
#include <liveavatar/la-image.h>
#ifdef HAVE_LIBJPEG
#include <stdio.h>
#include <jpeglib.h>
#endif

static void
test_size_table (void)
{
  /* image (w x h) -> H x W for areas 720*400, 704*384, 688*368, 1280*720 (docs/design/image.md §1). */
  static const struct { int w, h; int out[4][2]; } rows[] = {
    { 720, 400,   { { 384, 704 }, { 384, 704 }, { 384, 640 }, { 448, 768 } } },
    { 1344, 768,  { { 384, 704 }, { 384, 704 }, { 384, 640 }, { 704, 1280 } } },
    { 2720, 1568, { { 384, 704 }, { 384, 704 }, { 384, 640 }, { 704, 1280 } } },
    { 1024, 1024, { { 512, 512 }, { 512, 512 }, { 448, 448 }, { 960, 960 } } },
    { 1080, 1920, { { 704, 384 }, { 704, 384 }, { 640, 384 }, { 1280, 704 } } },
  };
  static const gint64 areas[4] = { 720 * 400, 704 * 384, 688 * 368, 1280 * 720 };
  for (guint r = 0; r < G_N_ELEMENTS (rows); r++)
    for (int a = 0; a < 4; a++) {
      int H, W;
      g_autoptr (GError) e = NULL;
      g_assert_true (la_image_target_size (rows[r].h, rows[r].w, areas[a], 64, &H, &W, &e));
      if (H != rows[r].out[a][0] || W != rows[r].out[a][1])
        g_error ("%dx%d at area %" G_GINT64_FORMAT ": got %dx%d, want %dx%d", rows[r].w, rows[r].h,
                 areas[a], H, W, rows[r].out[a][0], rows[r].out[a][1]);
    }
  int H, W;
  g_autoptr (GError) e = NULL;
  g_assert_false (la_image_target_size (0, 10, 1000, 64, &H, &W, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_INVALID_ARG);
  /* Random sizes: always multiples of 64 within the area budget. */
  GRand *rng = g_rand_new_with_seed (7);
  for (int i = 0; i < 500; i++) {
    int h0 = g_rand_int_range (rng, 64, 5000), w0 = g_rand_int_range (rng, 64, 5000);
    g_assert_true (la_image_target_size (h0, w0, 288000, 64, &H, &W, NULL));
    g_assert_cmpint (H % 64, ==, 0);
    g_assert_cmpint (W % 64, ==, 0);
    g_assert_cmpint ((gint64) H * W, <=, 288000);
    g_assert_cmpint (H, >, 0);
  }
  g_rand_free (rng);
}

static guint8 *
gradient (int w, int h)
{
  guint8 *p = g_malloc ((gsize) w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        p[((gsize) y * w + x) * 3 + c] = (guint8) ((x * 7 + y * 3 + c * 50) & 255);
  return p;
}

static void
test_resize_crop (void)
{
  int rw, rh;
  la_image_resize_size (720, 400, 384, &rw, &rh);
  g_assert_cmpint (rw, ==, 691);
  g_assert_cmpint (rh, ==, 384);
  la_image_resize_size (1344, 768, 384, &rw, &rh);
  g_assert_cmpint (rw, ==, 672);
  la_image_resize_size (400, 720, 384, &rw, &rh);
  g_assert_cmpint (rw, ==, 384);
  g_assert_cmpint (rh, ==, 691);

  /* 720x400 -> 384x704: 6 black columns left, 7 right, image in between. */
  g_autofree guint8 *img = gradient (720, 400);
  int pl, pr;
  g_autofree guint8 *out = la_image_resize_crop (img, 720, 400, 384, 704, &pl, &pr);
  g_assert_cmpint (pl, ==, 6);
  g_assert_cmpint (pr, ==, 7);
  for (int y = 0; y < 384; y++) {
    for (int x = 0; x < 704; x++) {
      const guint8 *p = out + ((gsize) y * 704 + x) * 3;
      gboolean bar = x < 6 || x >= 704 - 7;
      if (bar)
        g_assert_true (p[0] == 0 && p[1] == 0 && p[2] == 0);
    }
  }
  /* Somewhere inside the image the gradient is not black. */
  g_assert_cmpint (out[(100 * 704 + 6) * 3 + 2], !=, 0);
  g_autofree guint8 *img2 = gradient (1344, 768);
  g_autofree guint8 *out3 = la_image_resize_crop (img2, 1344, 768, 384, 704, &pl, &pr);
  g_assert_cmpint (pl, ==, 16);
  g_assert_cmpint (pr, ==, 16);

  /* Round-half-even crop offsets: a 13-wider image crops from column 6,
   * a 15-wider one from column 8 (round(6.5) = 6, round(7.5) = 8). */
  for (int extra = 13; extra <= 15; extra += 2) {
    int w = 64 + extra;
    guint8 *src = g_malloc ((gsize) w * 64 * 3);
    for (int y = 0; y < 64; y++)
      for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++)
          src[((gsize) y * w + x) * 3 + c] = (guint8) x;
    /* Resize(64) keeps a 64-high image as is; CenterCrop(64x64). */
    guint8 *o = la_image_resize_crop (src, w, 64, 64, 64, NULL, NULL);
    g_assert_cmpint (o[0], ==, extra == 13 ? 6 : 8);
    g_free (o);
    g_free (src);
  }

  /* Pillow fixed point: [0, 255] -> 1 pixel = 128 (acc 2^21 + 255·2^21 >> 22). */
  guint8 two[6] = { 0, 0, 0, 255, 255, 255 };
  g_autofree guint8 *one = la_image_resize_bilinear (two, 2, 1, 1, 1);
  g_assert_cmpint (one[0], ==, 128);
  /* Constant images stay constant under any resize (weights sum to 1). */
  guint8 *flat = g_malloc (97 * 53 * 3);
  memset (flat, 77, 97 * 53 * 3);
  guint8 *r = la_image_resize_bilinear (flat, 97, 53, 31, 140);
  for (int i = 0; i < 31 * 140 * 3; i++)
    g_assert_cmpint (r[i], ==, 77);
  g_free (r);
  g_free (flat);

  /* [-1, 1] mapping. */
  guint8 px[6] = { 0, 255, 128, 1, 2, 3 };
  g_autoptr (LaTensor) t = la_image_to_tensor (px, 2, 1);
  float *d = la_tensor_f32 (t);
  g_assert_cmpfloat (d[0], ==, -1.0f);
  g_assert_cmpfloat (d[2], ==, 1.0f);
  g_assert_cmpfloat_with_epsilon (d[1], 1.0f / 255 * 2 - 1, 1e-7);
}

/* CRC-32 (PNG) to build crafted headers. */
static guint32
crc32 (const guint8 *p, gsize n)
{
  guint32 c = 0xffffffffu;
  for (gsize i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & -(c & 1));
  }
  return c ^ 0xffffffffu;
}

static char *
png_header_only (const char *dir, const char *name, guint32 w, guint32 h)
{
  guint8 buf[8 + 25 + 14 + 12];
  static const guint8 sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  memcpy (buf, sig, 8);
  guint8 *c = buf + 8;
  c[0] = 0; c[1] = 0; c[2] = 0; c[3] = 13;
  memcpy (c + 4, "IHDR", 4);
  guint8 *d = c + 8;
  d[0] = w >> 24; d[1] = w >> 16; d[2] = w >> 8; d[3] = w;
  d[4] = h >> 24; d[5] = h >> 16; d[6] = h >> 8; d[7] = h;
  d[8] = 8; d[9] = 2; d[10] = 0; d[11] = 0; d[12] = 0;
  guint32 crc = crc32 (c + 4, 17);
  c[21] = crc >> 24; c[22] = crc >> 16; c[23] = crc >> 8; c[24] = crc;
  /* A 2-byte IDAT (zlib header only) and IEND, so the header is complete. */
  guint8 *idat = c + 25;
  memset (idat, 0, 4);
  idat[3] = 2;
  memcpy (idat + 4, "IDAT", 4);
  idat[8] = 0x78;
  idat[9] = 0x9c;
  crc = crc32 (idat + 4, 6);
  idat[10] = crc >> 24; idat[11] = crc >> 16; idat[12] = crc >> 8; idat[13] = crc;
  guint8 *end = idat + 14;
  memset (end, 0, 4);
  memcpy (end + 4, "IEND", 4);
  crc = crc32 (end + 4, 4);
  end[8] = crc >> 24; end[9] = crc >> 16; end[10] = crc >> 8; end[11] = crc;
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, (char *) buf, sizeof buf, NULL));
  return path;
}

static void
expect_bad (const char *path, gint64 max_pixels)
{
  int w, h;
  g_autoptr (GError) e = NULL;
  guint8 *p = la_image_load (path, max_pixels, &w, &h, &e);
  g_assert_null (p);
  g_assert_nonnull (e);
  g_assert_true (e->domain == LA_ERROR);
  if (!strstr (e->message, path))
    g_error ("error for %s does not name the file: %s", path, e->message);
  g_test_message ("%s", e->message);
  if (max_pixels == 0) {
    g_autoptr (GError) e2 = NULL;
    g_autoptr (LaTensor) t = la_image_preprocess_file (path, 288000, &e2);
    g_assert_null (t);
    g_assert_nonnull (e2);
  }
}

static void
test_decode (void)
{
  g_autofree char *dir = g_dir_make_tmp ("la-image-XXXXXX", NULL);
  g_assert_nonnull (dir);
  /* RGB PNG round trip is exact. */
  g_autofree guint8 *img = gradient (37, 23);
  GdkPixbuf *pb = gdk_pixbuf_new_from_data (img, GDK_COLORSPACE_RGB, FALSE, 8, 37, 23, 37 * 3, NULL, NULL);
  g_autofree char *png = g_build_filename (dir, "rgb.png", NULL);
  g_assert_true (gdk_pixbuf_save (pb, png, "png", NULL, NULL));
  g_object_unref (pb);
  int w, h;
  g_autoptr (GError) e = NULL;
  g_autofree guint8 *back = la_image_load (png, 0, &w, &h, &e);
  g_assert_no_error (e);
  g_assert_cmpint (w, ==, 37);
  g_assert_cmpint (h, ==, 23);
  g_assert_cmpmem (back, 37 * 23 * 3, img, 37 * 23 * 3);
  /* RGBA: alpha dropped without compositing (PIL convert('RGB')). */
  guint8 rgba[2 * 4] = { 10, 20, 30, 0, 200, 100, 50, 128 };
  pb = gdk_pixbuf_new_from_data (rgba, GDK_COLORSPACE_RGB, TRUE, 8, 2, 1, 8, NULL, NULL);
  g_autofree char *png4 = g_build_filename (dir, "rgba.png", NULL);
  g_assert_true (gdk_pixbuf_save (pb, png4, "png", NULL, NULL));
  g_object_unref (pb);
  g_autofree guint8 *b4 = la_image_load (png4, 0, &w, &h, &e);
  g_assert_no_error (e);
  guint8 want[6] = { 10, 20, 30, 200, 100, 50 };
  g_assert_cmpmem (b4, 6, want, 6);
  /* The whole docs/design/image.md pipeline on a file. */
  g_autoptr (LaTensor) t = la_image_preprocess_file (png, 288000, &e);
  g_assert_no_error (e);
  g_assert_cmpint (t->shape[0], ==, 3);
  g_assert_cmpint (t->shape[1], ==, 1);
  g_assert_cmpint (t->shape[2] % 64, ==, 0);

  /* Bad files. */
  g_autofree char *missing = g_build_filename (dir, "missing.png", NULL);
  expect_bad (missing, 0);
  g_autofree char *empty = g_build_filename (dir, "empty.jpg", NULL);
  g_file_set_contents (empty, "", 0, NULL);
  expect_bad (empty, 0);
  g_autofree char *junk = g_build_filename (dir, "junk.png", NULL);
  g_file_set_contents (junk, "this is not an image at all", -1, NULL);
  expect_bad (junk, 0);
  g_autofree char *zero = png_header_only (dir, "zero.png", 0, 16);
  expect_bad (zero, 0);
  g_autofree char *huge = png_header_only (dir, "huge.png", 200000, 200000);
  expect_bad (huge, 0);
  expect_bad (png, 100);   /* 37x23 over a 100-pixel limit */
  g_autofree char *trunc = g_build_filename (dir, "trunc.png", NULL);
  {
    gchar *data;
    gsize n;
    g_assert_true (g_file_get_contents (png, &data, &n, NULL));
    g_file_set_contents (trunc, data, n / 2, NULL);
    g_free (data);
    expect_bad (trunc, 0);
  }
  const char *files[] = { empty, junk, zero, huge, png, png4, trunc };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    g_unlink (files[i]);
  g_rmdir (dir);
}

/* gdk-pixbuf's JPEG decode equals plain libjpeg with default settings
 * (JDCT_ISLOW, fancy upsampling) — the decoder PIL uses (docs/design/image.md §2). */
static void
test_jpeg_parity (void)
{
#ifdef HAVE_LIBJPEG
  const int w = 173, h = 91;
  g_autofree guint8 *img = g_malloc (w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      img[(y * w + x) * 3] = (guint8) (x * x + y);
      img[(y * w + x) * 3 + 1] = (guint8) (x * 3 + y * y);
      img[(y * w + x) * 3 + 2] = (guint8) ((x ^ y) * 5);
    }
  g_autofree char *dir = g_dir_make_tmp ("la-jpeg-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "t.jpg", NULL);
  GdkPixbuf *pb = gdk_pixbuf_new_from_data (img, GDK_COLORSPACE_RGB, FALSE, 8, w, h, w * 3, NULL, NULL);
  g_assert_true (gdk_pixbuf_save (pb, path, "jpeg", NULL, "quality", "75", NULL));
  g_object_unref (pb);
  int lw, lh;
  g_autoptr (GError) e = NULL;
  g_autofree guint8 *a = la_image_load (path, 0, &lw, &lh, &e);
  g_assert_no_error (e);
  struct jpeg_decompress_struct ci;
  struct jpeg_error_mgr je;
  ci.err = jpeg_std_error (&je);
  jpeg_create_decompress (&ci);
  FILE *f = fopen (path, "rb");
  g_assert_nonnull (f);
  jpeg_stdio_src (&ci, f);
  jpeg_read_header (&ci, TRUE);
  ci.out_color_space = JCS_RGB;
  jpeg_start_decompress (&ci);
  g_autofree guint8 *b = g_malloc (w * h * 3);
  while (ci.output_scanline < ci.output_height) {
    JSAMPROW r = b + ci.output_scanline * w * 3;
    jpeg_read_scanlines (&ci, &r, 1);
  }
  jpeg_finish_decompress (&ci);
  jpeg_destroy_decompress (&ci);
  fclose (f);
  g_assert_cmpmem (a, w * h * 3, b, w * h * 3);
  g_unlink (path);
  g_rmdir (dir);
#else
  g_test_skip ("libjpeg not found at build time");
#endif
}

/* The reference's own example image end to end (decode, size, resize,
 * crop, [-1, 1]) against the statistics docs/design/image.md §2 verified with PIL. */
static void
test_example_image (void)
{
  g_autofree char *path = g_build_filename (VAE_TEST_DATA, "dwarven_blacksmith.jpg", NULL);
  g_autoptr (GError) e = NULL;
  int w, h, H, W, pl, pr;
  g_autofree guint8 *rgb = la_image_load (path, 0, &w, &h, &e);
  g_assert_no_error (e);
  g_assert_cmpint (w, ==, 720);
  g_assert_cmpint (h, ==, 400);
  g_assert_true (la_image_target_size (h, w, 720 * 400, 64, &H, &W, NULL));
  g_autofree guint8 *crop = la_image_resize_crop (rgb, w, h, H, W, &pl, &pr);
  g_assert_cmpint (pl, ==, 6);
  g_assert_cmpint (pr, ==, 7);
  g_autoptr (LaTensor) t = la_image_preprocess_file (path, 720 * 400, &e);
  g_assert_no_error (e);
  g_assert_cmpint (t->shape[2], ==, 384);
  g_assert_cmpint (t->shape[3], ==, 704);
  double sum = 0;
  for (int64_t i = 0; i < la_tensor_numel (t); i++)
    sum += la_tensor_f32 (t)[i];
  g_assert_cmpfloat (fabs (sum - (-426317.05)), <, 0.01);
  g_assert_cmpfloat (fabs (sum / la_tensor_numel (t) - (-0.525663)), <, 1e-6);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/size-table", test_size_table);
  g_test_add_func ("/image/resize-crop", test_resize_crop);
  g_test_add_func ("/image/decode", test_decode);
  g_test_add_func ("/image/jpeg-parity", test_jpeg_parity);
  g_test_add_func ("/image/example-dwarven", test_example_image);
  return g_test_run ();
}
