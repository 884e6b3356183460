/* la-device.h — one device name of the engine's lists ("cpu", "cuda",
 * "cuda:N") and the backend it opens, with the resident precision of the
 * weights set, for the session's stages and the TPP stage worker alike. */
#pragma once
#include "liveavatar/la-backend.h"
#include "liveavatar/la-weights.h"

G_BEGIN_DECLS

/* TRUE for "cpu" (*cuda_ordinal = -1), "cuda" (0) or "cuda:N" (N). */
gboolean   la_device_parse (const char *name, int *cuda_ordinal);
/* The backend of `name` (CPU: n_threads, 0 = all cores; CUDA: its weights
 * mode from `weights`).  fp8 on the CPU is refused (no FP8 GEMM there).
 * Errors name the device. */
LaBackend *la_device_open (const char *name, LaWeights weights, int n_threads, GError **error);

G_END_DECLS
