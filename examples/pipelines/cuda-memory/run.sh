#!/usr/bin/env bash
# Avatar frames that stay on the GPU: the engine on cuda:0 hands RGBA frames
# to liveavatarsrc in CUDA memory (copied device-to-device, no upload), then
#   ENC=nvh264enc (default when the element exists): H.264 on NVENC -> MP4;
#   ENC=download: cudadownload -> x264enc, for machines without NVENC (and the
#                 emulated device: LA_BUILD_DIR=build-emu, LD_LIBRARY_PATH set
#                 below to its libcuda.so.1).
# Usage: run.sh [out.mp4]
set -euo pipefail
. "$(dirname "$0")/../common.sh"
MP4=${1:-$OUT/cuda-memory.mp4}
LA_DEVICES=${LA_DEVICES:-cuda:0}
AVATAR="${AVATAR/devices=cpu/devices=$LA_DEVICES}"
# The emulated build's driver (cuda/emu/driver.cc), when that is the build used.
# nvcodec registers its elements from what it finds at scan time: a registry of
# its own, so the user's cached one (scanned without it) is not reused.
if [ -e "$B/cuda/emu/libcuda.so.1" ]; then
  export LD_LIBRARY_PATH="$B/cuda/emu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export GST_REGISTRY="$OUT/cuda-emu.registry"
fi
if [ -z "${ENC:-}" ]; then
  if gst-inspect-1.0 nvh264enc >/dev/null 2>&1; then ENC=nvh264enc; else ENC=download; fi
fi
case "$ENC" in
  nvh264enc) VIDEO="nvh264enc zerolatency=true" ;;
  download)  VIDEO="cudadownload ! videoconvert ! x264enc tune=zerolatency" ;;
  *) echo "ENC=$ENC: nvh264enc or download"; exit 2 ;;
esac
gst-launch-1.0 -e audiotestsrc num-buffers=20 samplesperbuffer=1600 freq=220 \
    ! audio/x-raw,rate=16000,channels=1,format=S16LE \
    ! $AVATAR name=avatar ! "video/x-raw(memory:CUDAMemory),format=RGBA" \
    ! $VIDEO ! h264parse ! mp4mux ! filesink location="$MP4" 2>&1 | tail -3
echo "$MP4"
