/* GStreamer
 * Copyright (C) 2025 gst-liveavatar contributors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2 of the License, or (at your option) any later version.
 */
/* gstliveavatarcuda.c: video/x-raw(memory:CUDAMemory) output of
 * liveavatarsrc through gstreamer-cuda-1.0 (1.22: unstable API, its headers
 * need the toolkit's cuda.h; libcuda is dlopened by GstCuda, never linked).
 *
 * Context: adopted from downstream (nvh264enc, cudaconvert, cudadownload
 * change state first and already hold one) or from the application, else
 * created and announced, by gst_cuda_ensure_element_context; shared back
 * through CONTEXT queries.  Buffers come from a GstCudaBufferPool on that
 * context, so downstream reads them without a copy across contexts.
 *
 * Fill, two paths:
 *  - device frames (gst_live_avatar_cuda_fill_device): with RGBA or NV12
 *    (BT.601 / BT.709, limited range) negotiated and the engine on a GPU,
 *    the session keeps each frame on its device in that format
 *    (la_session_set_device_frames) and one device-to-device
 *    CuMemcpy2DAsync per plane (unified-address source) writes it into the
 *    pitched planes: no host staging, nothing uploaded;
 *  - host frames (gst_live_avatar_cuda_upload: other formats, or a CPU
 *    engine): the element converts the host RGB frame with the same
 *    GstVideoConverter as the system-memory path into a staging frame in
 *    the negotiated format, copied into the device planes with one
 *    CuMemcpy2DAsync per plane (host -> pitched device rows).  That is
 *    chosen over mapping the GstCudaMemory for WRITE without GST_MAP_CUDA
 *    (host staging that 1.22 uploads lazily at the next CUDA map) because
 *    the upload then runs on our streaming thread, so its cost counts in
 *    our timing and a CUDA failure is reported by this element instead of
 *    surfacing as a map failure in downstream's thread.
 * Both synchronise before the buffer is pushed (1.22 has no cross-element
 * stream ordering, docs/design/element-timing.md §8).  The counts of each
 * are in the element's stats (cuda-frames-uploaded, cuda-frames-device).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstliveavatarcuda.h"

GST_DEBUG_CATEGORY_STATIC (gst_live_avatar_cuda_debug);
#define GST_CAT_DEFAULT gst_live_avatar_cuda_debug

static void
init_debug (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (gst_live_avatar_cuda_debug, "liveavatarcuda", 0,
        "liveavatarsrc CUDA memory output");
    g_once_init_leave (&once, 1);
  }
}

/* Parts that need no GstCuda headers. */

gboolean
gst_live_avatar_caps_are_cuda (const GstCaps * caps)
{
  GstCapsFeatures *f;

  if (!caps || gst_caps_is_empty (caps) || gst_caps_is_any (caps))
    return FALSE;
  f = gst_caps_get_features (caps, 0);
  return f && gst_caps_features_contains (f,
      GST_LIVE_AVATAR_CAPS_FEATURE_CUDA_MEMORY);
}

static gboolean may_offer (GstLiveAvatarCuda * cuda);

GstCaps *
gst_live_avatar_cuda_filter_caps (GstLiveAvatarCuda * cuda, GstCaps * caps)
{
  guint i;

  if (may_offer (cuda))
    return caps;
  caps = gst_caps_make_writable (caps);
  for (i = gst_caps_get_size (caps); i > 0; i--) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i - 1);
    if (f && gst_caps_features_contains (f,
            GST_LIVE_AVATAR_CAPS_FEATURE_CUDA_MEMORY))
      gst_caps_remove_structure (caps, i - 1);
  }
  return caps;
}

#ifdef LA_HAVE_GST_CUDA

#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudacontext.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudautils.h>
#include <gst/cuda/cuda-gst.h>

struct _GstLiveAvatarCuda
{
  GstElement *element;          /* owner, not referenced */
  /* Guards ctx; never held across a GstCuda call that queries peers or
   * posts messages (those can re-enter set_context). */
  GMutex lock;
  GstCudaContext *ctx;
  gboolean opened;              /* between _open and _close */
  gint n_uploaded, n_device;     /* frames filled, by kind (atomic) */
};

