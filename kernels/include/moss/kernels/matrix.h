#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

namespace moss::kernels {

/// Read-only view of a row-major float matrix: `rows` tokens by `cols` features.
struct MatrixView {
  const float* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  [[nodiscard]] const float* row(std::int64_t t) const { return data + t * cols; }
  [[nodiscard]] std::int64_t size() const { return rows * cols; }
  /// Rows [first, first + count).
  [[nodiscard]] MatrixView slice_rows(std::int64_t first, std::int64_t count) const {
    return {data + first * cols, count, cols};
  }
};

/// Owning row-major float matrix.
struct Matrix {
  std::vector<float> data;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  Matrix() = default;
  Matrix(std::int64_t r, std::int64_t c) : data(static_cast<std::size_t>(r * c), 0.0f), rows(r), cols(c) {}

  [[nodiscard]] MatrixView view() const { return {data.data(), rows, cols}; }
  [[nodiscard]] float* row(std::int64_t t) { return data.data() + t * cols; }
  [[nodiscard]] const float* row(std::int64_t t) const { return data.data() + t * cols; }
  float& operator()(std::int64_t r, std::int64_t c) { return data[static_cast<std::size_t>(r * cols + c)]; }
  float operator()(std::int64_t r, std::int64_t c) const { return data[static_cast<std::size_t>(r * cols + c)]; }
};

}  // namespace moss::kernels
