"""Byte-level LLaMA-style decoder with context parallelism emulated in one process.

The sequence of T tokens is split into P chunks of C = T / P tokens, one per (emulated) device. In
every attention layer a query attends to the keys/values of its own chunk exactly (they never leave
the device) and to those of earlier chunks as the receiver rebuilds them after the codec: K (before
RoPE, which the receiver applies from the positions it knows) and V go through the layer's codecs.
The score matrix is built from the exact and the rebuilt keys by a same-chunk mask, then the causal
mask; the gradient reaches the senders through the codecs (the backward reduce-scatter of dK/dV).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .codecs import Codec, make_codec


@dataclass
class ModelConfig:
    """Sizes of the decoder; vocab is 256 (bytes)."""
    layers: int = 4
    d_model: int = 128
    heads: int = 4
    ffn_hidden: int = 352
    seq_len: int = 128
    chunks: int = 4  # context-parallel degree P

    def check(self):
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError("d_model / heads must be an even integer (RoPE pairs)")
        if self.seq_len % self.chunks:
            raise ValueError(f"seq_len {self.seq_len} must be a multiple of chunks {self.chunks}")


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq_len: int, head_dim: int, base: float = 10000.0):
    """cos/sin tables [seq_len, head_dim/2] of rotary position embeddings."""
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
    ang = torch.outer(torch.arange(seq_len).float(), inv)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    """x [B, H, T, hd]: rotate (even, odd) pairs by the position angle."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    """Causal multi-head attention whose remote K/V pass through codecs."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.codec_k = Codec({"method": "none"}, d, False)
        self.codec_v = Codec({"method": "none"}, d, True)
        self.observe = False  # warm-up: feed K/V to the codecs' PCA statistics
        self.capture = None   # list: append (K, V) before RoPE, for the activation dump

    def _heads(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.cfg.heads, -1).transpose(1, 2)

    def _remote(self, codec, x):
        b, t, d = x.shape
        return codec(x.view(b, self.cfg.chunks, t // self.cfg.chunks, d)).reshape(b, t, d)

    def forward(self, x, cos, sin, same_chunk, causal):
        q, k, v = self.wq(x), self.wk(x), self.wv(x)
        if self.capture is not None:
            self.capture.append((k.detach(), v.detach()))
        if self.observe:
            for codec, t in ((self.codec_k, k), (self.codec_v, v)):
                if hasattr(codec, "observe"):
                    codec.observe(t)
        compressed = self.codec_k.active and type(self.codec_k) is not Codec
        q = apply_rope(self._heads(q), cos, sin)
        kh = apply_rope(self._heads(k), cos, sin)
        vh = self._heads(v)
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = q @ kh.transpose(-1, -2) * scale
        if compressed:
            kr = apply_rope(self._heads(self._remote(self.codec_k, k)), cos, sin)
            vr = self._heads(self._remote(self.codec_v, v))
            scores = torch.where(same_chunk, scores, q @ kr.transpose(-1, -2) * scale)
        probs = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        if compressed:
            out = probs.masked_fill(~same_chunk, 0.0) @ vh + probs.masked_fill(same_chunk, 0.0) @ vr
        else:
            out = probs @ vh
        b, h, t, hd = out.shape
        return self.wo(out.transpose(1, 2).reshape(b, t, h * hd))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(cfg.d_model), RMSNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.w1 = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.w3 = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.w2 = nn.Linear(cfg.ffn_hidden, cfg.d_model, bias=False)

    def forward(self, x, *masks):
        x = x + self.attn(self.norm1(x), *masks)
        h = self.norm2(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))  # SwiGLU


class Decoder(nn.Module):
    """Embedding (tied with the output), `layers` blocks, final RMSNorm; vocab 256."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.embed = nn.Embedding(256, cfg.d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.d_model)
        cos, sin = rope_tables(cfg.seq_len, cfg.d_model // cfg.heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        pos = torch.arange(cfg.seq_len)
        chunk = pos // (cfg.seq_len // cfg.chunks)
        self.register_buffer("same_chunk", chunk[:, None] == chunk[None, :], persistent=False)
        self.register_buffer("causal", pos[:, None] >= pos[None, :], persistent=False)

    def attach_codecs(self, method: dict):
        """Gives every layer its own K and V codec for `method` (call after the weights' init)."""
        for blk in self.blocks:
            blk.attn.codec_k = make_codec(method, self.cfg.d_model, False)
            blk.attn.codec_v = make_codec(method, self.cfg.d_model, True)

    def codecs(self):
        for blk in self.blocks:
            yield blk.attn.codec_k
            yield blk.attn.codec_v

    def set_observe(self, on: bool):
        for blk in self.blocks:
            blk.attn.observe = on

    def forward(self, idx, targets=None):
        t = idx.shape[1]
        masks = (self.cos[:t], self.sin[:t], self.same_chunk[:t, :t], self.causal[:t, :t])
        x = self.embed(idx)
        for blk in self.blocks:
            x = blk(x, *masks)
        logits = self.norm(x) @ self.embed.weight.T
        if targets is None:
            return logits
        return F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1))