/* Before NULL->READY (links made in NULL state, caps queries of an idle
 * element) CUDA memory is offered whenever the driver library loads; from
 * then on only with a context. */
static gboolean
may_offer (GstLiveAvatarCuda * cuda)
{
  gboolean opened, ctx;

  g_mutex_lock (&cuda->lock);
  opened = cuda->opened;
  ctx = cuda->ctx != NULL;
  g_mutex_unlock (&cuda->lock);
  return ctx || (!opened && gst_cuda_load_library ());
}

gboolean
gst_live_avatar_cuda_is_built (void)
{
  return TRUE;
}

GstLiveAvatarCuda *
gst_live_avatar_cuda_new (GstElement * element)
{
  GstLiveAvatarCuda *cuda = g_new0 (GstLiveAvatarCuda, 1);

  init_debug ();
  cuda->element = element;
  g_mutex_init (&cuda->lock);
  return cuda;
}

void
gst_live_avatar_cuda_free (GstLiveAvatarCuda * cuda)
{
  if (!cuda)
    return;
  gst_clear_object (&cuda->ctx);
  g_mutex_clear (&cuda->lock);
  g_free (cuda);
}

static GstCudaContext *
get_context (GstLiveAvatarCuda * cuda)
{
  GstCudaContext *ctx;

  g_mutex_lock (&cuda->lock);
  ctx = cuda->ctx ? gst_object_ref (cuda->ctx) : NULL;
  g_mutex_unlock (&cuda->lock);
  return ctx;
}

static guint
context_device (GstCudaContext * ctx)
{
  guint dev = 0;

  g_object_get (ctx, "cuda-device-id", &dev, NULL);
  return dev;
}

gboolean
gst_live_avatar_cuda_open (GstLiveAvatarCuda * cuda, gint device_id,
    GError ** error)
{
  GstCudaContext *ctx;

  g_mutex_lock (&cuda->lock);
  cuda->opened = TRUE;
  g_mutex_unlock (&cuda->lock);
  if (!gst_cuda_load_library ())
    goto no_library;
  /* The pool's allocator is registered here; nvcodec does the same in its
   * plugin_init, which may not have run in this process. */
  gst_cuda_memory_init_once ();

  /* A context the application set earlier for another device: drop it. */
  g_mutex_lock (&cuda->lock);
  if (cuda->ctx && device_id >= 0 &&
      context_device (cuda->ctx) != (guint) device_id)
    gst_clear_object (&cuda->ctx);
  g_mutex_unlock (&cuda->lock);

  /* Queries downstream then upstream, then asks the application
   * (NEED_CONTEXT); each answer arrives through set_context, which fills
   * cuda->ctx.  Only then does it create a context (and post
   * HAVE_CONTEXT).  Called without cuda->lock for that reason. */
  if (!gst_cuda_ensure_element_context (cuda->element, device_id, &cuda->ctx))
    goto no_context;

  ctx = get_context (cuda);
  GST_INFO_OBJECT (cuda->element, "CUDA memory output on device %u "
      "(context %" GST_PTR_FORMAT ")", context_device (ctx), ctx);
  gst_object_unref (ctx);
  return TRUE;

  /* ERRORS */
no_library:
  {
    GST_INFO_OBJECT (cuda->element, "CUDA driver library not loadable: "
        "system memory output only");
    if (device_id < 0)
      return TRUE;
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
        "cuda-device-id=%d, but the CUDA driver library (libcuda.so.1) "
        "cannot be loaded", device_id);
    return FALSE;
  }
no_context:
  {
    GST_INFO_OBJECT (cuda->element, "no CUDA context for device %d: system "
        "memory output only", device_id);
    if (device_id < 0)
      return TRUE;
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
        "cannot create a CUDA context on device %d", device_id);
    return FALSE;
  }
}

