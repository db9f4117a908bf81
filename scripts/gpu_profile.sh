#!/usr/bin/env bash
# Hardware-counter profile with Nsight Compute (ncu), for the questions kernels/README.md leaves open.
#   scripts/gpu_profile.sh [BIN_DIR] [LOG_DIR] [projection|rows]
# projection (default): `moss_gpu_check --profile`, per r in {16, 64, 256} at T = 65536, d = 4096 one
#   encode and one decode launch of ours, then cuBLAS's, into LOG_DIR/profile.log: why encode at
#   r <= 64 and decode stay below the copy bandwidth (memory throughput, occupancy, warp stalls).
# rows: `moss_gpu_check --profile-rows`, the kernels without a GEMM (topk and quant encode in both
#   forms, the merging topk decode) and mos's fixed steps (sample projection, theta, rotation), into
#   LOG_DIR/profile-rows.log, with the instruction statistics besides: what bounds them.
# BIN_DIR holds moss_gpu_check (see scripts/gpu_check.sh for the build). Exit 0 profiled, 2 an unknown
# mode, 3 no ncu on this machine, else ncu's failure (ERR_NVGPUCTRPERM: the machine does not let this
# user read the counters).
set -u -o pipefail
bin=${1:-build-gpu}
logs=${2:-gpu-logs}
mode=${3:-projection}
case "$mode" in
  projection) flag=--profile; log=profile.log; extra=() ;;
  rows) flag=--profile-rows; log=profile-rows.log; extra=(--section InstructionStats --section ComputeWorkloadAnalysis) ;;
  *) echo "gpu_profile.sh: mode \"$mode\": expected projection or rows" >&2; exit 2 ;;
esac
mkdir -p "$logs"
ncu_bin=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
if [ -z "$ncu_bin" ]; then
  echo "gpu_profile.sh: ncu (Nsight Compute) not found: nothing profiled" | tee "$logs/$log"
  exit 3
fi
timeout "${MOSS_PROFILE_TIMEOUT:-300}" "$ncu_bin" \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
  --section WarpStateStats --section SchedulerStats "${extra[@]}" \
  "$bin/moss_gpu_check" "$flag" 2>&1 | tee "$logs/$log"
rc=${PIPESTATUS[0]}
echo "gpu_profile.sh: ncu exit $rc"
exit "$rc"
