// moss_gpu_codec_bench: every codec end to end through the public library, as `moss compress` runs
// it: fit on the warm-up of 2048 tokens (gpu_fit_codec for the GPU column: its subspace products on
// the GPU; fit_codec for the CPU column), then encode + decode one chunk of T = 8192 tokens of the
// `llama` synthetic K on the GPU (gpu_roundtrip: CUDA events around encode, mos's theta fit included:
// on the device for one rotation, on the host between device steps for several) and with the Eigen CPU codec in the same run, at d = 2048 and r in {16, 64, 256}.
// Prints bytes ratio, relative error on both devices (they must agree: the check fails otherwise),
// encode/decode GB/s of bf16 input/output, and the GPU over CPU speed-up.
// Links moss::kernels statically (Eigen is header-only): runs on a GPU machine without Debian libraries.
// Options: --device cpu (CPU column only, for machines without a GPU). Exit: 0 ok or no GPU (SKIP),
// 1 GPU and CPU errors differ, 2 an error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>

#include "moss/kernels/evaluate.h"
#include "moss/kernels/gpu_codec.h"
#include "moss/kernels/synthetic.h"

namespace mk = moss::kernels;

int main(int argc, char** argv) {
  bool cpu_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc && std::string(argv[i + 1]) == "cpu") cpu_only = true, ++i;
    else {
      std::fprintf(stderr, "moss_gpu_codec_bench: unknown option %s (expected --device cpu)\n", argv[i]);
      return 2;
    }
  }
  if (!cpu_only && !mk::gpu_available()) {
    std::printf("moss_gpu_codec_bench: SKIP: no usable CUDA device\n");
    return 0;
  }
  try {
    const std::int64_t warm = 2048, tokens = 8192, d = 2048;
    mk::SyntheticSpec spec = mk::parse_synthetic_spec("llama");
    spec.dim = d, spec.tokens = warm + tokens;
    const mk::Matrix all = mk::generate_synthetic(spec, false);
    const mk::MatrixView w = all.view().slice_rows(0, warm), x = all.view().slice_rows(warm, tokens);
    std::printf("moss_gpu_codec_bench: llama K, d = %lld, T = %lld, warm-up %lld; GPU %s; CPU %s\n", static_cast<long long>(d),
                static_cast<long long>(tokens), static_cast<long long>(warm), cpu_only ? "-" : mk::gpu_device_name().c_str(),
                mk::cpu_device_name().c_str());
    std::printf("%-12s %4s %7s | %9s %9s %9s | %9s %9s %8s %8s\n", "method", "r", "ratio", "err_gpu", "err_cpu", "enc_cpu", "enc_gpu",
                "dec_gpu", "enc_x", "dec_x");
    bool ok = true;
    std::map<int, mk::TensorReport> mos2_cpu;  // by rank
    // mos/1: one rotation (the default; the diagonal path: theta and U(theta) on the device);
    // mos/1/b512: the same with a theta per 512 tokens (16 blocks: the cost of a block);
    // mos/2: two (the general path: theta Newton steps and r x r factors; the fit on the host or
    // with its objective's steps on the device, the faster for the shape); mos/2/host and
    // mos/2/device: each place alone (MOSS_GPU_THETA_FIT).
    for (const char* name : {"none", "quant", "topk", "pca", "mos/1", "mos/1/b512", "mos/2", "mos/2/host", "mos/2/device", "mos-k", "mos-k/sketch"})
      for (int r : {16, 64, 256}) {
        const std::string method(name);
        const bool ranked = method != "none" && method != "quant" && method != "topk";
        if (!ranked && r != 16) continue;
        mk::CodecConfig c;
        c.method = mk::parse_method(method.substr(0, method.find('/')));
        if (method == "mos-k/sketch") c.routing = mk::Routing::sketch;
        c.rank = r, c.rotations = method.rfind("mos/1", 0) == 0 ? 1 : 2, c.subspaces = 4, c.bits = 8, c.fraction = 0.1;
        if (method == "mos/1/b512") c.theta_block_tokens = 512;
        // Two CPU repeats: the second encodes into the first one's buffers (the steady state).
        const std::size_t place = method.rfind("mos/2/", 0) == 0 ? method.find('/', 4) : std::string::npos;
        // The places differ only on the GPU: their CPU figures are mos/2's.
        const mk::TensorReport cpu = place != std::string::npos ? mos2_cpu.at(r) : mk::evaluate_tensor(c, w, x, mk::Device::cpu, 7, 2);
        if (method == "mos/2") mos2_cpu.insert_or_assign(r, cpu);
        mk::TensorReport gpu = cpu;
        if (place != std::string::npos) ::setenv("MOSS_GPU_THETA_FIT", method.c_str() + place + 1, 1);
        if (!cpu_only) gpu = mk::evaluate_tensor(c, w, x, mk::Device::gpu, 7, 3);
        ::unsetenv("MOSS_GPU_THETA_FIT");
        const double eg = gpu.error.relative, ec = cpu.error.relative;
        const bool same = cpu_only || std::fabs(eg - ec) <= 0.01 + 0.05 * ec;
        ok = ok && same;
        std::printf("%-12s %4s %7.4f | %9.4g %9.4g %9.2f | %9.1f %9.1f %8.1f %8.1f%s\n", name, ranked ? std::to_string(r).c_str() : "-",
                    cpu.ratio, eg, ec, cpu.encode_input_bytes_per_s / 1e9, cpu_only ? 0.0 : gpu.encode_input_bytes_per_s / 1e9,
                    cpu_only ? 0.0 : gpu.decode_output_bytes_per_s / 1e9,
                    cpu_only ? 0.0 : gpu.encode_input_bytes_per_s / cpu.encode_input_bytes_per_s,
                    cpu_only ? 0.0 : gpu.decode_output_bytes_per_s / cpu.decode_output_bytes_per_s, same ? "" : "  FAIL: errors differ");
        std::fflush(stdout);
      }
    std::printf("GB/s: bf16 bytes of the chunk per second of encode (input) or decode (output); enc_x, dec_x: GPU over CPU\n%s\n",
                ok ? "PASS" : "FAIL: GPU and CPU reconstruction errors differ");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss_gpu_codec_bench: %s\n", e.what());
    return 2;
  }
}
