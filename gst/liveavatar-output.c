/* liveavatar-output.c — the output side of liveavatarsrc: caps
 * negotiation with downstream (fixated to the model's size, 25/1, square
 * pixels), the buffer pool (downstream's, a video pool, or CUDA memory on
 * the shared context) and the conversion of the session's packed RGB frames
 * into the negotiated format.  Runs on the streaming task only.
 */
#include "liveavatar-output.h"
#include "liveavatar-timeline.h"

GST_DEBUG_CATEGORY_EXTERN (gst_live_avatar_src_debug);
#define GST_CAT_DEFAULT gst_live_avatar_src_debug

void
la_output_init (LaOutput * o, GstElement * element, GstPad * srcpad,
    GstLiveAvatarCuda * cuda)
{
  memset (o, 0, sizeof *o);
  o->element = element;
  o->srcpad = srcpad;
  o->cuda = cuda;
}

void
la_output_clear (LaOutput * o)
{
  la_output_release (o);
  g_clear_pointer (&o->error, g_free);
}

void
la_output_release (LaOutput * o)
{
  if (o->pool) {
    gst_buffer_pool_set_active (o->pool, FALSE);
    gst_clear_object (&o->pool);
  }
  g_clear_pointer (&o->convert, gst_video_converter_free);
  gst_clear_buffer (&o->staging);
  o->cuda_output = FALSE;
  o->negotiated = FALSE;
}

/* Why nothing downstream takes could be negotiated, in words for the
 * error message; NULL when the general message will do. */
static gchar *
explain_no_caps (LaOutput * o)
{
  GstCaps *peer = gst_pad_peer_query_caps (o->srcpad, NULL);
  gboolean only_cuda = TRUE;
  guint i;

  if (!peer || gst_caps_is_empty (peer) || gst_caps_is_any (peer))
    only_cuda = FALSE;
  for (i = 0; only_cuda && i < gst_caps_get_size (peer); i++) {
    GstCapsFeatures *f = gst_caps_get_features (peer, i);
    only_cuda = f && gst_caps_features_contains (f,
        GST_LIVE_AVATAR_CAPS_FEATURE_CUDA_MEMORY);
  }
  gst_clear_caps (&peer);
  if (!only_cuda || gst_live_avatar_cuda_is_available (o->cuda))
    return NULL;
  return g_strdup_printf ("Downstream only accepts video/x-raw(%s), and "
      "CUDA is not available (%s)", GST_LIVE_AVATAR_CAPS_FEATURE_CUDA_MEMORY,
      gst_live_avatar_cuda_is_built ()? "no usable CUDA driver or device" :
      "plugin built without gstreamer-cuda-1.0");
}

/* System memory: a downstream pool if offered, else a video pool. */
static GstBufferPool *
decide_sysmem_pool (LaOutput * o, GstQuery * query, GstCaps * caps)
{
  GstBufferPool *pool = NULL;
  GstStructure *config;
  guint size = GST_VIDEO_INFO_SIZE (&o->vinfo), min = 0, max = 0;

  if (gst_query_get_n_allocation_pools (query) > 0) {
    gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
    size = MAX (size, GST_VIDEO_INFO_SIZE (&o->vinfo));
  }
  if (!pool)
    pool = gst_video_buffer_pool_new ();
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, size, min, max);
  if (gst_query_find_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL))
    gst_buffer_pool_config_add_option (config,
        GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, config)) {
    /* The pool changed our request: accept what it validated. */
    config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_set_config (pool, config);
  }
  return pool;
}

