/* GStreamer
 * Copyright (C) 2025 gst-liveavatar contributors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2 of the License, or (at your option) any later version.
 */
/* gstliveavatarcuda.h: the CUDA-memory output of liveavatarsrc, behind a
 * small interface so the element has no #ifdefs.  Built against
 * gstreamer-cuda-1.0 when meson finds it (LA_HAVE_GST_CUDA); otherwise every
 * call reports "no CUDA" and the element negotiates system memory only.
 *
 * Life cycle, all from the element:
 *   _new (in init) ... _free (in finalize)
 *   _open (NULL->READY): load libcuda through GstCuda and find (or make) the
 *     GstCudaContext, adopting the one downstream or the application shares;
 *   _set_context / _handle_context_query: GstContext sharing at any time;
 *   _filter_caps (src CAPS query): keep memory:CUDAMemory while the
 *     driver library loads (NULL state) or a context is held (after open);
 *   _decide_allocation + _upload or _fill_device (streaming thread) when
 *     CUDAMemory caps are negotiated (_fill_device: device frames, RGBA);
 *   _close (READY->NULL): drop the context.
 */
#ifndef __GST_LIVE_AVATAR_CUDA_H__
#define __GST_LIVE_AVATAR_CUDA_H__

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* The caps feature string, usable without the GstCuda headers (it is
 * GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY of gst/cuda/gstcudamemory.h). */
#define GST_LIVE_AVATAR_CAPS_FEATURE_CUDA_MEMORY "memory:CUDAMemory"

typedef struct _GstLiveAvatarCuda GstLiveAvatarCuda;

GstLiveAvatarCuda *gst_live_avatar_cuda_new (GstElement * element);
void gst_live_avatar_cuda_free (GstLiveAvatarCuda * cuda);

/* TRUE when this build can output CUDA memory at all. */
gboolean gst_live_avatar_cuda_is_built (void);

/* NULL->READY.  @device_id -1: optional, any device (a failure only leaves
 * CUDA memory out of the caps).  >= 0: that device is required; FALSE with
 * @error set when it cannot be used. */
gboolean gst_live_avatar_cuda_open (GstLiveAvatarCuda * cuda, gint device_id,
    GError ** error);
void gst_live_avatar_cuda_close (GstLiveAvatarCuda * cuda);

/* TRUE while a CUDA context is held (CUDA memory can be offered). */
gboolean gst_live_avatar_cuda_is_available (GstLiveAvatarCuda * cuda);

/* For GstElement::set_context and the pads' CONTEXT queries; FALSE when the
 * context or query is not a CUDA one we can use or answer. */
gboolean gst_live_avatar_cuda_set_context (GstLiveAvatarCuda * cuda,
    GstContext * context, gint device_id);
gboolean gst_live_avatar_cuda_handle_context_query (GstLiveAvatarCuda * cuda,
    GstQuery * query);

/* Transfer full in and out: @caps without its memory:CUDAMemory structures
 * unless a context is held, or (before _open) the driver library loads. */
GstCaps *gst_live_avatar_cuda_filter_caps (GstLiveAvatarCuda * cuda,
    GstCaps * caps);

/* TRUE when the first structure of @caps has memory:CUDAMemory. */
gboolean gst_live_avatar_caps_are_cuda (const GstCaps * caps);

/* A configured (inactive) GstCudaBufferPool for @caps on our context: the
 * one downstream proposes in @query when it shares the context, else a new
 * one.  NULL on failure. */
GstBufferPool *gst_live_avatar_cuda_decide_allocation (GstLiveAvatarCuda *
    cuda, GstQuery * query, GstCaps * caps, const GstVideoInfo * info);

/* Copies the host frame @src (mapped, in the negotiated format) into @dst, a
 * buffer of the pool above; the copy is complete on the device when this
 * returns.  FALSE with @error on a CUDA failure. */
gboolean gst_live_avatar_cuda_upload (GstLiveAvatarCuda * cuda,
    const GstVideoFrame * src, GstBuffer * dst, GError ** error);

/* Copies a frame that is already on a CUDA device, in the negotiated format
 * (@planes / @pitches: the engine's device frames, RGBA or NV12), into @dst,
 * a buffer of the pool above: one device-to-device CuMemcpy2DAsync per plane
 * on our context, synchronised before returning — no host staging.  FALSE
 * with @error on a CUDA failure. */
gboolean gst_live_avatar_cuda_fill_device (GstLiveAvatarCuda * cuda,
    const GstVideoInfo * info, void *const planes[], const gint pitches[],
    GstBuffer * dst, GError ** error);

/* Frames written so far: @uploaded from the host (gst_live_avatar_cuda_upload),
 * @device copied device-to-device (gst_live_avatar_cuda_fill_device). */
void gst_live_avatar_cuda_get_counts (GstLiveAvatarCuda * cuda,
    guint64 * uploaded, guint64 * device);

G_END_DECLS
#endif /* __GST_LIVE_AVATAR_CUDA_H__ */
