#!/usr/bin/env bash
# Microphone -> avatar in a window (live: the element keeps 25 fps by
# repeating frames when generation is late, drops the oldest audio, posts QoS).
set -euo pipefail
. "$(dirname "$0")/../common.sh"
LATENCY=${LATENCY:-500}
gst-launch-1.0 autoaudiosrc ! audioconvert ! audioresample \
    ! audio/x-raw,rate=16000,channels=1 ! queue \
    ! $AVATAR latency=$LATENCY ! queue ! videoconvert ! autovideosink
