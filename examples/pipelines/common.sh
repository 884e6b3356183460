# Sourced by the example scripts: model, reference image and plugin path.
#   LA_MODEL_DIR  model folder (unset: a tiny random-weight model is generated,
#                 its output is NOT a face), LA_REFERENCE_IMAGE, LA_MAX_AREA,
#                 LA_BUILD_DIR (default build), LA_OUT (default /tmp/liveavatar-examples),
#                 LA_DEVICES (default cpu; cuda:0, cuda:0,cuda:1,... run on GPUs),
#                 LA_WEIGHTS (default file; f32, bf16, fp8 on GPUs)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${LA_BUILD_DIR:-build}
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
OUT=${LA_OUT:-/tmp/liveavatar-examples}
mkdir -p "$OUT"
export GST_PLUGIN_PATH="$B/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
if [ -z "${LA_MODEL_DIR:-}" ]; then
  LA_MODEL_DIR="$OUT/tiny-model"
  MK=${LA_MKMODEL:-$B/tools/liveavatar-mkmodel}
  [ -f "$LA_MODEL_DIR/config.json" ] || "$MK" --preset tiny --out "$LA_MODEL_DIR" >/dev/null 2>&1
  LA_MAX_AREA=${LA_MAX_AREA:-4096}
fi
LA_MAX_AREA=${LA_MAX_AREA:-0}
if [ -z "${LA_REFERENCE_IMAGE:-}" ]; then
  LA_REFERENCE_IMAGE="$OUT/reference.png"
  [ -f "$LA_REFERENCE_IMAGE" ] || gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=pinwheel \
    ! video/x-raw,width=256,height=256 ! videoconvert ! pngenc ! filesink location="$LA_REFERENCE_IMAGE"
fi
AVATAR="liveavatarsrc model-path=$LA_MODEL_DIR reference-image=$LA_REFERENCE_IMAGE max-area=$LA_MAX_AREA"
AVATAR="$AVATAR devices=${LA_DEVICES:-cpu} weights=${LA_WEIGHTS:-file}"
