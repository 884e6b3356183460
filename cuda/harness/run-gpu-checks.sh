#!/bin/sh
# run-gpu-checks.sh — the one bounded check of the CUDA backend on a lent GPU
# (docs/cuda.md, "Verifying on a GPU").  A lease is ~15 device minutes and
# 600 s per command, so:
#  - one overall deadline (LA_GPU_DEADLINE_S, default 480 s) from which every
#    step's timeout is derived (a share of it, never more than what is left);
#    steps run most important first and are skipped once time is out;
#  - results stream into $OUT as each step ends (a killed run still returns
#    every finished step, and the running step's partial log):
#      $OUT/summary.txt     one line per step
#      $OUT/gpu-checks.log  every finished step's log, appended when it ends
#      $OUT/step.log        the running step's log (only left if killed mid-step)
#    (three files: the device tool returns at most 8);
#  - one process per harness group, so one illegal address cannot poison the
#    other groups; a failing group is run again with CUDA_LAUNCH_BLOCKING=1
#    (the error then names the kernel that faulted);
#  - versions of the driver, runtime, cuBLAS(Lt), cuDNN and NCCL, and `ldd` in
#    full when a library is missing; the CUDA libraries are looked for in the
#    toolkit and in pip wheel layouts (site-packages/nvidia/*/lib: cu13,
#    cudnn, nccl, ...), where they often are the only copy.
# The cases and golden files are the ones CI checks on the emulated device
# (the same harness binary and tests/golden), so a GPU run is judged against
# the same expected numbers and tolerances.
#
#   sh cuda/harness/run-gpu-checks.sh [BUILD_DIR | BUNDLE.tar.xz]
#     BUNDLE: made by make-gpu-bundle.sh for a machine without the build
#     dependencies (the lent GPU machines); BUILD_DIR (default build): a
#     build here, e.g. the emulated one (-Dcuda-emu=enabled), built first
#     only if its harness binary is missing.
#   LA_GPU_DEADLINE_S  overall budget in seconds (480)
#   LA_GPU_STEPS       only the steps matching these shell patterns, e.g.
#                      "group-fp8 golden-*" (default: all; see the names in summary.txt)
#   LA_GPU_DIT_LAYERS, LA_GPU_WEIGHTS, LA_GPU_SIZE, LA_GPU_SESSION_ARGS
#                      the session-full step (below; defaults 8, fp8, 704x384)
#   LA_CHECK_HANG=G    harness group G sleeps instead of running (to see a
#                      timeout cut one step while the others still report)
set -u
T0=$(date +%s)
DEADLINE=${LA_GPU_DEADLINE_S:-480}
O=${OUT:-/tmp/la-gpu-checks}
SUM=$O/summary.txt
LOG=$O/gpu-checks.log
CUR=$O/step.log
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GOLDEN=${LA_GOLDEN_DIR:-$ROOT/tests/golden}
B=${1:-build}
mkdir -p "$O"
: > "$SUM"
: > "$LOG"
rm -f "$CUR"
N_BAD=0
RC=0
U=
STEP=start

TPID=

note () { echo "$*"; echo "$*" >> "$SUM"; }
left () { echo $((DEADLINE - ($(date +%s) - T0))); }
# Stopped from outside (TERM): end the running step too, say where it was;
# its partial log stays in $CUR.
on_kill () {
  [ -n "$TPID" ] && kill -TERM "$TPID" 2> /dev/null
  note "killed during $STEP after $(($(date +%s) - T0))s"
  exit 143
}
trap on_kill TERM INT HUP

wanted () {
  [ -z "${LA_GPU_STEPS:-}" ] && return 0
  for p in $LA_GPU_STEPS; do
    # shellcheck disable=SC2254 # the patterns are globs
    case $1 in $p) return 0 ;; esac
  done
  return 1
}

