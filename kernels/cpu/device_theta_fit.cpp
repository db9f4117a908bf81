// fit_block_theta_on_device (device_theta_fit.h): GeneralObjective (theta_fit.cpp) with each matrix
// product, the Cholesky factor and the triangular solves as a device step. The same formulas in the
// same order of operations, so theta is the CPU encoder's but where a rounding of the sums flips a
// comparison of the line search.
#include "device_theta_fit.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "eigen_types.h"

namespace moss::kernels::cpu {

namespace {
using cuda::FitOperand;
using cuda::FrobeniusPairs;

std::int64_t read_back_doubles(int m) { return std::max<std::int64_t>(static_cast<std::int64_t>(m) * (m + 1) / 2 + m, static_cast<std::int64_t>(m) * (m + 1)); }

/// The symmetric m x m matrix whose upper triangle v holds row by row.
Eigen::MatrixXd upper_to_symmetric(const double* v, int m) {
  Eigen::MatrixXd out(m, m);
  for (int i = 0, b = 0; i < m; ++i)
    for (int j = i; j < m; ++j, ++b) out(i, j) = out(j, i) = v[b];
  return out;
}

FitOperand transposed(FitOperand o) {
  o.transposed = true;
  return o;
}

/// An r x r double matrix of the scratch as an operand.
FitOperand square_operand(const double* x, int r) { return FitOperand{x, r, false, false, 0}; }

/// theta as the launches carry it.
cuda::FitTheta fit_theta(const std::vector<float>& t) {
  cuda::FitTheta theta;
  std::copy(t.begin(), t.end(), theta.v);
  return theta;
}
}  // namespace

DeviceGeneralObjective::DeviceGeneralObjective(cuda::ThetaGeneralSteps& steps, const float* p, std::int64_t n, const float* d, int m,
                                               int r, double* scratch)
    : steps_(steps), p_(p), d_(d), n_(n), m_(m), r_(r), s_{} {
  const std::int64_t rr = static_cast<std::int64_t>(r) * r, nr = n * r;
  for (double** x : {&s_.mm, &s_.q, &s_.c, &s_.v, &s_.mc}) *x = scratch, scratch += rr;
  for (double** x : {&s_.y, &s_.z, &s_.rt}) *x = scratch, scratch += nr;
  s_.out = scratch;
}

double DeviceGeneralObjective::value(const std::vector<float>& t) {
  FrobeniusPairs f;
  if (zero(t)) {  // tr G00 = ||P_0||^2
    f.a = f.b = block(0);
  } else {
    form(t);
    f.a = f.b = FitOperand{s_.z, r_, false, false, 0};
  }
  f.rows = static_cast<int>(n_), f.cols = r_;
  steps_.frobenius(f, s_.out);
  double v = 0;
  steps_.download(&v, s_.out, 1);
  return v;
}

void DeviceGeneralObjective::gradient(const std::vector<float>& t, std::vector<double>& out) {
  const int pairs = m_ * (m_ + 1) / 2;
  FrobeniusPairs dots;  // tr(A^T P_k), k = 1..m
  dots.b = block(1);
  dots.b_j = r_;
  dots.rows = static_cast<int>(n_), dots.cols = r_, dots.count = m_;
  std::vector<double> back(static_cast<std::size_t>(pairs + m_));
  if (zero(t)) {  // Q = K = I, M = 0, Y = P_0: df/dtheta_k = 2 tr(P_0^T P_k)
    dots.a = block(0);
    steps_.frobenius(dots, s_.out);
    steps_.download(back.data(), s_.out, static_cast<std::size_t>(m_));
    for (int k = 0; k < m_; ++k) out[static_cast<std::size_t>(k)] = 2.0 * back[static_cast<std::size_t>(k)];
    return;
  }
  form(t);
  const FitOperand rt{s_.rt, r_, false, false, 0}, rt_t{s_.rt, r_, false, true, 0};
  steps_.triangular_rows(s_.q, r_, s_.z, s_.rt, n_, true);  // R = Y Q^-1 (n x r)
  steps_.gemm(r_, r_, static_cast<int>(n_), 1.0, rt_t, block(0), 0.0, s_.v, r_);  // R^T P_0
  steps_.gemm(r_, r_, static_cast<int>(n_), 1.0, rt_t, rt, 0.0, s_.c, r_);         // C = R^T R
  steps_.gemm(r_, r_, r_, 1.0, square(s_.mm), square(s_.c), 0.0, s_.mc, r_);      // M C
  steps_.symmetrise(s_.v, s_.mc, r_);
  FrobeniusPairs tkj;  // tr(V D_kj), k <= j
  tkj.a = square(s_.v);
  tkj.b = direction_gram();
  tkj.b_i = static_cast<std::int64_t>(r_) * m_ * r_, tkj.b_j = r_;
  tkj.rows = tkj.cols = r_, tkj.count = m_, tkj.upper = true;
  steps_.frobenius(tkj, s_.out);
  dots.a = rt;
  steps_.frobenius(dots, s_.out + pairs);
  steps_.download(back.data(), s_.out, back.size());
  const Eigen::MatrixXd t_kj = upper_to_symmetric(back.data(), m_);
  const Eigen::VectorXd dm = t_kj * Eigen::Map<const Eigen::VectorXf>(t.data(), m_).cast<double>();
  for (int k = 0; k < m_; ++k) out[static_cast<std::size_t>(k)] = 2.0 * back[static_cast<std::size_t>(pairs + k)] - dm(k);
}

/// As GeneralObjective::hessian_at_zero: 2 (tr(P_i^T P_j) - tr(D_ij G00)).
std::vector<double> DeviceGeneralObjective::hessian_at_zero() {
  const int pairs = m_ * (m_ + 1) / 2;
  steps_.gemm(r_, r_, static_cast<int>(n_), 1.0, transposed(block(0)), block(0), 0.0, s_.c, r_);  // G00
  FrobeniusPairs dg;
  dg.a = square(s_.c);
  dg.b = direction_gram();
  dg.b_i = static_cast<std::int64_t>(r_) * m_ * r_, dg.b_j = r_;
  dg.rows = dg.cols = r_, dg.count = m_, dg.upper = true;
  steps_.frobenius(dg, s_.out);
  FrobeniusPairs pp;
  pp.a = pp.b = block(1);
  pp.a_i = pp.b_j = r_;
  pp.rows = static_cast<int>(n_), pp.cols = r_, pp.count = m_, pp.upper = true;
  steps_.frobenius(pp, s_.out + pairs);
  std::vector<double> back(static_cast<std::size_t>(2 * pairs));
  steps_.download(back.data(), s_.out, back.size());
  const Eigen::MatrixXd h = 2.0 * (upper_to_symmetric(back.data() + pairs, m_) - upper_to_symmetric(back.data(), m_));
  std::vector<double> out(static_cast<std::size_t>(m_ * m_));
  Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(out.data(), m_, m_) = h;
  return out;
}

bool DeviceGeneralObjective::zero(const std::vector<float>& t) {
  return std::all_of(t.begin(), t.end(), [](float v) { return v == 0.0f; });
}
/// P_i of the sample projections.
FitOperand DeviceGeneralObjective::block(int i) const { return FitOperand{p_, static_cast<std::int64_t>(m_ + 1) * r_, true, false, static_cast<std::int64_t>(i) * r_}; }
FitOperand DeviceGeneralObjective::direction_gram() const { return FitOperand{d_, static_cast<std::int64_t>(m_) * r_, true, false, 0}; }
FitOperand DeviceGeneralObjective::square(const double* x) const { return square_operand(x, r_); }

void DeviceGeneralObjective::form(const std::vector<float>& t) {
  if (t == last_) return;  // the gradient is taken where the line search just evaluated
  last_ = t;
  const cuda::FitTheta theta = fit_theta(t);
  steps_.direction_sum(d_, m_, r_, theta, s_.mm);
  steps_.combine(p_, n_, m_, r_, theta, s_.y, s_.q);                                            // Y = P_0 + P_t, Q = I
  steps_.gemm(static_cast<int>(n_), r_, r_, -0.5, block(0), square(s_.mm), 1.0, s_.y, r_);     // Y -= P_0 M / 2
  steps_.gemm(r_, r_, r_, 0.25, square(s_.mm), transposed(square(s_.mm)), 1.0, s_.q, r_);      // Q = I + M M^T / 4
  cholesky();
  steps_.triangular_rows(s_.q, r_, s_.y, s_.z, n_, false);  // Z = Y L^-T: ||Z||^2 = tr(Q^-1 Y^T Y)
}

void DeviceGeneralObjective::cholesky() {
  // Blocked, left-looking: each panel of columns takes the earlier columns' contributions in one
  // product over the device, then factors its own columns in one block.
  for (int j0 = 0; j0 < r_; j0 += cuda::kCholeskyPanel) {
    const int width = std::min(cuda::kCholeskyPanel, r_ - j0);
    if (j0 > 0) {
      const FitOperand below{s_.q, r_, false, false, static_cast<std::int64_t>(j0) * r_};  // L[j0.., 0..j0)
      steps_.gemm(r_ - j0, width, j0, -1.0, below, transposed(below), 1.0, s_.q + static_cast<std::int64_t>(j0) * r_ + j0, r_);
    }
    steps_.cholesky_panel(s_.q, r_, j0, width);
  }
}

std::int64_t device_theta_scratch(std::int64_t n, int m, int r) {
  const std::int64_t rr = static_cast<std::int64_t>(r) * r;
  return std::max(5 * rr + 3 * n * r, 9 * rr) + read_back_doubles(m);  // the objective's, or the mixing matrix's
}

void mixing_bits_on_device(cuda::ThetaGeneralSteps& steps, const std::vector<float>& theta, const float* d, const double* bg, int m, int r,
                           double* scratch, std::uint16_t* bits) {
  if (m < 1 || m > cuda::kDeviceThetaRotations || static_cast<int>(theta.size()) != m)
    throw std::invalid_argument("mixing_bits_on_device: " + std::to_string(theta.size()) + " theta values for " + std::to_string(m) +
                                " rotations (1 to " + std::to_string(cuda::kDeviceThetaRotations) + ")");
  const cuda::FitTheta th = fit_theta(theta);
  const std::int64_t rr = static_cast<std::int64_t>(r) * r;
  double *mm = scratch, *k = mm + rr, *y = k + rr, *ky = y + rr, *delta = ky + rr, *d2 = delta + rr, *inner = d2 + rr, *c = inner + rr,
         *kc = c + rr;
  auto square = [r](const double* x) { return square_operand(x, r); };
  // rotation_factors' steps: Y = F + E0 K / 2 (E0 = Ubar^T Ubar, bg's first block), Delta = M - I + KY
  // + (KY)^T, C = I - Delta / 2 + Delta^2 (3/8 I - 5/16 Delta + 1/16 Delta^2), S = [K C; theta_i C].
  steps.direction_sum(d, m, r, th, mm);
  steps.factors(mm, bg, m, r, th, k, y);
  steps.gemm(r, r, r, 0.5, FitOperand{bg, static_cast<std::int64_t>(m + 1) * r, false, false, 0}, square(k), 1.0, y, r);
  steps.gemm(r, r, r, 1.0, square(k), square(y), 0.0, ky, r);
  steps.delta(mm, ky, r, delta);
  steps.gemm(r, r, r, 1.0, square(delta), square(delta), 0.0, d2, r);
  steps.inner(delta, d2, r, inner, c);
  steps.gemm(r, r, r, 1.0, square(d2), square(inner), 1.0, c, r);
  steps.gemm(r, r, r, 1.0, square(k), square(c), 0.0, kc, r);
  steps.mix_bits(kc, c, m, r, th, bits);
}

std::vector<float> fit_block_theta_on_device(cuda::ThetaGeneralSteps& steps, const float* p, std::int64_t n, const float* d, int m,
                                             int r, double* scratch, std::span<const double> traces) {
  if (m < 1 || m > cuda::kDeviceThetaRotations)
    throw std::invalid_argument("fit_block_theta_on_device: " + std::to_string(m) + " rotations; 1 to " +
                                std::to_string(cuda::kDeviceThetaRotations) + " run on the device");
  DeviceGeneralObjective obj(steps, p, n, d, m, r, scratch);
  const std::vector<double> h = obj.hessian_at_zero();
  return maximise_theta_newton([&](const std::vector<float>& t) { return obj.value(t); },
                               [&](const std::vector<float>& t, std::vector<double>& out) { obj.gradient(t, out); },
                               Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(h.data(), m, m),
                               Eigen::Map<const Eigen::MatrixXd>(traces.data(), m, m), m);
}

std::vector<double> theta_traces(std::span<const float> dir_gram, int m, int r) {
  const Eigen::MatrixXd t = direction_traces(dir_gram, m, r);
  return {t.data(), t.data() + t.size()};
}

}  // namespace moss::kernels::cpu
