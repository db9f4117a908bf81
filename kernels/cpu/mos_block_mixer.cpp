// MosBlockMixer (mos_block_mixer.h): theta and the mixing matrix S of one mos block from its sample
// projections, by the CPU encoder's general-path fit (Newton steps on the Gram blocks).
#include <stdexcept>
#include <string>

#include "eigen_types.h"
#include "moss/kernels/mos_block_mixer.h"

namespace moss::kernels {

MosBlockMixer::MosBlockMixer(const CodecState& s) : s_(s) {
  grams_ = s.config.method == Method::mos && cpu::has_rotation_grams(s);
}

namespace {
/// S = [K C; theta_1 C; ..; theta_m C] from rotation_factors (U = Ubar (K C) + W_theta C).
void mixing_matrix(const CodecState& s, const std::vector<float>& theta, const cpu::RowMatrixD* m_theta, std::vector<float>& mix) {
  const int m = s.config.rotations, r = s.config.rank;
  if (static_cast<int>(theta.size()) != m)
    throw std::invalid_argument("MosBlockMixer: " + std::to_string(theta.size()) + " theta values for " + std::to_string(m) + " rotations");
  mix.assign(static_cast<std::size_t>((m + 1) * r * r), 0.0f);
  Eigen::Map<cpu::RowMatrixF> sm(mix.data(), (m + 1) * r, r);
  const cpu::RotationFactors f = cpu::rotation_factors(s, theta.data(), m_theta);
  sm.topRows(r).noalias() = f.k * f.c;
  for (int i = 0; i < m; ++i) sm.middleRows((i + 1) * r, r) = theta[static_cast<std::size_t>(i)] * f.c;
}
}  // namespace

void MosBlockMixer::fit(const float* p, std::int64_t n, std::vector<float>& theta, std::vector<float>& mix) const {
  if (!available()) throw std::logic_error("MosBlockMixer::fit: the state lacks the Gram blocks of fit_codec");
  cpu::RowMatrixD m_theta;  // M(theta), which rotation_factors would otherwise form again
  theta = cpu::fit_block_theta(p, n, s_.direction_gram, s_.config.rotations, s_.config.rank, &m_theta);
  mixing_matrix(s_, theta, &m_theta, mix);
}

void MosBlockMixer::mix(const std::vector<float>& theta, std::vector<float>& mix) const {
  if (!available()) throw std::logic_error("MosBlockMixer::mix: the state lacks the Gram blocks of fit_codec");
  mixing_matrix(s_, theta, nullptr, mix);
}

}  // namespace moss::kernels
