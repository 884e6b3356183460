/* liveavatar-render — offline render: image + audio (+ prompt) in, MP4 out.
 *
 *   liveavatar-render --model DIR [--lora F] --image I --audio A [--prompt P] -o out.mp4
 *   liveavatar-render --preset tiny --image I --audio A -o out.mp4
 *
 * The audio file is decoded and resampled to 16 kHz mono by GStreamer, fed to
 * an engine session (offline parity mode by default: wav2vec2 over the whole
 * file, like the reference), and the frames are encoded to H.264 and muxed
 * with the ORIGINAL audio (AAC) into an MP4, as the reference's ffmpeg step
 * does.  Without --model (or with --preset tiny) a tiny random model is
 * generated in the user cache: its output is not a face, and it renders at
 * the demo's 128x128 area unless --max-area says otherwise (at the full
 * 704x384 its VAE alone keeps the CPU busy for minutes, for noise).
 */
#include <liveavatar/liveavatar.h>
#include <liveavatar/la-image.h>
#include "la-model.h"
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The tiny model's default output area: scripts/demo.sh's 128x128. */
#define TINY_MAX_AREA (128 * 128)

typedef struct {
  char *model, *lora, *image, *audio, *prompt, *out, *preset, *mode, *devices, *weights;
  gint64 seed;
  int sink_offset, max_area;
} Options;

/* 16 kHz mono f32 PCM of any file GStreamer can decode. */
static GArray *
decode_audio (const char *path, GError **error)
{
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, LA_ERROR, LA_ERROR_NOT_FOUND, "audio file %s does not exist", path);
    return NULL;
  }
  g_autofree char *uri = gst_filename_to_uri (path, NULL);
  g_autofree char *desc = g_strdup_printf (
      "uridecodebin uri=\"%s\" ! audioconvert ! audioresample ! "
      "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved ! appsink name=s sync=false", uri);
  GstElement *pipe = gst_parse_launch (desc, error);
  if (!pipe)
    return NULL;
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipe), "s");
  GArray *pcm = g_array_new (FALSE, FALSE, sizeof (float));
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  /* Until EOS, or an error on the bus (then appsink never sees EOS). */
  GstBus *bus = gst_element_get_bus (pipe);
  GstMessage *msg = NULL;
  while (!msg && !gst_app_sink_is_eos (GST_APP_SINK (sink))) {
    GstSample *smp = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 50 * GST_MSECOND);
    if (smp) {
      GstMapInfo m;
      GstBuffer *b = gst_sample_get_buffer (smp);
      if (gst_buffer_map (b, &m, GST_MAP_READ)) {
        g_array_append_vals (pcm, m.data, (guint) (m.size / sizeof (float)));
        gst_buffer_unmap (b, &m);
      }
      gst_sample_unref (smp);
    }
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  }
  if (msg) {
    GError *e = NULL;
    gst_message_parse_error (msg, &e, NULL);
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "audio file %s: %s", path, e->message);
    g_error_free (e);
    gst_message_unref (msg);
    g_array_unref (pcm);
    pcm = NULL;
  } else if (pcm->len == 0) {
    g_set_error (error, LA_ERROR, LA_ERROR_UNSUPPORTED, "audio file %s: no audio decoded", path);
    g_array_unref (pcm);
    pcm = NULL;
  }
  gst_object_unref (bus);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipe);
  return pcm;
}

static char *
ensure_tiny_model (gint64 seed, GError **error)
{
  g_autofree char *name = g_strdup_printf ("tiny-seed%" G_GINT64_FORMAT, seed);
  char *dir = g_build_filename (g_get_user_cache_dir (), "liveavatar", name, NULL);
  g_autofree char *done = g_build_filename (dir, "liveavatar.json", NULL);
  if (!g_file_test (done, G_FILE_TEST_EXISTS) && !la_model_write_tiny (dir, (guint64) seed, error)) {
    g_free (dir);
    return NULL;
  }
  return dir;
}

