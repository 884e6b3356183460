#!/usr/bin/env bash
# TTS -> avatar -> SRT (default) or RTMP broadcast with audio.
#   URL=srt://:8888 run.sh            (listener; play with: ffplay srt://127.0.0.1:8888)
#   RTMP=rtmp://host/app/key run.sh   (e.g. a streaming service)
set -euo pipefail
. "$(dirname "$0")/../common.sh"
TEXT=${TEXT:-"Hello from the live avatar broadcast."}
if [ -n "${RTMP:-}" ]; then
  gst-launch-1.0 -e espeak text="$TEXT" ! audioconvert ! audioresample \
      ! audio/x-raw,rate=16000,channels=1 ! tee name=t \
    t. ! queue ! $AVATAR ! videoconvert ! x264enc tune=zerolatency key-int-max=50 ! h264parse ! queue ! mux. \
    t. ! queue ! audioconvert ! audioresample ! avenc_aac ! aacparse ! queue ! mux. \
    flvmux name=mux streamable=true ! rtmpsink location="$RTMP"
else
  gst-launch-1.0 -e espeak text="$TEXT" ! audioconvert ! audioresample \
      ! audio/x-raw,rate=16000,channels=1 ! tee name=t \
    t. ! queue ! $AVATAR ! videoconvert ! x264enc tune=zerolatency key-int-max=50 ! h264parse ! queue ! mux. \
    t. ! queue ! audioconvert ! audioresample ! avenc_aac ! aacparse ! queue ! mux. \
    mpegtsmux name=mux ! srtsink uri="${URL:-srt://:8888}"
fi
