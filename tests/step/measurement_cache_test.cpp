// The on-disk measurement cache (moss/step/measurement_cache.h) seen through compression_figures:
// a miss measures and stores, a hit serves exactly what was stored, and anything that changes what
// the kernels would report (parameters, the source file's contents) is a miss.
#include "moss/step/measurement_cache.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../support/test_files.h"
#include "measurement_store.h"
#include "moss_measurement_identity.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/measure.h"
#include "moss/step/compression_measure.h"
#include "scenario_fixture.h"

namespace moss::step {

namespace {

namespace fs = std::filesystem;

// Figures of the 800M model's compression, through the cache in `dir`. The seed keeps this file's
// measurements apart from other tests' in the process-wide in-memory cache.
CompressionOutcome figures(const std::string& compression, const fs::path& dir, int seed = 71) {
  nlohmann::json doc = testing::mos800m("1Gbps", compression);
  doc["simulation"]["seed"] = seed;
  return compression_figures(testing::parse(doc), true, dir).outcome;
}

const std::string kPca = R"({"method": "pca", "rank_k": 16, "rank_v": 16, "warmup_tokens": 1024})";

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// K then V, [tokens, dim] each, each exactly rank `rank` plus noise of size `noise`.
std::vector<float> kv_values(int tokens, int dim, int rank, float noise, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n;
  std::vector<float> values;
  for (int tensor = 0; tensor < 2; ++tensor) {
    std::vector<float> a(static_cast<std::size_t>(tokens) * rank), b(static_cast<std::size_t>(rank) * dim);
    for (float& e : a) e = n(rng);
    for (float& e : b) e = n(rng);
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < dim; ++j) {
        float x = noise * n(rng);
        for (int q = 0; q < rank; ++q) x += a[t * rank + q] * b[q * dim + j];
        values.push_back(x);
      }
  }
  return values;
}

// A float32 K/V pair [2, tokens, dim] (kv_values).
void write_kv_npy(const fs::path& file, int tokens, int dim, int rank, float noise, std::uint64_t seed) {
  const std::vector<float> values = kv_values(tokens, dim, rank, noise, seed);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, " + std::to_string(tokens) + ", " +
                       std::to_string(dim) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << "\x93NUMPY" << '\x01' << '\x00' << static_cast<char>(header.size() & 0xff) << static_cast<char>(header.size() >> 8) << header;
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
}

// A small model whose K/V width is 64 (kv_heads 1 x head_dim 64), reading `file`.
// HDF5 datasets `group`/k and `group`/v of a file (created when missing), kv_values.
void write_kv_h5(const fs::path& file, const std::string& group, int tokens, int dim, int rank, std::uint64_t seed) {
  const std::vector<float> values = kv_values(tokens, dim, rank, 0.0f, seed);
  const hid_t f = fs::exists(file) ? H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)
                                   : H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Gclose(H5Gcreate2(f, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  const hsize_t dims[2] = {static_cast<hsize_t>(tokens), static_cast<hsize_t>(dim)};
  for (int i = 0; i < 2; ++i) {
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const std::string name = group + (i == 0 ? "/k" : "/v");
    const hid_t ds = H5Dcreate2(f, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data() + static_cast<std::size_t>(i) * tokens * dim);
    H5Dclose(ds);
    H5Sclose(space);
  }
  H5Fclose(f);
}

// pca at rank 4 on a small model's K/V from `file` (its HDF5 `datasets` {"k": ..., "v": ...} when given).
CompressionOutcome file_figures(const fs::path& file, const fs::path& dir, const nlohmann::json& datasets = nullptr) {
  nlohmann::json doc = testing::mos800m("1Gbps", R"({"method": "pca", "rank_k": 4, "rank_v": 4})");
  doc["model"] = nlohmann::json::parse(R"({"layers": 2, "d_model": 256, "heads": 4, "kv_heads": 1, "ffn_hidden": 1024, "vocab": 1000})");
  doc["compression"]["activations"] = file.string();
  if (!datasets.is_null()) doc["compression"]["datasets"] = datasets;
  return compression_figures(testing::parse(doc), true, dir).outcome;
}

}  // namespace

TEST(MeasurementCache, AMissStoresAndAHitServesTheSameFigures) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "same");
  const CompressionOutcome first = figures(kPca, dir);
  EXPECT_EQ(first.cache, CacheUse::kMiss) << first.cache_note;
  ASSERT_EQ(entries(dir).size(), 1u);
  EXPECT_NE(first.cache_note.find(entries(dir)[0].string()), std::string::npos) << first.cache_note;
  const CompressionOutcome second = figures(kPca, dir);
  EXPECT_EQ(second.cache, CacheUse::kHit);
  EXPECT_NE(second.cache_note.find("measured 20"), std::string::npos) << second.cache_note;
  // Doubles travel as JSON numbers that round-trip exactly.
  EXPECT_EQ(second.ratio, first.ratio);
  EXPECT_EQ(second.sent_bytes_per_token, first.sent_bytes_per_token);
  EXPECT_EQ(second.relative_error, first.relative_error);
  EXPECT_EQ(second.relative_error_k, first.relative_error_k);
  EXPECT_EQ(second.relative_error_v, first.relative_error_v);
  EXPECT_EQ(second.warmup_tokens, first.warmup_tokens);
  EXPECT_EQ(second.source, first.source);
  EXPECT_EQ(second.timing_source, first.timing_source);
  fs::remove_all(dir);
}