# run_step NAME SHARE CMD...: CMD with a timeout of DEADLINE/SHARE seconds,
# cut to what is left; its log streams to $CUR, then joins $LOG.
run_step () {
  STEP=$1
  share=$2
  shift 2
  RC=0
  l=$(left)
  t=$((DEADLINE / share))
  [ "$t" -gt "$l" ] && t=$l
  if [ "$t" -lt 5 ]; then
    note "$STEP: skipped, deadline (${l}s left)"
    N_BAD=$((N_BAD + 1))
    return 0
  fi
  s0=$(date +%s)
  echo "=== $STEP: $* (timeout ${t}s)" > "$CUR"
  timeout -k 5 "$t" env LD_LIBRARY_PATH="$LDP" "$@" >> "$CUR" 2>&1 &
  TPID=$!
  wait "$TPID"
  RC=$?
  TPID=
  dt=$(($(date +%s) - s0))
  np=$(grep -c '^pass\|^PASS' "$CUR")     # harness lines, golden cases
  nf=$(grep -c '^FAIL' "$CUR")
  case $RC in
    0) what=ok ;;
    77) what="SKIP (exit 77: no device)" ;;
    124|137) what="TIMEOUT (${t}s)" ;;
    *) what="FAILED (exit $RC)" ;;
  esac
  case $RC in 0|77) ;; *) N_BAD=$((N_BAD + 1)) ;; esac
  echo "=== $STEP: exit $RC after ${dt}s" >> "$CUR"
  cat "$CUR" >> "$LOG"
  rm -f "$CUR"
  note "$STEP: $what, $np pass, $nf FAIL, ${dt}s"
}

step () {
  wanted "$1" || return 0
  run_step "$@"
}

# group STEP GROUP [VAR=VALUE...]: one process per harness group; a failure
# (not a timeout: a hang would only hang again) is re-run with synchronous
# launches.
group () {
  n=$1
  g=$2
  shift 2
  wanted "$n" || return 0
  run_step "$n" 8 env "$@" "$C" "$g"
  case $RC in
    0|77|124|137) ;;
    *) run_step "$n-blocking" 8 env CUDA_LAUNCH_BLOCKING=1 "$@" "$C" "$g" ;;
  esac
}

