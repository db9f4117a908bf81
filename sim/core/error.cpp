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
  // C1 controls (U+0080..U+009F, UTF-8 \xc2\x80..\xc2\x9f) too: a UTF-8 terminal obeys them as well.
  std::string shown;
  const auto hex = [&shown](unsigned char u) {
    char text[5];
    std::snprintf(text, sizeof text, "\\x%02x", u);
    shown += text;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto u = static_cast<unsigned char>(out[i]);
    const auto next = i + 1 < out.size() ? static_cast<unsigned char>(out[i + 1]) : 0u;
    if (u == 0xc2 && next >= 0x80 && next <= 0x9f) {
      hex(u), hex(static_cast<unsigned char>(next));
      ++i;
    } else if (u < 0x20 || u == 0x7f) {
      hex(u);
    } else {
      shown += out[i];
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
