#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace moss {

/// One problem found in user input: where it is and what was expected.
struct Problem {
  std::string file;     ///< file the input came from ("" for command-line flags)
  std::string pointer;  ///< JSON pointer (RFC 6901) of the offending value, "" for the whole file
  std::string message;  ///< what is wrong and what was expected

  /// "file: /json/pointer: message" (parts that are empty are left out).
  [[nodiscard]] std::string to_string() const;
};

/// Invalid user input (scenario, activations, flags). The app maps it to exit code 2.
class InputError : public std::runtime_error {
 public:
  explicit InputError(std::vector<Problem> problems);
  InputError(std::string file, std::string pointer, std::string message);

  [[nodiscard]] const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

/// A broken invariant inside moss (a bug, not bad input). The app maps it to exit code 1.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Failure of the environment (file system, device, external library). Exit code 1.
class RuntimeFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace moss

/// Invariant check that stays on in release builds; throws moss::InternalError.
#define MOSS_CHECK(cond, msg)                                                   \
  do {                                                                          \
    if (!(cond)) ::moss::detail::check_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (false)
