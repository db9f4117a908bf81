#include "moss/scenario/loader.h"

#include <cstdlib>
#include <optional>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "json_reader.h"
#include "sections.h"

namespace moss::scenario {

namespace {

std::string base_dir_of(const std::string& file) {
  if (file.empty()) return ".";
  const auto parent = std::filesystem::path(file).parent_path();
  return parent.empty() ? "." : parent.string();
}

std::string stem_of(const std::string& file) {
  return file.empty() ? "scenario" : std::filesystem::path(file).stem().string();
}

// Deepest nesting a scenario may use. Real scenarios nest about 5 levels; a limit keeps every later
// recursive walk of the document (dumps, sweep expansion) far from the stack's end.
constexpr std::size_t kMaxDepth = 32;

// Pointer of the first value nested deeper than kMaxDepth, if any. The recursion stops at the limit,
// so a document 100,000 levels deep costs kMaxDepth frames.
std::optional<std::string> too_deep(const nlohmann::json& value, const std::string& pointer, std::size_t depth) {
  if (depth > kMaxDepth) return pointer;
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      if (!child.is_structured()) continue;
      if (auto p = too_deep(child, JsonReader::child(pointer, key), depth + 1)) return p;
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (!value[i].is_structured()) continue;
      if (auto p = too_deep(value[i], pointer + "/" + std::to_string(i), depth + 1)) return p;
    }
  }
  return std::nullopt;
}

// nlohmann::json keeps the last of an object's repeated keys. A file that repeats one says two things
// and only one would count, silently: a second, event-only pass over the text (after the parse that
// builds the document, so the text is valid JSON) finds every repeat with its JSON pointer. Not a
// parse callback: nlohmann's callback parser rescans the parent container after each object, which
// made files of many objects quadratic (100,000 objects: minutes). Levels below kMaxDepth + 1 are
// only counted: such a document is refused for its depth anyway (too_deep), and a frame per level of
// a 4-million-level file would double its memory.
class RepeatedKeys : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return enter(false); }
  bool end_object() override { return leave(); }
  bool start_array(std::size_t) override { return enter(true); }
  bool end_array() override { return leave(); }
  bool key(string_t& k) override {
    if (depth_ > frames_.size()) return true;
    Frame& f = frames_.back();
    f.key = k;
    if (!f.keys.insert(k).second) {
      if (found_.size() < kMaxReported) found_.push_back(pointer());
      else more_ = true;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

  [[nodiscard]] const std::vector<std::string>& found() const { return found_; }
  [[nodiscard]] bool more() const { return more_; }

 private:
  static constexpr std::size_t kMaxReported = 20;
  struct Frame {
    bool is_array = false;
    std::size_t index = 0;  // arrays: elements begun so far
    std::string key;        // objects: the key being read
    std::set<std::string> keys;
  };

  bool value() {
    if (depth_ == frames_.size() && !frames_.empty() && frames_.back().is_array) ++frames_.back().index;
    return true;
  }
  bool enter(bool is_array) {
    value();
    if (++depth_ <= kMaxDepth + 1) frames_.push_back({is_array, 0, {}, {}});
    return true;
  }
  bool leave() {
    if (depth_-- <= kMaxDepth + 1) frames_.pop_back();
    return true;
  }

  // Pointer of the value under the key just read.
  [[nodiscard]] std::string pointer() const {
    std::string p;
    for (const Frame& f : frames_) p = f.is_array ? p + "/" + std::to_string(f.index - 1) : JsonReader::child(p, f.key);
    return p;
  }

  std::size_t depth_ = 0;
  std::vector<Frame> frames_;
  std::vector<std::string> found_;
  bool more_ = false;
};

}  // namespace

std::string data_dir() {
  if (const char* env = std::getenv("MOSS_DATA_DIR"); env && *env) return env;
  return MOSS_DATA_DIR;
}

