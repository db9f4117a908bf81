#!/usr/bin/env bash
# Data races in moss's CUDA kernels, found on the CPU: the kernels' own source (the warp and
# small-block kernels of kernels/cuda/warp_row_kernels.h and theta_kernels.h) runs under the test
# suite's emulation of the warp intrinsics (tests/kernels/warp_emulation.h), built with
# ThreadSanitizer. The emulation hides from TSan every synchronisation that CUDA does not promise
# (shuffles, ballots and atomicAdd order no memory), so a thread that reads what another wrote with
# no __syncwarp or __syncthreads between them is reported, as compute-sanitizer's racecheck would on
# a device. Fails when a test fails, when TSan reports anything in them, or when TSan misses one of
# the planted races (tests/kernels/planted_races.cpp).
#
#   scripts/racecheck.sh        # gcc, build-tsan/
#
# Environment: MOSS_RACECHECK_BUILD_DIR (default build-tsan), MOSS_JOBS (default nproc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOSS_RACECHECK_BUILD_DIR:-$root/build-tsan}"
jobs="${MOSS_JOBS:-$(nproc)}"
flags="-fsanitize=thread -fno-omit-frame-pointer -g -O1"
tests=(moss_kernels_warp_row_kernels_test moss_kernels_theta_kernels_test moss_kernels_theta_general_test moss_kernels_gemm_kernels_test)

start=$(date +%s)
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
    -DMOSS_WITH_CUDA=OFF -DMOSS_WITH_MPI=OFF -DMOSS_WITH_NS3=OFF \
    -DMOSS_BUILD_BENCH=OFF -DMOSS_BUILD_TESTS=ON >"$build/configure.log" 2>&1 \
    || { cat "$build/configure.log" >&2; exit 1; }
fi
echo "racecheck: building in $build (log: $build/build.log)" >&2
if ! cmake --build "$build" -j "$jobs" --target "${tests[@]}" moss_planted_races >"$build/build.log" 2>&1; then
  grep -E -A8 'error|Error' "$build/build.log" | head -120 >&2 || tail -40 "$build/build.log" >&2
  exit 1
fi
built=$(date +%s)

logs="$build/racecheck-logs"
rm -rf "$logs"
mkdir -p "$logs"
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
binary() { find "$build/tests" -type f -name "$1" -perm -u+x | head -1; }
# run LOG PROGRAM ARGS...: the program under TSan, output to LOG, its exit status returned. TSan's
# runtime cannot map its shadow memory under the address randomisation of some kernels (more mmap
# random bits than it knows): it then stops at once with "unexpected memory mapping", and the program
# runs again without the randomisation (setarch -R).
run() {
  local log="$1" rc=0
  shift
  "$@" >"$log" 2>&1 || rc=$?
  if grep -q 'ThreadSanitizer: unexpected memory mapping' "$log"; then
    rc=0
    setarch "$(uname -m)" -R "$@" >"$log" 2>&1 || rc=$?
  fi
  return "$rc"
}
status=0 reports=0 planted=0 caught=0
# The test programs at once (their threads mostly wait at the emulation's barriers).
pids=()
for t in "${tests[@]}"; do
  exe="$(binary "$t")"
  [ -n "$exe" ] || { echo "racecheck: $t not built" >&2; exit 1; }
  ( rc=0; run "$logs/$t.log" "$exe" || rc=$?; echo "$rc" >"$logs/$t.rc" ) &
  pids+=($!)
done
wait "${pids[@]}"
for t in "${tests[@]}"; do
  rc=$(cat "$logs/$t.rc")
  n=$(grep -c 'WARNING: ThreadSanitizer' "$logs/$t.log" || true)
  reports=$((reports + n))
  if [ "$rc" -ne 0 ] || [ "$n" -gt 0 ]; then
    status=1
    echo "racecheck: $t exit $rc, $n ThreadSanitizer reports:" >&2
    grep -E -A30 'WARNING: ThreadSanitizer|FAILED|Failure' "$logs/$t.log" | head -150 >&2
  fi
  grep -E '^\[  (PASSED|FAILED)' "$logs/$t.log" | sed "s/^/racecheck: $t /" >&2 || true
done
# The check of the check (tests/kernels/planted_races.cpp): with a __syncwarp, right values and no
# report; with only a shuffle or a ballot between a write and another lane's read, right values
# (the emulation runs lanes in step) and a data race reported (exit 66).
exe="$(binary moss_planted_races)"
[ -n "$exe" ] || { echo "racecheck: moss_planted_races not built" >&2; exit 1; }
for kernel in syncwarp shuffle ballot; do
  log="$logs/planted_races.$kernel.log"
  rc=0
  run "$log" "$exe" "$kernel" || rc=$?
  if [ "$kernel" = syncwarp ]; then
    ok=$([ "$rc" -eq 0 ] && ! grep -q 'WARNING: ThreadSanitizer' "$log" && echo 1 || echo 0)
  else
    planted=$((planted + 1))
    ok=$([ "$rc" -eq 66 ] && grep -q 'WARNING: ThreadSanitizer: data race' "$log" && echo 1 || echo 0)
    caught=$((caught + ok))
  fi
  if [ "$ok" != 1 ]; then
    status=1
    echo "racecheck: planted_races $kernel: exit $rc, not as expected (log $log):" >&2
    head -40 "$log" >&2
  fi
done
end=$(date +%s)
echo "racecheck: build $((built - start)) s, tests $((end - built)) s, ThreadSanitizer reports $reports," \
  "planted races reported $caught of $planted, status $status" >&2
exit "$status"
