#pragma once

#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace moss::app {

/// Flags of `moss report` (CONTRACT.md).
struct ReportOptions {
  std::string dir;
  std::string out;       ///< where report.html/report.md go (default: dir)
  std::string deadline;  ///< "30d", "72h", "3600s" (default: the report's own)
  std::string budget;    ///< amount in USD, checked by the report (default: the median cost)
  std::string python = "python3";
};

void add_report_options(CLI::App& sub, ReportOptions& options);

/// Writes report.html and report.md into the run or sweep directory (runs analysis/moss_report.py).
int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err);

}  // namespace moss::app