// What a hit reports comes from the entry on disk, not from the process's memory: an entry edited by
// hand is served as edited.
TEST(MeasurementCache, AHitReadsTheEntryOnDisk) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "disk");
  const CompressionOutcome first = figures(kPca, dir);
  ASSERT_EQ(entries(dir).size(), 1u);
  const fs::path entry = entries(dir)[0];
  nlohmann::json j = nlohmann::json::parse(testing::slurp(entry.string()));
  j["result"]["relative_error"] = 0.5;
  write_text(entry, j.dump());
  const CompressionOutcome second = figures(kPca, dir);
  EXPECT_EQ(second.cache, CacheUse::kHit);
  ASSERT_TRUE(second.relative_error);
  EXPECT_EQ(*second.relative_error, 0.5);
  EXPECT_NE(*first.relative_error, 0.5);
  fs::remove_all(dir);
}

// A torn, foreign (another key's, as after a hash collision), wrongly typed or out-of-range entry is
// a miss, never an error, and the measurement replaces it. A directory in the entry's place is a miss
// too, and the run carries on without storing.
TEST(MeasurementCache, ABadEntryIsAMissAndIsReplaced) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "bad");
  const CompressionOutcome truth = figures(kPca, dir);
  ASSERT_EQ(entries(dir).size(), 1u);
  const fs::path entry = entries(dir)[0];
  const nlohmann::json good = nlohmann::json::parse(testing::slurp(entry.string()));
  nlohmann::json foreign = good, negative = good, missing = good;
  foreign["key"] = "another key";
  negative["result"]["ratio"] = -1;
  missing["result"].erase("device");
  const std::string dumped = good.dump();
  std::vector<std::string> bad_entries = {dumped.substr(0, dumped.size() / 2), std::string(), std::string("[]"),
                                          foreign.dump(), negative.dump(), missing.dump()};
  // Well-formed but not a measurement of this request on this host: trusting it would put a wrong
  // number in the step (sent bytes of 1e12 made a step of 1.4e7 hours).
  const double raw = good["result"]["raw_bytes_per_token"].get<double>();
  std::vector<std::pair<std::string, nlohmann::json>> implausible = {
      {"sent_bytes_per_token", 1e12}, {"raw_bytes_per_token", raw * 2}, {"ratio", 0.5}, {"relative_error", 1e9},
      {"relative_error", 0.9},  // outside [min, max] of K's and V's
      {"relative_error_v", std::nan("")}, {"encode_input_bytes_per_s", 1e300}};
  if (!kernels::gpu_available()) implausible.push_back({"device", "gpu NVIDIA H200"});
  for (const auto& [field, value] : implausible) {
    nlohmann::json wrong = good;
    wrong["result"][field] = value;
    bad_entries.push_back(wrong.dump());
  }
  // Self-consistent bytes and ratio, but not the request's wire format.
  nlohmann::json consistent_but_wrong = good;
  consistent_but_wrong["result"]["sent_bytes_per_token"] = raw / 2;
  consistent_but_wrong["result"]["ratio"] = 0.5;
  bad_entries.push_back(consistent_but_wrong.dump());
  const std::vector<std::pair<std::string, nlohmann::json>> wrong_types = {
      {"format", "1"}, {"key", 7}, {"measured_at", 7}, {"measure_s", "1.0"}, {"result", 7}};
  for (const auto& [field, value] : wrong_types) {
    nlohmann::json wrong = good;
    wrong[field] = value;
    bad_entries.push_back(wrong.dump());
  }
  for (const std::string& bad : bad_entries) {
    write_text(entry, bad);
    const CompressionOutcome o = figures(kPca, dir);
    // This process measured the request for `truth`: the figures are that measurement's, stored again.
    EXPECT_EQ(o.cache, CacheUse::kShared) << bad;
    EXPECT_EQ(o.relative_error, truth.relative_error) << bad;
    EXPECT_EQ(nlohmann::json::parse(testing::slurp(entry.string()))["key"], good["key"]) << bad;
  }
  fs::remove(entry);
  fs::create_directories(entry / "inside");
  const CompressionOutcome o = figures(kPca, dir);
  EXPECT_EQ(o.cache, CacheUse::kUnstored) << o.cache_note;  // the directory is in the way of the rename
  EXPECT_EQ(o.relative_error, truth.relative_error);
  fs::remove_all(dir);
}

