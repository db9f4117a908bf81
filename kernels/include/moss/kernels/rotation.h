#pragma once

// The MoS rotation U(theta) = R(theta) Ubar with R(theta) = exp(S), S = sum_i theta_i A_i, taken to
// second order: R = I + S + S^2/2. The generators are A_i = W_i Ubar^T - Ubar W_i^T with W_i
// orthogonal to Ubar (CodecState::directions), so that exactly
//     S Ubar   = sum_i theta_i W_i
//     S^2 Ubar = -Ubar M(theta),   M = sum_ij theta_i theta_j W_i^T W_j   (r x r)
// and U(theta) = Ubar + sum_i theta_i W_i - Ubar M / 2 costs O(m d r + d r^2), not O(d^3).
// Second order leaves U^T U = I + M^2/4; two Newton-Schulz steps U <- U (3I - U^T U)/2 restore
// orthonormality to float precision. Both ends run this same plain C++ code on the same theta.
//
// Theta is chosen per block by the encoder to maximise the captured energy ||X U(theta)||_F^2 (so the
// reconstruction error ||X - X U U^T||_F is minimised), from the Gram matrices of P_a = X B_a with
// B = [Ubar, W_1..W_m]: a few gradient-ascent steps with backtracking, |theta_i| <= kMaxTheta and,
// with two generators or more, ||sum_i theta_i W_i||_F <= kMaxTheta (the same bound: each |theta_i|
// alone would let m generators reach sqrt(m) kMaxTheta, too far for the two Newton-Schulz steps), and
// theta = 0 (plain PCA) kept whenever it is at least as good.

#include <cstdint>
#include <span>
#include <vector>

namespace moss::kernels {

/// Largest |theta_i| the encoder uses (in units of ||W_i||_F = 1), and largest ||sum_i theta_i W_i||_F.
inline constexpr float kMaxTheta = 0.75f;

/// U(theta) (dim x rank, row-major), orthonormalised. `ubar` dim x rank, `directions` m blocks of
/// dim x rank, `theta` m values.
std::vector<float> rotated_basis(std::span<const float> ubar, std::span<const float> directions,
                                 std::span<const float> theta, std::int64_t dim, int rank);

/// U(theta) before orthonormalisation (exactly the second-order R(theta) Ubar).
std::vector<float> rotated_basis_second_order(std::span<const float> ubar,
                                              std::span<const float> directions,
                                              std::span<const float> theta, std::int64_t dim,
                                              int rank);

/// Theta maximising the energy captured by U(theta). `gram` is the (m+1)r x (m+1)r Gram matrix
/// P^T P of P = X [Ubar W_1 .. W_m] (row-major), `dir_gram` the m r x m r matrix of W_i^T W_j.
std::vector<float> fit_theta(std::span<const double> gram, std::span<const double> dir_gram,
                             int rotations, int rank);

/// Energy ||X U(theta)||^2 / tr((U^T U)) model used by fit_theta (exposed for tests).
double theta_objective(std::span<const double> gram, std::span<const double> dir_gram,
                       std::span<const float> theta, int rotations, int rank);

}  // namespace moss::kernels
