/* webrtc-avatar.c — receives audio over WebRTC and sends the avatar video
 * back, with webrtcbin.
 *
 * The "avatar" webrtcbin is the real thing: its incoming Opus audio is
 * decoded, mixed over live silence (so the avatar keeps moving before and
 * between utterances), fed to liveavatarsrc, encoded with VP8 and sent back
 * on the same peer connection.  To keep the example self-contained, the
 * remote peer (a browser in a real deployment) is a second webrtcbin in the
 * same process that sends a test tone and shows the video it receives;
 * offer/answer and ICE candidates are handed over directly where a real
 * application would use its signalling channel.
 *
 *   webrtc-avatar MODEL_DIR REFERENCE_IMAGE [max-area]
 *
 * Needs libnice's GStreamer plugin (gstreamer1.0-nice) for ICE.
 */
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>
#include <stdlib.h>

static GstElement *pipe_, *caller, *avatar, *mixer;
static GMainLoop *loop;

/* ---- in-process signalling ---- */

static void
on_answer_created (GstPromise * promise, gpointer user_data)
{
  GstWebRTCSessionDescription *answer = NULL;

  gst_structure_get (gst_promise_get_reply (promise), "answer",
      GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, NULL);
  gst_promise_unref (promise);
  g_signal_emit_by_name (avatar, "set-local-description", answer, NULL);
  g_signal_emit_by_name (caller, "set-remote-description", answer, NULL);
  gst_webrtc_session_description_free (answer);
}

