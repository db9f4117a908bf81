#!/usr/bin/env bash
# ASan + UBSan build of the whole test suite (ns-3 backend and MPI included), then every test except
# the `slow` and `gpu` labels, plus the end-to-end sweep tests (SweepCli: kill -9 + resume, MPI with
# two ranks, the ns-3 sweep). Fails when a test fails or when any sanitizer report was written, even
# one from a child process whose exit status a test did not look at.
#
#   scripts/sanitize.sh                 # gcc, build-asan/
#   MOSS_SANITIZE_CXX=clang++ MOSS_SANITIZE_CC=clang scripts/sanitize.sh
#   MOSS_SANITIZE_NS3=OFF scripts/sanitize.sh   # without the ns-3 backend and its tests
#
# Environment: MOSS_SANITIZE_BUILD_DIR (default build-asan), MOSS_JOBS (default nproc),
# MOSS_SANITIZE_NS3 (default ON), MOSS_SANITIZE_MPI (default ON), extra ctest arguments as "$@".
#
# Libraries that are not instrumented keep state until exit by design: Debian's libns3 (Simulator,
# TypeId registry, Config), libhdf5 (free lists) and OpenMPI; scripts/lsan.supp names them. OpenMPI
# 4.1 also unloads its components at MPI_Finalize, so their allocations cannot even be attributed:
# the MPI test turns leak detection off for its ranks only (tests/sweep/sweep_cli_test.cpp).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOSS_SANITIZE_BUILD_DIR:-$root/build-asan}"
jobs="${MOSS_JOBS:-$(nproc)}"
ns3="${MOSS_SANITIZE_NS3:-ON}"
mpi="${MOSS_SANITIZE_MPI:-ON}"
cc="${MOSS_SANITIZE_CC:-gcc}"
cxx="${MOSS_SANITIZE_CXX:-g++}"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
logs="$build/sanitizer-logs"

start=$(date +%s)
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DMOSS_SANITIZE=ON -DMOSS_WITH_CUDA=OFF -DMOSS_WITH_MPI="$mpi" -DMOSS_WITH_NS3="$ns3" \
    -DMOSS_BUILD_BENCH=OFF -DMOSS_BUILD_TESTS=ON ${MOSS_CMAKE_ARGS:-} >"$build/configure.log" 2>&1 \
    || { cat "$build/configure.log" >&2; exit 1; }
fi
echo "sanitize: building in $build (log: $build/build.log)" >&2
if ! cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1; then
  grep -E -A8 'error|Error' "$build/build.log" | head -120 >&2
  exit 1
fi
built=$(date +%s)

rm -rf "$logs"
mkdir -p "$logs"
# log_path: every report also lands in a file, so reports from child processes are not lost.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0:check_initialization_order=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
exclude="slow|gpu"
[ "$ns3" = "ON" ] || exclude="$exclude|ns3"
status=0
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 1200 -LE "$exclude" "$@") || status=$?
# The end-to-end sweep tests are labelled slow (seconds each), but they are where processes, signals,
# MPI and the ns-3 backend meet: run them too.
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 1200 -R '^SweepCli\.' "$@") || status=$?
end=$(date +%s)

# The HDF5 loader's child process has a memory cap, and tests drive capped children out of memory on
# purpose (tests/io/isolated_load_test.cpp, BadActivationFile.LibraryOutOfMemory): ASan reports the
# failed allocation before the child exits with the loader's out-of-memory status. Reports whose first
# error is an allocation failure are therefore counted, not failures: a test process that itself runs
# out of memory dies and fails its test anyway. Every other report (memory errors, UB, leaks) fails.
reports=0 oom=0
for f in "$logs"/*; do
  [ -e "$f" ] || continue
  case "$(grep -m1 -E 'ERROR:' "$f")" in
    *"ERROR: Failed to mmap"* | *"allocator is out of memory"* | *"AddressSanitizer: out of memory"*) oom=$((oom + 1)); continue ;;
  esac
  [ "$reports" -gt 0 ] || echo "sanitize: sanitizer reports:" >&2
  reports=$((reports + 1))
  echo "== $f" >&2
  head -60 "$f" >&2
done
[ "$reports" -eq 0 ] || status=1
echo "sanitize: build $((built - start)) s, tests $((end - built)) s, ctest status $status, reports $reports" \
  "(+ $oom out-of-memory reports of capped loader children)" >&2
exit "$status"
