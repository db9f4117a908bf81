// The moss command line: the only code that prints to the user or chooses an exit code.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "cache_command.h"
#include "calibrate_command.h"
#include "compress_command.h"
#include "moss/core/error.h"
#include "report_command.h"
#include "run_command.h"
#include "sweep_command.h"
#include "validate_command.h"

namespace {

constexpr int kExitInvalidInput = 2;
constexpr int kExitFailure = 1;

// An option's value type as CLI11 names it ("INT", "UINT", "FLOAT", ...), without the ":..." that a
// validator appends.
std::string base_type(const CLI::Option& o) {
  const std::string type = o.get_type_name();
  return type.substr(0, type.find(':'));
}

// CLI11 reports a value it cannot read as "Could not convert: --rank = 1e3"; say, as moss's own
// errors do, what the flag expects.
std::string conversion_error_text(const CLI::App& app, const std::string& what) {
  const std::string prefix = "Could not convert: ";
  if (what.rfind(prefix, 0) != 0) return what;
  const std::string given = what.substr(prefix.size());
  const std::string flag = given.substr(0, given.find(" = "));
  std::string type;
  for (const CLI::App* sub : app.get_subcommands())
    if (const CLI::Option* o = sub->get_option_no_throw(flag)) type = base_type(*o);
  const std::string expected = type == "INT" ? "an integer" : type == "UINT" ? "a non-negative integer" : type == "FLOAT" ? "a number" : "";
  return given + (expected.empty() ? ": not a valid value" : ": expected " + expected);
}

// CLI11 reads an integer in base 0 after skipping white space: "010" is 8, "0x10" is 16 and " 010"
// is 8, so a zero-padded value of a script's sweep would silently change. Every integer flag of moss
// is decimal: an optional sign and digits, written as the number they mean ("+5" and "05" are 5, "-0"
// is 0); hex and white space are refused, anything else is left for the conversion to refuse.
void read_integers_as_decimal(CLI::App& app) {
  const CLI::Validator decimal(
      [](std::string& text) -> std::string {
        if (text.find_first_of("xX \t\n\v\f\r") != std::string::npos) return "\"" + text + "\": expected a decimal integer";
        const bool sign = text.size() > 1 && (text[0] == '+' || text[0] == '-');
        const std::size_t digits = sign ? 1 : 0;
        if (digits == text.size() || text.find_first_not_of("0123456789", digits) != std::string::npos) return "";
        const std::size_t first = std::min(text.find_first_not_of('0', digits), text.size() - 1);
        const bool negative = text[0] == '-' && text[first] != '0';  // "-0" is 0
        text = (negative ? "-" : "") + text.substr(first);
        return "";
      },
      "", "");
  for (CLI::App* sub : app.get_subcommands({}))
    for (CLI::Option* o : sub->get_options()) {
      const std::string type = base_type(*o);
      if (type == "INT" || type == "UINT") o->transform(decimal);
    }
}

}  // namespace

int main(int argc, char** argv) {
  // A write past the file size limit (ulimit -f) then fails with EFBIG, which moss reports and
  // cleans up after, instead of killing the process half-way through its outputs.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"moss: predicts LLM training speed and time-to-loss under context parallelism over "
               "slow and fast links, with and without K/V compression"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("moss ") + MOSS_VERSION);

  moss::app::RunOptions run;
  moss::app::SweepOptions sweep;
  moss::app::ReportOptions report;
  moss::app::CompressOptions compress;
  moss::app::ValidateOptions validate;
  moss::app::CalibrateOptions calibrate;
  moss::app::CacheOptions cache;
  auto* run_cmd = app.add_subcommand("run", "simulate one scenario");
  moss::app::add_run_options(*run_cmd, run);
  auto* sweep_cmd = app.add_subcommand("sweep", "simulate every point of a scenario's sweep block");
  moss::app::add_sweep_options(*sweep_cmd, sweep);
  auto* report_cmd = app.add_subcommand("report", "write the capacity-planning report of a run or sweep");
  moss::app::add_report_options(*report_cmd, report);
  auto* compress_cmd = app.add_subcommand("compress", "run the K/V compression kernels alone");
  moss::app::add_compress_options(*compress_cmd, compress);
  auto* validate_cmd = app.add_subcommand("validate", "check a scenario and print every problem");
  moss::app::add_validate_options(*validate_cmd, validate);
  auto* calibrate_cmd = app.add_subcommand("calibrate", "train small models to measure statistical efficiency");
  moss::app::add_calibrate_options(*calibrate_cmd, calibrate);
  auto* cache_cmd = app.add_subcommand("cache", "show or clear the cache of compression measurements");
  moss::app::add_cache_options(*cache_cmd, cache);
  read_integers_as_decimal(app);
  // A flag CLI11 refuses reads like moss's own refusals: "error: --seed: -1: expected ...".
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "error: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });

  const auto dispatch = [&]() -> int {
    if (*run_cmd) return moss::app::run_run(run, std::cout, std::cerr);
    if (*sweep_cmd) return moss::app::run_sweep(sweep, std::cout, std::cerr);
    if (*report_cmd) return moss::app::run_report(report, std::cout, std::cerr);
    if (*compress_cmd) return moss::app::run_compress(compress, std::cout, std::cerr);
    if (*validate_cmd) return moss::app::run_validate(validate, std::cout, std::cerr);
    if (*calibrate_cmd) return moss::app::run_calibrate(calibrate);
    if (*cache_cmd) return moss::app::run_cache(cache, std::cout);
    return kExitFailure;
  };

  // A result that never reached its reader (a full disk, a closed pipe) is not a success.
  const auto finish = [](int code) {
    errno = 0;
    std::cout.flush();
    if (!std::cout) {
      std::cerr << "moss: writing the standard output failed" << (errno ? std::string(": ") + std::strerror(errno) : "") << '\n';
      if (code == 0) code = kExitFailure;
    }
    return code;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConversionError& e) {
    std::cerr << "error: " << conversion_error_text(app, e.what()) << '\n';
    return finish(kExitInvalidInput);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // --help and --version print to the standard output
    return finish(code == 0 ? 0 : kExitInvalidInput);
  }

  int code = kExitFailure;
  try {
    code = dispatch();
  } catch (const moss::InputError& e) {
    for (const auto& p : e.problems()) std::cerr << "error: " << p.to_string() << '\n';
    code = kExitInvalidInput;
  } catch (const moss::InternalError& e) {
    std::cerr << "moss: internal error (please report): " << e.what() << '\n';
    code = kExitFailure;
  } catch (const std::bad_alloc&) {
    std::cerr << "moss: out of memory\n";
    code = kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "moss: " << e.what() << '\n';
    code = kExitFailure;
  }
  return finish(code);
}