// Concurrent identical requests measure once: the first measures, a caller that came while it ran
// (or after) shares its result (CacheUse::kShared in a sweep's counts) instead of measuring again.
TEST(MeasurementCache, ConcurrentIdenticalRequestsMeasureOnce) {
  kernels::MeasureRequest req;
  req.params.method = "pca";
  req.params.rank_k = req.params.rank_v = 8;
  req.chunk_tokens = 1024;
  req.warmup_tokens = 2048;
  req.kv_dim = 512;
  req.head_dim = 64;
  req.seed = 7171;  // no other test's request
  req.activation_source = "synthetic:llama";
  req.device = "cpu";
  const std::uint64_t before = kernels::measurements_run();
  kernels::MeasureResult a, b;
  std::thread ta([&] { a = kernels::measure_kv(req); });
  std::thread tb([&] { b = kernels::measure_kv(req); });
  ta.join();
  tb.join();
  EXPECT_EQ(kernels::measurements_run() - before, 1u);
  EXPECT_NE(a.shared, b.shared) << "one of them measured, the other shared it";
  EXPECT_EQ(a.relative_error, b.relative_error);
  EXPECT_TRUE(kernels::measure_kv(req).shared);
  EXPECT_EQ(kernels::measurements_run() - before, 1u);
}

// A file's bases are fitted on half of each layer's tokens: a rank above that is the scenario's
// problem, named at its rank, not a fit of fewer directions than it charges for.
TEST(MeasurementCache, ARankAboveTheFilesFitTokensIsAnInputError) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "short", true);
  const fs::path file = dir / "short.npy";
  write_kv_npy(file, 40, 64, 4, 0.01f, 5);  // fitted on 20 tokens
  nlohmann::json doc = testing::mos800m("1Gbps", R"({"method": "pca", "rank_k": 20, "rank_v": 21})");
  doc["model"] = nlohmann::json::parse(R"({"layers": 2, "d_model": 256, "heads": 4, "kv_heads": 1, "ffn_hidden": 1024, "vocab": 1000})");
  doc["compression"]["activations"] = file.string();
  try {
    (void)compression_figures(testing::parse(doc), true, std::nullopt);
    FAIL() << "rank_v 21 > 20 fit tokens was accepted";
  } catch (const InputError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].pointer, "/compression/rank_v");
    EXPECT_NE(e.problems()[0].message.find("exceeds the 20 tokens the bases are fitted on"), std::string::npos) << e.what();
  }
  doc["compression"]["rank_v"] = 20;
  EXPECT_NO_THROW((void)compression_figures(testing::parse(doc), true, std::nullopt));
  fs::remove_all(dir);
}

