#pragma once
// Running a file loader in a forked child process (private to moss_io).
//
// Debian's libhdf5 1.10 dereferences NULL (and worse) on some corrupt files: a crash there would take
// moss down with it, whatever moss checks first. The loader therefore runs in a child process that
// sends the loaded tensors back through a pipe; if the child dies, the caller gets an InputError
// naming the file instead of a crash.
//
// A corrupt file can also make libhdf5 allocate without bound (tests/data/bad_activations/libhdf5-oom.h5:
// 1.3 GB in 40 M mallocs from 2.5 KB, and more until the kernel kills something). The child's memory is
// therefore capped (RLIMIT_DATA, see child_memory_budget_bytes); running out is an InputError too.

#include <cstdint>
#include <functional>
#include <string>

#include "moss/io/activations.h"

namespace moss::io::detail {

/// A loader run inside the child; it may throw InputError (sent back and rethrown in the parent).
using Loader = std::function<Activations(const std::string& path)>;

/// Memory the child may take beyond what it had mapped when it started, in bytes, for a loader whose
/// largest tensor (float32 values, or the same data as the file stores it) is at most
/// `max_tensor_bytes`: 256 MiB for the library's own working memory (libhdf5: metadata cache of at
/// most 32 MiB by default, 1 MiB chunk cache, conversion buffers) plus 4 x the largest tensor (K held
/// while V is read, V's values, V's chunk as stored and the decompressor's growing buffer).
/// Saturates instead of wrapping.
[[nodiscard]] std::uint64_t child_memory_budget_bytes(std::uint64_t max_tensor_bytes);

/// Runs `load(path)` in a forked child and returns its result. Rethrows the child's InputError; any
/// other exception in the child becomes RuntimeFailure; a child killed by a signal or exiting without
/// a complete answer becomes InputError(path, "", "<library> crashed ...: expected a valid <format>
/// file"). The child's data segment (heap, anonymous mappings: RLIMIT_DATA) may grow by at most
/// child_memory_budget_bytes(max_tensor_bytes); a child that runs out (std::bad_alloc, an allocation
/// failure the loader reports as std::bad_alloc, or a sanitizer's out-of-memory death) becomes
/// InputError(path, "", "<library> needed more than <N> MiB reading this file (memory limit of the
/// loader): expected a valid <format> file; this one is corrupt or hostile"). Peak memory of the
/// parent is the tensors once more (child and parent copies). The child writes nothing to stdout or
/// stderr and leaves with _exit (no atexit handlers of the parent run twice).
Activations load_in_child(const std::string& path, const Loader& load, const std::string& library,
                          const std::string& format, std::uint64_t max_tensor_bytes);

}  // namespace moss::io::detail
