// `moss compress` end to end through the built binary (CONTRACT.md names and exit codes).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {
struct CliRun {
  int code = -1;
  std::string out;
};

// `moss compress ARGS`: exit code and stdout, with stderr merged in unless `stderr_too` is false.
CliRun run_moss(const std::string& args, bool stderr_too = true) {
  CliRun r;
  const std::string cmd = std::string(MOSS_BINARY) + " compress " + args + (stderr_too ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p) != nullptr) r.out += buf.data();
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A float32 .npy file of shape `shape` (e.g. "(8, 4)") holding 0, 1, 2, ...
std::string write_npy(const std::string& name, const std::string& shape, std::size_t count) {
  const std::filesystem::path p = std::filesystem::temp_directory_path() / ("moss_compress_cli_" + name);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(p, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(header.size() & 0xff)).put(static_cast<char>(header.size() >> 8));
  out << header;
  for (std::size_t i = 0; i < count; ++i) {
    const float v = static_cast<float>(i % 7) - 3.0f + 0.01f * static_cast<float>(i);
    out.write(reinterpret_cast<const char*>(&v), 4);
  }
  return p.string();
}

// Exit 2 and an "error: FLAG: ..." line mentioning `fragment`.
void expect_flag_error(const std::string& args, const std::string& flag, const std::string& fragment = "") {
  const CliRun r = run_moss(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
  EXPECT_NE(r.out.find("error: " + flag + ": "), std::string::npos) << args << ": expected \"error: " << flag << ": \"\n" << r.out;
  EXPECT_NE(r.out.find(fragment), std::string::npos) << args << ": expected \"" << fragment << "\"\n" << r.out;
}
}  // namespace

TEST(CompressCli, JsonHasTheContractKeysAndExactBytes) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY)) << MOSS_BINARY << " is not built";
  const CliRun r = run_moss("--synthetic llama,tokens=512,dim=256 --method pca --rank-k 8 --rank-v 16 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"method", "raw_bytes", "sent_bytes", "ratio", "relative_error", "device"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["method"], "pca");
  EXPECT_EQ(j["raw_bytes"], 2 * 512 * 256 * 2);      // K + V, bf16
  EXPECT_EQ(j["sent_bytes"], 512 * (8 + 16) * 2);    // bf16 coefficients
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), 24.0 / 512.0);
  EXPECT_EQ(j["tensors"].size(), 2u);
}

TEST(CompressCli, TablePrintsEveryTensorAndTheDevice) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const CliRun r = run_moss("--synthetic llama,tokens=256,dim=128 --method mos --rank-k 8 --rank-v 8");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* word : {"K ", "V ", "total", "device: cpu", "worst_token", "enc_GB/s"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word << "\n" << r.out;
}

TEST(CompressCli, BadInputExitsTwoWithAMessage) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  EXPECT_EQ(run_moss("--synthetic llama --method nope").code, 2);
  EXPECT_EQ(run_moss("--synthetic colour=3 --method pca --rank 4").code, 2);
  EXPECT_EQ(run_moss("--synthetic llama,dim=64 --method pca --rank 65").code, 2);
  const CliRun r = run_moss("--activations /nonexistent/kv.npy --method pca --rank 4");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("/nonexistent/kv.npy"), std::string::npos) << r.out;
}

TEST(CompressCli, RejectsSyntheticSizesOutOfRangeNamingTheFlag) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const std::string base = "--synthetic llama,tokens=64,dim=32 --method none ";
  expect_flag_error(base + "--tokens 0", "--tokens", "expected an integer in [1, 16777216]");
  expect_flag_error(base + "--tokens -5", "--tokens", "-5");
  expect_flag_error(base + "--tokens 2000000000", "--tokens", "2000000000: expected an integer in [1, 16777216]");
  expect_flag_error(base + "--dim 0", "--dim", "expected an integer in [1, 65536]");
  expect_flag_error(base + "--dim 100000 --tokens 2", "--dim", "100000: expected an integer in [1, 65536]");
  expect_flag_error(base + "--warmup -1", "--warmup", "expected an integer in [1, 16777216]");
  expect_flag_error(base + "--tokens 16777216 --dim 256", "--tokens", "expected at most 2147483648");
}

