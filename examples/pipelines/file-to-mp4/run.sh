#!/usr/bin/env bash
# WAV file -> avatar MP4 with the audio muxed (non-live: nothing is dropped).
# Usage: run.sh [speech.wav] [out.mp4]   (no WAV: 2 s of a test tone is made)
set -euo pipefail
. "$(dirname "$0")/../common.sh"
WAV=${1:-}
MP4=${2:-$OUT/file-to-mp4.mp4}
if [ -z "$WAV" ]; then
  WAV="$OUT/tone.wav"
  gst-launch-1.0 -q audiotestsrc num-buffers=20 samplesperbuffer=1600 freq=220 \
    ! audio/x-raw,rate=16000,channels=1 ! wavenc ! filesink location="$WAV"
fi
gst-launch-1.0 -q -e filesrc location="$WAV" ! wavparse ! audioconvert ! audioresample \
    ! audio/x-raw,rate=16000,channels=1 ! tee name=t \
  t. ! queue ! $AVATAR ! videoconvert ! x264enc ! h264parse ! queue ! mux. \
  t. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 \
     ! audioconvert ! avenc_aac ! aacparse ! queue ! mux. \
  mp4mux name=mux ! filesink location="$MP4"
echo "$MP4"
