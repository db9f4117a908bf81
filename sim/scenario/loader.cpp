#include "moss/scenario/loader.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

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

}  // namespace

std::string data_dir() {
  if (const char* env = std::getenv("MOSS_DATA_DIR"); env && *env) return env;
  return MOSS_DATA_DIR;
}

nlohmann::json read_json_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(path, "", "no such file");
  if (std::filesystem::is_directory(path, ec)) throw InputError(path, "", "is a directory, expected a JSON file");
  // Scenario files are small; refuse huge inputs before reading them into memory.
  constexpr std::uintmax_t kMaxBytes = 64ull << 20;
  if (std::filesystem::file_size(path, ec) > kMaxBytes) {
    throw InputError(path, "", "larger than 64 MiB: not a scenario file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot be read (permissions?)");
  std::ostringstream buf;
  buf << in.rdbuf();
  try {
    return nlohmann::json::parse(buf.str());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message carries "line L, column C".
    std::string what = e.what();
    const auto pos = what.find("parse error");
    throw InputError(path, "", "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos)));
  }
}

Scenario parse_scenario(const nlohmann::json& doc, const std::string& file) {
  std::vector<Problem> problems;
  JsonReader r(file, problems);
  Scenario s;
  s.source_file = file;
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
  detail::read_compression(r, doc, s);
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
