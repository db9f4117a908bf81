// HDF5 reader (C API): datasets "k"/"v" or a single dataset; sizes checked before allocation.
#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "activation_checks.h"
#include "isolated_load.h"
#include "moss/core/error.h"
#include "moss/io/activations.h"
#include "moss/io/dataset_path.h"

namespace moss::io {

namespace {
constexpr const char* kChooseHint = "moss compress --dataset or --dataset-k/--dataset-v; a scenario's compression.datasets";

/// Owns one HDF5 identifier.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

/// While alive, records whether any failing HDF5 call failed to allocate memory (instead of printing
/// the error stack, which HDF5 does by default).
class AllocationFailures {
 public:
  AllocationFailures() {
    H5Eget_auto2(H5E_DEFAULT, &previous_, &previous_data_);
    H5Eset_auto2(H5E_DEFAULT, &on_error, &seen_);
  }
  AllocationFailures(const AllocationFailures&) = delete;
  AllocationFailures& operator=(const AllocationFailures&) = delete;
  ~AllocationFailures() { H5Eset_auto2(H5E_DEFAULT, previous_, previous_data_); }  // the caller's handler again
  [[nodiscard]] bool seen() const { return seen_; }

 private:
  // Called by each API function that fails, with its error stack: allocation failures are pushed as
  // H5E_RESOURCE / H5E_CANTALLOC or H5E_NOSPACE (H5MM_malloc returning NULL).
  static herr_t on_error(hid_t stack, void* seen) {
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, &on_entry, seen);
    return 0;
  }
  static herr_t on_entry(unsigned, const H5E_error2_t* e, void* seen) {
    if (e->maj_num == H5E_RESOURCE && (e->min_num == H5E_CANTALLOC || e->min_num == H5E_NOSPACE))
      *static_cast<bool*>(seen) = true;
    return 0;
  }
  bool seen_ = false;
  H5E_auto2_t previous_ = nullptr;
  void* previous_data_ = nullptr;
};

/// The file being read, and the access properties every lookup in it uses: they refuse to traverse an
/// external link. HDF5 would open the other file itself, and a link into a FIFO would wait forever for
/// a writer; moss reads the file it is given only (a cached measurement is known by its identity), so
/// an external link is named and refused instead (walk_links).
class File {
 public:
  explicit File(const std::string& path)
      : file_(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose),
        links_(H5Pcreate(H5P_LINK_ACCESS), H5Pclose), datasets_(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose) {
    if (!links_.ok() || !datasets_.ok() || H5Pset_elink_cb(links_.get(), &refuse_traversal, &refused_) < 0 ||
        H5Pset_elink_cb(datasets_.get(), &refuse_traversal, &refused_) < 0)
      throw std::runtime_error("libhdf5: cannot create the link access properties");
  }
  [[nodiscard]] bool ok() const { return file_.ok(); }
  [[nodiscard]] hid_t get() const { return file_.get(); }
  /// Link access properties (H5Lexists, H5Lget_info, H5Oopen) and dataset access ones (H5Dopen2).
  [[nodiscard]] hid_t links() const { return links_.get(); }
  [[nodiscard]] hid_t datasets() const { return datasets_.get(); }
  /// "file" of the last external link a lookup did not traverse ("" when none).
  [[nodiscard]] const std::string& refused() const { return refused_; }

