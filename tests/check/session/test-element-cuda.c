/* liveavatarsrc devices=cuda:0 against devices=cpu: the same pipeline (a
 * tone, the tiny model, a fixed sink offset) gives the same number of RGB
 * frames with the same timestamps, and pixels within the bounds the session
 * test states for bf16 weights (test-session-cuda.c).  Runs where a CUDA
 * device exists (a GPU or the emulated device); skipped (77) elsewhere.
 *
 * Device frames (docs/cuda.md "GStreamer CUDA memory"):
 *  - a session on devices=cpu refuses them (LA_ERROR_UNSUPPORTED; checked in
 *    every build, before the skip);
 *  - the frames_to_rgba8 op on the CUDA backend gives the CPU op's bytes and
 *    la_vae_frames_to_rgb8's RGB (values around every rounding step, out of
 *    range, bf16 input); rgba8_to_nv12 gives the CPU op's bytes (BT.601 and
 *    BT.709; pure red is Y 82, Cb 90, Cr 240 in BT.601);
 *  - devices=cuda:0 with video/x-raw(memory:CUDAMemory),format=RGBA (then
 *    cudadownload) gives RGB bytes identical to the devices=cuda:0
 *    system-memory run, every frame copied device-to-device from the
 *    engine's GPU frames and none uploaded from the host (the element's
 *    stats); likewise NV12 (bt601), equal to the CPU rgba8_to_nv12 of the
 *    system-memory frames; needs GstCuda's driver and nvcodec's cudadownload (a GPU, or
 *    the emulated driver of cuda/emu/driver.cc), else that part is skipped. */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>
#include <liveavatar/la-cuda.h>
#include <liveavatar/la-session.h>
#include <liveavatar/la-error.h>
#include <stdlib.h>
#include <string.h>
#include "la-ops.h"
#include "la-vae.h"

typedef struct {
  GPtrArray *frames;     /* GBytes of RGB (RGBA runs: converted to RGB) */
  GArray *pts;
  guint64 uploaded, device;   /* stats cuda-frames-uploaded / -device */
} Run;

static void
run_clear (Run *r)
{
  g_ptr_array_unref (r->frames);
  g_array_unref (r->pts);
}

#define RGB_OUT "video/x-raw,format=RGB"
#define CUDA_OUT "video/x-raw(memory:CUDAMemory),format=RGBA ! cudadownload ! video/x-raw,format=RGBA"
#define CUDA_NV12 "video/x-raw(memory:CUDAMemory),format=NV12,colorimetry=bt601 ! cudadownload ! video/x-raw,format=NV12"

