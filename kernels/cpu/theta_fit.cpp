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
  const int nd = m * r;
  const Eigen::MatrixXd traces = cpu::direction_traces(m, r, [&](std::int64_t row, std::int64_t col) {
    return dir_gram[static_cast<std::size_t>(row * nd + col)];
  });
  return cpu::maximise_theta([&](const std::vector<float>& t) { return theta_objective(gram, dir_gram, t, m, r); }, traces, m);
}

namespace cpu {
bool admissible_theta(const std::vector<float>& theta, const Eigen::MatrixXd& traces) {
  const auto m = static_cast<Eigen::Index>(theta.size());
  if (m < 2) return true;  // one generator: |theta| <= kMaxTheta is the bound itself
  const Eigen::VectorXd t = Eigen::Map<const Eigen::VectorXf>(theta.data(), m).cast<double>();
  const double bound = static_cast<double>(kMaxTheta) * kMaxTheta;
  return t.dot(traces * t) <= bound;
}

std::vector<float> maximise_theta(const std::function<double(const std::vector<float>&)>& f, const Eigen::MatrixXd& traces, int m) {
  // Central differences: f is cheap (r x r algebra).
  const auto central = [&f, m](const std::vector<float>& theta, std::vector<double>& grad) {
    for (int i = 0; i < m; ++i) {
      const float h = 1e-3f;
      auto tp = theta, tm = theta;
      tp[static_cast<std::size_t>(i)] += h;
      tm[static_cast<std::size_t>(i)] -= h;
      grad[static_cast<std::size_t>(i)] = (f(tp) - f(tm)) / (2.0 * h);
    }
  };
  return maximise_theta(f, central, traces, m);
}

std::vector<float> maximise_theta(const std::function<double(const std::vector<float>&)>& f,
                                  const std::function<void(const std::vector<float>&, std::vector<double>&)>& grad,
                                  const Eigen::MatrixXd& traces, int m) {
  // Gradient ascent with backtracking along the normalised gradient.
  std::vector<float> theta(static_cast<std::size_t>(m), 0.0f);
  if (m == 0) return theta;
  const double f0 = f(theta);
  double best = f0;
  float step = 0.25f;
  std::vector<double> g(static_cast<std::size_t>(m));
  for (int it = 0; it < 12 && step > 1e-4f; ++it) {
    grad(theta, g);
    double norm = 0;
    for (double v : g) norm += v * v;
    norm = std::sqrt(norm);
    if (norm == 0) break;
    bool improved = false;
    for (; step > 1e-4f; step *= 0.5f) {  // backtracking along the normalised gradient
      auto trial = theta;
      for (int i = 0; i < m; ++i) {
        const auto v = static_cast<float>(theta[static_cast<std::size_t>(i)] + step * g[static_cast<std::size_t>(i)] / norm);
        trial[static_cast<std::size_t>(i)] = std::clamp(v, -kMaxTheta, kMaxTheta);
      }
      if (!admissible_theta(trial, traces)) continue;  // a shorter step may be
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

std::vector<float> maximise_theta_newton(const std::function<double(const std::vector<float>&)>& f,
                                         const std::function<void(const std::vector<float>&, std::vector<double>&)>& grad,
                                         const Eigen::MatrixXd& hessian0, const Eigen::MatrixXd& traces, int m) {
  // Newton steps with the Hessian at theta = 0 (the objective is quadratic there up to O(theta^3)),
  // halved until the objective improves. Falls back to the gradient line search when -H is not
  // positive definite (theta = 0 is then not near a maximum of the quadratic model).
  Eigen::LDLT<Eigen::MatrixXd> h(-hessian0);
  if (h.info() != Eigen::Success || !h.isPositive() || (h.vectorD().array() <= 0).any()) return maximise_theta(f, grad, traces, m);
  std::vector<float> theta(static_cast<std::size_t>(m), 0.0f);
  const double f0 = f(theta);
  double best = f0;
  std::vector<double> g(static_cast<std::size_t>(m));
  for (int it = 0; it < 16; ++it) {
    grad(theta, g);
    const Eigen::VectorXd delta = h.solve(Eigen::Map<const Eigen::VectorXd>(g.data(), m));
    // Converged (or not finite): the line search resolves steps of 1e-4 too.
    if (!(delta.lpNorm<Eigen::Infinity>() > 1e-4)) break;
    bool improved = false, full = false;
    for (double s = 1.0; s >= 1.0 / 64; s *= 0.5) {
      auto trial = theta;
      for (int i = 0; i < m; ++i)
        trial[static_cast<std::size_t>(i)] = std::clamp(static_cast<float>(theta[static_cast<std::size_t>(i)] + s * delta(i)), -kMaxTheta, kMaxTheta);
      if (!admissible_theta(trial, traces)) continue;  // a shorter step may be
      const double ft = f(trial);
      if (ft > best) {
        best = ft, theta = trial, improved = true;
        full = s == 1.0;
        break;
      }
    }
    // From theta = 0, where hessian0 is exact, a full step of at most 1e-2 lands within O(1e-4) of
    // the maximum (the objective is quadratic up to O(theta^3)): the resolution of the line search.
    if (!improved || (it == 0 && full && delta.lpNorm<Eigen::Infinity>() <= 1e-2)) break;
  }
  if (!(best > f0)) std::fill(theta.begin(), theta.end(), 0.0f);  // plain PCA is never beaten by a worse theta
  return theta;
}

namespace {
// theta_objective from the sample projections P = [P_0 P_1 .. P_m] themselves (n x r blocks, double)
// instead of their (m+1) r square Gram matrix. With D_ij = W_i^T W_j, M = sum theta_i theta_j D_ij,
// K = I - M/2, Q = I + M^2/4 = U^T U = L L^T, P_t = sum theta_i P_i, Y = P_0 K + P_t (n x r):
//   A = Y^T Y,  f = tr(Q^-1 A) = ||L^-1 Y^T||_F^2.
// With R = Y Q^-1 (n x r), C = Q^-1 A Q^-1 = R^T R, dK = -dM/2, dQ = (dM M + M dM)/4 and
// dM/dtheta_k = E_k + E_k^T, E_k = sum_j theta_j D_kj:
//   df/dtheta_k = 2 tr(R^T P_k) - tr(V E_k),  V = R^T P_0 + P_0^T R + (M C + C M)/2 (symmetric),
// and tr(V E_k) = sum_j theta_j t_kj with t_kj = tr(V D_kj) = t_jk. Every product is n x r x r
// (n <= 512 / m sampled tokens) except M^2 (a symmetric rank-r update), the Cholesky factor and M C:
// about 2 r^3 + 4 n r^2 per evaluation and gradient, against 12 r^3 when A was formed as r x r
// products. The m^2 r^2 direction Gram blocks are the largest data here for many generators (m = 8,
// r = 256: 33.5 MB of doubles): they are read for i <= j only (D_ji = D_ij^T), half a pass for the
// Hessian at 0, half a pass per new theta (M) and half a pass per gradient (t_kj). Keeping the m
// matrices E_k instead of the second half pass was slower (m = 8: 4 MB of E_k updated per block).
class GeneralObjective {
 public:
  GeneralObjective(const float* p, std::int64_t n, std::span<const float> dir_gram, int m, int r)
      : p_(map(p, n, static_cast<std::int64_t>(m + 1) * r).cast<double>()), dg_(dir_gram.data(), m * r, m * r), m_(m), r_(r) {
    g00_.setZero(r, r);
    g00_.selfadjointView<Eigen::Lower>().rankUpdate(block(0).transpose());
    g00_ = g00_.selfadjointView<Eigen::Lower>();
  }

  /// P_i (n x r).
  [[nodiscard]] Eigen::Block<const RowMatrixD> block(int i) const { return p_.middleCols(static_cast<Eigen::Index>(i) * r_, r_); }

  double value(const std::vector<float>& t) {
    if (zero(t)) return g00_.trace();  // K = Q = I, A = G00
    form(t);
    return z_.squaredNorm();
  }

  void gradient(const std::vector<float>& t, std::vector<double>& out) {
    if (zero(t)) {  // Q = K = I, M = 0, Y = P_0
      for (int k = 0; k < m_; ++k) out[static_cast<std::size_t>(k)] = 2.0 * (block(0).array() * block(k + 1).array()).sum();
      return;
    }
    form(t);
    const RowMatrixD rt = llt_.matrixU().solve(z_);  // R^T = Q^-1 Y^T = L^-T L^-1 Y^T (r x n)
    RowMatrixD v, c, mc;
    v.noalias() = rt * block(0);
    c.noalias() = rt * rt.transpose();
    mc.noalias() = mm_ * c;
    v = (v + v.transpose() + 0.5 * (mc + mc.transpose())).eval();
    Eigen::MatrixXd tkj = Eigen::MatrixXd::Zero(m_, m_);  // tr(V D_kj) = tr(V D_jk), V symmetric
    for_upper_rows(dg_, m_, r_, [](int) { return true; },
                   [&](int k, int j, int p, const auto& row) { tkj(k, j) += v.row(p).dot(row); });
    tkj.triangularView<Eigen::StrictlyLower>() = tkj.transpose();
    const Eigen::VectorXd dm = tkj * Eigen::Map<const Eigen::VectorXf>(t.data(), m_).cast<double>();
    for (int k = 0; k < m_; ++k)
      out[static_cast<std::size_t>(k)] = 2.0 * (rt.transpose().array() * block(k + 1).array()).sum() - dm(k);
  }

  /// Hessian at theta = 0: f = tr G00 + 2 sum_k theta_k tr(P_0^T P_k) + sum_ij theta_i theta_j
  /// (tr(P_i^T P_j) - tr(D_ij G00)) + O(theta^3), since Q^-1 = I + O(theta^4). Symmetric: i <= j only.
  Eigen::MatrixXd hessian_at_zero() const {
    Eigen::MatrixXd dg00 = Eigen::MatrixXd::Zero(m_, m_);  // tr(D_ij G00)
    for_upper_rows(dg_, m_, r_, [](int) { return true; },
                   [&](int i, int j, int p, const auto& row) { dg00(i, j) += g00_.row(p).dot(row); });
    Eigen::MatrixXd h(m_, m_);
    for (int i = 0; i < m_; ++i)
      for (int j = i; j < m_; ++j) h(i, j) = h(j, i) = 2.0 * ((block(i + 1).array() * block(j + 1).array()).sum() - dg00(i, j));
    return h;
  }

  /// The last theta at which M, Y and Q were formed (empty before any non-zero evaluation), and M there.
  [[nodiscard]] const std::vector<float>& last_theta() const { return last_; }
  [[nodiscard]] const RowMatrixD& last_m() const { return mm_; }

 private:
  static bool zero(const std::vector<float>& t) {
    return std::all_of(t.begin(), t.end(), [](float v) { return v == 0.0f; });
  }

  void form(const std::vector<float>& t) {
    if (t == last_) return;  // the gradient is taken where the line search just evaluated
    last_ = t;
    mm_ = direction_gram_sum(dg_, t.data(), m_, r_);
    // Y = P_0 K + P_t = P_0 + P_t - (P_0 M)/2.
    y_ = block(0);
    for (int k = 0; k < m_; ++k)
      if (t[static_cast<std::size_t>(k)] != 0.0f) y_ += static_cast<double>(t[static_cast<std::size_t>(k)]) * block(k + 1);
    y_.noalias() -= 0.5 * (block(0) * mm_);
    RowMatrixD q = RowMatrixD::Identity(r_, r_);
    q.selfadjointView<Eigen::Lower>().rankUpdate(mm_, 0.25);  // I + M M^T / 4 = I + M^2 / 4
    llt_.compute(q);
    z_ = llt_.matrixL().solve(y_.transpose());  // L^-1 Y^T (r x n)
  }

  RowMatrixD p_;
  ConstMapF dg_;
  int m_, r_;
  RowMatrixD g00_, mm_, y_, z_;
  Eigen::LLT<RowMatrixD, Eigen::Lower> llt_;
  std::vector<float> last_;
};
}  // namespace

RowMatrixD direction_gram_sum(const ConstMapF& dg, const float* theta, int m, int r) {
  // M = sum_i theta_i^2 D_ii + S + S^T, S = sum_{i<j} theta_i theta_j D_ij: the blocks i <= j only.
  RowMatrixD mm = RowMatrixD::Zero(r, r), upper = RowMatrixD::Zero(r, r);
  for_upper_rows(dg, m, r, [&](int i) { return theta[i] != 0.0f; }, [&](int i, int j, int p, const auto& row) {
    const double c = static_cast<double>(theta[i]) * theta[j];
    if (c != 0.0) (j == i ? mm : upper).row(p) += c * row;
  });
  mm += upper + upper.transpose();
  return mm;
}

Eigen::MatrixXd direction_traces(std::span<const float> dir_gram, int m, int r) {
  const std::int64_t nd = static_cast<std::int64_t>(m) * r;
  return direction_traces(m, r, [&](std::int64_t row, std::int64_t col) { return static_cast<double>(dir_gram[static_cast<std::size_t>(row * nd + col)]); });
}

std::vector<float> fit_block_theta(const float* p, std::int64_t n, std::span<const float> dir_gram, int m,
                                   int r, RowMatrixD* m_at_theta) {
  if (m == 0) return {};
  GeneralObjective obj(p, n, dir_gram, m, r);
  std::vector<float> theta = maximise_theta_newton([&](const std::vector<float>& t) { return obj.value(t); },
                               [&](const std::vector<float>& t, std::vector<double>& out) { obj.gradient(t, out); },
                               obj.hessian_at_zero(), direction_traces(dir_gram, m, r), m);
  if (m_at_theta != nullptr) {
    if (obj.last_theta() == theta)  // usually: the accepted step is the last evaluation
      *m_at_theta = obj.last_m();
    else
      *m_at_theta = direction_gram_sum(ConstMapF(dir_gram.data(), m * r, m * r), theta.data(), m, r);
  }
  return theta;
}
}  // namespace cpu

}  // namespace moss::kernels