 private:
  // No exception may unwind through libhdf5's C frames: a failed copy records "?".
  static herr_t refuse_traversal(const char*, const char*, const char* child_file, const char*, unsigned*, hid_t, void* refused) {
    auto& out = *static_cast<std::string*>(refused);
    try {
      out = child_file != nullptr && *child_file != '\0' ? child_file : "?";
    } catch (...) {
      out.clear();
      out.push_back('?');  // fits the string's small buffer: cannot allocate
    }
    return -1;
  }
  Handle file_, links_, datasets_;
  mutable std::string refused_;  // written by HDF5 during a lookup, const or not
};

/// Why a dataset reached through an external link into `other` is refused.
std::string into_another_file(const std::string& other) {
  return "external link into \"" + other + "\": moss reads datasets of the file it is given only (give it that file)";
}

// After a lookup failed: when it failed because it would have traversed an external link, says so.
void throw_if_refused(const std::string& path, const File& file, const std::string& where) {
  if (!file.refused().empty()) throw InputError(path, where, "leads through an " + into_another_file(file.refused()));
}

// Walks the links on `name`'s path ("a", "a/b", ...) before any lookup could traverse one: refuses an
// external link, and calls `missing(parent)` at the first link that does not exist (it may throw;
// else the walk stops there and the lookups that follow fail on it).
template <typename Missing>
void walk_links(const std::string& path, const File& file, const std::string& name, Missing&& missing) {
  std::string parent;
  for (std::size_t slash = 0; slash != std::string::npos;) {
    slash = name.find('/', slash + 1);
    const std::string prefix = name.substr(0, slash);
    H5L_info_t link{};
    if (H5Lexists(file.get(), prefix.c_str(), file.links()) <= 0 || H5Lget_info(file.get(), prefix.c_str(), &link, file.links()) < 0) {
      throw_if_refused(path, file, "/" + name);
      missing(parent);
      return;
    }
    parent = prefix;
    if (link.type != H5L_TYPE_EXTERNAL) continue;
    std::string other = "?";
    std::vector<char> value(link.u.val_size + 1, '\0');
    const char* target_file = nullptr;
    const char* target_object = nullptr;
    unsigned flags = 0;
    if (H5Lget_val(file.get(), prefix.c_str(), value.data(), value.size(), file.links()) >= 0 &&
        H5Lunpack_elink_val(value.data(), link.u.val_size, &flags, &target_file, &target_object) >= 0 && target_file != nullptr)
      other = target_file;
    throw InputError(path, "/" + prefix, "is an " + into_another_file(other));
  }
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  try {  // no exception may unwind through libhdf5's C frames
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  } catch (...) {
    return -1;  // the iteration fails: reported as a file that cannot be listed
  }
}

std::vector<std::string> top_level_names(const std::string& path, const File& file) {
  std::vector<std::string> names;
  if (H5Literate(file.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) < 0)
    throw InputError(path, "", "cannot list the objects in the file (corrupt file)");
  return names;
}

// What `group` ("" for the root) holds, for a message: "the file's top-level objects: /a, /b",
// "/g holds: /g/x, ... and 12 more", or why it holds nothing (a dataset, a dangling link).
std::string members(const std::string& path, const File& file, const std::string& group) {
  std::vector<std::string> names;
  if (group.empty()) {
    names = top_level_names(path, file);
  } else {
    Handle object(H5Oopen(file.get(), group.c_str(), file.links()), H5Oclose);
    if (!object.ok()) return "/" + group + " is a link to an object that does not exist";
    if (H5Iget_type(object.get()) != H5I_GROUP) return "/" + group + " is a dataset, not a group";
    if (H5Literate(object.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) < 0)
      return "/" + group + " cannot be listed (corrupt file)";
  }
  constexpr std::size_t kShown = 20;
  std::string list;
  for (std::size_t i = 0; i < std::min(names.size(), kShown); ++i) {
    list += i == 0 ? "/" : ", /";
    list += group.empty() ? names[i] : group + "/" + names[i];
  }
  if (names.size() > kShown) list += ", ... and " + std::to_string(names.size() - kShown) + " more";
  return (group.empty() ? "the file's top-level objects: " : "/" + group + " holds: ") + (list.empty() ? "none" : list);
}

// A dataset the caller chose: each link on its path must exist (H5Lexists checks one link, its
// parents must exist) and it must be a dataset.
void check_chosen(const std::string& path, const File& file, const std::string& name) {
  const std::string where = "/" + name;
  walk_links(path, file, name, [&](const std::string& parent) {
    throw InputError(path, where, "no such dataset in the file (" + members(path, file, parent) + ")");
  });
  H5L_info_t link{};
  const bool soft = H5Lget_info(file.get(), name.c_str(), &link, file.links()) >= 0 && link.type != H5L_TYPE_HARD;
  Handle object(H5Oopen(file.get(), name.c_str(), file.links()), H5Oclose);
  if (!object.ok()) throw_if_refused(path, file, where);  // a soft link whose path leads through an external one
  if (!object.ok())
    throw InputError(path, where, soft ? "is a link to an object that does not exist (a dangling soft link)"
                                       : "cannot open the object (corrupt file)");
  const H5I_type_t type = H5Iget_type(object.get());
  if (type == H5I_GROUP) throw InputError(path, where, "is a group, not a dataset (" + members(path, file, name) + ")");
  if (type != H5I_DATASET) throw InputError(path, where, "is a named datatype, not a dataset");
}

// `id`'s file as HDF5 names it: `path` for an object of the file itself, another file's name for one
// reached through an external link.
std::string file_of(hid_t id) {
  Handle f(H5Iget_file_id(id), H5Fclose);
  if (!f.ok()) return "";
  const ssize_t size = H5Fget_name(f.get(), nullptr, 0);
  if (size <= 0) return "";
  std::string name(static_cast<std::size_t>(size) + 1, '\0');
  H5Fget_name(f.get(), name.data(), name.size());
  name.resize(static_cast<std::size_t>(size));
  return name;
}

// The value at row-major `index` of dataset `ds` (dataspace `space`) as a long double; nullopt when
// it cannot be read.
std::optional<long double> element_of(hid_t ds, hid_t space, std::size_t index) {
  hsize_t dims[4] = {}, at[4] = {};
  const int rank = H5Sget_simple_extent_dims(space, dims, nullptr);
  if (rank < 1 || rank > 4) return std::nullopt;
  for (int i = rank - 1; i >= 0; --i) {
    at[i] = index % dims[i];
    index /= dims[i];
  }
  Handle one(H5Scopy(space), H5Sclose);
  const hsize_t count = 1;
  Handle memory(H5Screate_simple(1, &count, nullptr), H5Sclose);
  long double value = 0;
  if (!one.ok() || !memory.ok() || H5Sselect_elements(one.get(), H5S_SELECT_SET, 1, at) < 0 ||
      H5Dread(ds, H5T_NATIVE_LDOUBLE, memory.get(), one.get(), H5P_DEFAULT, &value) < 0)
    return std::nullopt;
  return value;
}

// One dataset: one tensor, or a K/V pair when `pairs` lets its shape be one.
Activations read_dataset(const std::string& path, const File& file, const std::string& name, std::uint64_t file_bytes,
                         detail::PairShapes pairs) {
  const std::string where = "/" + name;
  walk_links(path, file, name, [](const std::string&) {});
  Handle ds(H5Dopen2(file.get(), name.c_str(), file.datasets()), H5Dclose);
  if (!ds.ok()) throw_if_refused(path, file, where);
  if (!ds.ok()) throw InputError(path, where, "cannot open the dataset");
  // The data measured must be this file's: a cached measurement is known by this file's identity.
  if (const std::string other = file_of(ds.get()); other != path) throw InputError(path, where, "is an " + into_another_file(other));
  // Nor may its values live in other files, which libhdf5 would open by name when reading (a FIFO
  // among them would block the read): a virtual dataset's sources, external raw-data files.
  Handle plist(H5Dget_create_plist(ds.get()), H5Pclose);
  if (!plist.ok()) throw InputError(path, where, "cannot read the dataset's properties (corrupt file)");
  const H5D_layout_t storage = H5Pget_layout(plist.get());
  if (storage == H5D_VIRTUAL)
    throw InputError(path, where, "is a virtual dataset, whose values lie in other files: moss reads datasets of the file it is given only "
                                  "(write the values into one file)");
  if (H5Pget_external_count(plist.get()) != 0)
    throw InputError(path, where, "keeps its values in external raw-data files: moss reads datasets of the file it is given only "
                                  "(write the values into the HDF5 file)");
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT)
    throw InputError(path, where, "dataset is not floating point: expected float32, float16, bfloat16 or float64 values");
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > 4) throw InputError(path, where, "dataset rank " + std::to_string(rank) + ": " + detail::expected_shapes(pairs));
  hsize_t dims[4] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  std::vector<std::int64_t> shape(dims, dims + rank);
  const detail::Layout layout = detail::layout_of(path, where, shape, pairs);
  // Contiguous storage must hold exactly the shape; compressed (chunked) storage may not claim more
  // than 1000x the file size (far beyond what any float compressor achieves on activations).
  const std::uint64_t elem = H5Tget_size(type.get());
  const std::uint64_t need = layout.count() * elem;
  const std::uint64_t stored = H5Dget_storage_size(ds.get());
  const bool contiguous = storage == H5D_CONTIGUOUS;
  if ((contiguous && stored < need) || need / 1000 > file_bytes)
    throw InputError(path, where, "dataset needs " + std::to_string(need) + " bytes but the file stores " +
                                      std::to_string(stored) + " (truncated or corrupt file)");
  std::vector<float> values(static_cast<std::size_t>(layout.count()));
  if (H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0)
    throw InputError(path, where, "cannot read the dataset (truncated or corrupt file)");
  // libhdf5 converts a float64 beyond float's range to +-Inf: the refused value is read again, alone
  // and wide, to be quoted as the file holds it.
  const detail::ValueInFile in_file = [&](std::size_t index) { return element_of(ds.get(), space.get(), index); };
  if (layout.tensors == 2) return detail::split(path, layout, std::move(values), {}, where, in_file);
  return detail::split(path, layout, std::move(values), {name}, where, in_file);
}