static Run
run_pipeline (const char *model, const char *png, const char *devices, const char *out)
{
  Run r = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref), g_array_new (FALSE, FALSE, sizeof (GstClockTime)), 0, 0 };
  const gboolean rgba = strstr (out, "RGBA") != NULL, nv12 = strstr (out, "NV12") != NULL;
  g_autofree char *desc = g_strdup_printf (
      "audiotestsrc num-buffers=8 samplesperbuffer=1600 wave=sine freq=220 "
      "! audio/x-raw,rate=16000,channels=1,format=S16LE "
      "! liveavatarsrc name=src model-path=%s lora-path=%s reference-image=%s max-area=4096 sink-offset=10 "
      "audio-mode=offline weights=bf16 devices=%s ! %s ! appsink name=s sync=false",
      model, model, png, devices, out);
  GError *e = NULL;
  GstElement *p = gst_parse_launch (desc, &e);
  g_assert_no_error (e);
  GstAppSink *sink = GST_APP_SINK (gst_bin_get_by_name (GST_BIN (p), "s"));
  g_assert_cmpint (gst_element_set_state (p, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  GstSample *s;
  while ((s = gst_app_sink_pull_sample (sink))) {
    GstBuffer *b = gst_sample_get_buffer (s);
    GstMapInfo m;
    g_assert_true (gst_buffer_map (b, &m, GST_MAP_READ));
    if (nv12) {
      /* Y rows then CbCr rows, packed */
      GstVideoInfo vi;
      GstVideoFrame vf;
      g_assert_true (gst_video_info_from_caps (&vi, gst_sample_get_caps (s)));
      g_assert_true (gst_video_frame_map (&vf, &vi, b, GST_MAP_READ));
      guint8 *out = g_malloc ((gsize) vi.width * vi.height * 3 / 2), *o = out;
      for (int pl = 0; pl < 2; pl++)
        for (int row = 0; row < (pl ? vi.height / 2 : vi.height); row++, o += vi.width)
          memcpy (o, (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, pl) + row * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, pl),
                  vi.width);
      gst_video_frame_unmap (&vf);
      g_ptr_array_add (r.frames, g_bytes_new_take (out, (gsize) vi.width * vi.height * 3 / 2));
    } else if (rgba) {
      /* cudadownload's system memory: tightly packed here (width % 4 == 0); drop alpha */
      GstVideoInfo vi;
      g_assert_true (gst_video_info_from_caps (&vi, gst_sample_get_caps (s)));
      g_assert_cmpuint (m.size, ==, (gsize) vi.width * vi.height * 4);
      guint8 *rgb = g_malloc ((gsize) vi.width * vi.height * 3);
      for (gsize k = 0; k < (gsize) vi.width * vi.height; k++) {
        memcpy (rgb + 3 * k, m.data + 4 * k, 3);
        g_assert_cmpint (m.data[4 * k + 3], ==, 255);
      }
      g_ptr_array_add (r.frames, g_bytes_new_take (rgb, (gsize) vi.width * vi.height * 3));
    } else {
      g_ptr_array_add (r.frames, g_bytes_new (m.data, m.size));
    }
    GstClockTime t = GST_BUFFER_PTS (b);
    g_array_append_val (r.pts, t);
    gst_buffer_unmap (b, &m);
    gst_sample_unref (s);
  }
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_error ("devices=%s: %s", devices, err->message);
  }
  gst_object_unref (bus);
  GstElement *src = gst_bin_get_by_name (GST_BIN (p), "src");
  GstStructure *st = NULL;
  g_object_get (src, "stats", &st, NULL);
  g_assert_true (gst_structure_get_uint64 (st, "cuda-frames-uploaded", &r.uploaded));
  g_assert_true (gst_structure_get_uint64 (st, "cuda-frames-device", &r.device));
  gst_structure_free (st);
  gst_object_unref (src);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (p);
  return r;
}

