// `moss compress` end to end through the built binary (CONTRACT.md names and exit codes).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace {
struct CliRun {
  int code = -1;
  std::string out;
};

CliRun run_moss(const std::string& args) {
  CliRun r;
  const std::string cmd = std::string(MOSS_BINARY) + " compress " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p) != nullptr) r.out += buf.data();
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
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
