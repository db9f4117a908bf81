// GPU codec of moss::kernels against the CPU implementation (label gpu; skips without a device).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <tuple>

#include "moss/kernels/codec.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/metrics.h"
#include "moss/kernels/synthetic.h"

#ifdef MOSS_KERNELS_HAVE_CUDA
#include "codec_launch.h"
#endif

namespace mk = moss::kernels;

#ifdef MOSS_KERNELS_HAVE_CUDA
// The GEMM choice (codec_launch.h) by name, as MOSS_GPU_GEMM gives it; no device needed.
TEST(GemmKernelChoice, NamesParseAndOthersAreRefusedWithTheAcceptedNames) {
  namespace cu = mk::cuda;
  EXPECT_EQ(cu::parse_gemm_kernel("auto", "MOSS_GPU_GEMM"), cu::GemmKernel::automatic);
  EXPECT_EQ(cu::parse_gemm_kernel("moss", "MOSS_GPU_GEMM"), cu::GemmKernel::moss);
  EXPECT_EQ(cu::parse_gemm_kernel("simple", "MOSS_GPU_GEMM"), cu::GemmKernel::simple);
  EXPECT_EQ(cu::parse_gemm_kernel("cublas", "MOSS_GPU_GEMM"), cu::GemmKernel::cublas);
  for (const char* bad : {"", "cuBLAS", "tiled", "auto "}) {
    try {
      (void)cu::parse_gemm_kernel(bad, "MOSS_GPU_GEMM");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("MOSS_GPU_GEMM"), std::string::npos) << what;
      EXPECT_NE(what.find("expected auto, moss, simple or cublas"), std::string::npos) << what;
    }
  }
  const cu::GemmKernel before = cu::gemm_kernel();
  cu::set_gemm_kernel(cu::GemmKernel::simple);
  EXPECT_EQ(cu::gemm_kernel(), cu::GemmKernel::simple);
  cu::set_gemm_kernel(before);
  EXPECT_EQ(cu::gemm_kernel(), before);
}
#endif

class GpuVsCpu : public ::testing::TestWithParam<std::tuple<mk::Method, std::int64_t>> {};

TEST_P(GpuVsCpu, SameReconstructionWithinBf16Tolerance) {
  if (!mk::gpu_available()) GTEST_SKIP() << "no usable CUDA device (or moss built without CUDA)";
  const auto [method, tokens] = GetParam();
  mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,dim=320");
  s.tokens = 1024 + tokens;
  const mk::Matrix all = mk::generate_synthetic(s, false);
  mk::CodecConfig c;
  c.method = method, c.rank = 24, c.rotations = 2, c.subspaces = 3, c.theta_block_tokens = 200;
  const mk::CodecState st = mk::fit_codec(c, all.view().slice_rows(0, 1024), 3);
  const mk::MatrixView x = all.view().slice_rows(1024, tokens);
  mk::Matrix cpu(x.rows, x.cols), gpu(x.rows, x.cols);
  const mk::Encoded ec = mk::encode(st, x);
  mk::decode(st, ec, cpu.data.data());
  mk::GpuTiming timing;
  const mk::Encoded eg = mk::gpu_roundtrip(st, x, gpu.data.data(), timing);
  EXPECT_EQ(eg.wire_bytes(), ec.wire_bytes());
  const double diff = mk::reconstruction_error(cpu.view(), gpu.view()).relative;
  const double err_cpu = mk::reconstruction_error(x, cpu.view()).relative;
  const double err_gpu = mk::reconstruction_error(x, gpu.view()).relative;
  EXPECT_LT(diff, 2e-2) << "relative difference of GPU and CPU reconstructions";
  EXPECT_NEAR(err_gpu, err_cpu, 0.01 + 0.05 * err_cpu);
  EXPECT_GT(timing.encode_s, 0.0);
  // The GPU's wire encoding (its bit streams packed on the device) read by the CPU decoder gives the
  // GPU's own reconstruction: a misplaced index or code would not.
  mk::Matrix cross(x.rows, x.cols);
  mk::decode(st, eg, cross.data.data());
  EXPECT_LT(mk::reconstruction_error(gpu.view(), cross.view()).relative, 1e-2) << "CPU decode of the GPU encoding";
}

