/* la-error.h — the engine's GError domain.
 *
 * The library never aborts or exits on bad input: every failure that a
 * caller can cause (a file, a tensor, an argument) comes back as a GError in
 * this domain, with a message naming what is at fault.
 */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

#define LA_ERROR (la_error_quark ())
GQuark la_error_quark (void);

typedef enum {
  LA_ERROR_FAILED,        /* anything not covered below */
  LA_ERROR_IO,            /* a file could not be opened, read or mapped */
  LA_ERROR_NOT_FOUND,     /* a file, folder or tensor is missing */
  LA_ERROR_FORMAT,        /* a file is malformed (header, offsets, pickle) */
  LA_ERROR_UNSUPPORTED,   /* well-formed but outside what the engine handles */
  LA_ERROR_SHAPE,         /* a tensor has the wrong shape or dtype */
  LA_ERROR_INVALID_ARG,   /* a caller passed a bad argument */
  LA_ERROR_DEVICE,        /* a backend/device failure (CUDA, NCCL, OOM) */
  LA_ERROR_NOT_IMPLEMENTED,
} LaErrorCode;

G_END_DECLS