/// Bound on a dataset's float32 values, and on the bytes HDF5 holds for it, given the file size: what
/// read_dataset accepts (at most 1000x the file size stored, each value at least one byte; at most
/// 2^36 values).
std::uint64_t max_tensor_bytes(std::uint64_t file_bytes) {
  constexpr std::uint64_t kMaxValues = std::uint64_t{1} << 36;
  const std::uint64_t values = file_bytes >= kMaxValues / 1000 ? kMaxValues : std::min(kMaxValues, 1000 * file_bytes + 999);
  return values * sizeof(float);
}

// "[layers, tokens, dim]", or "[tokens, dim]" for one layer.
std::string shape_text(const Tensor& t) {
  return "[" + (t.layers > 1 ? std::to_string(t.layers) + ", " : std::string()) + std::to_string(t.tokens) + ", " +
         std::to_string(t.dim) + "]";
}

// K and V from two datasets of one shape.
Activations read_pair(const std::string& path, const File& file, const std::string& k_name, const std::string& v_name,
                      std::uint64_t file_bytes) {
  Activations k = read_dataset(path, file, k_name, file_bytes, detail::PairShapes::none);
  Activations v = read_dataset(path, file, v_name, file_bytes, detail::PairShapes::none);
  const Tensor &tk = k.tensors[0], &tv = v.tensors[0];
  if (tk.layers != tv.layers || tk.tokens != tv.tokens || tk.dim != tv.dim)
    throw InputError(path, "/" + v_name, "shape " + shape_text(tv) + " differs from /" + k_name + "'s " + shape_text(tk) +
                                             ": expected K and V of one shape");
  k.tensors.push_back(std::move(v.tensors[0]));
  return k;
}

