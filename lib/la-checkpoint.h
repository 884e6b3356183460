/* la-checkpoint.h — named tensors read from official checkpoint files.
 *
 * Readers (all zero-copy over a read-only memory map):
 *  - safetensors, single file or sharded through `*.index.json` (weight_map);
 *  - PyTorch torch.save zip archives (.pth, pytorch_model.bin): the zip
 *    central directory plus the small subset of pickle opcodes that a state
 *    dict of tensors uses.  Pickle content is interpreted, never executed.
 * Every malformed input is a GError naming the file (and the tensor when
 * there is one); nothing a file contains can crash the reader.
 */
#pragma once
#include <glib.h>
#include "liveavatar/la-tensor.h"

G_BEGIN_DECLS

typedef struct _LaCheckpoint LaCheckpoint;

LaCheckpoint *la_checkpoint_new (void);
/* Detects the format: *.safetensors, *.index.json, a zip (.pth/.bin/.pt), or
 * a folder holding exactly one of those for a DiT / HF model. */
LaCheckpoint *la_checkpoint_open (const char *path, GError **error);
LaCheckpoint *la_safetensors_open (const char *path, GError **error);
LaCheckpoint *la_safetensors_open_index (const char *index_json, GError **error);
LaCheckpoint *la_torchzip_open (const char *path, GError **error);

LaCheckpoint *la_checkpoint_ref (LaCheckpoint *ck);
void          la_checkpoint_unref (LaCheckpoint *ck);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaCheckpoint, la_checkpoint_unref)

/* Adds (takes a ref on) t under `name`; replaces an existing entry. */
void          la_checkpoint_add (LaCheckpoint *ck, const char *name, LaTensor *t);
gboolean      la_checkpoint_remove (LaCheckpoint *ck, const char *name);
/* Removes `name` and, when it views a file mapping made by
 * la_checkpoint_open, hands its pages back to the kernel: a loader calls
 * this once it holds its own resident copy, so the checkpoint's pages do
 * not stay in the process beside it.  No-op for an absent name. */
void          la_checkpoint_release (LaCheckpoint *ck, const char *name);
/* Borrowed; NULL when absent. */
LaTensor     *la_checkpoint_get (LaCheckpoint *ck, const char *name);
/* Borrowed; error names the tensor and the checkpoint's path when missing or
 * when the shape differs (a -1 in `shape` matches any size; ndim < 0 skips the check). */
LaTensor     *la_checkpoint_require (LaCheckpoint *ck, const char *name, int ndim,
                                     const int64_t *shape, GError **error);
guint         la_checkpoint_size (LaCheckpoint *ck);
/* Sorted names; the array is owned by ck and valid until it changes. */
const char * const *la_checkpoint_names (LaCheckpoint *ck);
/* The file(s) this came from, for messages ("" for built ones). */
const char   *la_checkpoint_path (LaCheckpoint *ck);
void          la_checkpoint_set_path (LaCheckpoint *ck, const char *path);
/* SHA-256 (hex, caller frees) of every tensor's name, dtype and shape and of
 * its first and last 64 KiB: tells two processes whether they hold the same
 * weights (a LoRA merge changes them) without reading 30 GB. */
char         *la_checkpoint_digest (LaCheckpoint *ck);

/* Writes host tensors as one safetensors file (names sorted, data 8-aligned). */
gboolean      la_safetensors_write (const char *path, LaCheckpoint *ck, GError **error);
/* Writes a torch.save-compatible zip (protocol 2 pickle of an OrderedDict of
 * tensors, stored entries) that torch.load and la_torchzip_open both read. */
gboolean      la_torchzip_write (const char *path, LaCheckpoint *ck, GError **error);

G_END_DECLS
