#include "moss/core/error.h"

#include <cstdio>
#include <sstream>

namespace moss {

std::string Problem::to_string() const {
  std::string out;
  if (!file.empty()) out += file + ": ";
  if (!pointer.empty()) out += pointer + ": ";
  out += message;
  // Messages quote what the input held: its control bytes (a terminal's escape sequences) as \xHH.
  std::string shown;
  for (const char c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      shown += c;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      shown += hex;
    }
  }
  return shown;
}

namespace {
std::string join(const std::vector<Problem>& problems) {
  std::ostringstream os;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    if (i) os << '\n';
    os << problems[i].to_string();
  }
  return os.str();
}
}  // namespace

InputError::InputError(std::vector<Problem> problems)
    : std::runtime_error(join(problems)), problems_(std::move(problems)) {}

InputError::InputError(std::string file, std::string pointer, std::string message)
    : InputError(std::vector<Problem>{{std::move(file), std::move(pointer), std::move(message)}}) {}

namespace detail {
void check_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << "internal check failed at " << file << ':' << line << ": " << expr;
  if (!msg.empty()) os << " (" << msg << ')';
  throw InternalError(os.str());
}
}  // namespace detail

}  // namespace moss