static void
progress (gint64 done, gint64 total, gint64 t0)
{
  double el = (g_get_monotonic_time () - t0) / 1e6, fps = el > 0 ? done / el : 0;
  double eta = fps > 0 ? (total - done) / fps : 0;
  int w = 30, fill = total ? (int) (w * done / total) : 0;
  char bar[64];
  for (int i = 0; i < w; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[w] = 0;
  fprintf (stderr, "\r[%s] %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " frames  %5.2f fps  ETA %02d:%02d ",
           bar, done, total, fps, (int) eta / 60, (int) eta % 60);
}

static gboolean
render (Options *o, GError **error)
{
  g_autofree char *model = NULL;
  gboolean tiny = !o->model || g_strcmp0 (o->preset, "tiny") == 0;
  if (tiny) {
    if (!(model = ensure_tiny_model (o->seed, error)))
      return FALSE;
    fprintf (stderr, "no --model: using a generated tiny random model (%s); its output is not a face\n", model);
  } else
    model = g_strdup (o->model);

  int iw, ih;
  g_autofree guint8 *img = la_image_load (o->image, 0, &iw, &ih, error);
  if (!img)
    return FALSE;
  g_autoptr (GArray) pcm = decode_audio (o->audio, error);
  if (!pcm)
    return FALSE;

  LaSessionParams p;
  la_session_params_init (&p);
  p.model_dir = model;
  p.lora = o->lora ? o->lora : (o->model ? NULL : model);
  p.ref_rgb = img;
  p.ref_width = iw;
  p.ref_height = ih;
  p.ref_stride = 3 * iw;
  p.prompt = o->prompt;
  p.seed = (guint64) o->seed;
  p.sink_offset = o->sink_offset;
  if (o->max_area)
    p.max_area = o->max_area;
  else if (tiny)
    p.max_area = TINY_MAX_AREA;
  p.audio_mode = g_strcmp0 (o->mode, "live") == 0 ? LA_AUDIO_LIVE : LA_AUDIO_OFFLINE;
  if (o->devices)
    p.devices = o->devices;
  if (!la_weights_from_string (o->weights, &p.weights, error))
    return FALSE;
  gint64 t_setup = g_get_monotonic_time ();
  g_autoptr (LaSession) s = la_session_new (&p, error);
  if (!s)
    return FALSE;
  int W, H;
  la_session_get_size (s, &W, &H);
  gint64 blocks = (pcm->len + 7679) / 7680;
  gint64 total = blocks * 12 - 3;
  fprintf (stderr, "%dx%d, %.2f s of audio -> %" G_GINT64_FORMAT " frames (setup %.1f s)\n", W, H,
           pcm->len / 16000.0, total, (g_get_monotonic_time () - t_setup) / 1e6);

  g_autofree char *uri = gst_filename_to_uri (o->audio, NULL);
  g_autofree char *desc = g_strdup_printf (
      "appsrc name=v format=time is-live=false block=true max-bytes=%d "
      "caps=video/x-raw,format=RGB,width=%d,height=%d,framerate=25/1 ! videoconvert ! "
      "video/x-raw,format=I420 ! x264enc speed-preset=faster qp-max=30 ! h264parse ! mp4mux name=mux ! "
      "filesink location=\"%s\"  uridecodebin uri=\"%s\" ! audioconvert ! audioresample ! avenc_aac ! aacparse ! mux.",
      W * H * 3 * 8, W, H, o->out, uri);
  GstElement *pipe = gst_parse_launch (desc, error);
  if (!pipe)
    return FALSE;
  GstElement *vsrc = gst_bin_get_by_name (GST_BIN (pipe), "v");
  gst_element_set_state (pipe, GST_STATE_PLAYING);

  GError *e = NULL;
  la_session_push_audio (s, (float *) pcm->data, pcm->len, &e);
  la_session_end_of_stream (s);
  gint64 t0 = g_get_monotonic_time (), n = 0;
  gboolean tty = isatty (2);
  LaFrame *f;
  while (!e && (f = la_session_pull_frame (s, -1, &e))) {
    GstBuffer *b = gst_buffer_new_memdup (f->rgb, (gsize) f->stride * f->height);
    /* The session's pts is the frame's place on the audio time line. */
    GST_BUFFER_PTS (b) = (GstClockTime) f->pts_ns;
    GST_BUFFER_DURATION (b) = GST_SECOND / LA_SESSION_FPS;
    la_frame_unref (f);
    if (gst_app_src_push_buffer (GST_APP_SRC (vsrc), b) != GST_FLOW_OK) {
      g_set_error (&e, LA_ERROR, LA_ERROR_FAILED, "%s: the encoder stopped", o->out);
      break;
    }
    n++;
    if (tty)
      progress (n, total, t0);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (vsrc));
  GstBus *bus = gst_element_get_bus (pipe);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (msg && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR && !e) {
    GError *ge = NULL;
    gst_message_parse_error (msg, &ge, NULL);
    g_set_error (&e, LA_ERROR, LA_ERROR_FAILED, "%s: %s", o->out, ge->message);
    g_error_free (ge);
  }
  if (msg)
    gst_message_unref (msg);
  gst_object_unref (bus);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (vsrc);
  gst_object_unref (pipe);
  if (tty)
    fputc ('\n', stderr);
  if (e) {
    g_propagate_error (error, e);
    return FALSE;
  }
  double el = (g_get_monotonic_time () - t0) / 1e6;
  printf ("rendered %" G_GINT64_FORMAT " frames in %.1f s (%.2f fps) -> %s\n", n, el, el > 0 ? n / el : 0.0, o->out);
  return TRUE;
}

int
main (int argc, char **argv)
{
  Options o = { .seed = 420 };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &o.model, "Wan2.2-S2V-14B folder (default: a generated tiny model)", "DIR" },
    { "lora", 'l', 0, G_OPTION_ARG_FILENAME, &o.lora, "Live-Avatar LoRA file or folder", "PATH" },
    { "image", 'i', 0, G_OPTION_ARG_FILENAME, &o.image, "Reference image (PNG, JPEG, ...)", "FILE" },
    { "audio", 'a', 0, G_OPTION_ARG_FILENAME, &o.audio, "Audio file (anything GStreamer decodes)", "FILE" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &o.prompt, "Text prompt", "TEXT" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &o.out, "Output MP4", "FILE" },
    { "preset", 0, 0, G_OPTION_ARG_STRING, &o.preset, "tiny: use a generated tiny model", "NAME" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &o.seed, "Noise seed (default 420)", "N" },
    { "sink-offset", 0, 0, G_OPTION_ARG_INT, &o.sink_offset, "Fixed rolling-sink offset 4..30 (default random)", "D" },
    { "max-area", 0, 0, G_OPTION_ARG_INT, &o.max_area, "Output pixel-area budget (default 720*400; 128*128 with the tiny model)", "N" },
    { "audio-mode", 0, 0, G_OPTION_ARG_STRING, &o.mode, "offline (default, parity) or live", "MODE" },
    { "devices", 'd', 0, G_OPTION_ARG_STRING, &o.devices, "cpu (default); TPP stages: cpu,cpu,... or cpu,tcp://HOST:PORT (a liveavatar-stage worker); GPUs: cuda:0[,cuda:1,...]", "DEV" },
    { "weights", 'w', 0, G_OPTION_ARG_STRING, &o.weights, "Resident precision: file (default, the checkpoint's), f32, bf16 or fp8 (CUDA)", "W" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— render a talking-avatar MP4 from an image and an audio file");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  GError *error = NULL;
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !o.image || !o.audio || !o.out) {
    fprintf (stderr, "liveavatar-render: %s\n", error ? error->message : "--image, --audio and -o are required");
    return 2;
  }
  if (o.preset && strcmp (o.preset, "tiny") != 0) {
    fprintf (stderr, "liveavatar-render: unknown --preset '%s' (the one preset is tiny)\n", o.preset);
    return 2;
  }
  if (o.prompt && !g_utf8_validate (o.prompt, -1, NULL)) {
    fprintf (stderr, "liveavatar-render: the prompt is not valid UTF-8\n");
    return 2;
  }
  int rc = 0;
  if (!render (&o, &error)) {
    fprintf (stderr, "liveavatar-render: %s\n", error->message);
    g_error_free (error);
    rc = 1;
  }
  g_free (o.model); g_free (o.lora); g_free (o.image); g_free (o.audio); g_free (o.prompt);
  g_free (o.out); g_free (o.preset); g_free (o.mode); g_free (o.devices); g_free (o.weights);
  return rc;
}
