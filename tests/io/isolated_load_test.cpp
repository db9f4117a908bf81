// The child-process loader: results, errors and crashes travel back to the parent intact.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>

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

}  // namespace

TEST(IsolatedLoad, ReturnsTheChildsTensorsBitForBit) {
  const Activations want = pair("");
  const Activations got = moss::io::detail::load_in_child("x.h5", &pair, "lib", "X");
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
    moss::io::detail::load_in_child("a.h5", &input_error, "lib", "X");
    FAIL() << "no error";
  } catch (const moss::InputError& e) {
    ASSERT_EQ(e.problems().size(), 2U);
    EXPECT_EQ(e.problems()[0].to_string(), "a.h5: /k: first problem");
    EXPECT_EQ(e.problems()[1].to_string(), "a.h5: /v: second problem");
  }
}

TEST(IsolatedLoad, OtherChildErrorsAreRuntimeFailures) {
  try {
    moss::io::detail::load_in_child("a.h5", &other_error, "lib", "X");
    FAIL() << "no error";
  } catch (const moss::RuntimeFailure& e) {
    EXPECT_NE(std::string(e.what()).find("disk on fire"), std::string::npos) << e.what();
  }
}

// A crash (signal), an abort, or an exit before the answer is complete: an input error naming the file.
TEST(IsolatedLoad, ChildThatDiesIsAnInputErrorNotACrash) {
  for (const moss::io::detail::Loader load : {&segfault, &aborts, &exits_early}) {
    try {
      moss::io::detail::load_in_child("bad.h5", load, "libfoo", "FOO");
      FAIL() << "no error";
    } catch (const moss::InputError& e) {
      const std::string m = e.problems().at(0).to_string();
      EXPECT_EQ(m.rfind("bad.h5: libfoo crashed reading this file (", 0), 0U) << m;
      EXPECT_NE(m.find("expected a valid FOO file"), std::string::npos) << m;
    }
  }
}
