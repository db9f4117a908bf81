#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moss/scenario/scenario.h"

namespace moss::converge {

/// A training loss curve: loss after `tokens` tokens. Tokens strictly increasing, all positive.
struct LossCurve {
  std::vector<double> tokens;
  std::vector<double> loss;
};

/// One compressed (or sparsely synchronised) run of a calibration file.
struct CalibrationRun {
  std::string label;
  nlohmann::json match;  ///< object: the scenario fields this run stands for, e.g. {"method":"mos","rank_k":40}
  LossCurve curve;
};

/// A calibration file (format "moss-calibration/1", see sim/converge/README.md): the loss curve of
/// a baseline run and of runs with compression or sparse weight sync, all of one model.
struct Calibration {
  std::string file;
  std::string description;
  LossCurve baseline;
  std::vector<CalibrationRun> runs;
};

/// eta measured from two curves, and the range it was measured over.
struct EtaEstimate {
  double eta = 1;
  double loss_lo = 0;  ///< overlap of the two curves in loss (lowest level compared)
  double loss_hi = 0;  ///< highest level compared
  std::string run_label;
};

/// Parses and checks a calibration document; throws moss::InputError naming `file` and the JSON
/// pointer of every problem.
[[nodiscard]] Calibration parse_calibration(const nlohmann::json& doc, const std::string& file);

/// Reads a calibration file (JSON). Throws moss::InputError when missing or malformed.
[[nodiscard]] Calibration read_calibration(const std::string& path);

/// Tokens the curve needs to first reach `level` (on its running-minimum envelope), interpolated
/// linearly in log(tokens) against loss. Precondition: level within the envelope's range.
[[nodiscard]] double tokens_to_reach(const LossCurve& curve, double level);

/// eta = tokens the baseline needs / tokens the other run needs for the same loss, averaged
/// (trapezoid rule, uniform in loss) over the loss range both curves reach. Throws
/// moss::InputError (naming `file`) when the curves do not overlap.
[[nodiscard]] EtaEstimate efficiency_from_curves(const LossCurve& baseline, const LossCurve& other,
                                                 const std::string& file = "");

/// The scenario fields a compression run is matched on: method, rank_k, rank_v, rotations,
/// subspaces, fraction, bits.
[[nodiscard]] nlohmann::json compression_key(const scenario::CompressionSpec& c);

/// The fields a weight-sync run is matched on: every_steps, overlap.
[[nodiscard]] nlohmann::json weight_sync_key(const scenario::TrainingSpec& t);

/// The run whose "match" fields all equal those of `key`; the most specific one wins, then the
/// first in the file. Throws moss::InputError listing the runs when none matches.
[[nodiscard]] const CalibrationRun& select_run(const Calibration& cal, const nlohmann::json& key);

/// read_calibration + select_run + efficiency_from_curves.
[[nodiscard]] EtaEstimate measured_efficiency(const std::string& path, const nlohmann::json& key);

}  // namespace moss::converge
