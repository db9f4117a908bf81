// Malformed activation files, generated at test time: `moss compress --activations FILE` must exit 2
// with a message naming the file (and the dataset for HDF5) and the expectation, must not crash, and
// must refuse hostile sizes inside a bounded address space.
#include <sys/stat.h>

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "moss_process.h"

namespace {

namespace fs = std::filesystem;
using moss::reliability::fresh_dir;
using moss::reliability::Limits;
using moss::reliability::ProcessResult;
using moss::reliability::run_moss;

const fs::path& dir() {
  static const fs::path d = fresh_dir("activations");
  return d;
}

std::string bytes_of(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string bytes_of(const std::vector<std::uint16_t>& v) {
  std::string s(v.size() * 2, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::sin(0.37f * static_cast<float>(i)) + 0.01f * static_cast<float>(i);
  return v;
}

// A .npy file: magic, version, header (padded to 64 bytes as numpy does), payload.
std::string npy(const std::string& descr, const std::string& shape, const std::string& payload, bool fortran = false,
                int version = 1) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  const std::size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(version);
  out += '\0';
  const auto len = static_cast<std::uint32_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  if (version != 1) {
    out += static_cast<char>((len >> 16) & 0xff);
    out += static_cast<char>((len >> 24) & 0xff);
  }
  return out + header + payload;
}

void write_bytes(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}

// HDF5 file with the given datasets (float32 in memory, `file_type` on disk).
struct H5Set {
  std::string name;
  std::vector<hsize_t> dims;
  std::vector<float> values;  // empty: dataset created but never written
  hid_t file_type = H5T_IEEE_F32LE;
  bool chunked = false;
};

void write_h5(const fs::path& p, const std::vector<H5Set>& sets) {
  const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  for (const auto& s : sets) {
    const hid_t space = H5Screate_simple(static_cast<int>(s.dims.size()), s.dims.data(), nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (s.chunked) {
      std::vector<hsize_t> chunk(s.dims.size(), 1);
      chunk.back() = std::min<hsize_t>(s.dims.back(), 1024);
      H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
      H5Pset_deflate(dcpl, 9);
    }
    const hid_t ds = H5Dcreate2(f, s.name.c_str(), s.file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (!s.values.empty()) H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.values.data());
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  H5Fclose(f);
}

struct BadActivation {
  std::string file;                              // name in the scratch directory (its extension matters)
  std::string pointer;                           // dataset ("/k") or "" for the whole file
  std::string message;                           // regex the message must match
  std::function<void(const fs::path&)> make;     // writes the file
};

void PrintTo(const BadActivation& c, std::ostream* os) { *os << c.file; }

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

std::vector<BadActivation> cases() {
  auto raw = [](std::string content) { return [content](const fs::path& p) { write_bytes(p, content); }; };
  std::vector<float> with_nan = ramp(64), with_inf = ramp(64), with_ninf = ramp(64);
  with_nan[37] = kNan;
  with_inf[5] = kInf;
  with_ninf[63] = -kInf;
  std::vector<float> zero_v = ramp(64);
  std::fill(zero_v.begin() + 32, zero_v.end(), 0.0f);  // [2, 4, 8]: K a ramp, V all zero
  std::vector<float> zero_k_layer1 = ramp(64);
  std::fill(zero_k_layer1.begin() + 16, zero_k_layer1.begin() + 32, 0.0f);  // [2, 2, 2, 8]: K's layer 1
  const std::string good = npy("<f4", "(8, 8)", bytes_of(ramp(64)));
  std::vector<BadActivation> c = {
      {"empty.npy", "", "bad magic", raw("")},
      {"text.npy", "", "bad magic", raw("tokens,dim\n1,2\n")},
      {"version9.npy", "", "version 9", raw(npy("<f4", "(8, 8)", bytes_of(ramp(64)), false, 9))},
      {"header-cut.npy", "", "truncated npy header|implausible", raw(good.substr(0, 30))},
      {"header-len-lies.npy", "", "implausible", raw(std::string("\x93NUMPY\x01\x00\xff\xff", 10) + "{'descr'")},
      {"data-cut.npy", "", "truncated", raw(good.substr(0, good.size() - 7))},
      {"data-extra.npy", "", "needs", raw(good + "trailing garbage")},
      {"no-data.npy", "", "truncated", raw(npy("<f4", "(8, 8)", ""))},
      {"dtype-int32.npy", "", "expected float32", raw(npy("<i4", "(8, 8)", bytes_of(ramp(64))))},
      {"dtype-float64-cut.npy", "", "needs", raw(npy("<f8", "(8, 8)", bytes_of(ramp(64))))},  // 8-byte values
      {"dtype-big-endian.npy", "", "expected float32", raw(npy(">f4", "(8, 8)", bytes_of(ramp(64))))},
      {"dtype-object.npy", "", "expected float32", raw(npy("|O", "(8, 8)", bytes_of(ramp(64))))},
      {"no-descr.npy", "", "no 'descr'|malformed npy header", raw(npy("<f4", "(8, 8)", bytes_of(ramp(64))).replace(12, 7, "'dtype'"))},
      {"fortran.npy", "", "Fortran", raw(npy("<f4", "(8, 8)", bytes_of(ramp(64)), true))},
      {"shape-1d.npy", "", R"(expected \[tokens, dim\])", raw(npy("<f4", "(64,)", bytes_of(ramp(64))))},
      {"shape-5d.npy", "", R"(expected \[tokens, dim\])", raw(npy("<f4", "(2, 2, 2, 2, 4)", bytes_of(ramp(64))))},
      {"shape-scalar.npy", "", R"(expected \[tokens, dim\])", raw(npy("<f4", "()", bytes_of(ramp(1))))},
      {"shape-zero.npy", "", "empty dimension", raw(npy("<f4", "(0, 8)", ""))},
      {"shape-1e12.npy", "", "too large|needs", raw(npy("<f4", "(1000000, 1000000)", bytes_of(ramp(64))))},
      {"shape-1e15-entry.npy", "", "too large", raw(npy("<f4", "(1000000000000000, 8)", bytes_of(ramp(64))))},
      {"nan.npy", "", "NaN at layer 0, token 4, feature 5", raw(npy("<f4", "(8, 8)", bytes_of(with_nan)))},
      {"inf.npy", "", "Inf at layer 0, token 0, feature 5", raw(npy("<f4", "(8, 8)", bytes_of(with_inf)))},
      {"minus-inf-pair.npy", "", "Inf at V layer 0", raw(npy("<f4", "(2, 4, 8)", bytes_of(with_ninf)))},
      {"nan-f16.npy", "", "NaN", raw(npy("<f2", "(4, 4)", bytes_of(std::vector<std::uint16_t>(16, 0x7e00))))},
      {"inf-bf16.npy", "", "Inf", raw(npy("bfloat16", "(4, 4)", bytes_of(std::vector<std::uint16_t>(16, 0x7f80))))},
      {"wrong-extension.csv", "", "expected .npy", raw("1,2\n3,4\n")},
      {"missing.npy", "", "cannot open", [](const fs::path&) {}},
      // Refused before it is opened: opening a FIFO would wait for a writer forever.
      {"zeros.npy", "", "every value is 0: expected activations", raw(npy("<f4", "(8, 8)", bytes_of(std::vector<float>(64, 0.0f))))},
      {"zero-v-pair.npy", "", "every value of V is 0", raw(npy("<f4", "(2, 4, 8)", bytes_of(zero_v)))},
      {"zero-layer.npy", "", "every value of K in layer 1 is 0", raw(npy("<f4", "(2, 2, 2, 8)", bytes_of(zero_k_layer1)))},
      {"fifo.npy", "", "not a regular file", [](const fs::path& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0); }},
      {"directory.npy", "", "is a directory", [](const fs::path& p) { fs::create_directory(p); }},
      {"escape.npy", "", R"(\\x1b\[2J)", raw(npy("\x1b[2J", "(8, 8)", bytes_of(ramp(64))))},
      {"text.h5", "", "not an HDF5 file", raw("this is not HDF5\n")},
      {"empty.h5", "", "not an HDF5 file", raw("")},
      {"int.h5", "/x", "not floating point",
       [](const fs::path& p) { write_h5(p, {{"x", {8, 8}, ramp(64), H5T_STD_I32LE}}); }},
      {"nan.h5", "/acts", "NaN", [=](const fs::path& p) { write_h5(p, {{"acts", {8, 8}, with_nan}}); }},
      {"inf-f64.h5", "/acts", "Inf",
       [=](const fs::path& p) { write_h5(p, {{"acts", {8, 8}, with_inf, H5T_IEEE_F64LE}}); }},
      {"rank1.h5", "/x", "expected \\[tokens, dim\\]", [](const fs::path& p) { write_h5(p, {{"x", {64}, ramp(64)}}); }},
      {"k-without-v.h5", "/v", "missing", [](const fs::path& p) { write_h5(p, {{"k", {8, 8}, ramp(64)}}); }},
      {"kv-shapes-differ.h5", "/v", "shape \\[4, 16\\] differs from /k.s \\[8, 8\\]",
       [](const fs::path& p) { write_h5(p, {{"k", {8, 8}, ramp(64)}, {"v", {4, 16}, ramp(64)}}); }},
      {"three-datasets.h5", "", "exactly one dataset",
       [](const fs::path& p) { write_h5(p, {{"a", {8, 8}, ramp(64)}, {"b", {8, 8}, ramp(64)}, {"c", {8, 8}, ramp(64)}}); }},
      {"huge-chunked.h5", "/x", "truncated or corrupt|too large",
       [](const fs::path& p) { write_h5(p, {{"x", {1u << 20, 1u << 16}, {}, H5T_IEEE_F32LE, true}}); }},
      {"truncated.h5", "", "truncated|corrupt|not an HDF5", [](const fs::path& p) {
         write_h5(p, {{"k", {64, 64}, ramp(4096)}, {"v", {64, 64}, ramp(4096)}});
         fs::resize_file(p, fs::file_size(p) / 2);
       }},
  };
  return c;
}

// Hostile .npy shapes: minus signs, and element counts whose 64-bit product wraps (to 0, or to a
// small number the file holds) must be refused before anything is allocated.
std::vector<BadActivation> shape_cases() {
  auto raw = [](std::string content) { return [content](const fs::path& p) { write_bytes(p, content); }; };
  return {
      {"shape-negative.npy", "", "shape|expected|not a size", raw(npy("<f4", "(-8, 8)", bytes_of(ramp(64))))},
      // 2^32 x 2^32 = 2^64: the element count wraps to 0.
      {"shape-wraps-to-zero.npy", "", "too large", raw(npy("<f4", "(4294967296, 4294967296)", ""))},
      {"shape-pair-wraps.npy", "", "too large", raw(npy("<f4", "(2, 4294967296, 2147483648)", ""))},
      // 16 x 1048577 x 1099510579201 = 2^64 + 16: wraps to 16 values, which the file holds.
      {"shape-wraps-to-sixteen.npy", "", "too large", raw(npy("<f4", "(16, 1048577, 1099510579201)", bytes_of(ramp(16))))},
  };
}

// Found by h5_fuzzer: Debian's libhdf5 1.10.8 dereferences NULL in H5Literate, and copies from NULL in
// H5F__accum_read, on these 2.5 KB files. moss reads HDF5 in a child process, so each crash becomes
// exit 2 naming the file.
std::vector<BadActivation> library_crash_cases() {
  std::vector<BadActivation> out;
  for (const char* fixture : {"libhdf5-segv-h5literate.h5", "libhdf5-segv-accum-read.h5"}) {
    out.push_back({fixture, "", "libhdf5 crashed reading this file \\(killed by signal 11 \\(SIGSEGV\\)\\): expected a valid HDF5 file",
                   [fixture](const fs::path& p) {
                     fs::copy_file(fs::path(MOSS_TEST_DATA_DIR) / "bad_activations" / fixture, p,
                                   fs::copy_options::overwrite_existing);
                   }});
  }
  return out;
}

// Found by h5_fuzzer too: from this 2.5 KB file libhdf5 mallocs 1.3 GB in 40 M allocations, and more
// (uncapped: 24 GB resident until the kernel's OOM killer ended it). moss caps the child's memory at its
// size at start + 256 MiB + 4 x the largest tensor a 2571-byte file may hold (4 bytes x (1000 x 2571 +
// 999) values): 256 MiB + 39.2 MiB, so the child runs out past 295 MiB and moss names the limit.
std::vector<BadActivation> library_oom_cases() {
  return {{"libhdf5-oom.h5", "",
           "^libhdf5 needed more than 295 MiB reading this file \\(memory limit of the loader\\): expected a valid "
           "HDF5 file; this one is corrupt or hostile$",
           [](const fs::path& p) {
             fs::copy_file(fs::path(MOSS_TEST_DATA_DIR) / "bad_activations" / "libhdf5-oom.h5", p,
                           fs::copy_options::overwrite_existing);
           }}};
}

class BadActivationFile : public ::testing::TestWithParam<BadActivation> {};

TEST_P(BadActivationFile, CompressExitsTwoNamingFileAndExpectation) {
  const BadActivation& c = GetParam();
  const fs::path path = dir() / c.file;
  c.make(path);
  Limits limits;
  limits.address_space_bytes = moss::reliability::hostile_input_address_space();
  limits.cpu_seconds = 60;
  const ProcessResult r = run_moss({"compress", "--activations", path.string(), "--method", "pca", "--rank", "2", "--device", "cpu"},
                                   limits, dir() / ("scratch-" + c.file));
  ASSERT_EQ(r.signal, 0) << "killed by signal " << r.signal << "\n" << r.err;
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  for (const char* bad : {"internal error", "AddressSanitizer", "runtime error:", "out of memory"}) {
    EXPECT_EQ(r.err.find(bad), std::string::npos) << r.err;
  }
  const std::string head = "error: " + path.string() + ": " + (c.pointer.empty() ? "" : c.pointer + ": ");
  const auto at = r.err.find(head);
  ASSERT_NE(at, std::string::npos) << "no \"" << head << "\" in:\n" << r.err;
  const std::string message = r.err.substr(at + head.size(), r.err.find('\n', at) - at - head.size());
  EXPECT_TRUE(std::regex_search(message, std::regex(c.message))) << "/" << c.message << "/ vs " << message;
  EXPECT_EQ(r.out.find("raw_bytes"), std::string::npos) << "a result was printed:\n" << r.out;
}

std::string case_name(const ::testing::TestParamInfo<BadActivation>& info) {
  std::string name = info.param.file;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Generated, BadActivationFile, ::testing::ValuesIn(cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Shapes, BadActivationFile, ::testing::ValuesIn(shape_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(LibraryCrash, BadActivationFile, ::testing::ValuesIn(library_crash_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(LibraryOutOfMemory, BadActivationFile, ::testing::ValuesIn(library_oom_cases()), case_name);

// Positive control: a well-formed file loads and compresses under the same limits.
TEST(BadActivationControl, ValidNpyAndH5PassUnderTheSameLimits) {
  Limits limits;
  limits.address_space_bytes = moss::reliability::hostile_input_address_space();
  const fs::path n = dir() / "good.npy";
  write_bytes(n, npy("<f4", "(64, 16)", bytes_of(ramp(1024))));
  const fs::path h = dir() / "good.h5";
  write_h5(h, {{"k", {64, 16}, ramp(1024)}, {"v", {64, 16}, ramp(1024)}});
  for (const fs::path& p : {n, h}) {
    const ProcessResult r = run_moss({"compress", "--activations", p.string(), "--method", "pca", "--rank", "2", "--device", "cpu", "--json"},
                                     limits, dir() / "scratch-good");
    EXPECT_EQ(r.exit_code, 0) << p << "\n" << r.err;
    EXPECT_NE(r.out.find("raw_bytes"), std::string::npos) << r.out;
  }
}

// `--dataset`, `--dataset-k` and `--dataset-v` choose the data that is compressed: a rank-1 tensor
// reconstructs at rank 2, a full-rank one does not, so the errors tell which dataset became K and V.
// A choice that chooses nothing, or half a pair, exits 2 naming the flag.
TEST(CompressDatasetFlags, ChooseTheDatasetsAndRefuseABadChoice) {
  std::vector<float> low(64 * 16), noise(64 * 16);
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < low.size(); ++i) {
    low[i] = (1.0f + 0.1f * static_cast<float>(i / 16)) * (static_cast<float>(i % 16) - 7.5f);
    state = state * 1664525u + 1013904223u;
    noise[i] = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f;
  }
  const fs::path h = dir() / "chosen.h5";
  write_h5(h, {{"low", {64, 16}, low}, {"noise", {64, 16}, noise}});
  const auto compress = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"compress", "--activations", h.string(), "--method", "pca", "--device", "cpu", "--json"};
    args.insert(args.end(), flags.begin(), flags.end());
    Limits limits;
    limits.cpu_seconds = 60;
    return run_moss(args, limits, dir() / "scratch-chosen");
  };
  const auto errors = [&](std::vector<std::string> flags) {
    const ProcessResult r = compress(std::move(flags));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    std::vector<double> out;
    if (j.is_discarded()) return std::pair{out, std::string()};
    for (const auto& t : j["tensors"]) out.push_back(t["relative_error"].get<double>());
    return std::pair{out, j["source"].get<std::string>()};
  };
  const auto [pair, source] = errors({"--rank", "2", "--dataset-k", "low", "--dataset-v", "/noise"});
  ASSERT_EQ(pair.size(), 2u);
  EXPECT_LT(pair[0], 1e-2);  // bf16 coefficients: about 2^-8
  EXPECT_GT(pair[1], 0.5);
  EXPECT_NE(source.find("(datasets \"/low\", \"/noise\")"), std::string::npos) << source;
  const auto [swapped, _] = errors({"--rank", "2", "--dataset-k", "noise", "--dataset-v", "low"});
  ASSERT_EQ(swapped.size(), 2u);
  EXPECT_GT(swapped[0], 0.5);
  EXPECT_LT(swapped[1], 1e-2);
  const auto [single, one] = errors({"--rank", "2", "--dataset", "//low/"});
  ASSERT_EQ(single.size(), 1u);
  EXPECT_LT(single[0], 1e-2);
  EXPECT_NE(one.find("(dataset \"/low\")"), std::string::npos) << one;

  struct Bad {
    std::vector<std::string> flags;
    std::string message;  // regex
  };
  for (const Bad& bad : {Bad{{"--dataset", "./"}, "--dataset: \"\\./\": expected the path of a dataset"},
                         Bad{{"--dataset", "/"}, "--dataset: \"/\": expected the path of a dataset"},
                         Bad{{"--dataset-k", "low"}, "--dataset-v: a K/V pair needs both"},
                         Bad{{"--dataset-v", "low"}, "--dataset-k: a K/V pair needs both"},
                         Bad{{"--dataset", "low", "--dataset-k", "low", "--dataset-v", "noise"}, "--dataset: .*both chosen"},
                         Bad{{"--dataset", "nope"}, "/nope: no such dataset in the file \\(the file's top-level objects: /low, /noise\\)"}}) {
    std::vector<std::string> flags = bad.flags;
    flags.insert(flags.end(), {"--rank", "2"});
    const ProcessResult r = compress(flags);
    EXPECT_EQ(r.exit_code, 2) << bad.message << "\n" << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex(bad.message))) << "/" << bad.message << "/ vs " << r.err;
    EXPECT_EQ(r.out.find("raw_bytes"), std::string::npos) << r.out;
  }
}

// A single HDF5 dataset [2, tokens, dim] is 2 layers of one tensor (a .npy of that shape is K and V):
// moss compress says which reading it took. [2, layers, tokens, dim] is K and V in both formats.
TEST(CompressDatasetFlags, ALeadingTwoInHdf5IsReadAsDocumentedAndNoted) {
  const fs::path three = dir() / "lead2.h5", four = dir() / "lead2x1.h5";
  write_h5(three, {{"kv", {2, 64, 16}, ramp(2 * 64 * 16)}});
  write_h5(four, {{"kv", {2, 1, 64, 16}, ramp(2 * 64 * 16)}});
  Limits limits;
  limits.cpu_seconds = 60;
  const auto compress = [&](const fs::path& p) {
    return run_moss({"compress", "--activations", p.string(), "--method", "pca", "--rank", "2", "--device", "cpu", "--json"}, limits,
                    dir() / "scratch-lead2");
  };
  const ProcessResult layers = compress(three);
  ASSERT_EQ(layers.exit_code, 0) << layers.err;
  EXPECT_NE(layers.err.find("note: the HDF5 dataset is [2, tokens, dim], read as one tensor of 2 layers"), std::string::npos) << layers.err;
  const auto one = nlohmann::json::parse(layers.out);
  ASSERT_EQ(one["tensors"].size(), 1u);
  EXPECT_EQ(one["tensors"][0]["layers"], 2);
  const ProcessResult pair = compress(four);
  ASSERT_EQ(pair.exit_code, 0) << pair.err;
  EXPECT_EQ(pair.err.find("note:"), std::string::npos) << pair.err;
  const auto two = nlohmann::json::parse(pair.out);
  ASSERT_EQ(two["tensors"].size(), 2u);
  EXPECT_EQ(two["tensors"][0]["name"], "K");
  EXPECT_EQ(two["tensors"][1]["layers"], 1);
}

}  // namespace