# Directories that may hold the CUDA libraries: the toolkit, then every pip
# wheel layout under the Python installations here.
cuda_lib_dirs () {
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && echo "$d"
  done
  {
    command -v python3 > /dev/null &&
      timeout 20 python3 -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2> /dev/null
    ls -d /opt/*/.venv/lib/python3*/site-packages /opt/*/lib/python3*/site-packages \
      /usr/local/lib/python3*/dist-packages /usr/lib/python3/dist-packages 2> /dev/null
  } | sort -u | while read -r sp; do
    for d in "$sp"/nvidia/*/lib; do
      [ -d "$d" ] && echo "$d"
    done
  done
}

# ------------------------------------------------------------ binaries
case $B in
  *.tar.xz)
    U=/tmp/la-bundle
    rm -rf "$U"
    mkdir -p "$U"
    tar -C "$U" -xJf "$B" || { note "cannot unpack $B"; exit 1; }
    C=$U/bin/liveavatar-cuda-check
    G=$U/bin/liveavatar-golden
    MK=$U/bin/liveavatar-mkmodel
    BENCH=$U/bin/liveavatar-bench
    LIBS=$U/lib
    ;;
  *)
    C=$B/tests/check/cuda/liveavatar-cuda-check
    G=$B/tools/golden/liveavatar-golden
    MK=$B/tools/liveavatar-mkmodel
    BENCH=$B/tools/liveavatar-bench
    LIBS=
    if [ ! -x "$C" ] && command -v ninja > /dev/null && [ -f "$B/build.ninja" ]; then
      step build 2 ninja -C "$B" tests/check/cuda/liveavatar-cuda-check tools/golden/liveavatar-golden
      [ "$RC" = 0 ] || { note "build failed (see gpu-checks.log)"; exit 1; }
    fi
    ;;
esac
[ -x "$C" ] || { note "no harness binary at $C"; exit 1; }
L=$LIBS
for d in $(cuda_lib_dirs); do
  L=${L:+$L:}$d
done
# Only the checked programs get it: the bundle's Debian libz/libselinux/...
# must not reach the machine's own tools (python3, find, nvidia-smi).
LDP="$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ------------------------------------------------------------ machine, versions, libraries
{
  echo "=== environment"
  echo "host: $(uname -srm); $(ldd --version 2> /dev/null | head -1)"
  [ -n "$U" ] && [ -f "$U/MANIFEST" ] && cat "$U/MANIFEST"
  if command -v nvidia-smi > /dev/null; then
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv
    timeout 20 nvidia-smi
  else
    echo "nvidia-smi: not found (no NVIDIA driver here: emulated or CPU-only build)"
  fi
  echo "deadline ${DEADLINE}s; the checks' LD_LIBRARY_PATH=$LDP"
  timeout 30 env LD_LIBRARY_PATH="$LDP" "$C" --versions
  missing=
  for b in "$C" "$G"; do
    [ -x "$b" ] || continue
    d=$(LD_LIBRARY_PATH="$LDP" ldd "$b")
    if echo "$d" | grep -q "not found"; then
      missing="$missing $(echo "$d" | awk '/not found/ { print $1 }')"
      echo "--- ldd $b (a library is missing)"
      echo "$d"
    else
      echo "--- ldd $b: the CUDA libraries it resolves"
      echo "$d" | grep -i 'cuda\|cublas\|cudnn\|nccl' || echo "(none: not a real-CUDA build)"
    fi
  done
  for m in $(echo "$missing" | tr ' ' '\n' | sort -u); do
    echo "--- $m: looked in $(echo "$LDP" | tr ':' ' ')"
    timeout 30 find / -xdev -name "$m*" 2> /dev/null | head -5
  done
} > "$CUR" 2>&1
cat "$CUR" >> "$LOG"
rm -f "$CUR"
grep '^version\|not found' "$LOG" | head -20
note "environment: $(echo "$missing" | wc -w) missing libraries, $(left)s left"

# ------------------------------------------------------------ checks, most important first
for g in memory elementwise norms gemm fp8 attention conv vae rope alloc graph streams threads; do
  group "group-$g" "$g"
done
group group-attention-flash attention LA_CUDA_ATTN=flash
group group-attention-gemm attention LA_CUDA_ATTN=gemm
group group-conv-im2col conv LA_CUDA_CONV=im2col
if [ -x "$G" ]; then
  for c in t5 wav2vec2 audio vae dit_stream dit_stream_online; do
    step "golden-$c" 8 "$G" --device cuda "$GOLDEN/$c"
  done
else
  note "golden: no liveavatar-golden in this build or bundle"
fi
step bench 4 "$C" --bench
# The whole session on one GPU at the published widths and 704x384: a
# generated tree (random weights; zero matrices stored as file holes) with
# LA_GPU_DIT_LAYERS of the 40 DiT layers (default 8: all 40 with 4 steps' KV
# caches, 54.5 GB bf16, beside FP8 weights and umT5 do not fit one 80 GB GPU,
# docs/performance.md), FP8 weights, 3 blocks: measured time to the first frame
# and fps, to set beside the dry-run prediction scaled to those layers
# (docs/performance.md).  LA_GPU_SESSION_ARGS replaces the tree's options
# (e.g. "--preset tiny" with --size 64x64 on the emulated device).
if [ -x "${MK:-}" ] && [ -x "${BENCH:-}" ] && wanted session-full; then
  TREE=${TMPDIR:-/tmp}/la-gpu-tree
  rm -rf "$TREE"
  run_step session-full-tree 8 "$MK" ${LA_GPU_SESSION_ARGS:---preset full --dit-layers ${LA_GPU_DIT_LAYERS:-8} --t5-layers 24} \
    --out "$TREE"
  if [ -f "$TREE/Wan2.2-S2V-14B/config.json" ]; then
    run_step session-full 2 "$BENCH" --what session --model "$TREE/Wan2.2-S2V-14B" \
      --lora "$TREE/LiveAvatar/liveavatar.safetensors" --session-devices cuda:0 --weights "${LA_GPU_WEIGHTS:-fp8}" \
      --size "${LA_GPU_SIZE:-704x384}" --blocks 3
  elif [ -f "$TREE/config.json" ]; then
    run_step session-full 2 "$BENCH" --what session --model "$TREE" --lora "$TREE" --session-devices cuda:0 \
      --weights "${LA_GPU_WEIGHTS:-fp8}" --size "${LA_GPU_SIZE:-704x384}" --blocks 3
  fi
  rm -rf "$TREE"
fi
if command -v compute-sanitizer > /dev/null; then
  step sanitizer 4 compute-sanitizer --error-exitcode 9 "$C" memory norms attention graph
fi
STEP=end
note "done in $(($(date +%s) - T0))s of ${DEADLINE}s: $N_BAD step(s) not ok"
[ "$N_BAD" = 0 ]
