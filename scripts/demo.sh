#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, runs the shipped scenarios, the
# bandwidth sweep and writes the capacity-planning report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
"$root/scripts/build.sh"
moss="${MOSS_BUILD_DIR:-$root/build}/moss"
out="${MOSS_DEMO_OUT:-$root/results/demo}"
mkdir -p "$out"
cd "$root"
for s in scenarios/mos-800m-100gbps-none.json scenarios/mos-800m-300mbps-none.json \
         scenarios/mos-800m-300mbps-mos.json scenarios/llama3-8b-h100-10gbps.json \
         scenarios/wan-heterogeneous-mos.json; do
  "$moss" run "$s" --out "$out/$(basename "$s" .json)"
  echo
done
if [ -f scenarios/sweep-800m-bandwidth.json ]; then
  "$moss" sweep scenarios/sweep-800m-bandwidth.json --out "$out/sweep-800m-bandwidth" --resume
  "$moss" report "$out/sweep-800m-bandwidth"
fi
echo "moss demo: results in $out"