TEST(CompressCli, ReportsTheSyntheticSizesActuallyUsed) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const CliRun r = run_moss("--synthetic llama,tokens=4096,dim=2048 --tokens 16 --dim 32 --warmup 24 --method none --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["source"], "synthetic:llama,tokens=16,dim=32");
  EXPECT_EQ(j["warmup_tokens"], 24);
  EXPECT_EQ(j["tensors"][0]["tokens"], 16);
  EXPECT_EQ(j["tensors"][0]["dim"], 32);
  const CliRun t = run_moss("--synthetic llama --tokens 16 --dim 32 --method none");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("on synthetic:llama,tokens=16,dim=32 (warm-up 16 tokens)"), std::string::npos) << t.out;
}

TEST(CompressCli, ErrorsNameTheFlagThatCarriesTheBadValue) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const std::string syn = "--synthetic llama,tokens=64,dim=32 ";
  expect_flag_error(syn + "--method topk --fraction 1.5", "--fraction", "fraction must be in (0, 1]");
  expect_flag_error(syn + "--method topk --fraction 1.0000001", "--fraction", "got 1.0000001");  // not "1.000000"
  expect_flag_error(syn + "--method quant --bits 5", "--bits", "bits must be 4 or 8");
  expect_flag_error(syn + "--method mos --rank 4 --rotations 17", "--rotations", "rotations");
  expect_flag_error(syn + "--method mos --rank 4 --theta-block -1", "--theta-block", "block sizes");
  expect_flag_error(syn + "--method mos-k --rank 4 --subspaces 0", "--subspaces", "subspaces");
  expect_flag_error(syn + "--method mos-k --rank 4 --route-block -2", "--route-block", "block sizes");
  expect_flag_error(syn + "--method pca --rank-k 4 --rank-v 33", "--rank-v", "expected a rank in [1, 32]");
  expect_flag_error(syn + "--method pca --rank 0", "--rank", "expected a rank in [1, 32]");
  expect_flag_error(syn + "--method pca --rank-k 4", "--rank-v", "needs a rank for V");
  const std::string single = write_npy("single.npy", "(8, 4)", 32);
  expect_flag_error("--activations " + single + " --method topk --fraction 1.5", "--fraction", "fraction");
  expect_flag_error("--activations " + single + " --method pca --rank 5", "--rank", "expected a rank in [1, 4]");
  expect_flag_error("--activations " + single + " --method pca", "--rank", "needs a rank");
  EXPECT_EQ(run_moss("--activations " + single + " --method pca --rank 2").code, 0);
}

