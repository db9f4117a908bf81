#include "moss/sweep/results_h5.h"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "moss/core/error.h"
#include "moss/core/file_io.h"
#include "moss/sweep/journal.h"

#ifndef MOSS_VERSION
#define MOSS_VERSION "unknown"
#endif

namespace moss::sweep {

std::string moss_version() { return MOSS_VERSION; }

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

hid_t check(hid_t id, const char* what) {
  if (id < 0) throw RuntimeFailure(std::string("HDF5: cannot ") + what);
  return id;
}

void check_status(herr_t rc, const char* what) {
  if (rc < 0) throw RuntimeFailure(std::string("HDF5: cannot ") + what);
}

/// Owns an HDF5 identifier.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const char* what) : id_(check(id, what)), close_(close) {}
  ~Handle() { close_(id_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }  // NOLINT(google-explicit-constructor)

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// Everything written without modification times, so identical content gives identical bytes. The
// file is built in memory (HDF5's core driver, no backing store) and written out by moss's own
// replace_file: libhdf5 writing to disk itself would, on a full disk, leave a corrupt file for the
// rename and a file it cannot close (which crashed the process at exit).
class Writer {
 public:
  Writer()
      : fcpl_(H5Pcreate(H5P_FILE_CREATE), H5Pclose, "create a property list"),
        fapl_(memory_access(), H5Pclose, "create a property list"),
        ocpl_(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, "create a property list"),
        dcpl_(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "create a property list"),
        str_(H5Tcopy(H5T_C_S1), H5Tclose, "copy a type"),
        file_(H5Fcreate("moss-results-in-memory.h5", H5F_ACC_TRUNC, fcpl_, fapl_), H5Fclose, "create the results file") {
    check_status(H5Pset_obj_track_times(ocpl_, false), "set group properties");
    check_status(H5Pset_obj_track_times(dcpl_, false), "set dataset properties");
    check_status(H5Tset_size(str_, H5T_VARIABLE), "set string type");
    check_status(H5Tset_cset(str_, H5T_CSET_UTF8), "set string type");
  }

  hid_t file() const { return file_; }

  /// The file's bytes as written so far.
  std::string image() const {
    check_status(H5Fflush(file_, H5F_SCOPE_GLOBAL), "flush the results file");
    const ssize_t size = H5Fget_file_image(file_, nullptr, 0);
    if (size <= 0) throw RuntimeFailure("HDF5: cannot take the image of the results file");
    std::string out(static_cast<std::size_t>(size), '\0');
    if (H5Fget_file_image(file_, out.data(), out.size()) != size) throw RuntimeFailure("HDF5: cannot take the image of the results file");
    return out;
  }

  hid_t group(hid_t parent, const std::string& name) {
    return check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, ocpl_, H5P_DEFAULT), "create a group");
  }

  void attr(hid_t obj, const std::string& name, const std::string& value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a dataspace");
    Handle a(H5Acreate2(obj, name.c_str(), str_, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "create an attribute");
    const char* p = value.c_str();
    check_status(H5Awrite(a, str_, &p), "write an attribute");
  }

  void attr(hid_t obj, const std::string& name, std::int64_t value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a dataspace");
    Handle a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "create an attribute");
    check_status(H5Awrite(a, H5T_NATIVE_INT64, &value), "write an attribute");
  }

  void doubles(hid_t parent, const std::string& name, const std::vector<double>& v, std::size_t cols = 0) {
    const hsize_t rows = cols ? v.size() / cols : v.size();
    const hsize_t dims[2] = {rows, static_cast<hsize_t>(cols)};
    Handle space(H5Screate_simple(cols ? 2 : 1, dims, nullptr), H5Sclose, "create a dataspace");
    Handle d(H5Dcreate2(parent, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl_, H5P_DEFAULT), H5Dclose,
             "create a dataset");
    if (!v.empty()) check_status(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write a dataset");
  }

  void int64s(hid_t parent, const std::string& name, const std::vector<std::int64_t>& v) {
    const hsize_t dims[1] = {v.size()};
    Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose, "create a dataspace");
    Handle d(H5Dcreate2(parent, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, dcpl_, H5P_DEFAULT), H5Dclose,
             "create a dataset");
    if (!v.empty()) check_status(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write a dataset");
  }

  void strings(hid_t parent, const std::string& name, const std::vector<std::string>& v) {
    const hsize_t dims[1] = {v.size()};
    std::vector<const char*> ptrs;
    for (const auto& s : v) ptrs.push_back(s.c_str());
    Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose, "create a dataspace");
    Handle d(H5Dcreate2(parent, name.c_str(), str_, space, H5P_DEFAULT, dcpl_, H5P_DEFAULT), H5Dclose, "create a dataset");
    if (!v.empty()) check_status(H5Dwrite(d, str_, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "write a dataset");
  }

 private:
  static hid_t memory_access() {
    const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, std::size_t{1} << 20, false) < 0) {  // grows 1 MiB at a time, never on disk
      H5Pclose(fapl);
      return -1;
    }
    return fapl;
  }

  Handle fcpl_, fapl_, ocpl_, dcpl_, str_, file_;
};

