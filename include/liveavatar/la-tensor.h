/* la-tensor.h — the engine's tensor: up to 5-D, contiguous, row-major,
 * reference counted, on the host or on a device.
 *
 * Storage is a GBytes (refcounted, with its own free function), so a
 * tensor can be a zero-copy view into a memory-mapped checkpoint, a host
 * allocation or device memory owned by a backend.  Shapes are PyTorch's:
 * shape[0] is the slowest dimension.
 */
#pragma once
#include <glib.h>
#include "la-dtype.h"

G_BEGIN_DECLS

#define LA_TENSOR_MAX_DIMS 5

typedef enum {
  LA_DEVICE_CPU,
  LA_DEVICE_CUDA,
} LaDeviceType;

typedef struct _LaTensor LaTensor;
struct _LaTensor {
  /*< public, read-only >*/
  LaDType      dtype;
  int          ndim;
  int64_t      shape[LA_TENSOR_MAX_DIMS];
  LaDeviceType device;
  int          device_index;
  void        *data;        /* first element (host or device address) */
  /*< private >*/
  gint         ref_count;
  GBytes      *storage;     /* owner of data; may be shared by views */
  char        *name;        /* optional, for error messages */
};

/* New zero-filled host tensor. */
LaTensor *la_tensor_new (LaDType dtype, int ndim, const int64_t *shape);
/* New host tensor, shape given as a -1 terminated list of ints: la_tensor_new_v (F32, 2, 3, -1). */
LaTensor *la_tensor_new_v (LaDType dtype, ...);
/* New tensor viewing bytes owned by `storage` at `data` (takes a ref on storage). */
LaTensor *la_tensor_new_view (LaDType dtype, int ndim, const int64_t *shape,
                              GBytes *storage, void *data,
                              LaDeviceType device, int device_index);
/* Host f32 tensor copied from an array. */
LaTensor *la_tensor_new_from_f32 (int ndim, const int64_t *shape, const float *src);

LaTensor *la_tensor_ref (LaTensor *t);
void      la_tensor_unref (LaTensor *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaTensor, la_tensor_unref)

int64_t   la_tensor_numel (const LaTensor *t);
size_t    la_tensor_nbytes (const LaTensor *t);
void      la_tensor_set_name (LaTensor *t, const char *name);
const char *la_tensor_get_name (const LaTensor *t);
/* "[5120, 16, 1, 2, 2]" — caller frees. */
char     *la_shape_to_string (int ndim, const int64_t *shape);

/* Same data, another shape with the same element count (a view). */
LaTensor *la_tensor_reshape (LaTensor *t, int ndim, const int64_t *shape, GError **error);
/* Host copy converted to dtype (a new tensor even when dtypes match). */
LaTensor *la_tensor_to_dtype (const LaTensor *t, LaDType dtype);
/* Host tensor as f32: a ref when already f32 on the host, else a converted copy. */
LaTensor *la_tensor_as_f32 (LaTensor *t);

/* Checks shape (a -1 entry in `shape` matches anything); error names the tensor. */
gboolean  la_tensor_check_shape (const LaTensor *t, int ndim, const int64_t *shape, GError **error);

static inline float *la_tensor_f32 (const LaTensor *t) { return (float *) t->data; }

G_END_DECLS
