/* la-cuda-stub.c — la-cuda.h when the engine is built without nvcc: every
 * call fails with LA_ERROR_DEVICE (or reports nothing), so tools and tests
 * link the same way with or without the CUDA backend. */
#include "liveavatar/la-cuda.h"
#include "la-backend-impl.h"
#include "liveavatar/la-error.h"
#include <string.h>

static void
no_cuda (GError **error)
{
  g_set_error (error, LA_ERROR, LA_ERROR_DEVICE, "this build has no CUDA backend");
}

gboolean la_cuda_set_weights (LaBackend *be, LaCudaWeights w, GError **error) { no_cuda (error); return FALSE; }
LaCudaWeights la_cuda_get_weights (LaBackend *be) { return LA_CUDA_WEIGHTS_F32; }
LaTensor *la_cuda_upload_weight (LaBackend *be, const LaTensor *h, gboolean e, GError **error) { no_cuda (error); return NULL; }
gboolean la_cuda_quantize_fp8 (LaBackend *be, LaTensor *d, const LaTensor *s, GError **error) { no_cuda (error); return FALSE; }
float *la_cuda_fp8_scale_ptr (const LaTensor *t) { return NULL; }
LaTensor *la_cuda_random_weight (LaBackend *be, LaDType dt, int nd, const int64_t *sh, guint64 seed, float std,
                                 GError **error) { no_cuda (error); return NULL; }
void la_cuda_mem_stats (LaBackend *be, LaCudaMemStats *out) { memset (out, 0, sizeof *out); }
void la_cuda_mem_trim (LaBackend *be) {}
gboolean la_cuda_graph_begin (LaBackend *be, GError **error) { no_cuda (error); return FALSE; }
LaCudaGraph *la_cuda_graph_end (LaBackend *be, GError **error) { no_cuda (error); return NULL; }
gboolean la_cuda_graph_launch (LaCudaGraph *g, GError **error) { no_cuda (error); return FALSE; }
void la_cuda_graph_free (LaCudaGraph *g) {}
LaCudaEvent *la_cuda_event_record (LaBackend *be, GError **error) { no_cuda (error); return NULL; }
gboolean la_cuda_event_wait (LaBackend *be, LaCudaEvent *ev, GError **error) { no_cuda (error); return FALSE; }
gboolean la_cuda_event_query (LaCudaEvent *ev) { return TRUE; }
void la_cuda_event_free (LaCudaEvent *ev) {}
int la_cuda_device_count (void) { return 0; }
const LaBackendOps *la_cuda_ops_table (void) { return NULL; }
