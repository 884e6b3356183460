#!/usr/bin/env bash
# TPP across processes: the DiT steps {2,3} run in a liveavatar-stage worker,
# steps {0,1} and the VAE in the pipeline (devices=cpu,tcp://HOST:PORT).
# Usage: run.sh [worker-address]   (none: a worker is started on the loopback
# with the same model and stopped at the end)
set -euo pipefail
. "$(dirname "$0")/../common.sh"
ADDR=${1:-}
WORKER_PID=
if [ -z "$ADDR" ]; then
  # the log exists before the worker starts: the loop below may read it
  # before the background shell has opened it
  : > "$OUT/stage.log"
  "$B/tools/liveavatar-stage" --model "$LA_MODEL_DIR" --listen 127.0.0.1:0 > "$OUT/stage.log" 2>&1 &
  WORKER_PID=$!
  trap 'kill $WORKER_PID 2>/dev/null || true' EXIT
  # the worker prints "... listening on tcp://HOST:PORT" once its model is loaded
  for _ in $(seq 1 300); do
    ADDR=$(sed -n 's/.*listening on \(tcp:\/\/[^ ]*\).*/\1/p' "$OUT/stage.log")
    [ -n "$ADDR" ] && break
    kill -0 $WORKER_PID 2>/dev/null || { cat "$OUT/stage.log"; exit 1; }
    sleep 0.1
  done
  [ -n "$ADDR" ] || { echo "the stage worker did not start"; cat "$OUT/stage.log"; exit 1; }
fi
echo "stage worker: $ADDR"
gst-launch-1.0 -q audiotestsrc num-buffers=20 samplesperbuffer=1600 freq=220 \
    ! audio/x-raw,rate=16000,channels=1 \
    ! $AVATAR devices=cpu,$ADDR ! videoconvert ! ${SINK:-autovideosink}
if [ -n "$WORKER_PID" ]; then
  # let the worker log the end of the stream before it is stopped
  for _ in $(seq 1 50); do grep -q "stream ended" "$OUT/stage.log" && break; sleep 0.1; done
fi
echo "done: the stream used steps 2-3 on $ADDR"
