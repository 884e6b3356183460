#!/bin/sh
# run-gpu-checks.sh — everything to run the first time a GPU is available, in
# one go (device time is scarce): build, every op against the CPU backend,
# each attention/conv path, the golden cases on the GPU, the benchmark, and
# compute-sanitizer on a few groups.  Logs go to ${OUT:-/tmp/la-gpu-checks}.
#   sh cuda/harness/run-gpu-checks.sh [BUILD_DIR]
set -u
B=${1:-build-gpu}
O=${OUT:-/tmp/la-gpu-checks}
mkdir -p "$O"
nvidia-smi > "$O/nvidia-smi.txt" 2>&1
( test -d "$B" || meson setup "$B" ) > "$O/setup.log" 2>&1
ninja -C "$B" tests/check/cuda/liveavatar-cuda-check tools/golden/liveavatar-golden > "$O/build.log" 2>&1 ||
  { echo "build failed"; tail -30 "$O/build.log"; exit 1; }
C=$B/tests/check/cuda/liveavatar-cuda-check
G=$B/tools/golden/liveavatar-golden
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