std::string field_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

void write_fields(Writer& w, hid_t points, const ResultsHeader& h, const std::vector<PointRecord>& records) {
  Handle g(w.group(points, "field"), H5Gclose, "create a group");
  for (const auto& path : h.fields) {
    bool numeric = true;
    for (const auto& r : records) {
      auto it = r.fields.find(path);
      if (it == r.fields.end() || !it->is_number()) numeric = false;
    }
    if (numeric) {
      std::vector<double> col;
      for (const auto& r : records) col.push_back(r.fields.at(path).get<double>());
      w.doubles(g, path, col);
    } else {
      std::vector<std::string> col;
      for (const auto& r : records) col.push_back(r.fields.contains(path) ? field_text(r.fields.at(path)) : "");
      w.strings(g, path, col);
    }
  }
}

template <typename T>
std::map<std::string, std::vector<T>> columns(const std::vector<PointRecord>& records,
                                              std::vector<std::pair<std::string, T>> PointRecord::*member, T missing) {
  std::set<std::string> names;
  for (const auto& r : records)
    for (const auto& kv : r.*member) names.insert(kv.first);
  std::map<std::string, std::vector<T>> out;
  for (const auto& n : names) out[n].assign(records.size(), missing);
  for (std::size_t i = 0; i < records.size(); ++i)
    for (const auto& [k, v] : records[i].*member) out[k][i] = v;
  return out;
}

void write_curves(Writer& w, const std::vector<PointRecord>& records) {
  std::size_t k = 1;
  for (const auto& r : records) k = std::max(k, r.curve_loss.size());
  Handle g(w.group(w.file(), "curves"), H5Gclose, "create a group");
  w.attr(g, "description", "predicted loss curve per point (row = point row), NaN-padded");
  auto matrix = [&](std::vector<double> PointRecord::*member) {
    std::vector<double> m(records.size() * k, kNaN);
    for (std::size_t i = 0; i < records.size(); ++i)
      std::copy((records[i].*member).begin(), (records[i].*member).end(), m.begin() + static_cast<std::ptrdiff_t>(i * k));
    return m;
  };
  w.doubles(g, "tokens", matrix(&PointRecord::curve_tokens), k);
  w.doubles(g, "wall_s", matrix(&PointRecord::curve_wall_s), k);
  w.doubles(g, "loss", matrix(&PointRecord::curve_loss), k);
}

std::string results_image_of(const ResultsHeader& h, const std::vector<PointRecord>& records) {
  Writer w;
  w.attr(w.file(), "format", "moss-results/1");
  w.attr(w.file(), "kind", h.kind);
  w.attr(w.file(), "moss_version", h.moss_version);
  w.attr(w.file(), "scenario_name", h.scenario_name);
  w.attr(w.file(), "scenario_file", h.scenario_file);
  w.attr(w.file(), "sweep_json", h.sweep.dump());
  w.attr(w.file(), "fields_json", nlohmann::json(h.fields).dump());
  w.attr(w.file(), "planned_points", h.planned_points);
  w.attr(w.file(), "points", static_cast<std::int64_t>(records.size()));
  Handle points(w.group(w.file(), "points"), H5Gclose, "create a group");
  std::vector<std::int64_t> index;
  std::vector<std::string> status, message, scenario, summary;
  for (const auto& r : records) {
    index.push_back(r.index);
    status.push_back(r.status);
    message.push_back(r.message);
    scenario.push_back(r.scenario_json);
    summary.push_back(r.summary_json);
  }
  w.int64s(points, "index", index);
  w.strings(points, "status", status);
  w.strings(points, "message", message);
  w.strings(points, "scenario_json", scenario);
  w.strings(points, "summary_json", summary);
  write_fields(w, points, h, records);
  {
    Handle g(w.group(points, "metric"), H5Gclose, "create a group");
    for (const auto& [name, col] : columns<double>(records, &PointRecord::metrics, kNaN)) w.doubles(g, name, col);
  }
  {
    Handle g(w.group(points, "label"), H5Gclose, "create a group");
    for (const auto& [name, col] : columns<std::string>(records, &PointRecord::labels, "")) w.strings(g, name, col);
  }
  write_curves(w, records);
  return w.image();
}

}  // namespace

std::string results_h5_image(const ResultsHeader& header, const std::vector<PointRecord>& records) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // HDF5 prints its error stack by default; a library must not print
  return results_image_of(header, records);
}

void write_results_h5(const std::string& path, const ResultsHeader& header, const std::vector<PointRecord>& records) {
  // HDF5 prints its error stack by default; a library must not print.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  replace_file(path, results_h5_image(header, records), Durability::kFileAndDirectory);
}

}  // namespace moss::sweep
