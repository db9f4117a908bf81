#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh"
build="${MOSS_BUILD_DIR:-$root/build}"
cd "$build"
ctest --output-on-failure -j "${MOSS_JOBS:-$(nproc)}" --timeout 900 "$@"
