#!/usr/bin/env bash
# Hardware-counter profile of the projection kernels with Nsight Compute (ncu), ours next to cuBLAS's
# on the same shapes, for the question kernels/README.md leaves open: why encode at r <= 64 and decode
# stay below the copy bandwidth (memory throughput, occupancy, warp stalls, bytes in flight).
#   scripts/gpu_profile.sh [BIN_DIR] [LOG_DIR]
# BIN_DIR holds moss_gpu_check (see scripts/gpu_check.sh for the build); LOG_DIR gets profile.log.
# Runs `moss_gpu_check --profile`: per r in {16, 64, 256} at T = 65536, d = 4096 one encode and one
# decode launch of ours, then cuBLAS's. Exit 0 profiled, 3 no ncu on this machine, else ncu's failure
# (ERR_NVGPUCTRPERM: the machine does not let this user read the counters).
set -u -o pipefail
bin=${1:-build-gpu}
logs=${2:-gpu-logs}
mkdir -p "$logs"
ncu_bin=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)
if [ -z "$ncu_bin" ]; then
  echo "gpu_profile.sh: ncu (Nsight Compute) not found: nothing profiled" | tee "$logs/profile.log"
  exit 3
fi
timeout "${MOSS_PROFILE_TIMEOUT:-300}" "$ncu_bin" \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
  --section WarpStateStats --section SchedulerStats \
  "$bin/moss_gpu_check" --profile 2>&1 | tee "$logs/profile.log"
rc=${PIPESTATUS[0]}
echo "gpu_profile.sh: ncu exit $rc"
exit "$rc"
