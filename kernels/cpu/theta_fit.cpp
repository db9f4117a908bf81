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

std::vector<float> maximise_theta(const std::function<double(const std::vector<float>&)>& f,
                                  const std::function<void(const std::vector<float>&, std::vector<double>&)>& grad, int m) {
  // The line search above, step for step, with the exact gradient in place of central differences.
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
    for (; step > 1e-4f; step *= 0.5f) {
      auto trial = theta;
      for (int i = 0; i < m; ++i) {
        const auto v = static_cast<float>(theta[static_cast<std::size_t>(i)] + step * g[static_cast<std::size_t>(i)] / norm);
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
  if (!(best > f0)) std::fill(theta.begin(), theta.end(), 0.0f);
  return theta;
}

std::vector<float> maximise_theta_newton(const std::function<double(const std::vector<float>&)>& f,
                                         const std::function<void(const std::vector<float>&, std::vector<double>&)>& grad,
                                         const Eigen::MatrixXd& hessian0, int m) {
  // Newton steps with the Hessian at theta = 0 (the objective is quadratic there up to O(theta^3)),
  // halved until the objective improves. Falls back to the gradient line search when -H is not
  // positive definite (theta = 0 is then not near a maximum of the quadratic model).
  Eigen::LDLT<Eigen::MatrixXd> h(-hessian0);
  if (h.info() != Eigen::Success || !h.isPositive() || (h.vectorD().array() <= 0).any()) return maximise_theta(f, grad, m);
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
// instead of their (m+1) r square Gram matrix: with D_ij = W_i^T W_j, M = sum theta_i theta_j D_ij,
// K = I - M/2, Q = I + M^2/4 = U^T U, P_t = sum theta_i P_i, G00 = P_0^T P_0, G0t = P_0^T P_t,
// Gtt = P_t^T P_t, A = K G00 K + K G0t + G0t^T K + Gtt, f = tr(Q^-1 A) and, with B = Q^-1,
// C = B A B, N = -(G00 K B + B K G00 + G0t B + B G0t^T)/2 - (M C + C M)/4 (from dK = -dM/2,
// dQ = (dM M + M dM)/4),
//   df/dtheta_k = tr(N (E_k + E_k^T)) + 2 tr(B K P_0^T P_k) + 2 tr(B P_k^T P_t),  E_k = sum_j theta_j D_kj.
// An evaluation costs O(m n r + n r^2 + r^3), a gradient about twice that; nothing is O(m^2 n r^2).
class GeneralObjective {
 public:
  GeneralObjective(const float* p, std::int64_t n, std::span<const double> dir_gram, int m, int r)
      : p_(map(p, n, static_cast<std::int64_t>(m + 1) * r).cast<double>()), dg_(dir_gram.data(), m * r, m * r), m_(m), r_(r) {
    g00_.noalias() = block(0).transpose() * block(0);
  }

  /// P_i (n x r).
  [[nodiscard]] Eigen::Block<const RowMatrixD> block(int i) const { return p_.middleCols(static_cast<Eigen::Index>(i) * r_, r_); }

  double value(const std::vector<float>& t) {
    if (zero(t)) return g00_.trace();  // K = Q = I, A = G00
    form(t);
    return llt_.solve(a_).trace();
  }

  void gradient(const std::vector<float>& t, std::vector<double>& out) {
    if (zero(t)) {  // B = K = I, E_k = 0, P_t = 0
      for (int k = 0; k < m_; ++k) out[static_cast<std::size_t>(k)] = 2.0 * (block(0).array() * block(k + 1).array()).sum();
      return;
    }
    form(t);
    const RowMatrixD id = RowMatrixD::Identity(r_, r_);
    const RowMatrixD b = llt_.solve(id);
    const RowMatrixD c = b * a_ * b;
    // N = Y + Y^T with Y = -(G00 K B + G0t B)/2 - M C/4; tr(N (E + E^T)) = tr(V E), V = 2N.
    RowMatrixD v = -(kg00_.transpose() * b + g0t_ * b) - 0.5 * mm_ * c;
    v = (v + v.transpose()).eval();
    const RowMatrixD v0 = block(0) * (k_ * b);  // tr(B K P_0^T P_k) = sum((P_0 K B) .* P_k)
    const RowMatrixD vt = pt_ * b;              // tr(B P_k^T P_t) = sum((P_t B) .* P_k)
    for (int k = 0; k < m_; ++k) {
      const double dm = (v.array() * e_[static_cast<std::size_t>(k)].transpose().array()).sum();  // tr(X Y) = sum(X .* Y^T)
      const double d0 = (v0.array() * block(k + 1).array()).sum();
      const double dt = (vt.array() * block(k + 1).array()).sum();
      out[static_cast<std::size_t>(k)] = dm + 2.0 * d0 + 2.0 * dt;
    }
  }

  /// Hessian at theta = 0: f = tr G00 + 2 sum_k theta_k tr(P_0^T P_k) + sum_ij theta_i theta_j
  /// (tr(P_i^T P_j) - tr(D_ij G00)) + O(theta^3), since Q^-1 = I + O(theta^4).
  Eigen::MatrixXd hessian_at_zero() const {
    Eigen::MatrixXd h(m_, m_);
    for (int i = 0; i < m_; ++i)
      for (int j = 0; j < m_; ++j)
        h(i, j) = 2.0 * ((block(i + 1).array() * block(j + 1).array()).sum() -
                         (dg_.block(i * r_, j * r_, r_, r_).array() * g00_.array()).sum());
    return 0.5 * (h + h.transpose());
  }

 private:
  static bool zero(const std::vector<float>& t) {
    return std::all_of(t.begin(), t.end(), [](float v) { return v == 0.0f; });
  }

  void form(const std::vector<float>& t) {
    if (t == last_) return;  // the gradient is taken where the line search just evaluated
    last_ = t;
    // One pass over the m^2 r^2 direction Gram blocks (the largest data here for many generators):
    // E_k = sum_j theta_j D_kj, kept for the gradient, and M = sum_k theta_k E_k.
    mm_.setZero(r_, r_);
    pt_.setZero(p_.rows(), r_);
    e_.resize(static_cast<std::size_t>(m_));
    for (int k = 0; k < m_; ++k) {
      RowMatrixD& e = e_[static_cast<std::size_t>(k)];
      e.setZero(r_, r_);
      for (int j = 0; j < m_; ++j)
        if (t[static_cast<std::size_t>(j)] != 0.0f) e += static_cast<double>(t[static_cast<std::size_t>(j)]) * dg_.block(k * r_, j * r_, r_, r_);
      const double tk = t[static_cast<std::size_t>(k)];
      if (tk == 0.0) continue;
      pt_ += tk * block(k + 1);
      mm_ += tk * e;
    }
    const RowMatrixD id = RowMatrixD::Identity(r_, r_);
    g0t_.noalias() = block(0).transpose() * pt_;
    k_ = id - 0.5 * mm_;
    kg00_.noalias() = k_ * g00_;
    const RowMatrixD k0g = k_ * g0t_;
    a_.noalias() = kg00_ * k_;
    a_ += k0g + k0g.transpose();
    a_.noalias() += pt_.transpose() * pt_;
    const RowMatrixD q = id + 0.25 * mm_ * mm_;
    llt_.compute(q);
  }

  RowMatrixD p_;
  Eigen::Map<const RowMatrixD> dg_;
  int m_, r_;
  RowMatrixD g00_, mm_, pt_, g0t_, k_, kg00_, a_;
  std::vector<RowMatrixD> e_;  // E_k at last_
  Eigen::LLT<RowMatrixD> llt_;
  std::vector<float> last_;
};
}  // namespace

std::vector<float> fit_block_theta(const float* p, std::int64_t n, std::span<const double> dir_gram, int m,
                                   int r) {
  if (m == 0) return {};
  GeneralObjective obj(p, n, dir_gram, m, r);
  return maximise_theta_newton([&](const std::vector<float>& t) { return obj.value(t); },
                               [&](const std::vector<float>& t, std::vector<double>& out) { obj.gradient(t, out); },
                               obj.hessian_at_zero(), m);
}
}  // namespace cpu

}  // namespace moss::kernels
