#!/usr/bin/env python3
"""analysis/dump_kv.py end to end, without the network: a stand-in `transformers` package (written
to a temporary directory, first on sys.path) serves a tiny LLaMA-shaped model through the two entry
points the script uses (AutoTokenizer, AutoModelForCausalLM.from_pretrained). The dumps must hold the
k_proj / v_proj outputs recomputed here layer by layer without hooks, and `moss compress` must read
both the .npy and the .h5 dump. Exits 77 (skipped) without torch/numpy/h5py or the moss binary.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap

try:
    import h5py  # noqa: F401
    import numpy as np
    import torch
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

SOURCE = os.environ.get("MOSS_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MOSS = os.environ.get("MOSS_BINARY", "")

# The stand-in: byte tokenizer; embedding -> N blocks (k/v projections of width 16 from d = 32,
# attention replaced by a fixed mix so that every layer sees a different input) -> logits.
STAND_IN = textwrap.dedent('''
    import torch

    class _Ids:
        def __init__(self, ids):
            self.input_ids = ids

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(name):
            return AutoTokenizer()
        def __call__(self, text, return_tensors=None):
            return _Ids(torch.tensor([list(text.encode("utf-8"))], dtype=torch.long))

    class Attention(torch.nn.Module):
        def __init__(self, d, kv):
            super().__init__()
            self.q_proj = torch.nn.Linear(d, kv, bias=False)
            self.k_proj = torch.nn.Linear(d, kv, bias=False)
            self.v_proj = torch.nn.Linear(d, kv, bias=False)
            self.o_proj = torch.nn.Linear(kv, d, bias=False)
        def forward(self, h):
            k, v = self.k_proj(h), self.v_proj(h)
            return self.o_proj(torch.tanh(self.q_proj(h) * k) + v)

    class Block(torch.nn.Module):
        def __init__(self, d, kv):
            super().__init__()
            self.self_attn = Attention(d, kv)
        def forward(self, h):
            return h + self.self_attn(h)

    class Inner(torch.nn.Module):
        def __init__(self, layers, d, kv):
            super().__init__()
            self.embed_tokens = torch.nn.Embedding(256, d)
            self.layers = torch.nn.ModuleList([Block(d, kv) for _ in range(layers)])

    class TinyCausalLM(torch.nn.Module):
        def __init__(self, layers=3, d=32, kv=16):
            super().__init__()
            torch.manual_seed(7)
            self.model = Inner(layers, d, kv)
            self.lm_head = torch.nn.Linear(d, 256, bias=False)
        def forward(self, ids, use_cache=False):
            h = self.model.embed_tokens(ids)
            for block in self.model.layers:
                h = block(h)
            return self.lm_head(h)

    class AutoModelForCausalLM:
        @staticmethod
        def from_pretrained(name, torch_dtype=None):
            return TinyCausalLM().to(torch_dtype)
''')


def expected_kv(stub_dir, text, tokens):
    sys.path.insert(0, stub_dir)
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained("tiny", torch_dtype=torch.float32).eval()
    ids = transformers.AutoTokenizer()(text).input_ids[:, :tokens]
    ks, vs = [], []
    with torch.no_grad():
        h = model.model.embed_tokens(ids)
        for block in model.model.layers:
            ks.append(block.self_attn.k_proj(h)[0].numpy())
            vs.append(block.self_attn.v_proj(h)[0].numpy())
            h = block(h)
    return np.stack(ks), np.stack(vs)


def dump(stub_dir, work, out, *extra):
    env = dict(os.environ, PYTHONPATH=stub_dir)
    cmd = [sys.executable, os.path.join(SOURCE, "analysis", "dump_kv.py"), "--model", "tiny", "--text-file",
           os.path.join(work, "text.txt"), "--tokens", "200", "--dtype", "float32", "--device", "cpu",
           "--out", out, *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def main():
    failures = []
    with tempfile.TemporaryDirectory() as work:
        stub_dir = os.path.join(work, "stub")
        os.makedirs(os.path.join(stub_dir, "transformers"))
        with open(os.path.join(stub_dir, "transformers", "__init__.py"), "w") as f:
            f.write(STAND_IN)
        text = "In the beginning God created the heaven and the earth. " * 8
        with open(os.path.join(work, "text.txt"), "w") as f:
            f.write(text)
        k_ref, v_ref = expected_kv(stub_dir, text, 200)  # [3, 200, 16]

        npy = os.path.join(work, "kv.npy")
        r = dump(stub_dir, work, npy)
        if r.returncode != 0:
            failures.append(f"dump to .npy failed: {r.stderr}")
        else:
            a = np.load(npy)
            if a.shape != (2, 3, 200, 16) or a.dtype != np.float32:
                failures.append(f".npy shape {a.shape} {a.dtype}, expected (2, 3, 200, 16) float32")
            elif not (np.allclose(a[0], k_ref, atol=1e-6) and np.allclose(a[1], v_ref, atol=1e-6)):
                failures.append(".npy values differ from the k_proj/v_proj outputs")

        h5 = os.path.join(work, "kv.h5")
        r = dump(stub_dir, work, h5, "--layers", "0,2")
        if r.returncode != 0:
            failures.append(f"dump to .h5 failed: {r.stderr}")
        else:
            with h5py.File(h5, "r") as f:
                k, v = f["k"][...], f["v"][...]
            if k.shape != (2, 200, 16) or not (np.allclose(k, k_ref[[0, 2]], atol=1e-6) and np.allclose(v, v_ref[[0, 2]], atol=1e-6)):
                failures.append(f".h5 with --layers 0,2: shape {k.shape} or values differ from layers 0 and 2")

        r = dump(stub_dir, work, os.path.join(work, "none.npy"), "--layers", "9")
        if r.returncode == 0 or "no layer among [9]" not in r.stderr:
            failures.append(f"--layers 9 should fail naming the layer: rc {r.returncode}, {r.stderr!r}")

        if MOSS and os.path.exists(MOSS):
            for path, layers in ((npy, 3), (h5, 2)):
                if not os.path.exists(path):
                    continue
                r = subprocess.run([MOSS, "compress", "--activations", path, "--method", "pca", "--rank-k", "4",
                                    "--rank-v", "4", "--device", "cpu", "--json"], capture_output=True, text=True)
                if r.returncode != 0:
                    failures.append(f"moss compress {os.path.basename(path)}: exit {r.returncode}: {r.stderr}")
                    continue
                out = json.loads(r.stdout)
                shapes = [(t["name"], t["layers"], t["dim"]) for t in out["tensors"]]
                if shapes != [("K", layers, 16), ("V", layers, 16)]:
                    failures.append(f"moss compress {os.path.basename(path)}: tensors {shapes}, expected K and V of "
                                    f"{layers} layers x 16")
        else:
            print("note: MOSS_BINARY not set; moss compress not checked")

    for f in failures:
        print("FAIL:", f)
    print("dump_kv:", "ok" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
