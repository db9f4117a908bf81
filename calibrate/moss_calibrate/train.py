"""One training run: a model, one compression method, one seed.

Same seed => same initial weights (codecs are attached after the weights are drawn), same batches
(their own generator) and the same held-out windows, so runs differ only by the compression.
Subspace methods (pca, mos) train uncompressed for `compress_warmup_steps` while their PCA statistics
are gathered, then compress to the end; topk and quant compress from the first step.
"""
import math
import time
from dataclasses import asdict

import torch

from .codecs import wire_bytes
from .data import Corpus
from .model import Decoder, ModelConfig

TRAIN_DEFAULTS = {
    "steps": 300, "batch": 16, "lr": 3e-3, "min_lr_fraction": 0.1, "lr_warmup_steps": 20,
    "weight_decay": 0.1, "grad_clip": 1.0, "eval_every": 20, "eval_sequences": 64,
    "compress_warmup_steps": 30,
}


def method_label(m: dict) -> str:
    """Short name of a method, e.g. "mos-r8-8", "topk-0.1", "quant-4b"."""
    name = m["method"]
    if name in ("pca", "mos"):
        return f"{name}-r{m['rank_k']}-{m['rank_v']}" + (f"-rot{m.get('rotations', 1)}" if name == "mos" and m.get("rotations", 1) != 1 else "")
    if name == "topk":
        return f"topk-{m['fraction']:g}"
    if name == "quant":
        return f"quant-{m['bits']}b"
    return name


def lr_at(step: int, t: dict) -> float:
    """Linear warm-up, then cosine decay to min_lr_fraction of the peak."""
    if step < t["lr_warmup_steps"]:
        return t["lr"] * (step + 1) / t["lr_warmup_steps"]
    p = (step - t["lr_warmup_steps"]) / max(1, t["steps"] - t["lr_warmup_steps"])
    return t["lr"] * (t["min_lr_fraction"] + (1 - t["min_lr_fraction"]) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def heldout_loss(model: Decoder, batches, device="cpu") -> float:
    model.eval()
    total = sum(float(model(x.to(device), y.to(device))) * x.numel() for x, y in batches)
    model.train()
    return total / sum(x.numel() for x, _ in batches)


def make_optimizer(model: Decoder, t: dict):
    """AdamW; weight decay on matrices only (not norms, embeddings' gains or theta-head biases)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                              {"params": rest, "weight_decay": 0.0}], lr=t["lr"], betas=(0.9, 0.95))


def train_run(cfg: ModelConfig, t: dict, method: dict, seed: int, corpus: Corpus, log=None, keep_model=False,
              device="cpu"):
    """Trains one run; returns its record (curves, wall time, bytes) and, if asked, the model."""
    t = {**TRAIN_DEFAULTS, **t}
    torch.manual_seed(seed)
    model = Decoder(cfg)
    model.attach_codecs(method)
    model.to(device)
    opt = make_optimizer(model, t)
    gen = torch.Generator().manual_seed(seed)
    heldout = corpus.heldout_batches(t["eval_sequences"], cfg.seq_len, t["batch"])
    subspace = method["method"] in ("pca", "mos")
    warm = t["compress_warmup_steps"] if subspace else 0
    model.set_observe(subspace)
    tokens_per_step = t["batch"] * cfg.seq_len
    rec = {"label": method_label(method), "method": method, "seed": seed, "model": asdict(cfg), "training": t,
           "train": {"tokens": [], "loss": []}, "heldout": {"tokens": [0], "loss": [heldout_loss(model, heldout, device)]}}
    start = time.time()
    for step in range(t["steps"]):
        if subspace and step == warm:
            model.set_observe(False)
            for codec in model.codecs():
                codec.fit()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, t)
        x, y = corpus.batch(gen, t["batch"], cfg.seq_len)
        loss = model(x.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
        opt.step()
        tokens = (step + 1) * tokens_per_step
        rec["train"]["tokens"].append(tokens)
        rec["train"]["loss"].append(float(loss))
        if (step + 1) % t["eval_every"] == 0 or step + 1 == t["steps"]:
            rec["heldout"]["tokens"].append(tokens)
            rec["heldout"]["loss"].append(heldout_loss(model, heldout, device))
            if log:
                log(f"{rec['label']} seed {seed}: step {step + 1}/{t['steps']} train {float(loss):.4f} "
                    f"held-out {rec['heldout']['loss'][-1]:.4f} ({time.time() - start:.0f} s)")
    rec["wall_s"] = time.time() - start
    chunk = cfg.seq_len // cfg.chunks
    sent = sum(wire_bytes(method, chunk, cfg.d_model, is_v) for is_v in (False, True))
    raw = 2 * 2 * chunk * cfg.d_model
    rec["bytes_per_chunk_per_layer"] = {"sent": sent, "raw": raw, "ratio": sent / raw, "chunk_tokens": chunk}
    return (rec, model) if keep_model else rec


@torch.no_grad()
def capture_kv(model: Decoder, corpus: Corpus, sequences: int, batch: int, device="cpu"):
    """K (before RoPE) and V of every layer on held-out windows: tensor [2, layers, tokens, d_model]."""
    for blk in model.blocks:
        blk.attn.capture = []
    model.eval()
    for x, _ in corpus.heldout_batches(sequences, model.cfg.seq_len, batch):
        model(x.to(device))
    per_layer = []
    for blk in model.blocks:
        ks = torch.cat([k.reshape(-1, k.shape[-1]) for k, _ in blk.attn.capture])
        vs = torch.cat([v.reshape(-1, v.shape[-1]) for _, v in blk.attn.capture])
        per_layer.append(torch.stack((ks, vs)))
        blk.attn.capture = None
    return torch.stack(per_layer, dim=1).cpu()
