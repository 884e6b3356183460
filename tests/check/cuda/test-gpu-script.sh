#!/bin/sh
# test-gpu-script.sh — runs everywhere: cuda/harness/run-gpu-checks.sh against
# this build (GPU, emulated, or a GPU-less nvcc build whose groups skip).
#  1. a hung group (LA_CHECK_HANG) is cut by the timeout derived from the
#     deadline (48 s / 8 = 6 s), the next group still runs and reports, and
#     everything is in $OUT, with no running-step log left over;
#  2. stopped from outside (TERM) during the hung group, the script stops
#     that step too, says where it was killed, and what finished is in $OUT
#     with the running step's partial log.
#   test-gpu-script.sh SCRIPT BUILD_DIR
# shellcheck disable=SC2016,SC2034 # check() evaluates its quoted condition later
set -u
S=$1
B=$2
O=$(mktemp -d)
bad=0
check () { if ! eval "$1"; then echo "FAIL: $1"; bad=1; fi; }

OUT=$O/1 LA_GPU_DEADLINE_S=48 LA_GPU_STEPS="group-norms group-vae" LA_CHECK_HANG=norms LA_CHECK_TIMING=0 \
  sh "$S" "$B" > "$O/1.out" 2>&1
rc=$?
cat "$O/1/summary.txt"
check '[ $rc = 1 ]'
check 'grep -q "^group-norms: TIMEOUT (6s)" "$O/1/summary.txt"'
check 'grep -q "^group-vae: \(ok\|SKIP\)" "$O/1/summary.txt"'
check 'grep -q "LA_CHECK_HANG=norms: sleeping" "$O/1/gpu-checks.log"'
check 'grep -q "^version cuBLAS" "$O/1/gpu-checks.log"'
check '[ ! -e "$O/1/step.log" ]'

OUT=$O/2 LA_GPU_DEADLINE_S=400 LA_GPU_STEPS="group-memory group-norms group-vae" LA_CHECK_HANG=norms \
  LA_CHECK_TIMING=0 timeout -s TERM 20 sh "$S" "$B" > "$O/2.out" 2>&1
rc=$?
cat "$O/2/summary.txt"
check '[ $rc = 124 ]'
check 'grep -q "^group-memory: \(ok\|SKIP\)" "$O/2/summary.txt"'
check 'grep -q "^killed during group-norms" "$O/2/summary.txt"'
check '! grep -q "^group-vae" "$O/2/summary.txt"'
check 'grep -q "LA_CHECK_HANG=norms: sleeping" "$O/2/step.log"'

[ $bad = 0 ] && rm -rf "$O"
exit $bad
