#include "cache_command.h"

#include <ostream>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "moss/core/error.h"
#include "moss/scenario/units.h"
#include "moss/step/measurement_cache.h"
#include "output.h"

namespace moss::app {

namespace fs = std::filesystem;

void add_cache_flags(CLI::App& sub, CacheFlags& flags, bool with_no_cache) {
  sub.add_option("--cache-dir", flags.dir,
                 "measurement cache directory (default: $MOSS_CACHE_DIR, else $XDG_CACHE_HOME/moss/measurements, "
                 "else ~/.cache/moss/measurements (a relative XDG_CACHE_HOME is ignored); MOSS_CACHE_DIR=off turns it off)")
      ->check(non_empty("a directory"));
  if (with_no_cache)
    sub.add_flag("--no-cache", flags.no_cache, "run the compression kernels even when the cache holds their figures, and store nothing");
}

std::optional<fs::path> cache_dir_of(const CacheFlags& flags) {
  if (flags.no_cache) return std::nullopt;
  if (flags.dir.empty()) return step::default_measurement_cache_dir();
  std::error_code ec;
  if (fs::exists(flags.dir, ec) && !fs::is_directory(flags.dir, ec))
    throw InputError("", "--cache-dir", "\"" + flags.dir + "\" is not a directory");
  return fs::path(flags.dir);
}

void add_cache_options(CLI::App& sub, CacheOptions& o) {
  sub.add_option("action", o.action, "info (default): where the cache is and what it holds; clear: remove its entries")
      ->check(CLI::IsMember({"info", "clear"}));
  add_cache_flags(sub, o.flags, false);
}

int run_cache(const CacheOptions& o, std::ostream& out) {
  const std::optional<fs::path> dir = cache_dir_of(o.flags);
  if (!dir) {
    out << "measurement cache: off (MOSS_CACHE_DIR=off, or neither XDG_CACHE_HOME nor HOME is set)\n";
    return 0;
  }
  try {
    if (o.action == "clear") {
      const std::uintmax_t removed = step::clear_measurement_cache(*dir);
      out << "measurement cache: " << dir->string() << "\n  removed " << removed << (removed == 1 ? " entry" : " entries") << '\n';
      return 0;
    }
    const step::MeasurementCacheUsage u = step::measurement_cache_usage(*dir);
    out << "measurement cache: " << dir->string() << "\n  " << u.entries << (u.entries == 1 ? " entry, " : " entries, ")
        << scenario::format_bytes(static_cast<double>(u.bytes)) << '\n';
    if (u.foreign > 0)
      out << "  " << u.foreign << (u.foreign == 1 ? " file" : " files")
          << " named like an entry that moss did not write (moss cache clear keeps them)\n";
    if (u.leftovers > 0)
      out << "  " << u.leftovers << " temporary files of interrupted writes (moss cache clear removes them)\n";
  } catch (const fs::filesystem_error& e) {
    throw std::runtime_error("measurement cache " + dir->string() + ": " + e.code().message());
  }
  return 0;
}

}  // namespace moss::app
