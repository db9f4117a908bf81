#include "moss/core/file_io.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "moss/core/error.h"
#include "../support/test_files.h"

namespace moss {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) { return testing::slurp(p.string()); }

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

std::string failure_of(const std::string& path, std::string_view content) {
  try {
    replace_file(path, content, Durability::kFile);
  } catch (const RuntimeFailure& e) {
    return e.what();
  }
  return "";
}

// A second hard link keeps the old inode: rewriting in place would change what it reads.
TEST(ReplaceFile, RenamesANewFileIntoPlaceAtEveryDurability) {
  const fs::path dir = testing::fresh_temp_dir("moss-file-io", "replace", true);
  const fs::path target = dir / "summary.json";
  std::ofstream(target) << "old";
  fs::create_hard_link(target, dir / "old-link");
  for (const Durability d : {Durability::kNone, Durability::kFile, Durability::kFileAndDirectory}) {
    const std::string content = "new " + std::to_string(static_cast<int>(d)) + std::string(100000, 'x');
    replace_file(target.string(), content, d);
    EXPECT_EQ(slurp(target), content);
  }
  EXPECT_EQ(slurp(dir / "old-link"), "old");
  EXPECT_EQ(names_in(dir).size(), 2u) << "a temporary was left behind";
  replace_file((dir / "empty").string(), "", Durability::kFile);
  EXPECT_EQ(slurp(dir / "empty"), "");
  fs::remove_all(dir);
}

TEST(ReplaceFile, AFailureNamesThePathKeepsTheOldFileAndLeavesNoTemporary) {
  const fs::path dir = testing::fresh_temp_dir("moss-file-io", "failure", true);
  std::ofstream(dir / "a-file") << "x";
  // Below a regular file nothing can be created, even by root.
  const std::string below = (dir / "a-file" / "out.json").string();
  const std::string why = failure_of(below, "data");
  EXPECT_EQ(why, below + ": cannot write (Not a directory)");
  // A directory in the target's place: the temporary is written, the rename fails and is undone.
  fs::create_directories(dir / "taken" / "inside");
  const std::string taken = (dir / "taken").string();
  const std::string why_taken = failure_of(taken, "data");
  EXPECT_EQ(why_taken.rfind(taken + ": cannot move the finished file into place (", 0), 0u) << why_taken;
  EXPECT_TRUE(fs::is_directory(dir / "taken" / "inside"));
  EXPECT_EQ(names_in(dir).size(), 2u) << "a temporary was left behind";
  fs::remove_all(dir);
}

TEST(ReplaceFile, TemporaryNamesAreUniqueAcrossThreads) {
  std::vector<std::set<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& names : per_thread)
    threads.emplace_back([&names] {
      for (int i = 0; i < 500; ++i) names.insert(temporary_name("dir/m-0123456789abcdef.json"));
    });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& names : per_thread) all.insert(names.begin(), names.end());
  EXPECT_EQ(all.size(), 2000u);
  for (const auto& name : all) {
    EXPECT_EQ(name.rfind("dir/m-0123456789abcdef.json.tmp-", 0), 0u) << name;
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/"), std::string::npos) << name;
  }
}

// Writers racing on one name: every reader sees one whole version, never a mixture or a part.
TEST(ReplaceFile, ConcurrentWritersLeaveOneWholeVersion) {
  const fs::path dir = testing::fresh_temp_dir("moss-file-io", "race", true);
  const std::string target = (dir / "entry.json").string();
  std::atomic<int> finished{0};
  std::vector<std::thread> writers;
  for (char c : {'a', 'b', 'c', 'd'})
    writers.emplace_back([&target, &finished, c] {
      for (int i = 0; i < 50; ++i) replace_file(target, std::string(20000, c), Durability::kNone);
      ++finished;
    });
  auto check_whole = [](const std::string& seen) {
    EXPECT_EQ(seen.size(), 20000u);
    EXPECT_EQ(seen.find_first_not_of(seen[0]), std::string::npos) << "a mixture of two versions";
  };
  int reads = 0;
  while (finished < 4) {  // until the writers are done, however the threads are scheduled
    const std::string seen = slurp(target);
    if (seen.empty()) continue;  // not written yet
    check_whole(seen);
    ++reads;
  }
  for (auto& w : writers) w.join();
  check_whole(slurp(target));
  EXPECT_EQ(names_in(dir).size(), 1u) << "a temporary was left behind (" << reads << " reads during the writes)";
  fs::remove_all(dir);
}

TEST(SyncPath, NamesAMissingPath) {
  const fs::path dir = testing::fresh_temp_dir("moss-file-io", "sync", true);
  EXPECT_NO_THROW(sync_path(dir.string()));
  const std::string missing = (dir / "missing").string();
  try {
    sync_path(missing);
    ADD_FAILURE() << "no error for a missing path";
  } catch (const RuntimeFailure& e) {
    EXPECT_EQ(std::string(e.what()), "cannot fsync " + missing + ": No such file or directory");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moss
