#!/usr/bin/env python3
"""Dump the K and V activations of a Hugging Face causal LM for `moss compress --activations`.

Writes what moss/io reads (sim/include/moss/io/activations.h):
  kv.npy  float32, shape [2, layers, tokens, kv_dim]  (index 0 = K, 1 = V), or
  kv.h5   datasets "k" and "v", float32, shape [layers, tokens, kv_dim]
K and V are the outputs of each attention layer's k_proj / v_proj (before RoPE, before any
head reshaping), i.e. exactly the tensors context parallelism exchanges (RoPE is applied on
arrival in MoS-style training and does not change the subspace structure the codecs exploit).

Example (needs torch and transformers; not run in CI):
  python3 analysis/dump_kv.py --model meta-llama/Meta-Llama-3-8B --text-file corpus.txt \
      --tokens 4096 --layers 0,8,16 --out kv.npy
  moss compress --activations kv.npy --method mos --rank-k 40 --rank-v 100
"""
import argparse
import sys

import numpy as np


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face model id or local path")
    p.add_argument("--text-file", required=True, help="plain text to run through the model")
    p.add_argument("--tokens", type=int, default=4096, help="tokens to run (one sequence)")
    p.add_argument("--layers", default="all", help="comma-separated layer indices, or 'all'")
    p.add_argument("--out", required=True, help="output .npy or .h5/.hdf5 file")
    p.add_argument("--device", default="cuda" if _cuda_available() else "cpu")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                   help="dtype the model runs in (the dump is always float32)")
    return p.parse_args(argv)


def _cuda_available():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def find_projections(model):
    """(layer index, k_proj module, v_proj module) for LLaMA/Mistral/Qwen-style attention."""
    found = []
    for name, module in model.named_modules():
        if hasattr(module, "k_proj") and hasattr(module, "v_proj"):
            found.append((module.k_proj, module.v_proj))
    if not found:
        raise SystemExit("no attention module with k_proj/v_proj found: this script supports "
                         "LLaMA-style architectures (LLaMA, Mistral, Qwen2, Gemma)")
    return list(enumerate(found))


def main(argv):
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, args.dtype)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype).to(args.device).eval()
    with open(args.text_file, encoding="utf-8") as f:
        text = f.read()
    ids = tokenizer(text, return_tensors="pt").input_ids[:, : args.tokens].to(args.device)
    if ids.shape[1] < args.tokens:
        print(f"warning: the text has only {ids.shape[1]} tokens", file=sys.stderr)

    layers = find_projections(model)
    if args.layers != "all":
        wanted = {int(i) for i in args.layers.split(",")}
        layers = [(i, kv) for i, kv in layers if i in wanted]
        if not layers:
            raise SystemExit(f"no layer among {sorted(wanted)}")

    captured = {}
    hooks = []
    for index, (k_proj, v_proj) in layers:
        for tag, module in (("k", k_proj), ("v", v_proj)):
            def hook(_module, _inputs, output, key=(tag, index)):
                captured[key] = output.detach()[0].float().cpu().numpy()  # [tokens, kv_dim]
            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(ids, use_cache=False)
    for h in hooks:
        h.remove()

    k = np.stack([captured[("k", i)] for i, _ in layers]).astype(np.float32)
    v = np.stack([captured[("v", i)] for i, _ in layers]).astype(np.float32)
    if not (np.isfinite(k).all() and np.isfinite(v).all()):
        raise SystemExit("non-finite activations: try --dtype float32")
    if args.out.endswith(".npy"):
        np.save(args.out, np.ascontiguousarray(np.stack([k, v])))
    elif args.out.endswith((".h5", ".hdf5")):
        import h5py
        with h5py.File(args.out, "w") as f:
            f.create_dataset("k", data=k)
            f.create_dataset("v", data=v)
    else:
        raise SystemExit("--out must end in .npy, .h5 or .hdf5")
    print(f"wrote {args.out}: {len(layers)} layers x {k.shape[1]} tokens x kv_dim {k.shape[2]}")


if __name__ == "__main__":
    main(sys.argv[1:])
