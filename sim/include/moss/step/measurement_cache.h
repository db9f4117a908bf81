#pragma once

// The on-disk cache of compression measurements that `moss run` and `moss sweep` share across
// processes, so that a second run, a resumed sweep or another sweep over the same compression does
// not run the kernels again (about 0.5-2 s per distinct measurement on a 2-core CPU, more for large
// activation files, which a hit does not even load).
//
// An entry is keyed by everything the figures depend on:
//   - the kernels' own key (method, every parameter, chunk and warm-up tokens, kv_dim, head_dim, seed);
//   - the activation source: the synthetic spec, or a file's absolute path, device, inode, size,
//     modification and status-change times (a rewritten or replaced file is a new source);
//   - the device that measures: the GPU's name and the host CPU's model and kernel variant (throughputs
//     are that device's), with the switches that choose kernel variants (MOSS_KERNELS_SIMD,
//     MOSS_GPU_GEMM, MOSS_GPU_THETA_FIT);
//   - the build: a SHA-256 over the sources of the kernels, the activation loaders and the code that
//     forms a measurement, with the compilers, their flags, Eigen's version and the build host's CPU
//     under -march=native (cmake/source_identity.cmake), so a changed kernel never serves an old figure.
// One JSON file per entry (m-<64-bit FNV-1a of the key>.json, about 1 KB, holding the key itself, the
// figures, when and how long they took to measure). A writer creates a temporary file of a name unique
// to its host, process and a random number (O_EXCL) and renames it into place, so concurrent writers
// (sweep jobs, MPI ranks on a shared file system) never leave a torn entry; an entry that cannot be
// read, parsed or matched is a miss and is replaced. A cache that cannot be written costs the saving,
// never the run: the outcome says why (CompressionOutcome::cache_note).
//
// Where: --cache-dir DIR, else $MOSS_CACHE_DIR, else $XDG_CACHE_HOME/moss/measurements, else
// $HOME/.cache/moss/measurements. MOSS_CACHE_DIR=off (and --no-cache) turns it off. `moss cache clear`
// removes the entries (only files named as above: the directory may hold others). The library itself never uses a cache unless
// EvaluateOptions::measurement_cache names one.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace moss::step {

/// The cache directory from the environment (see the file comment), or nullopt when
/// MOSS_CACHE_DIR=off or no variable names a place. Does not touch the disk.
[[nodiscard]] std::optional<std::filesystem::path> default_measurement_cache_dir();

/// What a cache directory holds.
struct MeasurementCacheUsage {
  std::uintmax_t entries = 0;
  std::uintmax_t bytes = 0;      ///< of the entries
  std::uintmax_t leftovers = 0;  ///< temporary files of writers that were killed mid-write
  std::uintmax_t foreign = 0;    ///< files with an entry's name that hold no entry (left alone)
};

/// Counts the entries of `dir` (zero when it does not exist). Throws std::filesystem::filesystem_error
/// when it cannot be read.
[[nodiscard]] MeasurementCacheUsage measurement_cache_usage(const std::filesystem::path& dir);

/// Removes every entry (and leftover temporary file) of `dir`, nothing else: a file with an entry's
/// name is removed only when it holds a moss entry whose key hashes to that name. Returns how many entries.
/// Throws std::filesystem::filesystem_error when one cannot be removed.
std::uintmax_t clear_measurement_cache(const std::filesystem::path& dir);

}  // namespace moss::step