gboolean
la_output_negotiate (LaOutput * o, gint w, gint h)
{
  GstCaps *caps, *peer;
  GstStructure *s;
  GstQuery *query;
  GstBufferPool *pool = NULL;
  g_clear_pointer (&o->error, g_free);

  gst_pad_check_reconfigure (o->srcpad);     /* clear the flag */
  /* Our CAPS query leaves memory:CUDAMemory out unless a CUDA context is
   * held, so this is system memory only without a driver. */
  peer = gst_pad_get_allowed_caps (o->srcpad);
  if (!peer || gst_caps_is_empty (peer)) {
    gst_clear_caps (&peer);
    o->error = explain_no_caps (o);
    goto no_caps;
  }
  caps = gst_caps_truncate (peer);
  caps = gst_caps_make_writable (caps);
  s = gst_caps_get_structure (caps, 0);
  gst_structure_fixate_field_nearest_int (s, "width", w);
  gst_structure_fixate_field_nearest_int (s, "height", h);
  gst_structure_fixate_field_nearest_fraction (s, "framerate", LA_TIMELINE_FPS, 1);
  if (gst_structure_has_field (s, "pixel-aspect-ratio"))
    gst_structure_fixate_field_nearest_fraction (s, "pixel-aspect-ratio", 1,
        1);
  caps = gst_caps_fixate (caps);

  if (!gst_video_info_from_caps (&o->vinfo, caps) ||
      GST_VIDEO_INFO_WIDTH (&o->vinfo) != w ||
      GST_VIDEO_INFO_HEIGHT (&o->vinfo) != h ||
      GST_VIDEO_INFO_FPS_N (&o->vinfo) != LA_TIMELINE_FPS ||
      GST_VIDEO_INFO_FPS_D (&o->vinfo) != 1) {
    GST_DEBUG_OBJECT (o->element, "unusable caps %" GST_PTR_FORMAT, caps);
    gst_caps_unref (caps);
    goto no_caps;
  }
  GST_DEBUG_OBJECT (o->element, "output caps %" GST_PTR_FORMAT, caps);
  if (!gst_pad_set_caps (o->srcpad, caps)) {
    gst_caps_unref (caps);
    goto no_caps;
  }

  /* Packed RGB8 frames of the session (stride 3*width, unpadded). */
  gst_video_info_set_format (&o->rgbinfo, GST_VIDEO_FORMAT_RGB, w, h);
  o->rgbinfo.stride[0] = 3 * w;
  o->rgbinfo.size = (gsize) 3 * w * h;
  GST_VIDEO_INFO_FPS_N (&o->rgbinfo) = GST_VIDEO_INFO_FPS_N (&o->vinfo);
  GST_VIDEO_INFO_FPS_D (&o->rgbinfo) = GST_VIDEO_INFO_FPS_D (&o->vinfo);
  GST_VIDEO_INFO_PAR_N (&o->rgbinfo) = GST_VIDEO_INFO_PAR_N (&o->vinfo);
  GST_VIDEO_INFO_PAR_D (&o->rgbinfo) = GST_VIDEO_INFO_PAR_D (&o->vinfo);
  g_clear_pointer (&o->convert, gst_video_converter_free);
  o->convert = gst_video_converter_new (&o->rgbinfo, &o->vinfo,
      NULL);
  if (!o->convert) {
    gst_caps_unref (caps);
    goto no_caps;
  }

  /* Allocation: CUDA memory on the (shared) context, or system memory.
   * CUDA frames are converted on the host into @staging, then uploaded
   * (gst_live_avatar_cuda_upload). */
  o->cuda_output = gst_live_avatar_caps_are_cuda (caps);
  gst_clear_buffer (&o->staging);
  query = gst_query_new_allocation (caps, TRUE);
  if (!gst_pad_peer_query (o->srcpad, query))
    GST_DEBUG_OBJECT (o->element, "ALLOCATION query not answered");
  if (o->cuda_output) {
    pool = gst_live_avatar_cuda_decide_allocation (o->cuda, query, caps,
        &o->vinfo);
    o->staging = gst_buffer_new_allocate (NULL,
        GST_VIDEO_INFO_SIZE (&o->vinfo), NULL);
  } else {
    pool = decide_sysmem_pool (o, query, caps);
  }
  gst_query_unref (query);
  gst_caps_unref (caps);

  if (o->pool) {
    gst_buffer_pool_set_active (o->pool, FALSE);
    gst_object_unref (o->pool);
  }
  o->pool = pool;
  if (!pool || !gst_buffer_pool_set_active (pool, TRUE)) {
    o->error = g_strdup (o->cuda_output ?
        "Cannot allocate CUDA output buffers" :
        "Cannot allocate output buffers");
    goto no_caps;
  }
  o->negotiated = TRUE;
  return TRUE;

  /* ERRORS */
no_caps:
  {
    gst_pad_mark_reconfigure (o->srcpad);
    return FALSE;
  }
}

/* Converts the session's RGB frame into the negotiated format: into a pool
 * buffer for system memory; for CUDA memory into the host staging frame,
 * which is then copied into a CUDA pool buffer.  One conversion code path
 * for both. */
GstBuffer *
la_output_render (LaOutput * o, const guint8 * rgb, gint w, gint h)
{
  GstBuffer *in, *target, *out = NULL;
  GstVideoFrame in_frame, out_frame;
  GError *err = NULL;

  if (w != GST_VIDEO_INFO_WIDTH (&o->rgbinfo) ||
      h != GST_VIDEO_INFO_HEIGHT (&o->rgbinfo)) {
    GST_ERROR_OBJECT (o->element, "frame of %dx%d, negotiated %dx%d", w, h,
        GST_VIDEO_INFO_WIDTH (&o->rgbinfo),
        GST_VIDEO_INFO_HEIGHT (&o->rgbinfo));
    return NULL;
  }
  if (gst_buffer_pool_acquire_buffer (o->pool, &out, NULL) != GST_FLOW_OK)
    return NULL;
  target = o->cuda_output ? o->staging : out;
  in = gst_buffer_new_wrapped_full (GST_MEMORY_FLAG_READONLY, (gpointer) rgb,
      o->rgbinfo.size, 0, o->rgbinfo.size, NULL, NULL);
  gst_video_frame_map (&in_frame, &o->rgbinfo, in, GST_MAP_READ);
  if (!gst_video_frame_map (&out_frame, &o->vinfo, target,
          o->cuda_output ? GST_MAP_READWRITE : GST_MAP_WRITE)) {
    gst_video_frame_unmap (&in_frame);
    gst_buffer_unref (in);
    gst_buffer_unref (out);
    return NULL;
  }
  gst_video_converter_frame (o->convert, &in_frame, &out_frame);
  gst_video_frame_unmap (&in_frame);
  gst_buffer_unref (in);
  if (o->cuda_output &&
      !gst_live_avatar_cuda_upload (o->cuda, &out_frame, out, &err)) {
    GST_ERROR_OBJECT (o->element, "CUDA upload: %s", err->message);
    g_clear_error (&err);
    gst_buffer_replace (&out, NULL);
  }
  gst_video_frame_unmap (&out_frame);
  return out;
}