Activations load_checked(const std::string& path, std::uint64_t file_bytes, const DatasetChoice& choice) {
  if (const std::string problem = dataset_choice_problem(choice); !problem.empty()) throw InputError(path, "", problem);
  if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(path, "", "not an HDF5 file (or truncated)");
  const File file(path);
  if (!file.ok()) throw InputError(path, "", "cannot open the HDF5 file (truncated or corrupt)");
  if (!choice.single.empty()) {
    const std::string name = dataset_path_from_root(choice.single);
    check_chosen(path, file, name);
    return read_dataset(path, file, name, file_bytes, detail::PairShapes::four_d);
  }
  if (!choice.k.empty()) {
    const std::string k = dataset_path_from_root(choice.k), v = dataset_path_from_root(choice.v);
    check_chosen(path, file, k);
    check_chosen(path, file, v);
    return read_pair(path, file, k, v, file_bytes);
  }
  const std::vector<std::string> names = top_level_names(path, file);
  const bool has_k = std::find(names.begin(), names.end(), "k") != names.end();
  const bool has_v = std::find(names.begin(), names.end(), "v") != names.end();
  if (has_k != has_v) throw InputError(path, has_k ? "/v" : "/k", "missing: a K/V pair needs datasets \"k\" and \"v\"");
  if (has_k) return read_pair(path, file, "k", "v", file_bytes);
  if (names.size() != 1)
    throw InputError(path, "", "found " + std::to_string(names.size()) +
                                   " top-level objects: expected datasets \"k\" and \"v\", or exactly one dataset, or datasets chosen by name "
                                   "(" + std::string(kChooseHint) + ")");
  try {
    check_chosen(path, file, names[0]);  // a group or a dangling link is named as such
  } catch (const InputError& e) {
    std::vector<Problem> problems = e.problems();
    for (Problem& p : problems)  // choosing by name cannot help a dataset in another file
      if (p.message.find("external link into") == std::string::npos) p.message += "; choose the datasets by name (" + std::string(kChooseHint) + ")";
    throw InputError(std::move(problems));
  }
  return read_dataset(path, file, names[0], file_bytes, detail::PairShapes::four_d);
}
}  // namespace

