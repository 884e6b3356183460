/* la-image.h — reference-image preprocessing (docs/design/image.md): area-budget size
 * selection, Pillow-exact antialiased bilinear resize, centre crop with
 * black padding, mapping to [-1, 1].  Images are host RGB uint8, rows
 * packed (stride = 3·width).
 */
#pragma once
#include <glib.h>
#include "la-tensor.h"

G_BEGIN_DECLS

/* get_size_less_than_area(h0, w0, area, divisor): output (H, W), multiples
 * of divisor (64 in the reference).  FALSE with an error on sizes <= 0. */
gboolean la_image_target_size (int h0, int w0, gint64 area, int divisor,
                               int *out_h, int *out_w, GError **error);

/* Pillow ImagingResample, BILINEAR, 8-bit: horizontal pass then vertical,
 * 22-bit fixed-point weights.  Returns a new out_w x out_h RGB buffer. */
guint8 *la_image_resize_bilinear (const guint8 *rgb, int w, int h, int out_w, int out_h);

/* torchvision Resize(min(H,W)) on the image: shorter side -> S, longer side
 * int(S·long/short).  Writes the resized size. */
void    la_image_resize_size (int w, int h, int S, int *out_w, int *out_h);

/* Resize(min(H,W)) + CenterCrop((H,W)) with black padding; returns an RGB
 * W x H buffer.  pad_left/pad_right (may be NULL) report the black columns. */
guint8 *la_image_resize_crop (const guint8 *rgb, int w, int h, int H, int W,
                              int *pad_left, int *pad_right);

/* RGB uint8 W x H -> host f32 tensor [3, 1, H, W] = u8/255·2 − 1. */
LaTensor *la_image_to_tensor (const guint8 *rgb, int w, int h);

/* Decodes a file (gdk-pixbuf: JPEG, PNG, ...) to RGB uint8: alpha dropped
 * without compositing, grey replicated — PIL's convert('RGB').  EXIF
 * orientation is NOT applied, as in the reference.  Errors (naming the file)
 * for unreadable, empty, zero-sized or > max_pixels images (0: 2^28). */
guint8 *la_image_load (const char *path, gint64 max_pixels, int *out_w, int *out_h,
                       GError **error);

/* All of docs/design/image.md: load, size from area budget (divisor 64), resize, crop, [-1,1].
 * Returns [3, 1, H, W] host f32. */
LaTensor *la_image_preprocess_file (const char *path, gint64 area, GError **error);

G_END_DECLS
