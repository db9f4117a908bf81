// The child-process loader: results, errors and crashes travel back to the parent intact.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "isolated_load.h"
#include "moss/core/error.h"

namespace {

using moss::io::Activations;
using moss::io::Tensor;

Tensor ramp(const char* name, std::int64_t layers, std::int64_t tokens, std::int64_t dim, float offset) {
  Tensor t;
  t.name = name;
  t.layers = layers;
  t.tokens = tokens;
  t.dim = dim;
  for (std::int64_t i = 0; i < layers * tokens * dim; ++i) t.values.push_back(offset + 0.25F * static_cast<float>(i));
  return t;
}

Activations pair(const std::string&) {
  Activations a;
  a.tensors.push_back(ramp("k", 3, 1000, 64, 0.0F));  // 768 KB: more than a pipe buffer holds
  a.tensors.push_back(ramp("v", 3, 1000, 64, -7.0F));
  return a;
}

Activations input_error(const std::string& path) {
  throw moss::InputError({{path, "/k", "first problem"}, {path, "/v", "second problem"}});
}
Activations other_error(const std::string&) { throw std::runtime_error("disk on fire"); }
Activations segfault(const std::string&) {
  std::raise(SIGSEGV);
  return {};
}
Activations aborts(const std::string&) { std::abort(); }
Activations exits_early(const std::string&) { std::_Exit(0); }

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
// Largest tensor the tests below declare: pair() returns two of 768 KB.
constexpr std::uint64_t kTensorBytes = kMiB;

// Touches `total` bytes in 1 MiB blocks (so that they are really used), keeping them all.
void touch(std::uint64_t total) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (std::uint64_t used = 0; used < total; used += kMiB) {
    blocks.emplace_back(new char[kMiB]);
    std::memset(blocks.back().get(), 1, kMiB);
  }
}
// What libhdf5 does with tests/data/bad_activations/libhdf5-oom.h5, only faster.
Activations allocates_8_gib(const std::string&) {
  touch(8192 * kMiB);
  return {};
}
// A legitimate load that needs memory: 64 MiB of working space besides its tensors.
Activations allocates_64_mib(const std::string& path) {
  touch(64 * kMiB);
  return pair(path);
}

}  // namespace

TEST(IsolatedLoad, ReturnsTheChildsTensorsBitForBit) {
  const Activations want = pair("");
  const Activations got = moss::io::detail::load_in_child("x.h5", &pair, "lib", "X", kTensorBytes);
  ASSERT_EQ(got.tensors.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got.tensors[i].name, want.tensors[i].name);
    EXPECT_EQ(got.tensors[i].layers, 3);
    EXPECT_EQ(got.tensors[i].tokens, 1000);
    EXPECT_EQ(got.tensors[i].dim, 64);
    EXPECT_EQ(got.tensors[i].values, want.tensors[i].values);
  }
}

TEST(IsolatedLoad, RethrowsEveryProblemOfTheChildsInputError) {
  try {
    moss::io::detail::load_in_child("a.h5", &input_error, "lib", "X", kTensorBytes);
    FAIL() << "no error";
  } catch (const moss::InputError& e) {
    ASSERT_EQ(e.problems().size(), 2U);
    EXPECT_EQ(e.problems()[0].to_string(), "a.h5: /k: first problem");
    EXPECT_EQ(e.problems()[1].to_string(), "a.h5: /v: second problem");
  }
}

TEST(IsolatedLoad, OtherChildErrorsAreRuntimeFailures) {
  try {
    moss::io::detail::load_in_child("a.h5", &other_error, "lib", "X", kTensorBytes);
    FAIL() << "no error";
  } catch (const moss::RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find("disk on fire"), std::string::npos) << e.what();
  }
}

// A crash (signal), an abort, or an exit before the answer is complete: an input error naming the file.
TEST(IsolatedLoad, ChildThatDiesIsAnInputErrorNotACrash) {
  for (const moss::io::detail::Loader load : {&segfault, &aborts, &exits_early}) {
    try {
      moss::io::detail::load_in_child("bad.h5", load, "libfoo", "FOO", kTensorBytes);
      FAIL() << "no error";
    } catch (const moss::InputError& e) {
      const std::string m = e.problems().at(0).to_string();
      EXPECT_EQ(m.rfind("bad.h5: libfoo crashed reading this file (", 0), 0U) << m;
      EXPECT_NE(m.find("expected a valid FOO file"), std::string::npos) << m;
    }
  }
}

TEST(IsolatedLoad, MemoryBudgetIsALibraryAllowancePlusFourTensors) {
  using moss::io::detail::child_memory_budget_bytes;
  EXPECT_EQ(child_memory_budget_bytes(0), 256 * kMiB);
  EXPECT_EQ(child_memory_budget_bytes(10 * kMiB), 296 * kMiB);
  EXPECT_EQ(child_memory_budget_bytes(std::uint64_t{1} << 62), std::numeric_limits<std::uint64_t>::max());
}

// 8 GiB against a budget of 260 MiB: the child runs out (std::bad_alloc in a plain build, ASan's
// out-of-memory death in a sanitizer build), and the parent reports the limit, not a crash.
TEST(IsolatedLoad, ChildBeyondItsMemoryBudgetIsAnInputErrorNamingTheLimit) {
  try {
    moss::io::detail::load_in_child("big.h5", &allocates_8_gib, "libfoo", "FOO", kTensorBytes);
    FAIL() << "no error";
  } catch (const moss::InputError& e) {
    ASSERT_EQ(e.problems().size(), 1U);
    EXPECT_EQ(e.problems()[0].to_string(),
              "big.h5: libfoo needed more than 260 MiB reading this file (memory limit of the loader): expected a "
              "valid FOO file; this one is corrupt or hostile");
  }
  // The cap was the child's alone: the parent still allocates (and uses) more than the child could.
  touch(512 * kMiB);
  const Activations got = moss::io::detail::load_in_child("x.h5", &pair, "lib", "X", kTensorBytes);
  EXPECT_EQ(got.tensors.size(), 2U);
}

TEST(IsolatedLoad, ChildWellUnderItsMemoryBudgetLoads) {
  const Activations got = moss::io::detail::load_in_child("x.h5", &allocates_64_mib, "lib", "X", kTensorBytes);
  ASSERT_EQ(got.tensors.size(), 2U);
  EXPECT_EQ(got.tensors[1].values, pair("").tensors[1].values);
}
