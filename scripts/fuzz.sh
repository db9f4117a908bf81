#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) and runs each for a bounded
# time. Fails when a target finds a crash, a sanitizer report, a leak, a timeout or an OOM; the
# reproducer is left in $build/fuzz-artifacts/.
#
#   scripts/fuzz.sh                       # every target, 60 s each
#   MOSS_FUZZ_SECONDS=600 scripts/fuzz.sh scenario_fuzzer
#
# Environment: MOSS_FUZZ_SECONDS (default 60), MOSS_FUZZ_BUILD_DIR (default build-fuzz),
# MOSS_FUZZ_CC / MOSS_FUZZ_CXX (default clang / clang++), MOSS_JOBS.
# Seeds come from tests/fuzz/corpus/<target>/ (read-only); new inputs go to $build/fuzz-corpus/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOSS_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${MOSS_FUZZ_SECONDS:-60}"
jobs="${MOSS_JOBS:-$(nproc)}"
cc="${MOSS_FUZZ_CC:-clang}"
cxx="${MOSS_FUZZ_CXX:-clang++}"
targets=("$@")
# h5_fuzzer reads HDF5 in-process and, within a minute, finds crashes inside Debian's libhdf5 1.10.8
# itself (e.g. a NULL dereference in H5Literate: tests/data/bad_activations/libhdf5-segv-h5literate.h5).
# moss reads .h5 files in a child process for that reason. So h5_fuzzer runs in libFuzzer's fork mode,
# which records crashes and carries on; each crash is then replayed: it passes when the crashing frame
# is inside libhdf5 and the child-process loader (MOSS_FUZZ_ISOLATED=1) turns it into an input error.
# A crash in moss's own code fails the run. Out-of-memory inputs (libhdf5 can allocate without bound on
# a corrupt file: tests/data/bad_activations/libhdf5-oom.h5) are recorded the same way and replayed:
# each passes only when the child-process loader, whose memory is capped, turns it into an input error.
[ ${#targets[@]} -gt 0 ] || targets=(scenario_fuzzer npy_fuzzer h5_fuzzer)
flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"

mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DMOSS_BUILD_FUZZ=ON -DMOSS_BUILD_TESTS=OFF -DMOSS_BUILD_BENCH=OFF \
    -DMOSS_WITH_CUDA=OFF -DMOSS_WITH_NS3=OFF -DMOSS_WITH_MPI=OFF >"$build/configure.log" 2>&1 \
    || { cat "$build/configure.log" >&2; exit 1; }
fi
echo "fuzz: building ${targets[*]} in $build" >&2
if ! cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1; then
  grep -E -A8 'error|Error' "$build/build.log" | head -120 >&2
  exit 1
fi

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# HDF5 (not instrumented) keeps global state until exit; see scripts/lsan.supp.
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
# Replays every crash-* and oom-* input of a fork-mode run. A crash must be inside libhdf5 (first frame
# that is not the sanitizer runtime, libFuzzer or libc); an out-of-memory input may be anywhere (libFuzzer's
# RSS limit names no allocation). Each must then be an input error through the child-process loader,
# whose memory is capped: the replay exits 0, within $replay_seconds. Prints a one-line tally; returns 1
# (after printing the evidence to stderr) otherwise.
replay_seconds=120
replay_isolated() {
  local fuzzer="$1" f="$2" what="$3" rc=0
  MOSS_FUZZ_ISOLATED=1 timeout -k 5 "$replay_seconds" "$fuzzer" -rss_limit_mb=2048 "$f" >"$f.isolated.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: $f ($what) still fails with the child-process loader (exit $rc; log: $f.isolated.log)" >&2
    return 1
  fi
}
triage_library_failures() {
  local fuzzer="$1" dir="$2" n=0 m=0 f frame
  for f in "$dir"crash-*; do
    [ -e "$f" ] || continue
    case "$f" in *.isolated.log) continue ;; esac  # a replay log of an earlier run, not an input
    n=$((n + 1))
    frame=$(timeout -k 5 "$replay_seconds" "$fuzzer" "$f" 2>&1 | grep -E '^ *#[0-9]+ ' \
      | grep -Ev '(asan|ubsan|sanitizer|libclang_rt|fuzzer::|libc\.so|sysdeps/|__interceptor_|in (abort|raise|__GI_|__pthread_kill|__mem|__str))' \
      | head -1 || true)
    case "$frame" in
      *libhdf5*) ;;
      *) echo "fuzz: $f crashes outside libhdf5: ${frame:-no stack}" >&2; return 1 ;;
    esac
    replay_isolated "$fuzzer" "$f" crash || return 1
  done
  for f in "$dir"oom-*; do
    [ -e "$f" ] || continue
    case "$f" in *.isolated.log) continue ;; esac
    m=$((m + 1))
    replay_isolated "$fuzzer" "$f" out-of-memory || return 1
  done
  for f in "$dir"*; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in
      crash-*|oom-*|slow-unit-*|*.isolated.log) ;;
      *) echo "fuzz: $f: a failure other than a crash or out-of-memory (timeout or leak); log: $log" >&2
         return 1 ;;
    esac
  done
  echo "$n crash inputs inside libhdf5 and $m out-of-memory inputs, each an input error through the child-process loader"
}
# In fork mode libFuzzer exits with the status of the last job it merged, so a run whose final job hit
# an ignored crash exits non-zero although it fuzzed to the end. The verdict therefore comes from the
# log: the run must have reached its time budget, and must not have stopped on a failure it did not
# ignore ("log from the inner process") or on an interrupt. Prints nothing; returns 1 when it did not.
fork_run_completed() {
  local log="$1"
  grep -q 'INFO: fuzzed for [0-9]* seconds, wrapping up soon' "$log" \
    && ! grep -q -E 'INFO: log from the inner process|libFuzzer: a child was interrupted' "$log"
}

