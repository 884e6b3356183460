#!/bin/sh
# make-gpu-bundle.sh — package the CUDA harness and the golden runner, built
# here, for a GPU machine that has the CUDA libraries but not this project's
# build dependencies (glib, json-glib, OpenBLAS, gdk-pixbuf...): the two
# binaries plus every shared library they need except glibc's and CUDA's own,
# xz-compressed (the device tool carries at most 64 MiB with the tree).
#   sh cuda/harness/make-gpu-bundle.sh [BUILD_DIR] [OUT_DIR]
# then carry OUT_DIR (default .gpu-bundle, add it to .git/info/exclude) and run
#   sh cuda/harness/run-gpu-checks.sh .gpu-bundle/bundle.tar.xz
set -eu
B=${1:-build-cuda}
D=${2:-.gpu-bundle}
ninja -C "$B" tests/check/cuda/liveavatar-cuda-check tools/golden/liveavatar-golden
T=$(mktemp -d)
mkdir -p "$T/bin" "$T/lib" "$D"
cp "$B/tests/check/cuda/liveavatar-cuda-check" "$B/tools/golden/liveavatar-golden" "$T/bin/"
for f in "$T"/bin/*; do ldd "$f"; done | awk '$3 ~ /^\// { print $3 }' | sort -u | while read -r l; do
  case $(basename "$l") in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libstdc++*|libgcc_s*) ;;   # the machine's own
    libcuda*|libcublas*|libcudnn*|libnccl*|libcudart*) ;;                                    # the machine's CUDA
    *) cp -L "$l" "$T/lib/" ;;
  esac
done
tar -C "$T" -cJf "$D/bundle.tar.xz" bin lib
rm -rf "$T"
ls -la "$D/bundle.tar.xz"
