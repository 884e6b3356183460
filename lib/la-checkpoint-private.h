/* la-checkpoint-private.h — internal entry points of the checkpoint readers
 * and writers, for tests and fuzz targets.  Not installed, not API.
 */
#pragma once
#include <glib.h>
#include "la-checkpoint.h"

G_BEGIN_DECLS

/* Reads a torch.save zip archive held in `bytes` (tensors are zero-copy views
 * that keep `bytes` alive).  `display_name` is used in messages and as the
 * checkpoint's path. */
LaCheckpoint *la_torchzip_open_bytes (GBytes *bytes, const char *display_name,
                                      GError **error);

/* la_torchzip_write, choosing whether the zip64 end records are written.
 * torch.save always writes them, and so does la_torchzip_write; files over
 * 4 GiB need them regardless.  The tests read both forms. */
gboolean      la_torchzip_write_full (const char *path, LaCheckpoint *ck,
                                      gboolean zip64_end, GError **error);

/* Sizes and offsets at or above this use zip64 fields in the writer
 * (0xFFFFFFFF, as zip requires; the tests lower it to cover the >4 GiB
 * layout with small files). */
extern guint64 la_torchzip_zip64_threshold;

/* CRC-32 (IEEE 802.3, as zip uses), continuing from `crc` (0 to start). */
guint32       la_crc32 (guint32 crc, const void *data, gsize len);

/* la_crc32 over `n` zero bytes, in O(log n) (zero-filled generated weights). */
guint32       la_crc32_zeros (guint32 crc, guint64 n);

G_END_DECLS
