#include "activation_checks.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "moss/core/error.h"

namespace moss::io::detail {

namespace {
std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}
}  // namespace

std::string expected_shapes(PairShapes pairs) {
  switch (pairs) {
    case PairShapes::leading_two: return "expected [tokens, dim], [layers, tokens, dim], [2, tokens, dim] (K/V) or [2, layers, tokens, dim]";
    case PairShapes::four_d: return "expected [tokens, dim], [layers, tokens, dim] or [2, layers, tokens, dim] (K/V)";
    case PairShapes::none: break;
  }
  return "expected [tokens, dim] or [layers, tokens, dim]";
}

Layout layout_of(const std::string& file, const std::string& dataset, const std::vector<std::int64_t>& shape,
                 PairShapes pairs) {
  Layout l;
  const std::string expected = expected_shapes(pairs);
  if (shape.size() == 2) {
    l.tokens = shape[0], l.dim = shape[1];
  } else if (shape.size() == 3) {
    if (pairs == PairShapes::leading_two && shape[0] == 2) l.tensors = 2;
    else l.layers = shape[0];
    l.tokens = shape[1], l.dim = shape[2];
  } else if (shape.size() == 4 && pairs != PairShapes::none && shape[0] == 2) {
    l.tensors = 2, l.layers = shape[1], l.tokens = shape[2], l.dim = shape[3];
  } else {
    throw InputError(file, dataset, "shape " + shape_text(shape) + ": " + expected);
  }
  if (l.layers < 1 || l.tokens < 1 || l.dim < 1)
    throw InputError(file, dataset, "shape " + shape_text(shape) + " has an empty dimension: " + expected);
  // Compare in floating point: the product of hostile dimensions overflows 64-bit integers.
  const double values = static_cast<double>(l.tensors) * static_cast<double>(l.layers) *
                        static_cast<double>(l.tokens) * static_cast<double>(l.dim);
  if (values > static_cast<double>(std::uint64_t{1} << 36))
    throw InputError(file, dataset, "shape " + shape_text(shape) + " is too large (more than 2^36 values)");
  return l;
}

Activations split(const std::string& file, const Layout& l, std::vector<float> values,
                  const std::vector<std::string>& names, const std::string& dataset, const ValueInFile& in_file) {
  const auto per = static_cast<std::size_t>(l.layers * l.tokens * l.dim);
  auto where = [&](std::size_t i) {
    const auto tensor = i / per, in = i % per;
    const auto layer = in / static_cast<std::size_t>(l.tokens * l.dim);
    const auto token = in / static_cast<std::size_t>(l.dim) % static_cast<std::size_t>(l.tokens);
    const auto feature = in % static_cast<std::size_t>(l.dim);
    return (l.tensors == 2 ? std::string(tensor == 0 ? "K " : "V ") : std::string()) + "layer " + std::to_string(layer) +
           ", token " + std::to_string(token) + ", feature " + std::to_string(feature);
  };
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i]) && std::fabs(values[i]) <= kMaxActivation) continue;
    const std::optional<long double> held = in_file ? in_file(i) : std::nullopt;
    const long double value = held ? *held : static_cast<long double>(values[i]);
    if (!std::isfinite(value))
      throw InputError(file, dataset, std::string(std::isnan(value) ? "NaN" : "Inf") + " at " + where(i) + ": expected finite activations");
    std::ostringstream v;
    v << value;
    throw InputError(file, dataset,
                     v.str() + " at " + where(i) + ": expected activations of magnitude at most 1e15 (the codecs square them in fp32)");
  }
  // All zeros measures an error of 0 for every method: a dump that captured nothing, not activations.
  const auto layer_values = static_cast<std::size_t>(l.tokens * l.dim);
  for (std::int64_t t = 0; t < l.tensors; ++t) {
    for (std::int64_t layer = 0; layer < l.layers; ++layer) {
      const auto begin = values.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(t) * per + static_cast<std::size_t>(layer) * layer_values);
      if (!std::all_of(begin, begin + static_cast<std::ptrdiff_t>(layer_values), [](float v) { return v == 0.0f; })) continue;
      const std::string tensor = l.tensors == 2 ? (t == 0 ? " of K" : " of V") : "";
      throw InputError(file, dataset, "every value" + tensor + (l.layers > 1 ? " in layer " + std::to_string(layer) : std::string()) +
                                          " is 0: expected activations");
    }
  }
  Activations a;
  for (int t = 0; t < l.tensors; ++t) {
    Tensor x;
    x.name = !names.empty() ? names[static_cast<std::size_t>(t)] : (l.tensors == 2 ? (t == 0 ? "k" : "v") : "x");
    x.layers = l.layers, x.tokens = l.tokens, x.dim = l.dim;
    if (l.tensors == 1) {
      x.values = std::move(values);
    } else {
      x.values.assign(values.begin() + static_cast<std::ptrdiff_t>(t * per), values.begin() + static_cast<std::ptrdiff_t>((t + 1) * per));
    }
    a.tensors.push_back(std::move(x));
  }
  return a;
}

}  // namespace moss::io::detail