// Every parameter of the measurement is in the key: changing one is a new entry. Seeds of this test
// alone: a request another test of this process measured would be shared, not measured.
TEST(MeasurementCache, AnyChangedParameterIsAMiss) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "params");
  EXPECT_EQ(figures(kPca, dir, 81).cache, CacheUse::kMiss);
  EXPECT_EQ(figures(R"({"method": "pca", "rank_k": 16, "rank_v": 24, "warmup_tokens": 1024})", dir, 81).cache, CacheUse::kMiss);
  EXPECT_EQ(figures(R"({"method": "pca", "rank_k": 16, "rank_v": 16, "warmup_tokens": 2048})", dir, 81).cache, CacheUse::kMiss);
  EXPECT_EQ(figures(R"({"method": "mos", "rank_k": 16, "rank_v": 16, "warmup_tokens": 1024})", dir, 81).cache, CacheUse::kMiss);
  EXPECT_EQ(figures(kPca, dir, 82).cache, CacheUse::kMiss);  // another seed
  EXPECT_EQ(figures(kPca, dir, 81).cache, CacheUse::kHit);
  EXPECT_EQ(entries(dir).size(), 5u);
  EXPECT_EQ(measurement_cache_usage(dir).entries, 5u);
  fs::remove_all(dir);
}

// A file is known by its path, inode, size and times: rewriting it with other data is a new source,
// and the figures are the new data's (rank 4 exactly: error ~bf16 rounding; rank 12: far more), even
// when the rewrite keeps the size and the modification time (as cp -p or rsync -a do).
TEST(MeasurementCache, ARewrittenActivationFileIsMeasuredAgain) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "file");
  const fs::path file = fs::path(testing::fresh_temp_dir("moss-mcache", "file-data", true)) / "kv.npy";
  write_kv_npy(file, 512, 64, 4, 0.0f, 5);
  const CompressionOutcome low = file_figures(file, dir);
  EXPECT_EQ(low.cache, CacheUse::kMiss);
  EXPECT_EQ(file_figures(file, dir).cache, CacheUse::kHit);
  ASSERT_TRUE(low.relative_error);
  EXPECT_LT(*low.relative_error, 1e-2);
  write_kv_npy(file, 512, 64, 12, 0.0f, 6);  // same size, other contents
  fs::last_write_time(file, fs::last_write_time(file) + std::chrono::seconds(2));
  const CompressionOutcome high = file_figures(file, dir);
  EXPECT_EQ(high.cache, CacheUse::kMiss);
  ASSERT_TRUE(high.relative_error);
  EXPECT_GT(*high.relative_error, 0.1);
  EXPECT_EQ(file_figures(file, dir).cache, CacheUse::kHit);
  const auto stamp = fs::last_write_time(file);
  write_kv_npy(file, 512, 64, 4, 0.0f, 7);  // the same size again
  fs::last_write_time(file, stamp);
  const CompressionOutcome same_stamp = file_figures(file, dir);
  EXPECT_EQ(same_stamp.cache, CacheUse::kMiss);
  ASSERT_TRUE(same_stamp.relative_error);
  EXPECT_LT(*same_stamp.relative_error, 1e-2);
  fs::remove_all(dir);
  fs::remove_all(file.parent_path());
}

// The HDF5 datasets a scenario chooses are the data measured, and part of the source's name: two
// pairs of one file are two sources (rank 4: error ~bf16 rounding; rank 12: far more).
TEST(MeasurementCache, TheChosenHdf5DatasetsAreMeasuredAndKeyed) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "datasets");
  const fs::path file = fs::path(testing::fresh_temp_dir("moss-mcache", "datasets-data", true)) / "kv.h5";
  write_kv_h5(file, "low", 512, 64, 4, 5);
  write_kv_h5(file, "high", 512, 64, 12, 6);
  const nlohmann::json low_pair = {{"k", "low/k"}, {"v", "/low/v"}};
  const CompressionOutcome low = file_figures(file, dir, low_pair);
  EXPECT_EQ(low.cache, CacheUse::kMiss) << low.cache_note;
  ASSERT_TRUE(low.relative_error);
  EXPECT_LT(*low.relative_error, 1e-2);
  const CompressionOutcome high = file_figures(file, dir, {{"k", "high/k"}, {"v", "high/v"}});
  EXPECT_EQ(high.cache, CacheUse::kMiss) << high.cache_note;
  ASSERT_TRUE(high.relative_error);
  EXPECT_GT(*high.relative_error, 0.1);
  EXPECT_EQ(file_figures(file, dir, low_pair).cache, CacheUse::kHit);
  EXPECT_EQ(entries(dir).size(), 2u);
  // K of one pair with V of the other is a third source.
  EXPECT_EQ(file_figures(file, dir, {{"k", "low/k"}, {"v", "high/v"}}).cache, CacheUse::kMiss);
  // Without a choice the file has no "k" and "v": the scenario's error names the file's objects.
  try {
    (void)file_figures(file, dir);
    FAIL() << "a file without datasets k and v was measured";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/compression/activations"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("top-level objects"), std::string::npos) << e.what();
  }
  try {
    (void)file_figures(file, dir, {{"k", "low/k"}, {"v", "low/w"}});
    FAIL() << "a missing dataset was measured";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/low/w: no such dataset in the file (/low holds: /low/k, /low/v)"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
  fs::remove_all(file.parent_path());
}