/* The frames_to_rgba8 op on CUDA against the CPU op and la_vae_frames_to_rgb8. */
static void
check_op (void)
{
  const int F = 2, H = 3, W = 37;
  const gsize n = (gsize) 3 * F * H * W;
  g_autoptr (LaTensor) host = la_tensor_new_v (LA_DTYPE_F32, 3, F, H, W, -1);
  float *v = la_tensor_f32 (host);
  for (gsize i = 0; i < n; i++) {
    /* every 8-bit step and its float neighbours, plus out-of-range values */
    float x = -1.0f + 2.0f * (float) (i % 256) / 255.0f;
    v[i] = i % 7 == 0 ? nextafterf (x, 2.0f) : i % 7 == 1 ? nextafterf (x, -2.0f) : i % 11 == 0 ? 1.5f * (i % 2 ? 1 : -1) : x;
  }
  GError *e = NULL;
  g_autoptr (LaBackend) cpu = la_backend_cpu_new (1);
  g_autoptr (LaBackend) gpu = la_backend_cuda_new (0, &e);
  g_assert_no_error (e);
  g_autofree guint8 *ref = la_vae_frames_to_rgb8 (cpu, host, &e);
  g_assert_no_error (e);
  for (int bf16 = 0; bf16 < 2; bf16++) {
    const int64_t shape[4] = { F, H, W, 4 };
    g_autoptr (LaTensor) xc = la_tensor_to_dtype (host, bf16 ? LA_DTYPE_BF16 : LA_DTYPE_F32);
    g_autoptr (LaTensor) xg = la_alloc (gpu, bf16 ? LA_DTYPE_BF16 : LA_DTYPE_F32, 4, xc->shape);
    la_copy (gpu, xg, xc);
    g_autoptr (LaTensor) yc = la_alloc (cpu, LA_DTYPE_U8, 4, shape);
    g_autoptr (LaTensor) yg = la_alloc (gpu, LA_DTYPE_U8, 4, shape);
    g_autoptr (LaTensor) yh = la_tensor_new (LA_DTYPE_U8, 4, shape);
    la_frames_to_rgba8 (cpu, yc, xc);
    la_frames_to_rgba8 (gpu, yg, xg);
    la_copy (gpu, yh, yg);
    g_assert_true (la_backend_sync (cpu, &e));
    g_assert_true (la_backend_sync (gpu, &e));
    const guint8 *a = yc->data, *b = yh->data;
    g_autofree guint8 *ref16 = bf16 ? la_vae_frames_to_rgb8 (cpu, xc, &e) : NULL;
    for (gsize p = 0; p < (gsize) F * H * W; p++) {
      for (int c = 0; c < 3; c++)
        g_assert_cmpint (a[4 * p + c], ==, (bf16 ? ref16 : ref)[3 * p + c]);
      g_assert_cmpint (a[4 * p + 3], ==, 255);
    }
    g_assert_cmpmem (a, (gsize) F * H * W * 4, b, (gsize) F * H * W * 4);
  }
  /* rgba8_to_nv12: CUDA == CPU for both matrices, and known colours */
  {
    const int64_t rs[4] = { 2, 4, 6, 4 }, ns[3] = { 2, 6, 6 };
    g_autoptr (LaTensor) rgba = la_tensor_new (LA_DTYPE_U8, 4, rs);
    guint8 *q = rgba->data;
    for (gsize i = 0; i < 2 * 4 * 6; i++) {
      q[4 * i] = (guint8) (i * 37);
      q[4 * i + 1] = (guint8) (i * 91 + 5);
      q[4 * i + 2] = (guint8) (255 - i * 13);
      q[4 * i + 3] = 255;
    }
    /* frame 1, top-left 2x2 block: pure red (BT.601: Y 82, Cb 90, Cr 240) */
    for (int k = 0; k < 4; k++) {
      guint8 *p = q + (4 * 6 + (k / 2) * 6 + k % 2) * 4;
      p[0] = 255, p[1] = p[2] = 0;
    }
    for (int m = 0; m < 2; m++) {
      g_autoptr (LaTensor) rg = la_alloc (gpu, LA_DTYPE_U8, 4, rs);
      g_autoptr (LaTensor) yg = la_alloc (gpu, LA_DTYPE_U8, 3, ns);
      g_autoptr (LaTensor) yc = la_tensor_new (LA_DTYPE_U8, 3, ns);
      g_autoptr (LaTensor) yh = la_tensor_new (LA_DTYPE_U8, 3, ns);
      la_copy (gpu, rg, rgba);
      la_rgba8_to_nv12 (gpu, yg, rg, m);
      la_copy (gpu, yh, yg);
      la_rgba8_to_nv12 (cpu, yc, rgba, m);
      g_assert_true (la_backend_sync (gpu, &e));
      g_assert_true (la_backend_sync (cpu, &e));
      g_assert_cmpmem (yc->data, 2 * 36, yh->data, 2 * 36);
      const guint8 *f1 = (const guint8 *) yc->data + 36;
      if (m == 0) {
        g_assert_cmpint (f1[0], ==, 82);
        g_assert_cmpint (f1[7], ==, 82);
        g_assert_cmpint (f1[24], ==, 90);
        g_assert_cmpint (f1[25], ==, 240);
      }
    }
  }
  /* a wrong output is refused by the checked wrapper, naming it */
  g_autoptr (LaTensor) bad = la_alloc (gpu, LA_DTYPE_F32, 4, (int64_t[]) { F, H, W, 4 });
  g_autoptr (LaTensor) xg = la_alloc (gpu, LA_DTYPE_F32, 4, host->shape);
  la_frames_to_rgba8 (gpu, bad, xg);
  g_assert_false (la_backend_sync (gpu, &e));
  g_assert_nonnull (strstr (e->message, "frames_to_rgba8: y"));
  g_clear_error (&e);
  g_print ("frames_to_rgba8: CUDA == CPU == la_vae_frames_to_rgb8 (f32 and bf16 input); rgba8_to_nv12: CUDA == CPU\n");
}

