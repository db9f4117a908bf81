// libFuzzer target: arbitrary bytes written to a file -> moss::io activation loader (.npy, or .h5 when
// built with MOSS_FUZZ_HDF5). Any exception other than moss::InputError, crash, sanitizer report or
// out-of-memory is a finding. Loaded tensors must match their declared shape.
// HDF5 is read in this process (load_hdf5_unisolated), so that the fuzzer sees the coverage of moss's
// reader; crashes inside libhdf5 itself are then triaged by scripts/fuzz.sh, which replays them with
// MOSS_FUZZ_ISOLATED=1 (the child-process loader moss really uses) and requires an InputError.
// In this process the HDF5 reader turns an allocation failure that libhdf5 reports (its malloc returns
// NULL: allocator_may_return_null=1 in scripts/fuzz.sh) into std::bad_alloc, which the child-process
// loader reports as its memory limit; here it is accepted like an InputError. moss's own allocations
// cannot raise it under ASan (operator new reports out-of-memory and dies instead).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "moss/core/error.h"
#include "moss/io/activations.h"

namespace {

const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = (dir && *dir) ? dir : "/tmp";
    p += "/moss-fuzz-" + std::to_string(::getpid());
#if defined(MOSS_FUZZ_HDF5)
    p += ".h5";
#else
    p += ".npy";
#endif
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
#if defined(MOSS_FUZZ_HDF5)
    static const bool isolated = std::getenv("MOSS_FUZZ_ISOLATED") != nullptr;
    const moss::io::Activations a = isolated ? moss::io::load_hdf5(path) : moss::io::load_hdf5_unisolated(path);
#else
    const moss::io::Activations a = moss::io::load_activations(path);
#endif
    for (const auto& t : a.tensors) {
      const auto want = static_cast<std::uint64_t>(t.layers) * static_cast<std::uint64_t>(t.tokens) *
                        static_cast<std::uint64_t>(t.dim);
      if (t.layers < 1 || t.tokens < 1 || t.dim < 1 || t.values.size() != want) __builtin_trap();
    }
  } catch (const moss::InputError&) {
#if defined(MOSS_FUZZ_HDF5)
  } catch (const std::bad_alloc&) {
#endif
  }
  return 0;
}
