#pragma once

#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace moss::app {

struct ValidateOptions {
  std::string scenario;
};

void add_validate_options(CLI::App& sub, ValidateOptions& options);

/// Prints every problem of the scenario; 0 when valid, 2 otherwise.
int run_validate(const ValidateOptions& options, std::ostream& out, std::ostream& err);

}  // namespace moss::app
