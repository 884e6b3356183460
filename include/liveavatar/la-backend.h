/* la-backend.h — a compute device (ggml style): the CPU backend (f32,
 * OpenBLAS GEMMs, threads) is the reference, the CUDA backend runs the same
 * ops in bf16/FP8.  A backend owns memory on its device; the ops themselves
 * are internal (lib/la-ops.h, checked wrappers over the private table of
 * lib/la-backend-impl.h).
 *
 * Errors.  Ops do not return errors: the first failure (a shape the op
 * cannot take, a device fault) is kept by the backend and reported by
 * la_backend_sync(), like cudaGetLastError, so model code stays linear.
 */
#pragma once
#include <glib.h>
#include "la-tensor.h"

G_BEGIN_DECLS

typedef struct _LaBackend LaBackend;

LaBackend *la_backend_cpu_new (int n_threads);   /* n_threads <= 0: all cores */
/* NULL with LA_ERROR_DEVICE when the CUDA backend is not built or no device exists. */
LaBackend *la_backend_cuda_new (int device_index, GError **error);

LaBackend *la_backend_ref (LaBackend *be);
void       la_backend_unref (LaBackend *be);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LaBackend, la_backend_unref)

/* Waits for the queued ops; FALSE with the first error recorded since the last call. */
gboolean   la_backend_sync (LaBackend *be, GError **error);
/* A zero-filled tensor in the backend's memory. */
LaTensor  *la_alloc (LaBackend *be, LaDType t, int ndim, const int64_t *shape);
/* TRUE if t is in the backend's memory (la_alloc'd, or a view of such a
 * tensor), FALSE for a host tensor — also on the CPU backend, whose
 * allocations are host memory too but stand for device memory. */
gboolean   la_backend_holds (LaBackend *be, const LaTensor *t);
/* Host memory a CPU backend uses in place as its own (the resident weights):
 * returns a view that la_backend_holds, taking over the reference of host.
 * Other backends return host itself (their callers upload instead). */
LaTensor  *la_backend_adopt (LaBackend *be, LaTensor *host);

const char  *la_backend_get_name (LaBackend *be);          /* "cpu", "cuda" */
LaDeviceType la_backend_get_device (LaBackend *be);
int          la_backend_get_device_index (LaBackend *be);
int          la_backend_get_n_threads (LaBackend *be);     /* CPU: OpenMP/BLAS threads; CUDA: 1 */

/* Traffic between the host and the backend's memory, counted by the copy op
 * (uploads: host -> backend, downloads: backend -> host; copies within one
 * side are not counted) and host synchronisations (la_backend_sync calls).
 * The CPU backend counts the same calls between host tensors and the
 * tensors it allocated, so its figures predict the CUDA backend's. */
typedef struct {
  guint64 uploads, upload_bytes;
  guint64 downloads, download_bytes;
  guint64 syncs;
  guint64 graph_captures, graph_launches;   /* backends with graphs (CUDA): steps captured / replayed */
} LaBackendStats;

void la_backend_get_stats (LaBackend *be, LaBackendStats *out);
void la_backend_reset_stats (LaBackend *be);

G_END_DECLS
