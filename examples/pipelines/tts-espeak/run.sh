#!/usr/bin/env bash
# Text-to-speech (espeak element, gstreamer1.0-espeak) -> avatar video.
# Usage: run.sh ["text"]   SINK=autovideosink by default; CI uses SINK=fakesink.
set -euo pipefail
. "$(dirname "$0")/../common.sh"
TEXT=${1:-"Hello, I am a live avatar."}
SINK=${SINK:-autovideosink}
gst-launch-1.0 -q espeak text="$TEXT" ! audioconvert ! audioresample \
    ! audio/x-raw,rate=16000,channels=1 ! $AVATAR ! videoconvert ! $SINK
