#!/usr/bin/env bash
# The README's test command: build (warnings are errors) and run every test.
# GPU tests exit 77 (skipped) on machines without a CUDA device.
# Ends with a plain "N passed, N failed" line.
#   LA_BUILD_DIR   build folder (default build-test)
#   LA_VALGRIND=1  also run the checkpoint-reader tests under valgrind
#   LA_FUZZ_SECONDS=N  also run each libFuzzer target for N seconds (needs clang)
#   LA_SLOW=1      also run the 'slow' suite (the full-width load, minutes)
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

# Two test processes share two cores: idle OpenMP threads must sleep, not spin.
export OMP_WAIT_POLICY=PASSIVE
slow=(--no-suite slow)
[ "${LA_SLOW:-0}" = 1 ] && slow=()
meson test -C "$B" --print-errorlogs --num-processes 2 -t 4 "${slow[@]}"
rc=$?

extra_fail=0
extra_pass=0
if [ "${LA_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
  if meson test -C "$B" --suite checkpoint --wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite' --print-errorlogs; then
    extra_pass=$((extra_pass + 1))
  else
    extra_fail=$((extra_fail + 1))
  fi
fi
if [ -n "${LA_FUZZ_SECONDS:-}" ] && [ -x scripts/run-fuzz.sh ]; then
  if scripts/run-fuzz.sh "$LA_FUZZ_SECONDS"; then extra_pass=$((extra_pass + 1)); else extra_fail=$((extra_fail + 1)); fi
fi

# meson's JSON log has one line per test: count by result.
python3 - "$B/meson-logs/testlog.json" "$extra_pass" "$extra_fail" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
passed += int(sys.argv[2]); failed += int(sys.argv[3])
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
[ $rc -eq 0 ] && [ $extra_fail -eq 0 ]
