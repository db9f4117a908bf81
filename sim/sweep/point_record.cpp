#include "moss/sweep/point_record.h"

#include <limits>

#include "moss/core/error.h"

namespace moss::sweep {

namespace {

nlohmann::json number_or_null(double v) { return v == v ? nlohmann::json(v) : nlohmann::json(nullptr); }

double number_from(const nlohmann::json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

nlohmann::json vector_json(const std::vector<double>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (double x : v) out.push_back(number_or_null(x));
  return out;
}

std::vector<double> vector_from(const nlohmann::json& j) {
  std::vector<double> out;
  for (const auto& x : j) out.push_back(number_from(x));
  return out;
}

}  // namespace

nlohmann::json PointRecord::to_json() const {
  nlohmann::json m = nlohmann::json::array();
  for (const auto& [k, v] : metrics) m.push_back({k, number_or_null(v)});
  nlohmann::json l = nlohmann::json::array();
  for (const auto& [k, v] : labels) l.push_back({k, v});
  return {{"index", index},         {"status", status},       {"message", message},
          {"fields", fields},       {"metrics", m},           {"labels", l},
          {"scenario", scenario_json}, {"summary", summary_json},
          {"curve", {{"tokens", vector_json(curve_tokens)}, {"wall_s", vector_json(curve_wall_s)}, {"loss", vector_json(curve_loss)}}}};
}

PointRecord PointRecord::from_json(const nlohmann::json& j) {
  try {
    PointRecord r;
    r.index = j.at("index").get<std::int64_t>();
    r.status = j.at("status").get<std::string>();
    r.message = j.at("message").get<std::string>();
    r.fields = j.at("fields");
    for (const auto& m : j.at("metrics")) r.metrics.emplace_back(m.at(0).get<std::string>(), number_from(m.at(1)));
    for (const auto& l : j.at("labels")) r.labels.emplace_back(l.at(0).get<std::string>(), l.at(1).get<std::string>());
    r.scenario_json = j.at("scenario").get<std::string>();
    r.summary_json = j.at("summary").get<std::string>();
    const auto& c = j.at("curve");
    r.curve_tokens = vector_from(c.at("tokens"));
    r.curve_wall_s = vector_from(c.at("wall_s"));
    r.curve_loss = vector_from(c.at("loss"));
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw RuntimeFailure(std::string("malformed sweep record: ") + e.what());
  }
}

}  // namespace moss::sweep
