// Loading activation files written at run time into a temporary directory.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>
#include <vector>

#include "moss/core/error.h"
#include "moss/io/activations.h"

namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("moss_io_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" + std::to_string(reinterpret_cast<std::uintptr_t>(&temp_dir) % 100000));
  fs::create_directories(d);
  return d;
}

// Writes a version-1 .npy file with the given descr and shape and raw little-endian payload.
std::string write_npy(const std::string& name, const std::string& descr, const std::string& shape,
                      const std::string& payload, bool fortran = false) {
  const fs::path p = temp_dir() / name;
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(p, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff)).put(static_cast<char>(len >> 8));
  out << header << payload;
  return p.string();
}

// Writes a version-1 .npy file whose header dict is `dict` verbatim (padded as numpy pads it).
std::string write_npy_header(const std::string& name, std::string dict, const std::string& payload) {
  const fs::path p = temp_dir() / name;
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::ofstream out(p, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<std::uint16_t>(dict.size());
  out.put(static_cast<char>(len & 0xff)).put(static_cast<char>(len >> 8));
  out << dict << payload;
  return p.string();
}

std::string f32_payload(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string u16_payload(const std::vector<std::uint16_t>& v) {
  std::string s(v.size() * 2, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

void expect_input_error(const std::string& path, const std::string& fragment) {
  try {
    moss::io::load_activations(path);
    FAIL() << "no error for " << path;
  } catch (const moss::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Npy, LoadsFloat32Tokens) {
  const auto p = write_npy("x.npy", "<f4", "(2, 3)", f32_payload({1, 2, 3, 4, 5, 6}));
  const auto a = moss::io::load_activations(p);
  ASSERT_EQ(a.tensors.size(), 1u);
  EXPECT_EQ(a.tensors[0].tokens, 2);
  EXPECT_EQ(a.tensors[0].dim, 3);
  EXPECT_EQ(a.tensors[0].values, (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(Npy, LoadsKvPairFromLeadingTwo) {
  const auto p = write_npy("kv.npy", "<f4", "(2, 1, 2)", f32_payload({1, 2, 3, 4}));
  const auto a = moss::io::load_activations(p);
  ASSERT_TRUE(a.is_pair());
  EXPECT_EQ(a.tensors[0].name, "k");
  EXPECT_EQ(a.tensors[1].values, (std::vector<float>{3, 4}));
}

TEST(Npy, LoadsFloat16AndBfloat16) {
  // 1.0, -2.0, 0.5 in IEEE half (0x3c00, 0xc000, 0x3800) and bfloat16 (0x3f80, 0xc000, 0x3f00).
  const auto h = moss::io::load_activations(write_npy("h.npy", "<f2", "(1, 3)", u16_payload({0x3c00, 0xc000, 0x3800})));
  EXPECT_EQ(h.tensors[0].values, (std::vector<float>{1.0f, -2.0f, 0.5f}));
  const auto b = moss::io::load_activations(write_npy("b.npy", "<V2", "(1, 3)", u16_payload({0x3f80, 0xc000, 0x3f00})));
  EXPECT_EQ(b.tensors[0].values, (std::vector<float>{1.0f, -2.0f, 0.5f}));
}

TEST(Npy, LoadsFloat64AsFloat32KeepingOutOfRangeValuesFinite) {
  const std::vector<double> v = {1.0, -2.5, 0.1, 1e300};
  std::string payload(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
  const std::string ok = write_npy("d.npy", "<f8", "(1, 3)", payload.substr(0, 3 * sizeof(double)));
  EXPECT_EQ(moss::io::load_activations(ok).tensors[0].values, (std::vector<float>{1.0f, -2.5f, 0.1f}));
  // 1e300 is no float: refused by the magnitude check, quoted as the file holds it (not as Inf, nor
  // as the largest float).
  expect_input_error(write_npy("d-big.npy", "<f8", "(2, 2)", payload), "1e+300 at layer 0, token 1, feature 1: expected activations of magnitude at most 1e15");
  const std::vector<double> w = {1.0, -1e300, 1e20, 1e300};
  const std::string negative(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(double));
  expect_input_error(write_npy("d-neg.npy", "<f8", "(2, 2)", negative), "-1e+300 at layer 0, token 0, feature 1");
  expect_input_error(write_npy("d-be.npy", ">f8", "(1, 3)", payload.substr(0, 3 * sizeof(double))), "little-endian");
}

TEST(Npy, LoadsLayers) {
  const auto a = moss::io::load_activations(write_npy("l.npy", "<f4", "(3, 1, 2)", f32_payload({1, 2, 3, 4, 5, 6})));
  EXPECT_EQ(a.tensors[0].layers, 3);
  EXPECT_EQ(a.tensors[0].layer(2)[1], 6.0f);
}

TEST(Npy, RejectsTruncatedData) {
  expect_input_error(write_npy("t.npy", "<f4", "(4, 4)", f32_payload({1, 2, 3})), "truncated");
}

TEST(Npy, RejectsHugeShapeWithoutAllocating) {
  expect_input_error(write_npy("huge.npy", "<f4", "(100000000, 100000)", f32_payload({1})), "");
}

TEST(Npy, RejectsWrongDtype) {
  expect_input_error(write_npy("i.npy", "<i4", "(1, 2)", f32_payload({1, 2})), "expected float32");
}

TEST(Npy, RejectsNanAndInfNamingTheToken) {
  expect_input_error(write_npy("nan.npy", "<f4", "(2, 2)", f32_payload({1, 2, 3, std::nanf("")})), "NaN at layer 0, token 1, feature 1");
  expect_input_error(write_npy("inf.npy", "<f4", "(1, 2)", f32_payload({std::numeric_limits<float>::infinity(), 0})), "Inf");
}

TEST(Npy, RejectsBadShapesMagicAndOrder) {
  expect_input_error(write_npy("s.npy", "<f4", "(4,)", f32_payload({1, 2, 3, 4})), "expected [tokens, dim]");
  expect_input_error(write_npy("f.npy", "<f4", "(2, 2)", f32_payload({1, 2, 3, 4}), true), "Fortran");
  const fs::path bad = temp_dir() / "bad.npy";
  std::ofstream(bad) << "hello world, not numpy";
  expect_input_error(bad.string(), "bad magic");
  std::ofstream(temp_dir() / "x.csv") << "1,2\n3,4\n";
  expect_input_error((temp_dir() / "x.csv").string(), "expected .npy");
  expect_input_error((temp_dir() / "nothing.csv").string(), "no such file");
  expect_input_error(temp_dir().string(), "is a directory");
  expect_input_error((temp_dir() / "missing.npy").string(), "cannot open");
}

TEST(Npy, ReadsTheHeaderDictWithAnySpacingAndQuoteStyle) {
  const std::string payload = f32_payload({1, 2, 3, 4, 5, 6});
  for (const std::string dict : {"{'descr':'<f4','fortran_order':False,'shape':(2,3)}",
                                 "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3), }",
                                 "{ 'shape' :( 2 , 3 , ) , 'fortran_order' :False , 'descr' : '<f4' , }"}) {
    const moss::io::Activations a = moss::io::load_activations(write_npy_header("spacing.npy", dict, payload));
    ASSERT_EQ(a.tensors.size(), 1u) << dict;
    EXPECT_EQ(a.tensors[0].tokens, 2) << dict;
    EXPECT_EQ(a.tensors[0].dim, 3) << dict;
    EXPECT_EQ(a.tensors[0].values, (std::vector<float>{1, 2, 3, 4, 5, 6})) << dict;
  }
}

TEST(Npy, RejectsFortranOrderHoweverTheHeaderIsSpaced) {
  const std::string payload = f32_payload({1, 2, 3, 4});
  expect_input_error(write_npy_header("f1.npy", "{'descr':'<f4','fortran_order':True,'shape':(2,2)}", payload), "Fortran");
  expect_input_error(write_npy_header("f2.npy", "{\"descr\": \"<f4\", \"fortran_order\" :True, \"shape\": (2, 2)}", payload),
                     "Fortran");
}

TEST(Npy, RejectsMalformedAndUnknownHeaders) {
  const std::string payload = f32_payload({1, 2, 3, 4});
  const std::pair<const char*, const char*> cases[] = {
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (2, 2)}", "expected True or False"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2)}", "expected True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)", "malformed npy header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} junk", "after the closing"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 2]}", "malformed npy header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}", "shape entries must be sizes"},
      {"{descr: '<f4', 'fortran_order': False, 'shape': (2, 2)}", "quoted key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'extra': (1, [2])}", "key 'extra' is unknown"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", "repeats the key 'descr'"},
      {"{'descr': '<f4', 'shape': (2, 2)}", "no 'fortran_order'"},
      {"{'fortran_order': False, 'shape': (2, 2)}", "no 'descr'"},
      {"'descr': '<f4'", "expected '{'"}};
  int i = 0;
  for (const auto& [dict, fragment] : cases)
    expect_input_error(write_npy_header("bad" + std::to_string(i++) + ".npy", dict, payload), fragment);
}

namespace {
void write_h5_dataset(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims, const void* data,
                      hid_t mem_type) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(ds);
  H5Sclose(space);
}
}  // namespace

TEST(Hdf5, LoadsKvDatasetsAndRejectsBadOnes) {
  const std::string p = (temp_dir() / "kv.h5").string();
  {
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<float> k{1, 2, 3, 4, 5, 6}, v{6, 5, 4, 3, 2, 1};
    write_h5_dataset(f, "k", H5T_IEEE_F32LE, {3, 2}, k.data(), H5T_NATIVE_FLOAT);
    write_h5_dataset(f, "v", H5T_IEEE_F64LE, {3, 2}, v.data(), H5T_NATIVE_FLOAT);
    H5Fclose(f);
  }
  const auto a = moss::io::load_activations(p);
  ASSERT_TRUE(a.is_pair());
  EXPECT_EQ(a.tensors[1].values[0], 6.0f);
  EXPECT_EQ(a.tensors[0].tokens, 3);

  const std::string q = (temp_dir() / "int.h5").string();
  {
    const hid_t f = H5Fcreate(q.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<int> x{1, 2};
    write_h5_dataset(f, "x", H5T_STD_I32LE, {1, 2}, x.data(), H5T_NATIVE_INT);
    H5Fclose(f);
  }
  expect_input_error(q, "not floating point");

  const std::string n = (temp_dir() / "nan.h5").string();
  {
    const hid_t f = H5Fcreate(n.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<float> x{1, std::nanf("")};
    write_h5_dataset(f, "acts", H5T_IEEE_F32LE, {1, 2}, x.data(), H5T_NATIVE_FLOAT);
    H5Fclose(f);
  }
  expect_input_error(n, "NaN");

  const std::string t = (temp_dir() / "trunc.h5").string();
  fs::copy_file(p, t, fs::copy_options::overwrite_existing);
  fs::resize_file(t, fs::file_size(t) / 2);
  expect_input_error(t, "");
}

// libhdf5 converts a float64 beyond float's range to Inf: the message quotes the file's value, and
// still says Inf for an Inf the file holds; chunked storage and a K/V pair's 4-d index included.
TEST(Hdf5, QuotesAFloat64BeyondFloatsRangeAsTheFileHoldsIt) {
  const std::string p = (temp_dir() / "f64-big.h5").string();
  const std::string q = (temp_dir() / "f64-inf.h5").string();
  std::vector<double> x(2 * 3 * 4 * 5, 0.5);
  x[1 * 60 + 2 * 20 + 1 * 5 + 4] = -3e300;  // V, layer 2, token 1, feature 4
  x[1 * 60 + 2 * 20 + 3 * 5 + 0] = 5e300;
  const std::vector<hsize_t> dims{2, 3, 4, 5}, chunk{1, 1, 2, 5};
  {
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t space = H5Screate_simple(4, dims.data(), nullptr);
    const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(create, 4, chunk.data());
    const hid_t ds = H5Dcreate2(f, "kv", H5T_IEEE_F64LE, space, H5P_DEFAULT, create, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x.data());
    H5Dclose(ds);
    H5Pclose(create);
    H5Sclose(space);
    H5Fclose(f);
  }
  expect_input_error(p, "/kv: -3e+300 at V layer 2, token 1, feature 4: expected activations of magnitude at most 1e15");
  x[5] = std::numeric_limits<double>::infinity();
  {
    const hid_t f = H5Fcreate(q.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_h5_dataset(f, "kv", H5T_IEEE_F64LE, dims, x.data(), H5T_NATIVE_DOUBLE);
    H5Fclose(f);
  }
  expect_input_error(q, "/kv: Inf at K layer 0, token 1, feature 0: expected finite activations");
}

namespace {
// Loads `path` with `choice` and returns the error message ("" when it loads).
std::string error_with(const std::string& path, const moss::io::DatasetChoice& choice) {
  try {
    (void)moss::io::load_activations(path, choice);
  } catch (const moss::InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

// One HDF5 dataset of shape [2, layers, tokens, dim] is K (index 0) and V, as in a .npy; one of shape
// [2, tokens, dim] is one tensor of 2 layers; datasets "k" and "v" are one tensor each, never pairs.
TEST(Hdf5, ReadsOneFourDimensionalDatasetAsAKvPair) {
  std::vector<float> x(2 * 3 * 4 * 2);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0f + static_cast<float>(i);
  const auto file_with = [&](const std::string& name, const std::vector<std::pair<const char*, std::vector<hsize_t>>>& sets) {
    const std::string p = (temp_dir() / name).string();
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (const auto& [set, dims] : sets) write_h5_dataset(f, set, H5T_IEEE_F32LE, dims, x.data(), H5T_NATIVE_FLOAT);
    H5Fclose(f);
    return p;
  };
  const std::string four = file_with("kv4.h5", {{"cache", {2, 3, 4, 2}}});
  for (const moss::io::DatasetChoice& choice : {moss::io::DatasetChoice{}, moss::io::DatasetChoice{"cache", "", ""}}) {
    const auto a = moss::io::load_activations(four, choice);
    ASSERT_TRUE(a.is_pair());
    EXPECT_EQ(a.tensors[0].name, "k");
    EXPECT_EQ(a.tensors[1].name, "v");
    for (const auto& t : a.tensors) {
      EXPECT_EQ(t.layers, 3);
      EXPECT_EQ(t.tokens, 4);
      EXPECT_EQ(t.dim, 2);
    }
    EXPECT_EQ(a.tensors[0].values, std::vector<float>(x.begin(), x.begin() + 24));
    EXPECT_EQ(a.tensors[1].values, std::vector<float>(x.begin() + 24, x.end()));
    EXPECT_EQ(a.tensors[1].layer(2)[1], 24.0f + 16.0f + 2.0f);  // V, layer 2, token 0, feature 1
  }
  const auto three = moss::io::load_activations(file_with("kv3.h5", {{"cache", {2, 12, 2}}}));
  ASSERT_EQ(three.tensors.size(), 1u);
  EXPECT_EQ(three.tensors[0].layers, 2);
  EXPECT_EQ(three.tensors[0].tokens, 12);
  // A 4-D dataset is not a K/V pair of its own when it is K or V; a leading dimension other than 2 is no pair.
  EXPECT_NE(error_with(file_with("k4.h5", {{"k", {2, 3, 2, 2}}, {"v", {2, 3, 2, 2}}}), {})
                .find("/k: shape [2, 3, 2, 2]: expected [tokens, dim] or [layers, tokens, dim]"),
            std::string::npos);
  EXPECT_NE(error_with(file_with("x4.h5", {{"x", {3, 2, 2, 2}}}), {})
                .find("/x: shape [3, 2, 2, 2]: expected [tokens, dim], [layers, tokens, dim] or [2, layers, tokens, dim] (K/V)"),
            std::string::npos);
}

TEST(Hdf5, ReadsTheDatasetsChosenAtAnyDepth) {
  const std::string p = (temp_dir() / "nested.h5").string();
  const std::vector<float> k{1, 2, 3, 4, 5, 6}, v{6, 5, 4, 3, 2, 1}, x{7, 8, 9, 10}, odd{1, 2};
  {
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "cache", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Gclose(H5Gcreate2(f, "cache/layer3", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    write_h5_dataset(f, "cache/layer3/keys", H5T_IEEE_F32LE, {3, 2}, k.data(), H5T_NATIVE_FLOAT);
    write_h5_dataset(f, "cache/layer3/values", H5T_IEEE_F32LE, {3, 2}, v.data(), H5T_NATIVE_FLOAT);
    write_h5_dataset(f, "cache/odd", H5T_IEEE_F32LE, {1, 2}, odd.data(), H5T_NATIVE_FLOAT);
    write_h5_dataset(f, "x", H5T_IEEE_F32LE, {2, 2}, x.data(), H5T_NATIVE_FLOAT);
    H5Fclose(f);
  }
  // Two top-level objects: without a choice the file is refused.
  EXPECT_NE(error_with(p, {}).find("top-level objects"), std::string::npos);

  const auto pair = moss::io::load_activations(p, {"", "cache/layer3/keys", "/cache/layer3/values"});
  ASSERT_TRUE(pair.is_pair());
  EXPECT_EQ(pair.tensors[0].tokens, 3);
  EXPECT_EQ(pair.tensors[0].values, k);
  EXPECT_EQ(pair.tensors[1].values, v);
  const auto single = moss::io::load_activations(p, {"x", "", ""});
  ASSERT_EQ(single.tensors.size(), 1u);
  EXPECT_EQ(single.tensors[0].values, x);
  const auto deep = moss::io::load_activations(p, {"//cache//layer3/values/", "", ""});
  ASSERT_EQ(deep.tensors.size(), 1u);
  EXPECT_EQ(deep.tensors[0].values, v);

  const std::string missing = error_with(p, {"nope", "", ""});
  EXPECT_NE(missing.find("/nope: no such dataset"), std::string::npos) << missing;
  EXPECT_NE(missing.find("top-level objects: /cache, /x"), std::string::npos) << missing;
  const std::string deeper = error_with(p, {"cache/nowhere/k", "", ""});
  EXPECT_NE(deeper.find("/cache/nowhere/k: no such dataset in the file (/cache holds: /cache/layer3, /cache/odd)"), std::string::npos) << deeper;
  EXPECT_NE(error_with(p, {"cache/odd/k", "", ""}).find("(/cache/odd is a dataset, not a group)"), std::string::npos);
  EXPECT_NE(error_with(p, {"cache/layer3", "", ""}).find("/cache/layer3: is a group, not a dataset (/cache/layer3 holds: /cache/layer3/keys, /cache/layer3/values)"),
            std::string::npos);
  EXPECT_NE(error_with(p, {"", "cache/layer3/keys", "cache/odd"}).find("/cache/odd: shape [1, 2] differs from /cache/layer3/keys's [3, 2]"),
            std::string::npos);
  EXPECT_NE(error_with(p, {"", "x", ""}).find("needs both its K and its V"), std::string::npos);
  EXPECT_NE(error_with(p, {"x", "x", "x"}).find("both chosen"), std::string::npos);
  EXPECT_NE(error_with(p, {"/", "", ""}).find("expected the path of a dataset in the file"), std::string::npos);
  EXPECT_NE(error_with(p, {"./", "", ""}).find("dataset name \"./\": expected the path of a dataset"), std::string::npos);

  const std::string npy = write_npy("chosen.npy", "<f4", "(2, 2)", f32_payload(x));
  EXPECT_NE(error_with(npy, {"x", "", ""}).find("apply to .h5/.hdf5 files only"), std::string::npos);
  EXPECT_EQ(moss::io::DatasetChoice({"", "a", "//b/c/"}).describe(), " (datasets \"/a\", \"/b/c\")");
  // Quoted: the pair ("x, /y", "z") is not the pair ("x", "y, /z").
  EXPECT_EQ(moss::io::DatasetChoice({"", "x, /y", "z"}).describe(), " (datasets \"/x, /y\", \"/z\")");
  EXPECT_EQ(moss::io::DatasetChoice({"", "x", "y, /z"}).describe(), " (datasets \"/x\", \"/y, /z\")");
  EXPECT_EQ(moss::io::DatasetChoice({"a\"b", "", ""}).describe(), " (dataset \"/a\\\"b\")");
  EXPECT_EQ(moss::io::DatasetChoice().describe(), "");

  // A soft link in the file is followed; a dangling one, and an external link (whose data would not
  // be this file's), are refused by name.
  const std::string other = (temp_dir() / "other.h5").string();
  {
    const hid_t o = H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_h5_dataset(o, "x", H5T_IEEE_F32LE, {2, 2}, x.data(), H5T_NATIVE_FLOAT);
    H5Fclose(o);
    const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Lcreate_soft("/x", f, "alias", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_soft("/nothing", f, "dangling", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_external(other.c_str(), "/x", f, "ext", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
  }
  EXPECT_EQ(moss::io::load_activations(p, {"alias", "", ""}).tensors[0].values, x);
  EXPECT_NE(error_with(p, {"dangling", "", ""}).find("/dangling: is a link to an object that does not exist"), std::string::npos);
  EXPECT_NE(error_with(p, {"dangling/k", "", ""}).find("(/dangling is a link to an object that does not exist)"), std::string::npos);
  const std::string external = error_with(p, {"ext", "", ""});
  EXPECT_NE(external.find("/ext: is an external link into \"" + other + "\""), std::string::npos) << external;
}

// Values in another file are never read: libhdf5 would open that file itself, and one that is a FIFO
// would block the read until a writer came. Each way a lookup can reach one (the default K/V names, a
// chosen dataset, a group on the chosen path, a soft link through it) is refused by name, and so
// are a virtual dataset and a dataset with external raw storage.
TEST(Hdf5, RefusesValuesInOtherFilesWithoutOpeningThem) {
  const fs::path dir = temp_dir() / "external";
  fs::create_directories(dir);
  const std::string fifo = (dir / "fifo.h5").string();
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::string p = (dir / "links.h5").string();
  {
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_external(fifo.c_str(), "/k", f, "k", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_external(fifo.c_str(), "/v", f, "v", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_external(fifo.c_str(), "/g", f, "group", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_soft("/group/x", f, "through", H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t dims[2] = {4, 2};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t virt = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_virtual(virt, space, fifo.c_str(), "/x", space);
    H5Dclose(H5Dcreate2(f, "virtual", H5T_IEEE_F32LE, space, H5P_DEFAULT, virt, H5P_DEFAULT));
    const hid_t raw = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_external(raw, fifo.c_str(), 0, H5F_UNLIMITED);
    H5Dclose(H5Dcreate2(f, "raw", H5T_IEEE_F32LE, space, H5P_DEFAULT, raw, H5P_DEFAULT));
    const hid_t type = H5Tcopy(H5T_IEEE_F32LE);
    H5Tcommit2(f, "type", type, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Tclose(type);
    H5Pclose(raw);
    H5Pclose(virt);
    H5Sclose(space);
    H5Fclose(f);
  }
  alarm(60);  // a regression blocks on the FIFO: fail then, not at the suite's timeout
  const std::string into = "external link into \"" + fifo + "\": moss reads datasets of the file it is given only";
  const std::string k = error_with(p, {});
  EXPECT_NE(k.find("/k: is an " + into), std::string::npos) << k;
  const std::string chosen = error_with(p, {"", "v", "k"});
  EXPECT_NE(chosen.find("/v: is an " + into), std::string::npos) << chosen;
  const std::string group = error_with(p, {"group/x", "", ""});
  EXPECT_NE(group.find("/group: is an " + into), std::string::npos) << group;
  const std::string soft = error_with(p, {"through", "", ""});
  EXPECT_NE(soft.find("/through: leads through an " + into), std::string::npos) << soft;
  const std::string virt = error_with(p, {"virtual", "", ""});
  EXPECT_NE(virt.find("/virtual: is a virtual dataset, whose values lie in other files"), std::string::npos) << virt;
  const std::string raw = error_with(p, {"raw", "", ""});
  EXPECT_NE(raw.find("/raw: keeps its values in external raw-data files"), std::string::npos) << raw;
  const std::string type = error_with(p, {"type", "", ""});
  EXPECT_NE(type.find("/type: is a named datatype, not a dataset"), std::string::npos) << type;
  alarm(0);
  fs::remove(fifo);
}
