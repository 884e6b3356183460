#!/bin/sh
# run-gpu-checks.sh — everything to run the first time a GPU is available, in
# one go (device time is scarce): build, every op against the CPU backend,
# each attention/conv path, the golden cases on the GPU, the benchmark, and
# compute-sanitizer on a few groups.  Logs go to /tmp/la-gpu-checks, and all
# of them, concatenated, to ${OUT:-/tmp}/gpu-checks.log (the device tool
# brings back at most 8 files).
#   sh cuda/harness/run-gpu-checks.sh [BUILD_DIR | BUNDLE.tar.xz]
# A bundle (make-gpu-bundle.sh, built on the dev machine) is for a GPU machine
# without the project's build dependencies: it is unpacked to /tmp and run
# against the machine's CUDA libraries (toolkit or pip nvidia-* wheels).
set -u
B=${1:-build-gpu}
O=/tmp/la-gpu-checks
rm -rf "$O"
mkdir -p "$O"
nvidia-smi > "$O/nvidia-smi.txt" 2>&1
case $B in
  *.tar.xz)
    U=/tmp/la-bundle; rm -rf $U; mkdir -p $U; tar -C $U -xJf "$B"
    L=$U/lib
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do test -d $d && L=$L:$d; done
    for m in cudnn cublas cuda_runtime nccl; do
      p=$(python3 -c "import importlib; print(list(importlib.import_module('nvidia.$m').__path__)[0])" 2>/dev/null) &&
        L=$L:$p/lib
    done
    export LD_LIBRARY_PATH=$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    C=$U/bin/liveavatar-cuda-check
    G=$U/bin/liveavatar-golden
    ldd $C $G > "$O/ldd.log" 2>&1
    grep "not found" "$O/ldd.log" && echo "missing libraries (see ldd.log)";;
  *)
    ( test -d "$B" || meson setup "$B" ) > "$O/setup.log" 2>&1
    ninja -C "$B" tests/check/cuda/liveavatar-cuda-check tools/golden/liveavatar-golden > "$O/build.log" 2>&1 ||
      { echo "build failed"; tail -30 "$O/build.log"; exit 1; }
    C=$B/tests/check/cuda/liveavatar-cuda-check
    G=$B/tools/golden/liveavatar-golden;;
esac
run () {   # name, timeout, command...
  n=$1; t=$2; shift 2
  timeout "$t" "$@" > "$O/$n.log" 2>&1
  echo "$n: exit $? ($(grep -c '^pass' "$O/$n.log") pass, $(grep -c '^FAIL' "$O/$n.log") FAIL)"
}
run ops 240 $C
run attn-flash 60 env LA_CUDA_ATTN=flash $C attention
run attn-gemm 60 env LA_CUDA_ATTN=gemm $C attention
run conv-im2col 60 env LA_CUDA_CONV=im2col $C conv
for c in t5 wav2vec2 audio vae dit_stream dit_stream_online; do
  run golden-$c 120 $G --device cuda tests/golden/$c
done
run bench 180 $C --bench
if command -v compute-sanitizer > /dev/null; then
  run sanitizer 240 compute-sanitizer --error-exitcode 9 $C memory elementwise norms gemm attention alloc graph
fi
grep -h '^FAIL\|^bench\|PASS\|FAIL ' "$O"/*.log | head -80
for f in "$O"/*; do echo "=== $f"; cat "$f"; done > "${OUT:-/tmp}/gpu-checks.log"