void
gst_live_avatar_cuda_close (GstLiveAvatarCuda * cuda)
{
  GstCudaContext *ctx;

  g_mutex_lock (&cuda->lock);
  ctx = cuda->ctx;
  cuda->ctx = NULL;
  cuda->opened = FALSE;
  g_mutex_unlock (&cuda->lock);
  gst_clear_object (&ctx);
}

gboolean
gst_live_avatar_cuda_is_available (GstLiveAvatarCuda * cuda)
{
  gboolean ret;

  g_mutex_lock (&cuda->lock);
  ret = cuda->ctx != NULL;
  g_mutex_unlock (&cuda->lock);
  return ret;
}

gboolean
gst_live_avatar_cuda_set_context (GstLiveAvatarCuda * cuda,
    GstContext * context, gint device_id)
{
  gboolean ret;

  g_mutex_lock (&cuda->lock);
  /* Keeps a context already held; takes a matching one otherwise. */
  ret = gst_cuda_handle_set_context (cuda->element, context, device_id,
      &cuda->ctx);
  g_mutex_unlock (&cuda->lock);
  return ret;
}

gboolean
gst_live_avatar_cuda_handle_context_query (GstLiveAvatarCuda * cuda,
    GstQuery * query)
{
  GstCudaContext *ctx = get_context (cuda);
  gboolean ret;

  if (!ctx)
    return FALSE;
  ret = gst_cuda_handle_context_query (cuda->element, query, ctx);
  gst_object_unref (ctx);
  return ret;
}

GstBufferPool *
gst_live_avatar_cuda_decide_allocation (GstLiveAvatarCuda * cuda,
    GstQuery * query, GstCaps * caps, const GstVideoInfo * info)
{
  GstCudaContext *ctx = get_context (cuda);
  GstBufferPool *pool = NULL;
  GstStructure *config;
  guint size = GST_VIDEO_INFO_SIZE (info), min = 0, max = 0;

  if (!ctx)
    return NULL;

  /* nvh264enc and cudadownload propose their own CUDA pool: use it only if
   * it lives on our context (gstcudamemorycopy.c does the same). */
  if (query && gst_query_get_n_allocation_pools (query) > 0) {
    gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
    if (pool && (!GST_IS_CUDA_BUFFER_POOL (pool) ||
            GST_CUDA_BUFFER_POOL (pool)->context != ctx)) {
      GST_DEBUG_OBJECT (cuda->element, "ignoring downstream pool %"
          GST_PTR_FORMAT " (not a CUDA pool on our context)", pool);
      gst_clear_object (&pool);
    }
  }
  if (!pool) {
    pool = gst_cuda_buffer_pool_new (ctx);
    size = GST_VIDEO_INFO_SIZE (info);
  }
  size = MAX (size, GST_VIDEO_INFO_SIZE (info));

  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, size, min, max);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, config)) {
    /* The pool changed our request (pitched planes): accept what it
     * validated. */
    config = gst_buffer_pool_get_config (pool);
    if (!gst_buffer_pool_set_config (pool, config))
      goto config_failed;
  }
  gst_object_unref (ctx);
  return pool;

  /* ERRORS */
config_failed:
  {
    GST_WARNING_OBJECT (cuda->element, "CUDA pool refused %" GST_PTR_FORMAT,
        caps);
    gst_object_unref (pool);
    gst_object_unref (ctx);
    return NULL;
  }
}

static gboolean
cuda_ok (CUresult res, const gchar * what, GError ** error)
{
  const gchar *name = NULL;

  if (res == CUDA_SUCCESS)
    return TRUE;
  CuGetErrorName (res, &name);
  g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
      "%s failed: %s (%d)", what, name ? name : "unknown CUDA error", res);
  return FALSE;
}

