#!/usr/bin/env bash
# Configures and builds moss (Release) into build/ (or $MOSS_BUILD_DIR). Logs go to the build
# directory; on failure the errors are printed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOSS_BUILD_DIR:-$root/build}"
jobs="${MOSS_JOBS:-$(nproc)}"
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release ${MOSS_CMAKE_ARGS:-} >"$build/configure.log" 2>&1; then
    cat "$build/configure.log" >&2
    exit 1
  fi
fi
echo "moss: building in $build (log: $build/build.log)" >&2
if ! cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1; then
  grep -E -A8 'error|Error' "$build/build.log" | head -120 >&2
  exit 1
fi
