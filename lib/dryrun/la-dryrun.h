/* la-dryrun.h — a recording backend that executes nothing (internal).
 *
 * The dry-run backend implements every op of the table (la-backend-impl.h)
 * by appending one record — op name, class, dtypes, GEMM / attention / conv
 * dimensions, FLOPs and bytes read + written — so the real model code
 * (lib/dit, lib/vae, lib/audio) can run the full 14B configuration on a
 * machine with neither the GPU nor the ~130 GB the tensors would take; the
 * roofline (la-roofline.h) turns the records into predicted times.
 *
 * Memory.  Device tensors have no storage: their data pointer is the start
 * of an inaccessible (PROT_NONE) reservation, so host code that would read
 * device memory without la_copy faults instead of reading garbage.  Host
 * tensors stay real: a host->host copy is performed, a device->host copy
 * leaves the destination as it was (zeros from la_tensor_new), an upload
 * does nothing.  Allocations are counted (live and peak bytes), as a caching
 * allocator with no fragmentation would hold them.
 *
 * Tracing.  la_backend_dryrun_new_tracing (inner) records the same way and
 * then runs each op on `inner` (tensors are inner's): the records of a real
 * run, to check that the dry run follows the same op sequence.
 *
 * Conventions.  FLOPs: 2·M·N·K per GEMM (bias not counted), 4·Lq·Lk·H·D per
 * attention (Q·Kᵀ and P·V; softmax not counted), 2·Cin·k per output element
 * of a convolution, a few per element for the rest.  Bytes: every input read
 * once and the output written once, in the tensors' dtypes (a fused kernel's
 * traffic); "weight" bytes are a linear's / conv's w and bias and a norm's
 * gains, everything else is "activation" bytes.
 */
#pragma once
#include "liveavatar/la-backend.h"
#include "la-checkpoint.h"

G_BEGIN_DECLS

typedef enum {
  LA_DRY_GEMM,          /* linear, matmul */
  LA_DRY_ATTENTION,
  LA_DRY_CONV,          /* conv3d, conv1d */
  LA_DRY_NORM,          /* layer_norm, rms_norm, channel_rms_norm, softmax */
  LA_DRY_ELEMENTWISE,   /* unary, binary, axpy, modulate, rope, clamp, latent_norm, upsample2x, fill, copy4d */
  LA_DRY_COPY_H2D,
  LA_DRY_COPY_D2H,
  LA_DRY_COPY_D2D,
  LA_DRY_COPY_H2H,      /* host work: no device time */
  LA_DRY_SYNC,          /* la_backend_sync: the host waits for the device */
  LA_DRY_N_CLASSES
} LaDryClass;

typedef struct {
  const char *op;          /* the table's name: "linear", "attention", ..., "sync" */
  LaDryClass cls;
  LaDType dt_x, dt_w, dt_y;   /* main input, weight (or second operand), output */
  /* GEMM: M, N, K, batch; attention: Lq, Lk, head dim, heads; conv: output elements,
   * Cout, Cin·kernel / groups, 0; others: elements of the output, 0, 0, 0 */
  gint64 dims[4];
  double flops;
  double act_bytes, act_elems;   /* non-weight tensors read + written */
  double act_f32;                /* of which f32 elements */
  double w_bytes, w_elems;       /* weights read */
  gboolean fp8_eligible;         /* a linear whose weight the FP8 mode quantises (la_cuda_fp8_eligible) */
} LaDryOp;

/* A backend on a pretend CUDA device 0 (tensors report LA_DEVICE_CUDA). */
LaBackend *la_backend_dryrun_new (void);
/* Records, then runs every op on inner (takes a ref; tensors are inner's, on its device). */
LaBackend *la_backend_dryrun_new_tracing (LaBackend *inner);
gboolean   la_backend_is_dryrun (LaBackend *be);

guint          la_dryrun_n_ops (LaBackend *be);
const LaDryOp *la_dryrun_op (LaBackend *be, guint i);   /* valid until the next op */
const char    *la_dryrun_class_name (LaDryClass c);

/* Device memory held by live tensors of this backend (not with tracing). */
typedef struct {
  guint64 live, peak;              /* bytes in the tensors' dtypes */
  guint64 live_f32, peak_f32;      /* of which f32 elements (at the peak), to project other dtypes */
  guint64 n_alloc;
  guint64 uploaded_fp8_elems;      /* bf16 linear weights uploaded whose names are FP8-eligible */
} LaDryMem;
void la_dryrun_mem (LaBackend *be, LaDryMem *out);
/* Peak := live, so the next peak is that of the work that follows. */
void la_dryrun_reset_peak (LaBackend *be);

/* Replaces every tensor of ck by a view of the shared zero mapping
 * (la-synth.h) in `dtype`, same name and shape: weights with shapes only,
 * e.g. the 14B DiT as its bf16 checkpoint would be, in no memory.  Make ck
 * with la_synth_zero_from = 0 so that generating it costs nothing either. */
void la_dryrun_zero_weights (LaCheckpoint *ck, LaDType dtype);

G_END_DECLS
