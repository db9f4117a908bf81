// Choice of theta per block (rotation.h): maximise the energy U(theta) captures, exactly
//   f(theta) = tr((U^T U)^{-1} U^T X^T X U)   with U = Ubar (I - M/2) + sum_i theta_i W_i,
// the energy of the orthogonal projection onto span U(theta) (what decode reconstructs), from the
// small Gram matrices of P = X [Ubar W_1..W_m]. U^T U = I + M^2/4 exactly (Ubar^T W_i = 0).
#include <algorithm>
#include <cmath>
#include <functional>

#include "eigen_types.h"
#include "moss/kernels/rotation.h"

namespace moss::kernels {

namespace {
using Eigen::MatrixXd;

MatrixXd block(std::span<const double> g, int n, int a, int b, int r) {
  MatrixXd out(r, r);
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < r; ++j)
      out(i, j) = g[static_cast<std::size_t>((a * r + i) * n + b * r + j)];
  return out;
}
}  // namespace

double theta_objective(std::span<const double> gram, std::span<const double> dir_gram,
                       std::span<const float> theta, int m, int r) {
  const int n = (m + 1) * r, nd = m * r;
  MatrixXd mm = MatrixXd::Zero(r, r);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j) {
      const double tt = static_cast<double>(theta[i]) * theta[j];
      if (tt != 0.0) mm += tt * block(dir_gram, nd, i, j, r);
    }
  const MatrixXd k0 = MatrixXd::Identity(r, r) - 0.5 * mm;
  const MatrixXd g00 = block(gram, n, 0, 0, r);
  MatrixXd a = k0.transpose() * g00 * k0;
  for (int i = 0; i < m; ++i) {
    if (theta[i] == 0.0f) continue;
    const MatrixXd g0i = block(gram, n, 0, i + 1, r);
    a += theta[i] * (k0.transpose() * g0i + g0i.transpose() * k0);
    for (int j = 0; j < m; ++j)
      if (theta[j] != 0.0f) a += static_cast<double>(theta[i]) * theta[j] * block(gram, n, i + 1, j + 1, r);
  }
  const MatrixXd utu = MatrixXd::Identity(r, r) + 0.25 * mm * mm;
  return utu.ldlt().solve(a).trace();
}

std::vector<float> fit_theta(std::span<const double> gram, std::span<const double> dir_gram, int m, int r) {
  return cpu::maximise_theta([&](const std::vector<float>& t) { return theta_objective(gram, dir_gram, t, m, r); }, m);
}

namespace cpu {
std::vector<float> maximise_theta(const std::function<double(const std::vector<float>&)>& f, int m) {
  std::vector<float> theta(static_cast<std::size_t>(m), 0.0f);
  if (m == 0) return theta;
  const double f0 = f(theta);
  double best = f0;
  float step = 0.25f;
  for (int it = 0; it < 12 && step > 1e-4f; ++it) {
    std::vector<double> grad(static_cast<std::size_t>(m));
    double norm = 0;
    for (int i = 0; i < m; ++i) {  // central differences: f is cheap (r x r algebra)
      const float h = 1e-3f;
      auto tp = theta, tm = theta;
      tp[static_cast<std::size_t>(i)] += h;
      tm[static_cast<std::size_t>(i)] -= h;
      grad[static_cast<std::size_t>(i)] = (f(tp) - f(tm)) / (2.0 * h);
      norm += grad[static_cast<std::size_t>(i)] * grad[static_cast<std::size_t>(i)];
    }
    norm = std::sqrt(norm);
    if (norm == 0) break;
    bool improved = false;
    for (; step > 1e-4f; step *= 0.5f) {  // backtracking along the normalised gradient
      auto trial = theta;
      for (int i = 0; i < m; ++i) {
        const auto v = static_cast<float>(theta[static_cast<std::size_t>(i)] + step * grad[static_cast<std::size_t>(i)] / norm);
        trial[static_cast<std::size_t>(i)] = std::clamp(v, -kMaxTheta, kMaxTheta);
      }
      const double ft = f(trial);
      if (ft > best) {
        best = ft, theta = trial, improved = true;
        step *= 1.5f;
        break;
      }
    }
    if (!improved) break;
  }
  if (!(best > f0)) std::fill(theta.begin(), theta.end(), 0.0f);  // plain PCA is never beaten by a worse theta
  return theta;
}

std::vector<float> fit_block_theta(const float* p, std::int64_t n, std::span<const double> dir_gram, int m,
                                   int r) {
  const ConstMapF pm = map(p, n, static_cast<std::int64_t>(m + 1) * r);
  const Eigen::MatrixXd pd = pm.cast<double>();
  const Eigen::MatrixXd g = pd.transpose() * pd;  // symmetric: storage order does not matter
  if (m == 0) return {};
  // theta_objective with the blocks extracted once and the theta-weighted sums formed first:
  // about 5 r^3 per evaluation for any m instead of (2m + 4) r^3 plus m^2 block copies.
  const int nd = m * r;
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> dg(dir_gram.data(), nd, nd);
  const Eigen::MatrixXd g00 = g.topLeftCorner(r, r);
  const Eigen::MatrixXd id = Eigen::MatrixXd::Identity(r, r);
  auto f = [&](const std::vector<float>& t) {
    Eigen::MatrixXd mm = Eigen::MatrixXd::Zero(r, r), g0t = Eigen::MatrixXd::Zero(r, r), gtt = Eigen::MatrixXd::Zero(r, r);
    for (int i = 0; i < m; ++i) {
      if (t[static_cast<std::size_t>(i)] == 0.0f) continue;
      g0t += t[static_cast<std::size_t>(i)] * g.block(0, (i + 1) * r, r, r);
      for (int j = 0; j < m; ++j) {
        const double tt = static_cast<double>(t[static_cast<std::size_t>(i)]) * t[static_cast<std::size_t>(j)];
        if (tt == 0.0) continue;
        mm += tt * dg.block(i * r, j * r, r, r);
        gtt += tt * g.block((i + 1) * r, (j + 1) * r, r, r);
      }
    }
    const Eigen::MatrixXd k0 = id - 0.5 * mm;
    const Eigen::MatrixXd k0g = k0.transpose() * g0t;
    const Eigen::MatrixXd a = k0.transpose() * g00 * k0 + k0g + k0g.transpose() + gtt;
    const Eigen::MatrixXd utu = id + 0.25 * mm * mm;
    return utu.llt().solve(a).trace();
  };
  return maximise_theta(f, m);
}
}  // namespace cpu

}  // namespace moss::kernels