std::string read_json_text(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(path, "", "no such file");
  if (std::filesystem::is_directory(path, ec)) throw InputError(path, "", "is a directory, expected a JSON file");
  // Looked at before it is opened: opening a FIFO would wait for a writer, and a device never ends.
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError(path, "", "is not a regular file (a FIFO, socket or device): expected a JSON file");
  // Scenario files are small; refuse huge inputs before reading them into memory.
  constexpr std::uintmax_t kMaxBytes = 64ull << 20;
  if (std::filesystem::file_size(path, ec) > kMaxBytes) {
    throw InputError(path, "", "larger than 64 MiB: not a scenario file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot be read (permissions?)");
  std::ostringstream buf;
  buf << in.rdbuf();
  return std::move(buf).str();
}

nlohmann::json read_json_file(const std::string& path) { return parse_json_text(read_json_text(path), path); }

nlohmann::json parse_json_text(const std::string& text, const std::string& path) {
  RepeatedKeys repeated;
  try {
    nlohmann::json doc = nlohmann::json::parse(text);
    (void)nlohmann::json::sax_parse(text, &repeated);
    if (repeated.found().empty()) return doc;
  } catch (const nlohmann::json::exception& e) {
    // parse_error carries "line L, column C"; out_of_range 406 is a number too large for a double
    // ("1e999"), also invalid input.
    std::string what = e.what();
    const auto pos = what.find("] ");
    throw InputError(path, "", "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
  std::vector<Problem> problems;
  for (const std::string& p : repeated.found())
    problems.push_back({path, p, "repeats a key of its object (only the last value would count): give each key once"});
  if (repeated.more()) problems.push_back({path, "", "more keys are repeated than the " + std::to_string(problems.size()) + " above"});
  throw InputError(std::move(problems));
}

Scenario parse_scenario(const nlohmann::json& doc, const std::string& file) {
  std::vector<Problem> problems;
  JsonReader r(file, problems);
  Scenario s;
  s.source_file = file;
  if (const auto deep = too_deep(doc, "", 0)) {
    r.problem(*deep, "nested more than " + std::to_string(kMaxDepth) + " levels deep: not a scenario");
    throw InputError(problems);
  }
  if (!r.expect_object(doc, "")) throw InputError(problems);
  r.allow_keys(doc, "", {"name", "description", "model", "training", "cluster", "parallelism",
                         "compression", "convergence", "cost", "simulation", "sweep"});
  s.name = r.string(doc, "", "name", false).value_or(stem_of(file));
  if (const auto* d = r.member(doc, "", "description", false); d && !d->is_string()) {
    r.problem("/description", "= " + brief(*d) + ": expected a string");
  }
  detail::read_model(r, doc, s);
  detail::read_training(r, doc, s);
  detail::read_cluster(r, doc, s);
  detail::read_parallelism(r, doc, s);
  detail::read_compression(r, doc, s, base_dir_of(file));
  detail::read_convergence(r, doc, s, base_dir_of(file));
  detail::read_cost(r, doc, s);
  detail::read_simulation(r, doc, s);
  detail::read_sweep_shape(r, doc);
  // Cross-field checks only make sense once every field parsed.
  if (r.ok()) detail::check_semantics(r, s);
  if (!r.ok()) throw InputError(problems);
  return s;
}

std::vector<Problem> validate_scenario(const nlohmann::json& doc, const std::string& file) {
  try {
    (void)parse_scenario(doc, file);
  } catch (const InputError& e) {
    return e.problems();
  }
  return {};
}

std::string resolve_scenario_path(const std::string& file, const std::string& value) {
  return detail::resolve_under(base_dir_of(file), value);
}

Scenario load_scenario(const std::string& path) { return parse_scenario(read_json_file(path), path); }

void set_dotted(nlohmann::json& doc, const std::string& dotted_path, const nlohmann::json& value) {
  nlohmann::json* at = &doc;
  std::string pointer;
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = dotted_path.find('.', begin);
    const std::string key = dotted_path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
    if (key.empty()) throw InputError("", "/sweep", "\"" + dotted_path + "\": empty path component");
    if (!at->is_object()) {
      throw InputError("", pointer.empty() ? "/" : pointer,
                       "\"" + dotted_path + "\" goes through a value that is not an object");
    }
    pointer = JsonReader::child(pointer, key);
    if (dot == std::string::npos) {
      (*at)[key] = value;
      return;
    }
    at = &(*at)[key];
    if (at->is_null()) *at = nlohmann::json::object();
    begin = dot + 1;
  }
}

const char* to_string(TopologyKind t) {
  switch (t) {
    case TopologyKind::kRing: return "ring";
    case TopologyKind::kStar: return "star";
    case TopologyKind::kFullMesh: return "full_mesh";
    case TopologyKind::kCustom: return "custom";
  }
  return "?";
}

const char* to_string(CpAlgorithm a) { return a == CpAlgorithm::kRing ? "ring" : "allgather"; }

const char* to_string(Partition p) { return p == Partition::kZigzag ? "zigzag" : "contiguous"; }

}  // namespace moss::scenario
