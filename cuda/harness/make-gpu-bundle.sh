#!/bin/sh
# make-gpu-bundle.sh — package the CUDA harness and the golden runner, built
# here, for a lent GPU machine: it has CUDA (driver, toolkit, pip nvidia-*
# wheels) but none of this project's build dependencies (no glib, json-glib,
# OpenBLAS, gdk-pixbuf headers or libraries), so the two binaries travel with
# every shared library they need except glibc's, the C++ runtime and CUDA's
# own (run-gpu-checks.sh finds those on the machine, wheels included).
# xz-compressed, ~8 MB: the device tool carries at most 64 MiB with the tree
# (which holds tests/golden, ~27 MB, that the golden cases read).
#   sh cuda/harness/make-gpu-bundle.sh [BUILD_DIR] [OUT_DIR]
# BUILD_DIR (default build) must be a real-CUDA build (nvcc, not the emulated
# one).  Then, with the device tool, from the repository root:
#   echo /.gpu-bundle/ >> .git/info/exclude          (once)
#   run  command: sh cuda/harness/run-gpu-checks.sh .gpu-bundle/bundle.tar.xz
#        carry:   [".gpu-bundle"]     timeout_s: 600 (the script stops itself at 480 s)
set -eu
B=${1:-build}
D=${2:-.gpu-bundle}
ninja -C "$B" tests/check/cuda/liveavatar-cuda-check tools/golden/liveavatar-golden tools/liveavatar-mkmodel \
  tools/liveavatar-bench
C=$B/tests/check/cuda/liveavatar-cuda-check
if ! ldd "$C" | grep -q 'libcudart\.so'; then
  echo "$C does not link the real CUDA runtime (an emulated or CUDA-disabled build): nothing to run on a GPU" >&2
  exit 1
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/lib" "$D"
cp "$C" "$B/tools/golden/liveavatar-golden" "$B/tools/liveavatar-mkmodel" "$B/tools/liveavatar-bench" "$T/bin/"
for f in "$T"/bin/*; do ldd "$f"; done | awk '$3 ~ /^\// { print $3 }' | sort -u | while read -r l; do
  case $(basename "$l") in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libresolv.so*) ;;   # glibc: the machine's
    libstdc++*|libgcc_s*) ;;                                                           # C++ runtime: the machine's
    libcuda.so*|libcudart*|libcublas*|libcudnn*|libnccl*) ;;                           # CUDA: the machine's
    *) cp -L "$l" "$T/lib/" ;;
  esac
done
{
  echo "bundle: $(git -C "$(dirname "$0")" describe --always --dirty 2> /dev/null || echo '?'), built $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "built against: $(ldd --version | head -1); CUDA libraries linked: $(ldd "$C" | awk '/cuda|cublas|cudnn|nccl/ { printf "%s ", $1 }')"
  echo "bundled: $(cd "$T/lib" && echo *)"
} > "$T/MANIFEST"
tar -C "$T" -cJf "$D/bundle.tar.xz" bin lib MANIFEST
ls -la "$D/bundle.tar.xz"
