#pragma once

#include <iosfwd>
#include <string>

#include "cache_command.h"

namespace CLI {
class App;
}

namespace moss::app {

/// Flags of `moss run` (CONTRACT.md).
struct RunOptions {
  std::string scenario;
  std::string out;      ///< default: results/<scenario name>
  std::string backend;  ///< overrides /simulation/backend
  bool no_trace = false;
  bool json = false;    ///< print summary.json instead of the table
  bool no_measure = false;  ///< byte formula instead of running the compression kernels
  CacheFlags cache;         ///< the on-disk measurement cache
};

void add_run_options(CLI::App& sub, RunOptions& options);

/// Evaluates one scenario, writes summary.json, trace.json and results.h5, prints a table (notes,
/// such as a measurement that could not be cached, go to err).
int run_run(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace moss::app
