/* test-liveavatarsrc-cuda.c — liveavatarsrc's video/x-raw(memory:CUDAMemory)
 * output on a machine with a CUDA driver and device, or in the emulated
 * build on its driver API (cuda/emu/driver.cc, found through the test's
 * LD_LIBRARY_PATH); exits 77, skipped, anywhere else (no libcuda, no
 * device, or no cudadownload element).
 *
 * Uses the mock-session plugin (patterned frames, deterministic):
 *  - `liveavatarsrc ! video/x-raw(memory:CUDAMemory),format=F ! cudadownload`
 *    gives the same pixels as the system-memory output in F, for RGBA
 *    and NV12 (the host conversion is shared; this checks the upload into
 *    pitched device planes);
 *  - the element adopts cudadownload's GstCudaContext (the same object
 *    answers both elements' CONTEXT queries) and every buffer it pushes is
 *    CUDA memory on that context.
 * Run with CK_FORK=no (set by meson): CUDA init and fork do not mix.
 */
#include "la-gst-test.h"
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudacontext.h>
#include <gst/cuda/gstcudamemory.h>

#define N_SAMPLES (2 * 48 * SPF)        /* 93 frames */

/* liveavatarsrc ! capsfilter(CUDA, @format) ! cudadownload, as one bin with
 * ghost pads, for a harness. */
static GstElement *
make_cuda_bin (const gchar * format, GstElement ** src, GstElement ** down)
{
  GstElement *bin = gst_bin_new (NULL);
  GstElement *filter = gst_element_factory_make ("capsfilter", NULL);
  gchar *cs = g_strdup_printf ("video/x-raw(memory:CUDAMemory),format=%s",
      format);
  GstCaps *caps = gst_caps_from_string (cs);
  GstPad *pad;

  *src = make_element ();
  *down = gst_element_factory_make ("cudadownload", NULL);
  fail_unless (filter && *down);
  g_object_set (filter, "caps", caps, NULL);
  gst_caps_unref (caps);
  g_free (cs);
  gst_bin_add_many (GST_BIN (bin), *src, filter, *down, NULL);
  fail_unless (gst_element_link_many (*src, filter, *down, NULL));
  pad = gst_element_get_static_pad (*src, "sink");
  gst_element_add_pad (bin, gst_ghost_pad_new ("sink", pad));
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (*down, "src");
  gst_element_add_pad (bin, gst_ghost_pad_new ("src", pad));
  gst_object_unref (pad);
  return bin;
}

static GPtrArray *
run (GstHarness * h, const gchar * format)
{
  gchar *cs = g_strdup_printf ("video/x-raw,format=%s", format);

  gst_harness_set_live (h, FALSE);
  gst_harness_set_src_caps_str (h, AUDIO_CAPS);
  gst_harness_set_sink_caps_str (h, cs);
  g_free (cs);
  fail_unless_equals_int (push_audio (h, 0, N_SAMPLES, 1600, FALSE),
      GST_FLOW_OK);
  gst_harness_push_event (h, gst_event_new_eos ());
  return pull_all (h);
}

/* Every plane row of @a and @b equal over the visible bytes. */
static void
assert_frames_equal (GstBuffer * a, GstBuffer * b, const GstVideoInfo * info,
    guint index)
{
  GstVideoFrame fa, fb;
  guint p, y;

  fail_unless (gst_video_frame_map (&fa, info, a, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&fb, info, b, GST_MAP_READ));
  for (p = 0; p < GST_VIDEO_FRAME_N_PLANES (&fa); p++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    gsize row;
    guint rows;

    gst_video_format_info_component (info->finfo, p, comp);
    row = GST_VIDEO_FRAME_COMP_WIDTH (&fa, comp[0]) *
        GST_VIDEO_FRAME_COMP_PSTRIDE (&fa, comp[0]);
    rows = GST_VIDEO_FRAME_COMP_HEIGHT (&fa, comp[0]);
    for (y = 0; y < rows; y++) {
      const guint8 *ra = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&fa, p) +
          y * GST_VIDEO_FRAME_PLANE_STRIDE (&fa, p);
      const guint8 *rb = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&fb, p) +
          y * GST_VIDEO_FRAME_PLANE_STRIDE (&fb, p);
      fail_unless (memcmp (ra, rb, row) == 0,
          "frame %u plane %u row %u differs", index, p, y);
    }
  }
  gst_video_frame_unmap (&fa);
  gst_video_frame_unmap (&fb);
}

/* The context a pad's CONTEXT query answers, or NULL. */
static GstCudaContext *
query_cuda_context (GstPad * pad)
{
  GstQuery *q = gst_query_new_context (GST_CUDA_CONTEXT_TYPE);
  GstContext *ctx = NULL;
  GstCudaContext *cuda = NULL;

  if (gst_pad_query (pad, q)) {
    gst_query_parse_context (q, &ctx);
    if (ctx)
      gst_structure_get (gst_context_get_structure (ctx),
          GST_CUDA_CONTEXT_TYPE, GST_TYPE_CUDA_CONTEXT, &cuda, NULL);
  }
  gst_query_unref (q);
  return cuda;
}

typedef struct
{
  GstCudaContext *want;
  guint buffers, wrong;
} MemCheck;

