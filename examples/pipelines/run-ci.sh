#!/usr/bin/env bash
# Runs every example that needs no device and no network (CI):
# file-to-mp4 and tts-espeak (SINK=fakesink), with the tiny model.
# Checks the MP4 has a video and an audio stream.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LA_OUT=${LA_OUT:-$(mktemp -d /tmp/liveavatar-ci-XXXXXX)}
fail=0
echo "file-to-mp4"
MP4=$("$HERE/file-to-mp4/run.sh" "" "$LA_OUT/ci.mp4" | tail -1) || fail=1
# Both streams must demux (a missing pad would leave the pipeline waiting:
# bounded by timeout).
if [ $fail = 0 ]; then
  timeout 60 gst-launch-1.0 -q filesrc location="$MP4" ! qtdemux name=d \
    d.video_0 ! queue ! fakesink d.audio_0 ! queue ! fakesink \
    || { echo "$MP4 lacks a video or an audio stream"; fail=1; }
fi
echo "tts-espeak"
SINK=fakesink "$HERE/tts-espeak/run.sh" "Testing one two three." || fail=1
rm -rf "$LA_OUT"
if [ $fail = 0 ]; then echo "examples: 2 passed, 0 failed"; else echo "examples: failed"; fi
exit $fail