// A rank above the tokens its bases are fitted on is refused, as a scenario refuses it; so is a run
// of a million timed repeats; a value the flag's type cannot hold says what was expected.
TEST(CompressCli, RefusesRanksAboveTheWarmUpAndValuesOfTheWrongType) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const std::string three = write_npy("three_tokens.npy", "(3, 100)", 300);  // 1 warm-up token, 2 measured
  expect_flag_error("--activations " + three + " --method pca --rank 2", "--rank",
                    "2: exceeds the 1 warm-up token the bases are fitted on (the first half of each layer's tokens)");
  EXPECT_EQ(run_moss("--activations " + three + " --method pca --rank 1").code, 0);
  EXPECT_EQ(run_moss("--activations " + three + " --method topk --fraction 0.5").code, 0);  // no basis: no limit
  const std::string syn = "--synthetic llama,tokens=256,dim=128 ";
  expect_flag_error(syn + "--warmup 16 --method mos --rank-k 8 --rank-v 17", "--rank-v", "17: exceeds the 16 warm-up tokens");
  expect_flag_error("--synthetic llama,tokens=8,dim=128 --method mos-k --rank 9", "--rank", "raise --warmup");
  EXPECT_EQ(run_moss(syn + "--warmup 16 --method mos-k --rank 16").code, 0);
  expect_flag_error(syn + "--method none --repeats 1000000000", "--repeats", "expected an integer in [1, 1000]");
  expect_flag_error(syn + "--method pca --rank 1e3", "--rank = 1e3", "expected an integer");
  expect_flag_error(syn + "--method topk --fraction 0.1abc", "--fraction = 0.1abc", "expected a number");
  for (const char* seed : {"-1", "1.5", "99999999999999999999"})
    expect_flag_error(syn + "--method none --seed " + seed, "--seed", std::string(seed) + ": expected an integer in [0, 18446744073709551615]");
  const CliRun seeded = run_moss(syn + "--method none --seed 12 --json", false);
  ASSERT_EQ(seeded.code, 0) << seeded.out;
  EXPECT_EQ(nlohmann::json::parse(seeded.out)["seed"], 12);
  // Integers are decimal, zero-padded or not (CLI11 alone reads "010" as 8 and "0x10" as 16).
  const CliRun padded = run_moss(syn + "--method pca --rank 010 --seed 010 --json", false);
  ASSERT_EQ(padded.code, 0) << padded.out;
  const auto p = nlohmann::json::parse(padded.out);
  EXPECT_EQ(p["sent_bytes"], 2 * 256 * 10 * 2) << "rank 10 for K and V, bf16";
  EXPECT_EQ(p["seed"], 10);
  EXPECT_EQ(run_moss(syn + "--method pca --rank 08").code, 0);
  expect_flag_error(syn + "--method pca --rank 0x10", "--rank", "\"0x10\": expected a decimal integer");
  // White space too: CLI11 alone skips it and reads " 010" as 8.
  expect_flag_error(syn + "--method pca --rank ' 010'", "--rank", "\" 010\": expected a decimal integer");
  expect_flag_error(syn + "--method pca --rank '10 '", "--rank", "\"10 \": expected a decimal integer");
  // A sign reads the same on every integer flag: "+10" is 10, "-0" is 0 (the seed's check included).
  const CliRun signed_ = run_moss(syn + "--method pca --rank +010 --seed +7 --json", false);
  ASSERT_EQ(signed_.code, 0) << signed_.out;
  EXPECT_EQ(nlohmann::json::parse(signed_.out)["sent_bytes"], 2 * 256 * 10 * 2);
  EXPECT_EQ(nlohmann::json::parse(signed_.out)["seed"], 7);
  const CliRun zero = run_moss(syn + "--method none --seed -0 --json", false);
  ASSERT_EQ(zero.code, 0) << zero.out;
  EXPECT_EQ(nlohmann::json::parse(zero.out)["seed"], 0);
}

// A flag the method or source does not read is ignored with a note naming it (a script may give one
// set of flags to every method: CONTRACT.md's flags are optional and independent).
TEST(CompressCli, NotesFlagsThatDoNotApply) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const std::string syn = "--synthetic llama,tokens=64,dim=32 ";
  auto expect_note = [](const std::string& args, const std::string& flag, const std::string& fragment) {
    const CliRun r = run_moss(args);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("note: " + flag + ": " + fragment), std::string::npos) << args << "\n" << r.out;
  };
  expect_note(syn + "--method pca --rank 4 --fraction 0.2", "--fraction", "applies to --method topk only");
  expect_note(syn + "--method topk --bits 4", "--bits", "applies to --method quant only");
  expect_note(syn + "--method quant --rank 4", "--rank", "applies to --method pca, mos or mos-k only");
  expect_note(syn + "--method pca --rank 4 --rotations 2", "--rotations", "applies to --method mos only");
  expect_note(syn + "--method mos --rank 4 --subspaces 2", "--subspaces", "applies to --method mos-k only");
  expect_note(syn + "--method mos --rank 4 --routing sketch", "--routing", "applies to --method mos-k only");
  expect_note(syn + "--method pca --rank 4 --rank-k 2 --rank-v 3", "--rank", "--rank-k and --rank-v are both given");
  const std::string single = write_npy("single2.npy", "(8, 4)", 32);
  expect_note("--activations " + single + " --method pca --rank 2 --rank-v 2", "--rank-v", "the file holds one tensor");
  expect_note("--activations " + single + " --method none --tokens 8", "--tokens", "applies to --synthetic only");
  expect_note("--activations " + single + " --method none --dim 8", "--dim", "applies to --synthetic only");
  // One tensor: --rank-k is its rank, as it always was.
  EXPECT_EQ(run_moss("--activations " + single + " --method pca --rank-k 2").code, 0);
  expect_flag_error("--activations " + single + " --method pca --rank-k 9", "--rank-k", "expected a rank in [1, 4]");
  // Every method given the same flags runs; the notes go to stderr, so --json's stdout stays one object.
  for (const char* m : {"none", "pca", "mos", "mos-k", "topk", "quant"}) {
    const CliRun r = run_moss(syn + "--method " + m + " --rank 4 --fraction 0.2 --bits 4 --json", false);
    ASSERT_EQ(r.code, 0) << m;
    const std::string& out = r.out;
    const auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["method"], m);
    EXPECT_TRUE(j.contains("notes")) << out;  // each method reads at most one of --rank, --fraction, --bits
  }
  const std::string pair = write_npy("pair.npy", "(2, 8, 4)", 64);
  EXPECT_EQ(run_moss("--activations " + pair + " --method pca --rank-k 2 --rank-v 3").code, 0);
  EXPECT_EQ(run_moss("--activations " + pair + " --method topk --fraction 0.5 --json").code, 0);
}

