// MosBlockMixer (mos_block_mixer.h): theta and the mixing matrix S of one mos block from its sample
// projections, by the CPU encoder's own fits (diagonal path, or general path with the Gram blocks).
#include <stdexcept>

#include "eigen_types.h"
#include "moss/kernels/mos_block_mixer.h"

namespace moss::kernels {

MosBlockMixer::MosBlockMixer(const CodecState& s) : s_(s) {
  if (s.config.method != Method::mos) return;
  diagonal_ = cpu::diagonal_rotation(s);
  grams_ = cpu::has_rotation_grams(s);
  if (diagonal_) {
    const Eigen::ArrayXd lambda = cpu::direction_eigenvalues(s);
    lambda_.assign(lambda.data(), lambda.data() + lambda.size());
  }
}

void MosBlockMixer::fit(const float* p, std::int64_t n, std::vector<float>& theta, std::vector<float>& mix) const {
  if (!available()) throw std::logic_error("MosBlockMixer::fit: the state has neither the diagonal form nor the Gram blocks");
  const int m = s_.config.rotations, r = s_.config.rank;
  const cpu::ConstMapF proj(p, n, static_cast<std::int64_t>(m + 1) * r);
  mix.assign(static_cast<std::size_t>((m + 1) * r * r), 0.0f);
  Eigen::Map<cpu::RowMatrixF> sm(mix.data(), (m + 1) * r, r);
  if (diagonal_) {  // eigen_codec.cpp mos_block_theta / mos_basis on the diagonal path
    const Eigen::Map<const Eigen::ArrayXd> lambda(lambda_.data(), r);
    cpu::ColumnStats stats(r);
    stats.add(proj.leftCols(r), proj.rightCols(r));
    theta.assign(1, cpu::fit_theta_diagonal(stats, lambda));
    const cpu::DiagonalFactors f = cpu::diagonal_factors(lambda, theta[0]);
    sm.topRows(r).diagonal() = f.a.matrix();
    sm.bottomRows(r).diagonal() = f.b.matrix();
    return;
  }
  cpu::RowMatrixD m_theta;  // general path: rotation_factors, U = Ubar (K C) + W_theta C
  theta = cpu::fit_block_theta(p, n, s_.direction_gram, m, r, &m_theta);
  const cpu::RotationFactors f = cpu::rotation_factors(s_, theta.data(), &m_theta);
  sm.topRows(r).noalias() = f.k * f.c;
  for (int i = 0; i < m; ++i) sm.middleRows((i + 1) * r, r) = theta[static_cast<std::size_t>(i)] * f.c;
}

}  // namespace moss::kernels
