#!/usr/bin/python3
"""The codecs send exactly the bytes kernels/ sends: Encoded.wire_bytes() of a real encoded chunk equals
the closed form, and equals `moss compress --activations ... --json` "sent_bytes" on the same file."""
import json
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import calib_common
import numpy as np
import torch
from moss_calibrate.codecs import make_codec, wire_bytes

METHODS = [{"method": "none"},
           {"method": "pca", "rank_k": 5, "rank_v": 12},
           {"method": "mos", "rank_k": 8, "rank_v": 8, "rotations": 1},
           {"method": "mos", "rank_k": 4, "rank_v": 6, "rotations": 2},
           {"method": "topk", "fraction": 0.1},
           {"method": "topk", "fraction": 0.37},
           {"method": "quant", "bits": 4},
           {"method": "quant", "bits": 8}]
LAYERS, TOKENS, DIM = 2, 50, 48  # odd sizes: bit-packing remainders, measured half = 25 tokens


def low_rank(gen, tokens, dim):
    """Activations with a decaying spectrum, like K/V."""
    return torch.randn(tokens, dim, generator=gen) @ torch.diag(torch.logspace(0, -2, dim)) @ torch.linalg.qr(
        torch.randn(dim, dim, generator=gen)).Q


def sent_bytes(method, kv):
    """What our codecs send for `moss compress`'s protocol: per layer, fit on the first half of the tokens,
    encode the rest as one chunk; summed over layers, K and V."""
    total = 0
    warm = kv.shape[2] // 2
    for is_v in (False, True):
        for layer in range(kv.shape[1]):
            x = kv[int(is_v), layer]
            codec = make_codec(method, x.shape[-1], is_v)
            if hasattr(codec, "observe"):
                codec.observe(x[:warm])
                codec.fit()
            enc = codec.encode(x[warm:][None])  # one chunk
            n = enc.wire_bytes()
            assert n == wire_bytes(method, x.shape[0] - warm, x.shape[-1], is_v), (method, n)
            total += n
    return total


class WireBytesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        gen = torch.Generator().manual_seed(7)
        cls.kv = torch.stack([torch.stack([low_rank(gen, TOKENS, DIM) for _ in range(LAYERS)]) for _ in range(2)])

    def test_encoded_matches_closed_form(self):
        for method in METHODS:
            for chunks, tokens in ((1, 1), (3, 7), (2, 33)):
                for is_v in (False, True):
                    codec = make_codec(method, DIM, is_v)
                    x = low_rank(torch.Generator().manual_seed(tokens), chunks * tokens, DIM)
                    if hasattr(codec, "observe"):
                        codec.observe(x)
                        codec.fit()
                    enc = codec.encode(x.view(chunks, tokens, DIM))
                    self.assertEqual(enc.wire_bytes(), wire_bytes(method, tokens, DIM, is_v), (method, tokens))

    def test_agrees_with_moss_compress(self):
        if not os.access(calib_common.MOSS_BINARY, os.X_OK):
            self.skipTest(f"moss binary not built ({calib_common.MOSS_BINARY}); build the tree to run this check")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "kv.npy"
            np.save(path, self.kv.numpy().astype(np.float32))  # [2, layers, tokens, dim]: a K/V pair per layer
            for method in METHODS:
                flags = ["--method", method["method"]]
                for key, flag in (("rank_k", "--rank-k"), ("rank_v", "--rank-v"), ("rotations", "--rotations"),
                                  ("fraction", "--fraction"), ("bits", "--bits")):
                    if key in method:
                        flags += [flag, str(method[key])]
                out = subprocess.run([calib_common.MOSS_BINARY, "compress", "--activations", str(path), *flags,
                                      "--json"], capture_output=True, text=True)
                self.assertEqual(out.returncode, 0, out.stderr)
                report = json.loads(out.stdout)
                self.assertEqual(report["sent_bytes"], sent_bytes(method, self.kv), method)
                self.assertEqual(report["raw_bytes"], 2 * 2 * LAYERS * (TOKENS - TOKENS // 2) * DIM, method)


class ReconstructionTest(unittest.TestCase):
    def test_full_rank_is_lossless_and_topk_keeps_largest(self):
        x = low_rank(torch.Generator().manual_seed(3), 64, DIM)
        for method in ({"method": "pca", "rank_k": DIM, "rank_v": DIM},
                       {"method": "mos", "rank_k": DIM, "rank_v": DIM, "rotations": 1},
                       {"method": "topk", "fraction": 1.0}, {"method": "quant", "bits": 8}):
            codec = make_codec(method, DIM, False)
            if hasattr(codec, "observe"):
                codec.observe(x)
                codec.fit()
            err = float((codec(x.view(4, 16, DIM)).reshape(64, DIM) - x).norm() / x.norm())
            self.assertLess(err, 0.01, method)  # bf16 / int8 rounding only

    def test_lower_rank_larger_error(self):
        x = low_rank(torch.Generator().manual_seed(4), 256, DIM)
        errs = []
        for r in (32, 16, 4):
            codec = make_codec({"method": "pca", "rank_k": r, "rank_v": r}, DIM, False)
            codec.observe(x)
            codec.fit()
            errs.append(float((codec(x.view(8, 32, DIM)).reshape(256, DIM) - x).norm()))
        self.assertLess(errs[0], errs[1])
        self.assertLess(errs[1], errs[2])


if __name__ == "__main__":
    calib_common.main()