// A cache that cannot be written costs the saving, not the run: the figures are measured, and the
// outcome says why nothing was stored.
TEST(MeasurementCache, AnUnwritableCacheStillMeasures) {
  const fs::path base = testing::fresh_temp_dir("moss-mcache", "unwritable", true);
  write_text(base / "a-file", "x");
  const CompressionOutcome o = figures(kPca, base / "a-file" / "cache");
  EXPECT_EQ(o.cache, CacheUse::kUnstored);
  EXPECT_NE(o.cache_note.find("cannot create"), std::string::npos) << o.cache_note;
  EXPECT_EQ(o.relative_error, figures(kPca, base / "elsewhere").relative_error);
  fs::remove_all(base);
}

TEST(MeasurementCache, ClearRemovesEntriesAndNothingElse) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "clear");
  (void)figures(kPca, dir);
  (void)figures(R"({"method": "quant", "bits": 4})", dir);
  write_text(dir / "notes.txt", "mine");
  write_text(dir / "m-results.json", "mine too");
  write_text(dir / "m-0123456789abcdef.json.tmp-host-1-2-89abcdef01234567", "torn");
  // Named like entries but not moss's: one that is not JSON, one whose key does not hash to its name.
  write_text(dir / "m-00000000000000ff.json", "the user's own");
  write_text(dir / "m-00000000000000fe.json", R"({"format": 1, "key": "another key"})");
  EXPECT_EQ(measurement_cache_usage(dir).entries, 2u);
  EXPECT_EQ(measurement_cache_usage(dir).foreign, 2u);
  EXPECT_EQ(measurement_cache_usage(dir).leftovers, 1u);
  EXPECT_GT(measurement_cache_usage(dir).bytes, 200u);
  EXPECT_EQ(clear_measurement_cache(dir), 2u);
  EXPECT_EQ(measurement_cache_usage(dir).entries, 0u);
  EXPECT_EQ(measurement_cache_usage(dir).leftovers, 0u);
  ASSERT_EQ(entries(dir).size(), 4u);
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
  EXPECT_TRUE(fs::exists(dir / "m-results.json"));
  EXPECT_TRUE(fs::exists(dir / "m-00000000000000ff.json"));
  EXPECT_TRUE(fs::exists(dir / "m-00000000000000fe.json"));
  EXPECT_EQ(clear_measurement_cache(dir / "absent"), 0u);
  fs::remove_all(dir);
}

TEST(MeasurementCache, DefaultDirectoryFollowsTheEnvironment) {
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  for (const char* name : {"MOSS_CACHE_DIR", "XDG_CACHE_HOME", "HOME"}) {
    const char* v = std::getenv(name);
    saved.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
  }
  auto with = [](const char* cache, const char* xdg, const char* home) {
    for (auto [name, value] : {std::pair{"MOSS_CACHE_DIR", cache}, {"XDG_CACHE_HOME", xdg}, {"HOME", home}}) {
      if (value) {
        ::setenv(name, value, 1);
      } else {
        ::unsetenv(name);
      }
    }
    return default_measurement_cache_dir();
  };
  EXPECT_EQ(with("/c/m", "/x", "/h"), fs::path("/c/m"));
  EXPECT_EQ(with(nullptr, "/x", "/h"), fs::path("/x/moss/measurements"));
  EXPECT_EQ(with("", "", "/h"), fs::path("/h/.cache/moss/measurements"));
  EXPECT_EQ(with("off", "/x", "/h"), std::nullopt);
  // XDG Base Directory: a relative XDG_CACHE_HOME is invalid and ignored.
  EXPECT_EQ(with(nullptr, "relative/cache", "/h"), fs::path("/h/.cache/moss/measurements"));
  EXPECT_EQ(with(nullptr, nullptr, nullptr), std::nullopt);
  for (const auto& [name, value] : saved) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
}

