// Kernels with and without a data race, run under the warp emulation (warp_emulation.h) by
// scripts/racecheck.sh, built with ThreadSanitizer: the check of the check. A race must be reported
// when one lane reads what another wrote with only a shuffle, a ballot or atomicAdd between them (on
// a GPU none of those orders memory), and nothing when a __syncwarp stands there. The emulation runs
// the lanes in step, so every kernel here computes the right value: only TSan tells them apart.
//
//   moss_planted_races syncwarp | shuffle | ballot    (exit 0 when the value is right, 1 otherwise)
#include <cstdio>
#include <string>
#include <vector>

#include "warp_emulation.h"

namespace {
namespace emu = moss::kernels::emulation;

// Lane 0 writes shared memory that lane 1 reads after a __syncwarp or (a race) a shuffle only.
template <bool kSyncwarp>
void read_after_collective(int* out) {
  __shared__ int word;
  if (emu::lane() == 0) word = 42;
  int v = 1;
  if constexpr (kSyncwarp)
    __syncwarp();
  else
    v = __shfl_sync(0xffffffffu, v, 0);
  if (emu::lane() == 1) out[0] = word + v;
}

// Every lane adds to a shared counter that lane 0 reads after a __syncwarp or (a race) a ballot only.
template <bool kSyncwarp>
void read_atomics_after_collective(int* out) {
  __shared__ int count;
  if (emu::lane() == 0) count = 0;
  __syncwarp();
  atomicAdd(&count, 1);
  if constexpr (kSyncwarp)
    __syncwarp();
  else
    out[1] = static_cast<int>(__ballot_sync(0xffffffffu, 1) != 0);
  if (emu::lane() == 0) out[0] = count;
}

bool run(void (*kernel)(int*), int want) {
  std::vector<int> out(2, 0);
  emu::launch_blocks(dim3{1, 1, 1}, dim3{32, 1, 1}, kernel, out.data());
  if (out[0] == want) return true;
  std::fprintf(stderr, "moss_planted_races: got %d, want %d\n", out[0], want);
  return false;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "";
  bool ok = false;
  if (which == "syncwarp")
    ok = run(read_after_collective<true>, 43) && run(read_atomics_after_collective<true>, 32);
  else if (which == "shuffle")
    ok = run(read_after_collective<false>, 43);
  else if (which == "ballot")
    ok = run(read_atomics_after_collective<false>, 32);
  else
    std::fprintf(stderr, "usage: moss_planted_races syncwarp | shuffle | ballot\n");
  return ok ? 0 : 1;
}
