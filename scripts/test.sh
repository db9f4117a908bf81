#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test, then the
# ASan+UBSan build of the test suite, the ThreadSanitizer race check of the CUDA kernels' source
# under the warp emulation, and a bounded libFuzzer run (MOSS_SKIP_SANITIZE=1, MOSS_SKIP_RACECHECK=1
# and MOSS_SKIP_FUZZ=1 skip those three for a quick local run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh"
build="${MOSS_BUILD_DIR:-$root/build}"
(cd "$build" && ctest --output-on-failure -j "${MOSS_JOBS:-$(nproc)}" --timeout 900 "$@")
if [ "${MOSS_SKIP_SANITIZE:-0}" != 1 ]; then
  "$root/scripts/sanitize.sh"
fi
if [ "${MOSS_SKIP_RACECHECK:-0}" != 1 ]; then
  "$root/scripts/racecheck.sh"
fi
if [ "${MOSS_SKIP_FUZZ:-0}" != 1 ]; then
  MOSS_FUZZ_SECONDS="${MOSS_FUZZ_SECONDS:-60}" "$root/scripts/fuzz.sh"
fi
echo "moss: all tests passed (test suite$([ "${MOSS_SKIP_SANITIZE:-0}" != 1 ] && echo ", ASan+UBSan suite")$([ "${MOSS_SKIP_RACECHECK:-0}" != 1 ] && echo ", kernel race check")$([ "${MOSS_SKIP_FUZZ:-0}" != 1 ] && echo ", fuzzing"))"