static void
on_offer_created (GstPromise * promise, gpointer user_data)
{
  GstWebRTCSessionDescription *offer = NULL;

  gst_structure_get (gst_promise_get_reply (promise), "offer",
      GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
  gst_promise_unref (promise);
  g_signal_emit_by_name (caller, "set-local-description", offer, NULL);
  g_signal_emit_by_name (avatar, "set-remote-description", offer, NULL);
  g_signal_emit_by_name (avatar, "create-answer", NULL,
      gst_promise_new_with_change_func (on_answer_created, NULL, NULL));
  gst_webrtc_session_description_free (offer);
}

static void
on_negotiation_needed (GstElement * webrtc, gpointer user_data)
{
  g_signal_emit_by_name (caller, "create-offer", NULL,
      gst_promise_new_with_change_func (on_offer_created, NULL, NULL));
}

static void
on_ice_candidate (GstElement * webrtc, guint mline, gchar * cand,
    GstElement * other)
{
  g_signal_emit_by_name (other, "add-ice-candidate", mline, cand);
}

/* ---- media ---- */

/* Avatar side: incoming audio -> depay/decode -> the mixer in front of
 * liveavatarsrc. */
static void
on_avatar_pad (GstElement * webrtc, GstPad * pad, gpointer user_data)
{
  GstElement *bin;
  GstPad *sink, *src, *mixpad;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  bin = gst_parse_bin_from_description ("rtpopusdepay ! opusdec ! "
      "audioconvert ! audioresample ! queue", TRUE, NULL);
  gst_bin_add (GST_BIN (pipe_), bin);
  gst_element_sync_state_with_parent (bin);
  sink = gst_element_get_static_pad (bin, "sink");
  gst_pad_link (pad, sink);
  src = gst_element_get_static_pad (bin, "src");
  mixpad = gst_element_request_pad_simple (mixer, "sink_%u");
  gst_pad_link (src, mixpad);
  gst_object_unref (sink);
  gst_object_unref (src);
  gst_object_unref (mixpad);
  g_print ("avatar: receiving audio\n");
}

/* Remote side: incoming avatar video -> a window (or fakesink). */
static void
on_caller_pad (GstElement * webrtc, GstPad * pad, gpointer user_data)
{
  const gchar *sinkname = g_getenv ("SINK") ? g_getenv ("SINK") :
      "autovideosink";
  gchar *desc;
  GstElement *bin;
  GstPad *sink;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  desc = g_strdup_printf ("rtpvp8depay ! vp8dec ! videoconvert ! queue ! %s",
      sinkname);
  bin = gst_parse_bin_from_description (desc, TRUE, NULL);
  g_free (desc);
  gst_bin_add (GST_BIN (pipe_), bin);
  gst_element_sync_state_with_parent (bin);
  sink = gst_element_get_static_pad (bin, "sink");
  gst_pad_link (pad, sink);
  gst_object_unref (sink);
  g_print ("remote: receiving avatar video\n");
}

static gboolean
on_bus (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err;
    gchar *dbg;
    gst_message_parse_error (msg, &err, &dbg);
    g_printerr ("error from %s: %s\n%s\n", GST_OBJECT_NAME (msg->src),
        err->message, dbg ? dbg : "");
    g_error_free (err);
    g_free (dbg);
    g_main_loop_quit (loop);
  } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
    g_main_loop_quit (loop);
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  gchar *desc;
  GError *err = NULL;
  GstBus *bus;

  gst_init (&argc, &argv);
  if (argc < 3) {
    g_printerr ("usage: %s MODEL_DIR REFERENCE_IMAGE [max-area]\n", argv[0]);
    return 2;
  }
  /* Avatar: live silence + received audio -> liveavatarsrc -> VP8 -> peer.
   * Remote: a test tone -> Opus -> peer. */
  desc = g_strdup_printf (
      "webrtcbin name=avatar bundle-policy=max-bundle "
      "webrtcbin name=caller bundle-policy=max-bundle "
      "audiotestsrc is-live=true wave=silence ! audiomixer name=mix "
      " ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! queue "
      " ! liveavatarsrc model-path=\"%s\" reference-image=\"%s\" max-area=%s "
      " ! videoconvert ! queue ! vp8enc deadline=1 ! rtpvp8pay "
      " ! application/x-rtp,media=video,encoding-name=VP8,payload=97 ! avatar. "
      "audiotestsrc is-live=true wave=sine freq=220 ! audioconvert "
      " ! audioresample ! opusenc ! rtpopuspay "
      " ! application/x-rtp,media=audio,encoding-name=OPUS,payload=96 ! caller. ",
      argv[1], argv[2], argc > 3 ? argv[3] : "0");
  pipe_ = gst_parse_launch (desc, &err);
  g_free (desc);
  if (!pipe_) {
    g_printerr ("pipeline: %s\n", err->message);
    return 1;
  }
  caller = gst_bin_get_by_name (GST_BIN (pipe_), "caller");
  avatar = gst_bin_get_by_name (GST_BIN (pipe_), "avatar");
  mixer = gst_bin_get_by_name (GST_BIN (pipe_), "mix");

  g_signal_connect (caller, "on-negotiation-needed",
      G_CALLBACK (on_negotiation_needed), NULL);
  g_signal_connect (caller, "on-ice-candidate", G_CALLBACK (on_ice_candidate),
      avatar);
  g_signal_connect (avatar, "on-ice-candidate", G_CALLBACK (on_ice_candidate),
      caller);
  g_signal_connect (avatar, "pad-added", G_CALLBACK (on_avatar_pad), NULL);
  g_signal_connect (caller, "pad-added", G_CALLBACK (on_caller_pad), NULL);
  /* The remote peer wants to receive the avatar's video. */
  {
    GstCaps *vcaps = gst_caps_from_string ("application/x-rtp,media=video,"
        "encoding-name=VP8,payload=97,clock-rate=90000");
    GstWebRTCRTPTransceiver *t = NULL;
    g_signal_emit_by_name (caller, "add-transceiver",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, vcaps, &t);
    gst_caps_unref (vcaps);
    gst_clear_object (&t);
  }

  loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (pipe_);
  gst_bus_add_watch (bus, on_bus, NULL);
  if (gst_element_set_state (pipe_, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("cannot start (model or image missing? see the bus error)\n");
  } else {
    g_main_loop_run (loop);
  }
  gst_element_set_state (pipe_, GST_STATE_NULL);
  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  gst_object_unref (caller);
  gst_object_unref (avatar);
  gst_object_unref (mixer);
  gst_object_unref (pipe_);
  g_main_loop_unref (loop);
  return 0;
}
