#!/usr/bin/env bash
# The README's test command: build (warnings are errors) and run every test.
# GPU tests exit 77 (skipped) on machines without a CUDA device.
# Ends with a plain "N passed, N failed" line.
#   LA_BUILD_DIR   build folder (default build-test)
#   LA_VALGRIND=1  also run the checkpoint-reader tests under valgrind
#   LA_FUZZ_SECONDS=N  also run each libFuzzer target for N seconds (needs clang)
#   LA_SLOW=1      also run the 'slow' suite (the full-width load, minutes)
#   LA_CUDA_EMU=0  skip the emulated-CUDA stage (a second build, -Dcuda-emu=enabled,
#                  in LA_EMU_BUILD_DIR, default build-emu-test: the cuda suite in
#                  forward and reverse block/thread order, device memory protected;
#                  about 6 minutes per order on 2 loaded cores; then the
#                  cuda-session suite once, the whole session on two emulated GPUs).  It is skipped,
#                  and said so, when less than LA_CUDA_EMU_BUDGET seconds (default
#                  1500) of a LA_CI_MINUTES (default 50) minute run are left.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${LA_BUILD_DIR:-build-test}

if [ ! -f "$B/build.ninja" ]; then
  meson setup "$B" -Dwerror=true >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$B" >"$B.log" 2>&1; then
  tail -40 "$B.log"
  echo "build failed (see $B.log)"
  echo "0 passed, 1 failed"
  exit 1
fi

# (No OMP_WAIT_POLICY here: the CPU backend's loop threads sleep when idle
# whatever the environment says, lib/cpu/la-parallel.c.)
slow=(--no-suite slow)
[ "${LA_SLOW:-0}" = 1 ] && slow=()
meson test -C "$B" --print-errorlogs --num-processes 2 -t 4 "${slow[@]}"
rc=$?

extra_fail=0
extra_pass=0
if [ "${LA_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
  if meson test -C "$B" --suite checkpoint --wrap="valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$PWD/tests/check/rtld.supp" --print-errorlogs; then
    extra_pass=$((extra_pass + 1))
  else
    extra_fail=$((extra_fail + 1))
  fi
fi
if [ -n "${LA_FUZZ_SECONDS:-}" ] && [ -x scripts/run-fuzz.sh ]; then
  if scripts/run-fuzz.sh "$LA_FUZZ_SECONDS"; then extra_pass=$((extra_pass + 1)); else extra_fail=$((extra_fail + 1)); fi
fi

logs=("$B/meson-logs/testlog.json")
if [ "${LA_CUDA_EMU:-1}" != 0 ]; then
  E=${LA_EMU_BUILD_DIR:-build-emu-test}
  left=$(( ${LA_CI_MINUTES:-50} * 60 - SECONDS ))
  if [ "$left" -lt "${LA_CUDA_EMU_BUDGET:-1500}" ]; then
    echo "cuda-emu: skipped, ${left} s left of the CI budget"
  elif { [ -f "$E/build.ninja" ] || meson setup "$E" -Dwerror=true -Dcuda-emu=enabled >/dev/null; } &&
       ninja -C "$E" >"$E.log" 2>&1; then
    for order in forward reverse; do
      LA_EMU_ORDER=$order meson test -C "$E" --suite cuda --suite cuda-emu --print-errorlogs --num-processes 2 -t 4 ||
        rc=1
      cp "$E/meson-logs/testlog.json" "$E/testlog-$order.json"
      logs+=("$E/testlog-$order.json")
    done
    # The whole session on emulated GPUs (minutes of interpreted kernels): once.
    meson test -C "$E" --suite cuda-session --print-errorlogs --num-processes 2 -t 4 || rc=1
    cp "$E/meson-logs/testlog.json" "$E/testlog-session.json"
    logs+=("$E/testlog-session.json")
  else
    tail -40 "$E.log" 2>/dev/null
    echo "cuda-emu: build failed (see $E.log)"
    extra_fail=$((extra_fail + 1))
  fi
fi

# meson's JSON logs have one line per test: count by result.
python3 - "$extra_pass" "$extra_fail" "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for log in sys.argv[3:]:
    for line in open(log):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
passed += int(sys.argv[1]); failed += int(sys.argv[2])
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
[ $rc -eq 0 ] && [ $extra_fail -eq 0 ]