TEST(GpuMos, OneAndTwoRotationsGiveTheCpuThetaAndReconstruction) {
  // One rotation (the default, the diagonal path): theta and U(theta) on the device by the CPU
  // encoder's steps (mos_kernels.cu, theta_diagonal.h). Two and three: the CPU encoder's general-path
  // fit, on the host (MosBlockMixer) or with its objective's steps on the device (theta_general.h,
  // MOSS_GPU_THETA_FIT=device), or the faster of the two (auto). Same theta per block as the CPU
  // encoder (the sample projections differ only in fp32 summation order) and the same reconstruction.
  if (!mk::gpu_available()) GTEST_SKIP() << "no usable CUDA device (or moss built without CUDA)";
  mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,dim=320");
  s.tokens = 1024 + 600;
  const mk::Matrix all = mk::generate_synthetic(s, false);
  const mk::MatrixView x = all.view().slice_rows(1024, 600);
  for (int rotations : {1, 2, 3})
    for (const char* place : {"auto", "host", "device"}) {
      if (rotations == 1 && std::string(place) != "auto") continue;  // the diagonal path has one place
      ::setenv("MOSS_GPU_THETA_FIT", place, 1);
      const std::string where = "rotations " + std::to_string(rotations) + ", fit " + place;
      mk::CodecConfig c;
      c.method = mk::Method::mos, c.rank = 24, c.rotations = rotations, c.theta_block_tokens = 200;
      const mk::CodecState st = mk::fit_codec(c, all.view().slice_rows(0, 1024), 3);
      mk::Matrix cpu(x.rows, x.cols), gpu(x.rows, x.cols);
      const mk::Encoded ec = mk::encode(st, x);
      mk::decode(st, ec, cpu.data.data());
      mk::GpuTiming timing;
      const mk::Encoded eg = mk::gpu_roundtrip(st, x, gpu.data.data(), timing);
      ASSERT_EQ(eg.theta.size(), ec.theta.size()) << where;
      ASSERT_EQ(ec.theta.size(), static_cast<std::size_t>(3 * rotations));
      for (std::size_t i = 0; i < ec.theta.size(); ++i)
        EXPECT_NEAR(eg.theta[i], ec.theta[i], 1e-3 + 0.05 * std::abs(ec.theta[i])) << where << " theta " << i;
      EXPECT_LT(mk::reconstruction_error(cpu.view(), gpu.view()).relative, 2e-2) << where;
    }
  ::unsetenv("MOSS_GPU_THETA_FIT");
  ::setenv("MOSS_GPU_THETA_FIT", "nowhere", 1);
  mk::CodecConfig c;
  c.method = mk::Method::mos, c.rank = 8, c.rotations = 2;
  const mk::CodecState st = mk::fit_codec(c, all.view().slice_rows(0, 1024), 3);
  mk::Matrix gpu(x.rows, x.cols);
  mk::GpuTiming timing;
  EXPECT_THROW(mk::gpu_roundtrip(st, x, gpu.data.data(), timing), std::invalid_argument);
  ::unsetenv("MOSS_GPU_THETA_FIT");
}

TEST(GpuFit, TheDeviceFitGivesTheCpuFitsErrors) {
  // gpu_fit_codec: the fit's products on the device (bf16 hi + lo operands, fp32 accumulation), the
  // rest on the host. The CPU emulation of the same arithmetic is tests/kernels/fit_products_test.cpp;
  // here the device GEMMs stand in: the fitted codec must reconstruct held-out tokens as well as
  // fit_codec's (the llama spectrum has no gap at the rank, so the weakest fitted directions may
  // differ while the errors agree: fit_products_test.cpp).
  if (!mk::gpu_available()) GTEST_SKIP() << "no usable CUDA device (or moss built without CUDA)";
  mk::SyntheticSpec s = mk::parse_synthetic_spec("llama,dim=320");
  s.tokens = 1024 + 600;
  const mk::Matrix all = mk::generate_synthetic(s, false);
  const mk::MatrixView warm = all.view().slice_rows(0, 1024), x = all.view().slice_rows(1024, 600);
  for (const mk::Method m : {mk::Method::pca, mk::Method::mos, mk::Method::mos_k}) {
    mk::CodecConfig c;
    c.method = m, c.rank = 24, c.rotations = 2, c.subspaces = 3;
    const mk::CodecState cpu_state = mk::fit_codec(c, warm, 3), gpu_state = mk::gpu_fit_codec(c, warm, 3);
    ASSERT_EQ(gpu_state.basis.size(), cpu_state.basis.size()) << mk::method_name(m);
    mk::Matrix a(x.rows, x.cols), b(x.rows, x.cols);
    mk::decode(cpu_state, mk::encode(cpu_state, x), a.data.data());
    mk::decode(gpu_state, mk::encode(gpu_state, x), b.data.data());
    const double ea = mk::reconstruction_error(x, a.view()).relative, eb = mk::reconstruction_error(x, b.view()).relative;
    EXPECT_NEAR(eb, ea, 5e-3 * ea) << mk::method_name(m);
  }
  mk::CodecConfig fp32;
  fp32.method = mk::Method::pca, fp32.rank = 8, fp32.value_bytes = 4;
  EXPECT_THROW((void)mk::gpu_fit_codec(fp32, warm, 3), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Methods, GpuVsCpu,
                         ::testing::Combine(::testing::Values(mk::Method::none, mk::Method::pca, mk::Method::mos,
                                                              mk::Method::mos_k, mk::Method::topk, mk::Method::quant),
                                            ::testing::Values(std::int64_t{64}, std::int64_t{333}, std::int64_t{1000})),
                         [](const auto& param_info) {
                           std::string n(mk::method_name(std::get<0>(param_info.param)));
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n + "_T" + std::to_string(std::get<1>(param_info.param));
                         });
