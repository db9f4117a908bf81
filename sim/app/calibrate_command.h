#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace moss::app {

/// `moss calibrate SPEC [...]`: a thin front to calibrate/moss-calibrate (Python + PyTorch), which
/// trains small models with and without compression and writes a calibration file.
struct CalibrateOptions {
  std::vector<std::string> args;  ///< passed on unchanged
};

void add_calibrate_options(CLI::App& sub, CalibrateOptions& options);

/// Runs the calibration tool and returns its exit code (0 ok, 2 bad spec or flags, 1 other).
int run_calibrate(const CalibrateOptions& options);

}  // namespace moss::app