// Specs that generate the same data are one measurement and one entry: "llama" and "llama,seed=1"
// (the preset's seed), with or without spaces.
TEST(MeasurementCache, SpecsOfTheSameDataShareOneEntry) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "same-spec");
  const auto with = [&](const char* activations) {
    nlohmann::json c = nlohmann::json::parse(kPca);
    c["activations"] = activations;
    return figures(c.dump(), dir, 73);
  };
  const CompressionOutcome first = with("synthetic:llama");
  EXPECT_EQ(first.cache, CacheUse::kMiss);
  for (const char* same : {"synthetic:llama,seed=1", "synthetic:llama, seed=1"}) {
    const CompressionOutcome again = with(same);
    EXPECT_NE(again.cache, CacheUse::kMiss) << same;
    EXPECT_EQ(again.relative_error, first.relative_error) << same;
  }
  EXPECT_EQ(entries(dir).size(), 1u);
  EXPECT_EQ(with("synthetic:llama,seed=2").cache, CacheUse::kMiss);  // other data
  fs::remove_all(dir);
}

// The key holds the device that measured and the build's identity: a figure measured on another
// device, or by other kernel code, is never served.
TEST(MeasurementCache, TheKeyNamesTheDeviceAndTheBuild) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "key");
  (void)figures(kPca, dir);
  ASSERT_EQ(entries(dir).size(), 1u);
  const std::string key = nlohmann::json::parse(testing::slurp(entries(dir)[0].string()))["key"];
  EXPECT_NE(key.find("\nbuild " MOSS_MEASUREMENT_IDENTITY), std::string::npos) << key;
  EXPECT_EQ(std::string(MOSS_MEASUREMENT_IDENTITY).size(), 64u);
  EXPECT_NE(key.find("\ndevice " + std::string(kernels::gpu_available() ? "gpu " : "cpu ")), std::string::npos) << key;
  // A synthetic source by every field of its spec at the model's K/V width ("llama" spelt out).
  EXPECT_NE(key.find("\nsource synthetic:tokens=1,dim=2048,subspaces=4,rank=0,"), std::string::npos) << key;
  EXPECT_NE(key.find("\nkernels pca|16|16|"), std::string::npos) << key;
  fs::remove_all(dir);
}

// Parallel sweep points write the same entry at once: every write is whole (temporary file, then
// rename), so a reader always finds the complete entry that was there before.
TEST(MeasurementCache, ConcurrentWritersLeaveOneWholeEntry) {
  const fs::path dir = testing::fresh_temp_dir("moss-mcache", "concurrent");
  detail::StoredMeasurement m;
  m.result.ratio = 0.25;
  m.result.raw_bytes_per_token = 8;
  m.result.device = "cpu";
  m.measured_at = detail::utc_now();
  ASSERT_EQ(detail::store_measurement(dir, "k", m), "");
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&] {
      for (int i = 0; i < 50; ++i) EXPECT_EQ(detail::store_measurement(dir, "k", m), "");
    });
  int whole = 0;
  for (int i = 0; i < 200; ++i) {
    const auto read = detail::load_measurement(dir, "k");
    whole += read && read->result.ratio == 0.25;
  }
  for (auto& w : writers) w.join();
  ASSERT_TRUE(detail::load_measurement(dir, "k"));
  EXPECT_EQ(detail::load_measurement(dir, "k")->result.ratio, 0.25);
  EXPECT_EQ(entries(dir).size(), 1u);  // no temporary left behind
  EXPECT_EQ(whole, 200);
  fs::remove_all(dir);
}

}  // namespace moss::step
