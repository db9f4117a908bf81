// libFuzzer target: arbitrary bytes -> JSON -> scenario parser + validator.
// Any exception other than moss::InputError (a refusal with problems), any crash, sanitizer report,
// leak or out-of-memory is a finding.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "moss/core/error.h"
#include "moss/scenario/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The loader refuses files above 64 MiB before parsing; libFuzzer inputs are far smaller.
  const nlohmann::json doc = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  try {
    const moss::scenario::Scenario s = moss::scenario::parse_scenario(doc, "fuzz.json");
    (void)s;
  } catch (const moss::InputError& e) {
    // Every problem must say where it is: a file name, and a message.
    for (const auto& p : e.problems()) {
      if (p.file.empty() || p.message.empty()) __builtin_trap();
      if (!p.pointer.empty() && p.pointer.front() != '/') __builtin_trap();
    }
  }
  return 0;
}