/* A host frame (already in the negotiated format) into the device planes. */
static gboolean
copy_planes (const GstVideoFrame * src, GstVideoFrame * dframe,
    GError ** error)
{
  guint p;

  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (src); p++) {
    CUDA_MEMCPY2D c = { 0 };
    gint comp[GST_VIDEO_MAX_COMPONENTS];

    /* Row bytes of the plane from its first component: NV12's UV plane is
     * width/2 pairs of 2 bytes, I420's U plane width/2 bytes. */
    gst_video_format_info_component (src->info.finfo, p, comp);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = GST_VIDEO_FRAME_PLANE_DATA (src, p);
    c.srcPitch = GST_VIDEO_FRAME_PLANE_STRIDE (src, p);
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = (CUdeviceptr) GST_VIDEO_FRAME_PLANE_DATA (dframe, p);
    c.dstPitch = GST_VIDEO_FRAME_PLANE_STRIDE (dframe, p);
    c.WidthInBytes = GST_VIDEO_FRAME_COMP_WIDTH (src, comp[0]) *
        GST_VIDEO_FRAME_COMP_PSTRIDE (src, comp[0]);
    c.Height = GST_VIDEO_FRAME_COMP_HEIGHT (src, comp[0]);
    if (!cuda_ok (CuMemcpy2DAsync (&c, NULL), "CuMemcpy2DAsync", error))
      return FALSE;
  }
  /* No stream ordering between elements in 1.22: finish before the push. */
  return cuda_ok (CuStreamSynchronize (NULL), "CuStreamSynchronize", error);
}

gboolean
gst_live_avatar_cuda_upload (GstLiveAvatarCuda * cuda,
    const GstVideoFrame * src, GstBuffer * dst, GError ** error)
{
  GstMemory *mem = gst_buffer_peek_memory (dst, 0);
  GstCudaContext *ctx;
  GstVideoFrame dframe;
  gboolean ok;

  if (!gst_is_cuda_memory (mem)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "output buffer is not CUDA memory");
    return FALSE;
  }
  /* The memory's own context: the pool's, which is ours or shared. */
  ctx = GST_CUDA_MEMORY_CAST (mem)->context;
  if (!gst_video_frame_map (&dframe, &src->info, dst,
          GST_MAP_WRITE | GST_MAP_CUDA)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "cannot map the CUDA output buffer");
    return FALSE;
  }
  if (!gst_cuda_context_push (ctx)) {
    gst_video_frame_unmap (&dframe);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "cannot make the CUDA context current");
    return FALSE;
  }
  ok = copy_planes (src, &dframe, error);
  gst_cuda_context_pop (NULL);
  gst_video_frame_unmap (&dframe);
  if (ok)
    g_atomic_int_inc (&cuda->n_uploaded);
  return ok;
}

gboolean
gst_live_avatar_cuda_fill_device (GstLiveAvatarCuda * cuda,
    const GstVideoInfo * info, void *const planes[], const gint pitches[],
    GstBuffer * dst, GError ** error)
{
  GstMemory *mem = gst_buffer_peek_memory (dst, 0);
  GstVideoFrame dframe;
  gboolean ok = TRUE;
  guint p;

  if (!gst_is_cuda_memory (mem)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "output buffer is not CUDA memory");
    return FALSE;
  }
  if (!gst_video_frame_map (&dframe, info, dst,
          GST_MAP_WRITE | GST_MAP_CUDA)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "cannot map the CUDA output buffer");
    return FALSE;
  }
  if (!gst_cuda_context_push (GST_CUDA_MEMORY_CAST (mem)->context)) {
    gst_video_frame_unmap (&dframe);
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "cannot make the CUDA context current");
    return FALSE;
  }
  for (p = 0; ok && p < GST_VIDEO_FRAME_N_PLANES (&dframe); p++) {
    CUDA_MEMCPY2D c = { 0 };
    gint comp[GST_VIDEO_MAX_COMPONENTS];

    gst_video_format_info_component (dframe.info.finfo, p, comp);
    /* The engine's memory belongs to the CUDA runtime's (primary)
     * context, the pool's to ours (GstCuda 1.22 makes its own with
     * cuCtxCreate, or adopts downstream's): a unified-address source lets
     * the driver find the owner, so this is an on-device copy on the same
     * GPU and a peer copy from another one.  No kernel of ours touches the
     * pool's memory, which another context could not address. */
    c.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
    c.srcDevice = (CUdeviceptr) planes[p];
    c.srcPitch = pitches[p];
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = (CUdeviceptr) GST_VIDEO_FRAME_PLANE_DATA (&dframe, p);
    c.dstPitch = GST_VIDEO_FRAME_PLANE_STRIDE (&dframe, p);
    c.WidthInBytes = GST_VIDEO_FRAME_COMP_WIDTH (&dframe, comp[0]) *
        GST_VIDEO_FRAME_COMP_PSTRIDE (&dframe, comp[0]);
    c.Height = GST_VIDEO_FRAME_COMP_HEIGHT (&dframe, comp[0]);
    ok = cuda_ok (CuMemcpy2DAsync (&c, NULL),
        "CuMemcpy2DAsync (device frame)", error);
  }
  ok = ok && cuda_ok (CuStreamSynchronize (NULL), "CuStreamSynchronize",
      error);
  gst_cuda_context_pop (NULL);
  gst_video_frame_unmap (&dframe);
  if (ok)
    g_atomic_int_inc (&cuda->n_device);
  return ok;
}

