#!/usr/bin/env bash
# Runs every GPU test and benchmark of moss from a CUDA build, on a machine with a GPU (it needs only
# the driver: the three executables link the CUDA runtime and libstdc++ statically, except the gtest
# one, which needs a libstdc++ as new as the build machine's).
#   scripts/gpu_check.sh [BIN_DIR] [LOG_DIR]
# BIN_DIR holds moss_gpu_check, moss_gpu_codec_bench and moss_kernels_gpu_test (default build-gpu,
# with the test under tests/kernels/); LOG_DIR gets one log per step (default gpu-logs).
# GPU_STEPS (optional) names the steps to run, e.g. GPU_STEPS="gpu_check gpu_test codec_bench" then
# GPU_STEPS="codec_bench_moss memcheck racecheck": the step limits add up to 810 s, so a machine lent
# for 10-minute commands takes two calls. Unset: every step.
# GPU_BUDGET_S (optional) bounds the whole run: a step starts only while at least 30 s remain, and its
# limit is cut to what remains, so a call with a hard wall-clock limit still returns every log.
# The steps run in order of what they tell: parity and GB/s first, sanitizers next.
# scripts/gpu_tables.py LOG_DIR turns the logs into kernels/README.md's GPU tables (Markdown) and a summary.
# Exit: 0 every step passed, 1 a step failed, 2 a malformed GPU_BUDGET_S, 3 steps skipped (budget).
# Build them with:
#   cmake -S . -B build-gpu -DMOSS_WITH_CUDA=ON -DMOSS_WITH_NS3=OFF -DMOSS_WITH_MPI=OFF \
#         -DMOSS_KERNELS_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES="80;90"
#   cmake --build build-gpu -j --target moss_gpu_check moss_gpu_codec_bench moss_kernels_gpu_test
set -u -o pipefail
bin=${1:-build-gpu}
logs=${2:-gpu-logs}
mkdir -p "$logs"
if [ -n "${GPU_BUDGET_S:-}" ] && ! [[ "$GPU_BUDGET_S" =~ ^[0-9]+$ ]]; then
  echo "gpu_check.sh: GPU_BUDGET_S = \"$GPU_BUDGET_S\": expected a whole number of seconds" >&2
  exit 2
fi
# cuBLAS is loaded with dlopen and compute-sanitizer lives in the toolkit: after whatever the loader's
# path and PATH already give, look in the toolkit of nvcc (symlinks resolved), else CUDA_HOME or
# /usr/local/cuda.
if nvcc_bin=$(command -v nvcc); then
  cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc_bin")")")
else
  cuda_root=${CUDA_HOME:-/usr/local/cuda}
fi
if [ -d "$cuda_root" ]; then
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$cuda_root/lib64:$cuda_root/targets/$(uname -m)-linux/lib"
  export PATH="$PATH:$cuda_root/bin"
fi
find_bin() { if [ -x "$bin/$1" ]; then echo "$bin/$1"; else echo "$bin/tests/kernels/$1"; fi; }
status=0
skipped=0
start_s=$SECONDS
step() {  # step NAME TIMEOUT COMMAND...
  local name=$1 limit=$2
  shift 2
  if [ -n "${GPU_STEPS:-}" ] && [[ " $GPU_STEPS " != *" $name "* ]]; then return 0; fi
  if [ -n "${GPU_BUDGET_S:-}" ]; then
    local left=$((GPU_BUDGET_S - (SECONDS - start_s)))
    if [ "$left" -lt 30 ]; then
      echo "== $name: skipped, $left s of GPU_BUDGET_S left"
      skipped=$((skipped + 1))
      return 0
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  echo "== $name: $*"
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc"
  [ "$rc" -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 | tee "$logs/device.log"
step gpu_check 240 "$(find_bin moss_gpu_check)"
step gpu_test 90 "$(find_bin moss_kernels_gpu_test)"
step codec_bench 120 "$(find_bin moss_gpu_codec_bench)"
if command -v compute-sanitizer >/dev/null; then
  # memcheck: every GEMM choice (cuBLAS included: our arguments to it); racecheck: moss's kernels.
  step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$(find_bin moss_gpu_check)" --parity-only
  step racecheck 90 compute-sanitizer --tool racecheck --error-exitcode 9 "$(find_bin moss_gpu_check)" --parity-only --gemm moss \
    --gemm simple
else
  echo "compute-sanitizer not found: memcheck skipped"
fi
# The same with moss's kernels only (no cuBLAS), for the figures of moss's own GEMMs end to end.
step codec_bench_moss 120 env MOSS_GPU_GEMM=moss "$(find_bin moss_gpu_codec_bench)"
if [ $status -ne 0 ]; then
  echo "gpu_check.sh: SOME STEPS FAILED"
elif [ $skipped -gt 0 ]; then
  echo "gpu_check.sh: every step run passed; $skipped skipped for lack of GPU_BUDGET_S"
  status=3
else
  echo "gpu_check.sh: all steps passed"
fi
exit $status
