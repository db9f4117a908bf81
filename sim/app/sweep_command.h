#pragma once

#include <iosfwd>
#include <string>

#include "cache_command.h"

namespace CLI {
class App;
}

namespace moss::app {

/// Flags of `moss sweep` (CONTRACT.md).
struct SweepOptions {
  std::string scenario;
  std::string out;
  int jobs = 0;  ///< 0: all cores (divided among the MPI ranks of one node)
  bool resume = false;
  std::string backend;
  std::string progress = "auto";  ///< auto | bar | lines | none
  bool no_fsync = false;          ///< skip the per-point fdatasync (faster, not crash-safe)
  CacheFlags cache;               ///< the on-disk measurement cache
};

void add_sweep_options(CLI::App& sub, SweepOptions& options);

/// Runs every point of the scenario's sweep block. Throws moss::InputError for bad input.
int run_sweep(const SweepOptions& options, std::ostream& out, std::ostream& err);

}  // namespace moss::app