void
gst_live_avatar_cuda_get_counts (GstLiveAvatarCuda * cuda, guint64 * uploaded,
    guint64 * device)
{
  *uploaded = (guint) g_atomic_int_get (&cuda->n_uploaded);
  *device = (guint) g_atomic_int_get (&cuda->n_device);
}

#else /* !LA_HAVE_GST_CUDA */

/* Built without gstreamer-cuda-1.0: no context, ever; the element offers
 * system memory only. */
struct _GstLiveAvatarCuda
{
  GstElement *element;
};

static gboolean
may_offer (GstLiveAvatarCuda * cuda)
{
  return FALSE;
}

gboolean
gst_live_avatar_cuda_is_built (void)
{
  return FALSE;
}

GstLiveAvatarCuda *
gst_live_avatar_cuda_new (GstElement * element)
{
  GstLiveAvatarCuda *cuda = g_new0 (GstLiveAvatarCuda, 1);

  init_debug ();
  cuda->element = element;
  return cuda;
}

void
gst_live_avatar_cuda_free (GstLiveAvatarCuda * cuda)
{
  g_free (cuda);
}

gboolean
gst_live_avatar_cuda_open (GstLiveAvatarCuda * cuda, gint device_id,
    GError ** error)
{
  if (device_id < 0)
    return TRUE;
  g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
      "cuda-device-id=%d, but this plugin was built without "
      "gstreamer-cuda-1.0", device_id);
  return FALSE;
}

void
gst_live_avatar_cuda_close (GstLiveAvatarCuda * cuda)
{
}

gboolean
gst_live_avatar_cuda_is_available (GstLiveAvatarCuda * cuda)
{
  return FALSE;
}

gboolean
gst_live_avatar_cuda_set_context (GstLiveAvatarCuda * cuda,
    GstContext * context, gint device_id)
{
  return FALSE;
}

gboolean
gst_live_avatar_cuda_handle_context_query (GstLiveAvatarCuda * cuda,
    GstQuery * query)
{
  return FALSE;
}

GstBufferPool *
gst_live_avatar_cuda_decide_allocation (GstLiveAvatarCuda * cuda,
    GstQuery * query, GstCaps * caps, const GstVideoInfo * info)
{
  return NULL;
}

gboolean
gst_live_avatar_cuda_upload (GstLiveAvatarCuda * cuda,
    const GstVideoFrame * src, GstBuffer * dst, GError ** error)
{
  g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
      "built without gstreamer-cuda-1.0");
  return FALSE;
}

gboolean
gst_live_avatar_cuda_fill_device (GstLiveAvatarCuda * cuda,
    const GstVideoInfo * info, void *const planes[], const gint pitches[],
    GstBuffer * dst, GError ** error)
{
  g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
      "built without gstreamer-cuda-1.0");
  return FALSE;
}

void
gst_live_avatar_cuda_get_counts (GstLiveAvatarCuda * cuda, guint64 * uploaded,
    guint64 * device)
{
  *uploaded = *device = 0;
}

#endif /* LA_HAVE_GST_CUDA */
