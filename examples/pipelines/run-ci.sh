#!/usr/bin/env bash
# Runs every example that needs no device and no network (CI):
# file-to-mp4, tts-espeak and stage-workers (SINK=fakesink; the worker on
# the loopback), with the tiny model, the webrtc-app, whose two peers
# talk over loopback inside one process, and the agent example (a scripted
# conversation with silences and a barge-in, its checks in agent_demo.py).
# Checks the MP4 has a video and an audio stream, and that the WebRTC peer
# receives generated (changing) avatar frames.
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
echo "stage-workers"
if SINK=fakesink "$HERE/stage-workers/run.sh"; then
  # one pipeline run is one stream on the worker: the element's reset at
  # READY->PAUSED keeps the stream la_session_new built (no second prefill)
  n=$(grep -c "stream ended" "$LA_OUT/stage.log" || true)
  [ "$n" = 1 ] || { echo "stage-workers: the worker served $n streams for one run (expected 1)"; fail=1; }
else
  fail=1
fi
echo "webrtc-app"
. "$HERE/common.sh"
if [ ! -x "$B/gst/webrtc-avatar" ] || ! gst-inspect-1.0 nicesrc >/dev/null 2>&1; then
  echo "webrtc-avatar not built or libnice's plugin missing"; fail=1
else
  # The app runs until stopped: 60 s, then count the distinct frames received.
  SINK=checksumsink timeout 60 "$B/gst/webrtc-avatar" "$LA_MODEL_DIR" "$LA_REFERENCE_IMAGE" \
    "$LA_MAX_AREA" > "$LA_OUT/webrtc.log" 2>&1 && rc=0 || rc=$?
  distinct=$(awk 'length($2) == 40 && $2 ~ /^[0-9a-f]+$/ {print $2}' "$LA_OUT/webrtc.log" | sort -u | wc -l)
  if [ $rc != 124 ] || ! grep -q "remote: receiving avatar video" "$LA_OUT/webrtc.log" || [ "$distinct" -lt 20 ]; then
    echo "webrtc-app: exit $rc, $distinct distinct frames received"; tail -20 "$LA_OUT/webrtc.log"; fail=1
  else
    echo "webrtc-app: $distinct distinct avatar frames received over the peer connection"
  fi
fi
echo "agent"
"$HERE/agent/run.sh" --check || fail=1
rm -rf "$LA_OUT"
if [ $fail = 0 ]; then echo "examples: 5 passed, 0 failed"; else echo "examples: failed"; fi
exit $fail