std::string DatasetChoice::describe() const {
  // Quoted, so that the text names one choice only ("a, /b" is one name): it keys measurements.
  const auto rooted = [](const std::string& n) {
    std::string out = "\"/";
    for (const char c : dataset_path_from_root(n)) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out += '"';
  };
  if (!single.empty()) return " (dataset " + rooted(single) + ")";
  if (!k.empty() || !v.empty()) return " (datasets " + rooted(k) + ", " + rooted(v) + ")";
  return "";
}

std::string dataset_choice_problem(const DatasetChoice& choice) {
  if (!choice.single.empty() && (!choice.k.empty() || !choice.v.empty()))
    return "a single dataset and a K/V pair of datasets are both chosen: choose one";
  if (choice.k.empty() != choice.v.empty()) return "a K/V pair needs both its K and its V dataset";
  for (const std::string& name : {choice.single, choice.k, choice.v}) {
    if (name.empty()) continue;
    if (const std::string problem = dataset_name_problem(name); !problem.empty())
      return "dataset name \"" + name + "\": " + problem;
  }
  return "";
}

Activations load_hdf5_unisolated(const std::string& path, const DatasetChoice& datasets) {
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  if (ec) throw InputError(path, "", "cannot open the file");
  // Errors are reported as InputError, not printed. One that libhdf5 reports after failing to allocate
  // memory is std::bad_alloc instead: the child-process loader turns that into its memory-limit message.
  const AllocationFailures failures;
  try {
    return load_checked(path, file_bytes, datasets);
  } catch (const InputError&) {
    if (failures.seen()) throw std::bad_alloc();
    throw;
  }
}

Activations load_hdf5(const std::string& path, const DatasetChoice& datasets) {
  // libhdf5 1.10 can crash on corrupt files (tests/data/bad_activations/libhdf5-segv-h5literate.h5):
  // it runs in a child process so that such a file is an input error, not a crash of moss. It can also
  // allocate without bound (libhdf5-oom.h5): the child's memory is capped from the file size.
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  return detail::load_in_child(
      path, [&datasets](const std::string& p) { return load_hdf5_unisolated(p, datasets); }, "libhdf5", "HDF5",
      max_tensor_bytes(ec ? 0 : file_bytes));
}

Activations load_activations(const std::string& path, const DatasetChoice& datasets) {
  // Looked at before it is opened: opening a FIFO would wait for a writer.
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) throw InputError(path, "", "cannot open the file: no such file");
  if (status.type() == std::filesystem::file_type::directory) throw InputError(path, "", "is a directory: expected a .npy, .h5 or .hdf5 file");
  if (!ec && status.type() != std::filesystem::file_type::regular)
    throw InputError(path, "", "is not a regular file (a FIFO, socket or device): expected a .npy, .h5 or .hdf5 file");
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".h5" || ext == ".hdf5") return load_hdf5(path, datasets);
  if (!datasets.empty())
    throw InputError(path, "", "a dataset is chosen" + datasets.describe() + ", but datasets apply to .h5/.hdf5 files only");
  if (ext == ".npy") {
    try {
      return load_npy(path);
    } catch (const std::bad_alloc&) {  // a valid file too large for this machine: name it
      std::error_code size_ec;
      const auto bytes = std::filesystem::file_size(path, size_ec);
      throw InputError(path, "", "its values (" + (size_ec ? std::string("the file") : std::to_string(bytes >> 20) + " MiB") +
                                     " as float32) do not fit in this process's memory: expected a smaller file");
    }
  }
  throw InputError(path, "", "unknown activation file type \"" + ext + "\": expected .npy, .h5 or .hdf5");
}

}  // namespace moss::io
