#pragma once

#include <map>
#include <string>

#include "moss/model/hardware.h"
#include "moss/model/transformer.h"

namespace moss::scenario {

/// The shipped data files: scenarios/hardware.json and scenarios/models.json.
struct Catalog {
  std::map<std::string, model::GpuSpec> gpus;
  std::map<std::string, model::TransformerConfig> models;
};

/// Loads the catalog from `dir` (throws moss::RuntimeFailure naming the file when unreadable).
[[nodiscard]] Catalog load_catalog(const std::string& dir);

/// The catalog of data_dir(), loaded once per process (thread-safe).
[[nodiscard]] const Catalog& catalog();

/// The catalog's GPU whose `device_names` holds `device_name` (as the CUDA runtime names a device,
/// e.g. "NVIDIA H200"); nullptr when none does.
[[nodiscard]] const model::GpuSpec* catalog_gpu_by_device_name(const std::string& device_name);

}  // namespace moss::scenario