static GstPadProbeReturn
check_memory (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  MemCheck *mc = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstMemory *mem = gst_buffer_peek_memory (buf, 0);

  mc->buffers++;
  if (!gst_is_cuda_memory (mem) ||
      GST_CUDA_MEMORY_CAST (mem)->context != mc->want)
    mc->wrong++;
  return GST_PAD_PROBE_OK;
}

static void
check_format (const gchar * format)
{
  GstElement *src, *down, *bin;
  GstHarness *hs, *hc;
  GPtrArray *sys, *dev;
  GstCaps *caps;
  GstVideoInfo info;
  GstPad *src_pad, *down_sink, *down_src;
  GstCudaContext *ours, *theirs;
  MemCheck mc = { NULL, 0, 0 };
  guint i;

  /* Reference: system memory. */
  hs = make_harness (FALSE, NULL);
  sys = run (hs, format);
  caps = gst_pad_get_current_caps (hs->sinkpad);
  fail_unless (gst_video_info_from_caps (&info, caps));
  gst_caps_unref (caps);

  /* CUDA memory through cudadownload. */
  bin = make_cuda_bin (format, &src, &down);
  hc = gst_harness_new_with_element (bin, "sink", "src");
  src_pad = gst_element_get_static_pad (src, "src");
  down_sink = gst_element_get_static_pad (down, "sink");
  down_src = gst_element_get_static_pad (down, "src");

  /* Shared context: ours is cudadownload's (adopted in NULL->READY). */
  ours = query_cuda_context (src_pad);
  theirs = query_cuda_context (down_src);
  fail_unless (ours != NULL, "liveavatarsrc holds no CUDA context");
  fail_unless (theirs != NULL, "cudadownload holds no CUDA context");
  fail_unless (ours == theirs, "contexts differ: %p vs %p", ours, theirs);
  mc.want = ours;
  gst_pad_add_probe (down_sink, GST_PAD_PROBE_TYPE_BUFFER, check_memory, &mc,
      NULL);

  dev = run (hc, format);
  caps = gst_pad_get_current_caps (src_pad);
  fail_unless (caps != NULL);
  fail_unless (gst_caps_features_contains (gst_caps_get_features (caps, 0),
          GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref (caps);

  fail_unless_equals_int (dev->len, 48 * 2 - 3);
  fail_unless_equals_int (sys->len, dev->len);
  fail_unless_equals_int (mc.buffers, dev->len);
  fail_unless_equals_int (mc.wrong, 0);
  check_grid (dev, 0, 3);
  for (i = 0; i < dev->len; i++)
    assert_frames_equal (g_ptr_array_index (sys, i),
        g_ptr_array_index (dev, i), &info, i);

  gst_object_unref (ours);
  gst_object_unref (theirs);
  gst_object_unref (src_pad);
  gst_object_unref (down_sink);
  gst_object_unref (down_src);
  g_ptr_array_unref (sys);
  g_ptr_array_unref (dev);
  gst_harness_teardown (hs);
  gst_harness_teardown (hc);
  gst_object_unref (bin);
}

GST_START_TEST (test_cuda_rgba)
{
  check_format ("RGBA");
}

GST_END_TEST;

GST_START_TEST (test_cuda_nv12)
{
  check_format ("NV12");
}

GST_END_TEST;

/* With a CUDA driver, the src CAPS query offers CUDA memory first. */
GST_START_TEST (test_cuda_caps_offered)
{
  GstElement *e = make_element ();
  GstPad *src = gst_element_get_static_pad (e, "src");
  GstCaps *caps;

  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  caps = gst_pad_query_caps (src, NULL);
  fail_unless_equals_int (gst_caps_get_size (caps), 2);
  fail_unless (gst_caps_features_contains (gst_caps_get_features (caps, 0),
          GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY), "%" GST_PTR_FORMAT, caps);
  gst_caps_unref (caps);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
cuda_suite (void)
{
  Suite *s = suite_create ("liveavatarsrc-cuda");
  TCase *tc = tcase_create ("cuda");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_cuda_caps_offered);
  tcase_add_test (tc, test_cuda_rgba);
  tcase_add_test (tc, test_cuda_nv12);
  return s;
}

int
main (int argc, char **argv)
{
  GstElementFactory *f;
  GstCudaContext *ctx;

  /* The mock session only needs the model folder to exist. */
  la_model_dir = g_get_tmp_dir ();
  gst_check_init (&argc, &argv);

  if (!gst_cuda_load_library ()) {
    g_printerr ("no CUDA driver library: skipped\n");
    return 77;
  }
  ctx = gst_cuda_context_new (0);
  if (!ctx) {
    g_printerr ("no CUDA device: skipped\n");
    return 77;
  }
  gst_object_unref (ctx);
  f = gst_element_factory_find ("cudadownload");
  if (!f && g_getenv ("LA_EXPECT_GST_CUDA")) {
    /* the emulated build provides the driver: a registry cached before it */
    g_printerr ("no cudadownload although the emulated driver is there: "
        "delete the stale GST_REGISTRY file (%s)\n", g_getenv ("GST_REGISTRY"));
    return 1;
  }
  if (!f) {
    g_printerr ("no cudadownload element (nvcodec not registered): "
        "skipped\n");
    return 77;
  }
  gst_object_unref (f);

  return gst_check_run_suite (cuda_suite (), "liveavatarsrc-cuda", __FILE__);
}