/* A session whose output is on the host refuses device frames, saying why. */
static void
check_cpu_refuses (const char *model)
{
  static guint8 grey[64 * 64 * 3];
  LaSessionParams p;
  GError *e = NULL;
  memset (grey, 128, sizeof grey);
  la_session_params_init (&p);
  p.model_dir = model;
  p.ref_rgb = grey;
  p.ref_width = p.ref_height = 64;
  p.ref_stride = 3 * 64;
  p.max_area = 4096;
  p.device_frames = LA_DEVICE_FRAMES_RGBA;
  g_assert_null (la_session_new (&p, &e));
  g_assert_error (e, LA_ERROR, LA_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (e->message, "device frames"));
  g_clear_error (&e);
  g_print ("devices=cpu refuses device frames: ok\n");
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_autofree char *tmp = g_dir_make_tmp ("la-element-cuda-XXXXXX", NULL);
  g_autofree char *model = g_build_filename (tmp, "tiny", NULL);
  g_autofree char *png = g_build_filename (tmp, "ref.png", NULL);
  const char *mk = g_getenv ("LA_MKMODEL");
  g_autofree char *cmd = g_strdup_printf ("'%s' --preset tiny --seed 3 --out '%s' >/dev/null 2>&1", mk ? mk : "liveavatar-mkmodel", model);
  if (system (cmd) != 0)
    g_error ("could not generate the tiny model (%s)", cmd);
  g_autofree char *mkpng = g_strdup_printf ("videotestsrc num-buffers=1 pattern=pinwheel ! video/x-raw,width=96,height=96 "
                                            "! videoconvert ! pngenc ! filesink location=%s", png);
  GError *e = NULL;
  GstElement *pp = gst_parse_launch (mkpng, &e);
  g_assert_no_error (e);
  gst_element_set_state (pp, GST_STATE_PLAYING);
  GstMessage *done = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pp), GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_cmpint (GST_MESSAGE_TYPE (done), ==, GST_MESSAGE_EOS);
  gst_message_unref (done);
  gst_element_set_state (pp, GST_STATE_NULL);
  gst_object_unref (pp);

  check_cpu_refuses (model);
  if (la_cuda_device_count () < 1) {
    g_print ("no CUDA device (a GPU or the emulated device): the rest skipped\n");
    g_autofree char *rm0 = g_strdup_printf ("rm -rf '%s'", tmp);
    (void) !system (rm0);
    return 77;
  }
  check_op ();
  Run cpu = run_pipeline (model, png, "cpu", RGB_OUT), gpu = run_pipeline (model, png, "cuda:0", RGB_OUT);
  g_assert_cmpuint (cpu.frames->len, >, 0);
  g_assert_cmpuint (cpu.frames->len, ==, gpu.frames->len);
  double sum = 0;
  gsize n = 0;
  int mx = 0;
  for (guint i = 0; i < cpu.frames->len; i++) {
    g_assert_cmpuint (g_array_index (cpu.pts, GstClockTime, i), ==, g_array_index (gpu.pts, GstClockTime, i));
    gsize la, lb;
    const guint8 *a = g_bytes_get_data (cpu.frames->pdata[i], &la), *b = g_bytes_get_data (gpu.frames->pdata[i], &lb);
    g_assert_cmpuint (la, ==, lb);
    for (gsize k = 0; k < la; k++) {
      int d = abs ((int) a[k] - (int) b[k]);
      mx = MAX (mx, d);
      sum += d;
    }
    n += la;
  }
  g_print ("liveavatarsrc devices=cuda:0 vs cpu (bf16 weights): %u frames, same timestamps, max %d, mean %.4f levels\n",
           cpu.frames->len, mx, sum / n);
  g_assert_cmpint (mx, <=, 8);
  g_assert_cmpfloat (sum / n, <, 0.5);
  g_assert_cmpuint (gpu.device, ==, 0);

  GstElementFactory *down = gst_element_factory_find ("cudadownload");
  if (down) {
    gst_object_unref (down);
    Run dev = run_pipeline (model, png, "cuda:0", CUDA_OUT);
    g_assert_cmpuint (dev.frames->len, ==, gpu.frames->len);
    for (guint i = 0; i < gpu.frames->len; i++) {
      g_assert_cmpuint (g_array_index (dev.pts, GstClockTime, i), ==, g_array_index (gpu.pts, GstClockTime, i));
      g_assert_true (g_bytes_equal (dev.frames->pdata[i], gpu.frames->pdata[i]));
    }
    g_assert_cmpuint (dev.uploaded, ==, 0);
    g_assert_cmpuint (dev.device, >=, dev.frames->len);
    g_print ("CUDA memory RGBA: %u frames identical to the system-memory run, %" G_GUINT64_FORMAT
             " copied device-to-device, %" G_GUINT64_FORMAT " uploaded\n", dev.frames->len, dev.device, dev.uploaded);
    run_clear (&dev);

    /* NV12 made on the device from the same RGBA: the CPU op on the host frames */
    Run nv = run_pipeline (model, png, "cuda:0", CUDA_NV12);
    g_assert_cmpuint (nv.frames->len, ==, gpu.frames->len);
    g_autoptr (LaBackend) cpub = la_backend_cpu_new (1);
    for (guint i = 0; i < gpu.frames->len; i++) {
      gsize n3;
      const guint8 *rgb = g_bytes_get_data (gpu.frames->pdata[i], &n3);
      const gsize npx = n3 / 3;
      const int64_t side = (int64_t) sqrt ((double) npx);     /* the tiny model's square frames */
      g_assert_cmpint (side * side, ==, (int64_t) npx);
      g_autoptr (LaTensor) x = la_tensor_new (LA_DTYPE_U8, 4, (int64_t[]) { 1, side, side, 4 });
      g_autoptr (LaTensor) y = la_tensor_new (LA_DTYPE_U8, 3, (int64_t[]) { 1, side * 3 / 2, side });
      for (gsize k = 0; k < npx; k++) {
        memcpy ((guint8 *) x->data + 4 * k, rgb + 3 * k, 3);
        ((guint8 *) x->data)[4 * k + 3] = 255;
      }
      la_rgba8_to_nv12 (cpub, y, x, 0);
      g_assert_true (la_backend_sync (cpub, &e));
      gsize nn;
      const guint8 *got = g_bytes_get_data (nv.frames->pdata[i], &nn);
      g_assert_cmpmem (got, nn, y->data, npx * 3 / 2);
    }
    g_assert_cmpuint (nv.uploaded, ==, 0);
    g_assert_cmpuint (nv.device, >=, nv.frames->len);
    g_print ("CUDA memory NV12 (BT.601): %u frames equal to the CPU rgba8_to_nv12 of the host frames, "
             "%" G_GUINT64_FORMAT " copied device-to-device, %" G_GUINT64_FORMAT " uploaded\n", nv.frames->len,
             nv.device, nv.uploaded);
    run_clear (&nv);
  } else {
    /* The emulated build provides the driver: a missing element there is a
     * registry cached before it existed, not a machine without CUDA. */
    if (g_getenv ("LA_EXPECT_GST_CUDA"))
      g_error ("no cudadownload although the emulated driver is on LD_LIBRARY_PATH: delete the stale "
               "GST_REGISTRY file (%s) and rerun", g_getenv ("GST_REGISTRY"));
    g_print ("no cudadownload (no CUDA driver for GstCuda): device frames skipped\n");
  }
  run_clear (&cpu);
  run_clear (&gpu);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", tmp);
  (void) !system (rm);
  return 0;
}