// A K/V file of 3 layers, 64 tokens, width 8: layer 1 exactly rank 2 (pca rank 2 rebuilds it to bf16
// rounding), layers 0 and 2 full rank (pca rank 2 loses most of them). Each layer is fitted on its
// own first half: the per-layer errors show which layer compresses.
TEST(CompressCli, ReportsEachLayersErrors) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const std::filesystem::path p = std::filesystem::temp_directory_path() / "moss_compress_cli_layers.npy";
  {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 64, 8), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(p, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    out.put(static_cast<char>(header.size())).put(0);
    out << header;
    std::uint64_t x = 7;
    auto next = [&] {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<float>((x >> 40) & 0xffff) / 32768.0f - 1.0f;
    };
    for (int tensor = 0; tensor < 2; ++tensor)
      for (int layer = 0; layer < 3; ++layer)
        for (int t = 0; t < 64; ++t) {
          const float a = next(), b = next();
          for (int j = 0; j < 8; ++j) {
            const float v = layer == 1 ? a * static_cast<float>(j + 1) + b * static_cast<float>(j % 3 - 1) : next();
            out.write(reinterpret_cast<const char*>(&v), 4);
          }
        }
  }
  const CliRun json = run_moss("--activations " + p.string() + " --method pca --rank 2 --json", false);
  ASSERT_EQ(json.code, 0) << json.out;
  const auto j = nlohmann::json::parse(json.out);
  for (const auto& tensor : j["tensors"]) {
    ASSERT_EQ(tensor["per_layer"].size(), 3u) << tensor.dump();
    EXPECT_LT(tensor["per_layer"][1]["relative_error"].get<double>(), 0.01) << tensor.dump();
    EXPECT_GT(tensor["per_layer"][0]["relative_error"].get<double>(), 0.3) << tensor.dump();
    EXPECT_GT(tensor["per_layer"][2]["relative_error"].get<double>(), 0.3) << tensor.dump();
    EXPECT_EQ(tensor["per_layer"][2]["layer"], 2);
  }
  const CliRun table = run_moss("--activations " + p.string() + " --method pca --rank 2 --per-layer");
  ASSERT_EQ(table.code, 0) << table.out;
  for (const char* row : {"  L0", "  L1", "  L2"}) EXPECT_NE(table.out.find(row), std::string::npos) << table.out;
  EXPECT_EQ(run_moss("--activations " + p.string() + " --method pca --rank 2").out.find("  L1"), std::string::npos);
  std::filesystem::remove(p);
}

TEST(CompressCli, HelpShowsTheDefaultsOfFractionAndBits) {
  ASSERT_TRUE(std::filesystem::exists(MOSS_BINARY));
  const CliRun r = run_moss("--help");
  ASSERT_EQ(r.code, 0) << r.out;
  auto line_of = [&](const std::string& flag) {
    const std::size_t at = r.out.find(flag + " ");
    return at == std::string::npos ? std::string() : r.out.substr(at, r.out.find('\n', at) - at);
  };
  EXPECT_NE(line_of("--fraction").find("0.1"), std::string::npos) << r.out;
  EXPECT_NE(line_of("--bits").find("=8"), std::string::npos) << r.out;
}
