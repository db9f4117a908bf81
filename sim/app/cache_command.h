#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace moss::app {

/// The measurement-cache flags `moss run`, `moss sweep` and `moss cache` share.
struct CacheFlags {
  bool no_cache = false;  ///< neither read nor write the cache
  std::string dir;        ///< --cache-dir (default: moss/step/measurement_cache.h)
};

void add_cache_flags(CLI::App& sub, CacheFlags& flags, bool with_no_cache);

/// The cache directory the flags select: none with --no-cache, --cache-dir, else the environment's
/// (MOSS_CACHE_DIR, XDG_CACHE_HOME, HOME; none with MOSS_CACHE_DIR=off). Throws InputError naming
/// --cache-dir when it names something that exists and is not a directory.
[[nodiscard]] std::optional<std::filesystem::path> cache_dir_of(const CacheFlags& flags);

/// `moss cache [info|clear]`.
struct CacheOptions {
  std::string action = "info";  ///< info | clear
  CacheFlags flags;
};

void add_cache_options(CLI::App& sub, CacheOptions& options);

/// Prints where the measurement cache is and what it holds, or clears it.
int run_cache(const CacheOptions& options, std::ostream& out);

}  // namespace moss::app