status=0
summary=()
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  dict=()
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  log="$build/fuzz-$t.log"
  echo "fuzz: $t for ${seconds} s (log: $log)" >&2
  rc=0
  asan="$ASAN_OPTIONS"
  # libhdf5 (Debian's, not instrumented) mallocs sizes read from a corrupt file (up to 2^64) and checks
  # for NULL; without ASan that malloc fails and HDF5 reports an error, which moss turns into exit 2.
  # Let ASan return NULL too; -malloc_limit_mb still flags any allocation that would succeed past 1 GiB.
  # It also mallocs (without touching) gigabytes a corrupt header asks for: moss stays at ~15 MB RSS
  # on such files, so for HDF5 only the resident-memory limit applies.
  malloc_limit=1024
  mode=()
  if [ "$t" = h5_fuzzer ]; then
    asan="$asan:allocator_may_return_null=1"
    malloc_limit=1048576
    # Out-of-memory inside libhdf5 is known too (a 2.5 KB file makes it malloc 1.3 GB in 40 M
    # allocations: tests/data/bad_activations/libhdf5-oom.h5); in this process nothing caps it, so such
    # inputs are recorded as oom-* artifacts and triaged after the run like crashes (see above).
    mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=0 -ignore_ooms=1)
  fi
  ASAN_OPTIONS="$asan" TMPDIR="$build" "$build/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -malloc_limit_mb="$malloc_limit" \
    -timeout=25 -max_len=65536 -print_final_stats=1 "${mode[@]}" "${dict[@]}" -artifact_prefix="$artifacts" \
    "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
  [ -n "$runs" ] || runs=$(grep -Eo '^#[0-9]+:' "$log" | tail -1 | tr -d '#:' || true)
  [ -n "$runs" ] || runs="?"
  triage=""
  if [ "${#mode[@]}" -gt 0 ]; then
    if fork_run_completed "$log"; then
      rc=0
      triage=$(ASAN_OPTIONS="$asan" triage_library_failures "$build/fuzz/$t" "$artifacts") || rc=1
    elif [ "$rc" -eq 0 ]; then
      rc=1  # exited 0 without reaching its time budget: nothing says the budget was fuzzed
    fi
  fi
  if [ "$rc" -ne 0 ]; then
    status=1
    summary+=("$t: FAILED after $runs executions (exit $rc); reproducer in $artifacts")
    grep -E -m1 -A30 'ERROR:|runtime error|==[0-9]+==' "$log" >&2 || tail -40 "$log" >&2
  else
    summary+=("$t: ok, $runs executions in ${seconds} s, corpus $(ls "$work" | wc -l) inputs${triage:+; $triage}")
  fi
done
printf 'fuzz: %s\n' "${summary[@]}" >&2
exit "$status"
