#!/usr/bin/env bash
# Installs every build, test and runtime dependency of gst-liveavatar from
# Debian 12 packages. Idempotent: apt-get skips what is already there.
# The CUDA toolkit (nvcc, cuBLAS(Lt), NCCL) is expected in /usr/local/cuda.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

PKGS=(
  build-essential pkg-config meson ninja-build git python3
  libglib2.0-dev libjson-glib-dev libopenblas-dev
  libsentencepiece-dev sentencepiece
  libgdk-pixbuf-2.0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-espeak espeak-ng gstreamer1.0-nice
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  valgrind clang libclang-rt-14-dev
  xz-utils   # cuda/harness/make-gpu-bundle.sh
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all ${#PKGS[@]} packages present"
