// MosBlockMixer (mos_block_mixer.h): theta and the mixing matrix S of one mos block from its sample
// projections, by the CPU encoder's general-path fit (Newton steps on the Gram blocks).
#include <stdexcept>

#include "eigen_types.h"
#include "moss/kernels/mos_block_mixer.h"

namespace moss::kernels {

MosBlockMixer::MosBlockMixer(const CodecState& s) : s_(s) {
  grams_ = s.config.method == Method::mos && cpu::has_rotation_grams(s);
}

void MosBlockMixer::fit(const float* p, std::int64_t n, std::vector<float>& theta, std::vector<float>& mix) const {
  if (!available()) throw std::logic_error("MosBlockMixer::fit: the state lacks the Gram blocks of fit_codec");
  const int m = s_.config.rotations, r = s_.config.rank;
  mix.assign(static_cast<std::size_t>((m + 1) * r * r), 0.0f);
  Eigen::Map<cpu::RowMatrixF> sm(mix.data(), (m + 1) * r, r);
  cpu::RowMatrixD m_theta;  // rotation_factors: U = Ubar (K C) + W_theta C
  theta = cpu::fit_block_theta(p, n, s_.direction_gram, m, r, &m_theta);
  const cpu::RotationFactors f = cpu::rotation_factors(s_, theta.data(), &m_theta);
  sm.topRows(r).noalias() = f.k * f.c;
  for (int i = 0; i < m; ++i) sm.middleRows((i + 1) * r, r) = theta[static_cast<std::size_t>(i)] * f.c;
}

}  // namespace moss::kernels
