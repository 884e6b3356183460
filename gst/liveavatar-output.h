/* liveavatar-output.h — liveavatarsrc's output side: negotiation, pool and
 * RGB conversion (liveavatar-output.c).  Task thread only, no locking. */
#pragma once
#include <string.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include "gstliveavatarcuda.h"

G_BEGIN_DECLS

typedef struct
{
  GstElement *element;          /* for logs (not owned) */
  GstPad *srcpad;               /* not owned */
  GstLiveAvatarCuda *cuda;      /* not owned */
  GstVideoInfo vinfo;           /* negotiated */
  GstVideoInfo rgbinfo;         /* the session's packed RGB8 frames */
  gboolean negotiated;
  GstBufferPool *pool;
  GstVideoConverter *convert;
  gboolean cuda_output;         /* memory:CUDAMemory negotiated */
  GstBuffer *staging;           /* host frame in the output format (CUDA) */
  gchar *error;                 /* user text for a failed negotiation */
} LaOutput;

void la_output_init (LaOutput * o, GstElement * element, GstPad * srcpad,
    GstLiveAvatarCuda * cuda);
/* Negotiates @w x @h at 25/1 with downstream and sets up the pool.  On
 * failure marks the pad for reconfiguration; o->error may say why. */
gboolean la_output_negotiate (LaOutput * o, gint w, gint h);
/* A new buffer holding @rgb (packed, @w x @h) in the negotiated format;
 * NULL on a size mismatch or allocation/upload failure. */
GstBuffer *la_output_render (LaOutput * o, const guint8 * rgb, gint w,
    gint h);
/* Drops the pool and converter (PAUSED->READY). */
void la_output_release (LaOutput * o);
void la_output_clear (LaOutput * o);

G_END_DECLS
