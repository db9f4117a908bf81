"""K/V compression as it travels between context-parallel chunks, trained end to end.

Each codec turns one chunk of one tensor (K before RoPE, or V), shape [..., C, d], into exactly what
kernels/ puts on the wire (kernels/include/moss/kernels/codec.h), then rebuilds it:

    none   C*d bf16 values                                  (here: passed through exactly, fp32)
    pca    Z = X U, C*r bf16 values                          U fixed (PCA of the warm-up)
    mos    Z = X U(theta), C*r bf16 + `rotations` fp32 theta  U(theta) = R(theta) Ubar, second order
    topk   k = ceil(fraction*d) bf16 values + k indices of ceil(log2 d) bits per token
    quant  C*d codes of `bits` bits + one bf16 scale per token (symmetric, clamp to +-qmax)

`Encoded.wire_bytes()` counts what an encoded chunk sends, like Encoded::wire_bytes() in C++;
`wire_bytes()` is the closed form of kernels/reference/wire_format.cpp (encoded_bytes).

Gradients: pca/mos are linear in X, so dX = dX_hat U U^T (the backward message is r-dimensional too);
topk passes the gradient of the kept entries; quant is straight-through for the rounding and the
gradient message is itself quantised with the same bits (it travels back over the same link).
bf16 rounding of values is straight-through.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

VALUE_BYTES = 2  # bf16 on the wire


def index_bits(choices: int) -> int:
    """ceil(log2 choices), 0 for choices <= 1 (kernels: index_bits)."""
    bits = 0
    while (1 << bits) < choices:
        bits += 1
    return bits


def topk_count(fraction: float, dim: int) -> int:
    """Entries kept per token: clamp(ceil(fraction * dim), 1, dim) (kernels: topk_count)."""
    return max(1, min(dim, math.ceil(fraction * dim - 1e-9)))


def qmax_of(bits: int) -> int:
    """Largest code magnitude of symmetric `bits`-bit quantisation."""
    return 127 if bits == 8 else 7


def wire_bytes(method: dict, tokens: int, dim: int, is_v: bool = False) -> int:
    """Bytes one chunk of `tokens` x `dim` (one tensor) sends: closed form of encoded_bytes()."""
    name = method["method"]
    t, d = tokens, dim
    rank = method.get("rank_v" if is_v else "rank_k", 0)
    if name == "none":
        return VALUE_BYTES * t * d
    if name == "pca":
        return VALUE_BYTES * t * rank
    if name == "mos":
        return VALUE_BYTES * t * rank + 4 * method.get("rotations", 1)  # one theta per chunk
    if name == "topk":
        k = topk_count(method["fraction"], d)
        return VALUE_BYTES * t * k + (t * k * index_bits(d) + 7) // 8
    if name == "quant":
        return (t * d * method["bits"] + 7) // 8 + 2 * t
    raise ValueError(f"unknown method {name!r}: expected none, pca, mos, topk or quant")


@dataclass
class Encoded:
    """What travels for a batch of chunks; leading dims [..., C] index chunks and their tokens."""
    chunks: int                            # number of chunks held (product of the leading dims)
    values: Optional[torch.Tensor] = None  # bf16-exact values: coefficients / kept entries
    theta: Optional[torch.Tensor] = None   # mos: [..., rotations] fp32
    scales: Optional[torch.Tensor] = None  # quant: [..., C] bf16-exact
    packed_bits: int = 0                   # bits of indices / codes per chunk (bit-packed)
    indices: Optional[torch.Tensor] = None # topk: [..., C, k] positions (travel in packed_bits)
    codes: Optional[torch.Tensor] = None   # quant: [..., C, d] integer codes (travel in packed_bits)

    def wire_bytes(self) -> int:
        """Bytes of one chunk on the wire: values*2 + packed + 4*theta + 2*scales."""
        n = 0
        if self.values is not None:
            n += VALUE_BYTES * self.values.numel() // self.chunks
        if self.theta is not None:
            n += 4 * self.theta.numel() // self.chunks
        if self.scales is not None:
            n += 2 * self.scales.numel() // self.chunks
        return n + (self.packed_bits + 7) // 8


def to_bf16(x: torch.Tensor) -> torch.Tensor:
    """x rounded to bf16 (kept as fp32), straight-through for the gradient."""
    return x + (x.to(torch.bfloat16).to(x.dtype) - x).detach()


class Codec(nn.Module):
    """Identity codec ("none"): the base class of every method."""
    needs_fit = False

    def __init__(self, method: dict, dim: int, is_v: bool):
        super().__init__()
        self.method, self.dim, self.is_v = method, dim, is_v
        self.active = not self.needs_fit

    def encode(self, x: torch.Tensor) -> Encoded:
        return Encoded(chunks=x[..., 0, 0].numel(), values=x)

    def decode(self, e: Encoded) -> torch.Tensor:
        return e.values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., C, d] -> what the receiving chunks rebuild (x itself while inactive)."""
        return self.decode(self.encode(x)) if self.active else x


class Subspace(Codec):
    """pca (rotations = 0) and MoS: Z = X U(theta), rebuilt as Z U(theta)^T.

    U(theta) = R(theta) Ubar with R = exp(sum_i theta_i A_i) to second order and generators
    A_i = W_i Ubar^T - Ubar W_i^T (W_i orthonormal, orthogonal to Ubar: the next principal directions
    of the warm-up). Then A Ubar = sum theta_i W_i and A^2 Ubar = -Ubar sum theta_i theta_j W_i^T W_j,
    so U(theta) costs O(d r), not O(d^2). theta comes from a linear head on the chunk mean of X
    (zero-initialised: MoS starts as PCA) and is sent in fp32.
    """
    needs_fit = True

    def __init__(self, method: dict, dim: int, is_v: bool):
        super().__init__(method, dim, is_v)
        self.rank = method["rank_v" if is_v else "rank_k"]
        if not 1 <= self.rank <= dim:
            raise ValueError(f"rank {self.rank} must be in [1, {dim}]")
        self.rotations = method.get("rotations", 1) if method["method"] == "mos" else 0
        self.register_buffer("ubar", torch.zeros(dim, self.rank))
        self.register_buffer("dirs", torch.zeros(self.rotations, dim, self.rank))
        self.register_buffer("cov", torch.zeros(dim, dim, dtype=torch.float64))
        self.head = nn.Linear(dim, self.rotations) if self.rotations else None
        if self.head is not None:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def observe(self, x: torch.Tensor) -> None:
        """Adds x^T x of a warm-up batch (uncentred: the codec sends no mean)."""
        flat = x.detach().reshape(-1, self.dim).double()
        self.cov += flat.T @ flat

    def fit(self) -> None:
        """Ubar = top-r eigenvectors of the warm-up second moment; W_i = the next blocks of r
        eigenvectors (orthonormal, orthogonal to Ubar), zero columns where the dimension runs out."""
        _, vecs = torch.linalg.eigh(self.cov)
        vecs = vecs.flip(1).float()  # descending eigenvalues
        self.ubar.copy_(vecs[:, :self.rank])
        self.dirs.zero_()
        for i in range(self.rotations):
            block = vecs[:, (i + 1) * self.rank:(i + 2) * self.rank]
            self.dirs[i, :, :block.shape[1]] = block
        self.active = True

    def basis(self, theta: Optional[torch.Tensor]) -> torch.Tensor:
        """U(theta): [d, r] for pca, [..., d, r] for theta [..., rotations]."""
        if theta is None:
            return self.ubar
        gram = torch.einsum("idr,jds->ijrs", self.dirs, self.dirs)            # W_i^T W_j
        quad = torch.einsum("...i,...j,ijrs->...rs", theta, theta, gram)      # sum theta_i theta_j W_i^T W_j
        lin = torch.einsum("...i,idr->...dr", theta, self.dirs)
        return self.ubar + lin - 0.5 * self.ubar @ quad

    def encode(self, x: torch.Tensor) -> Encoded:
        theta = self.head(x.mean(dim=-2)) if self.head is not None else None
        z = to_bf16(x @ self.basis(theta))
        return Encoded(chunks=x[..., 0, 0].numel(), values=z, theta=theta)

    def decode(self, e: Encoded) -> torch.Tensor:
        return e.values @ self.basis(e.theta).transpose(-1, -2)


class TopK(Codec):
    """The k = ceil(fraction*d) largest-magnitude entries of each token, with their indices."""

    def __init__(self, method: dict, dim: int, is_v: bool):
        super().__init__(method, dim, is_v)
        self.k = topk_count(method["fraction"], dim)

    def encode(self, x: torch.Tensor) -> Encoded:
        idx = x.detach().abs().topk(self.k, dim=-1).indices
        return Encoded(chunks=x[..., 0, 0].numel(), values=to_bf16(x.gather(-1, idx)), indices=idx,
                       packed_bits=x.shape[-2] * self.k * index_bits(self.dim))

    def decode(self, e: Encoded) -> torch.Tensor:
        out = torch.zeros(*e.values.shape[:-1], self.dim, dtype=e.values.dtype, device=e.values.device)
        return out.scatter(-1, e.indices, e.values)


def quantise(x: torch.Tensor, bits: int):
    """Per-row symmetric quantisation: (codes, bf16 scales), codes in [-qmax, qmax]."""
    qmax = qmax_of(bits)
    scale = (x.abs().amax(dim=-1) / qmax).to(torch.bfloat16).float()
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.where(scale[..., None] > 0, torch.round(x / safe[..., None]), torch.zeros_like(x))
    return codes.clamp(-qmax, qmax), scale


def dequantise(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (codes * scale[..., None]).to(torch.bfloat16).float()


class _QuantST(torch.autograd.Function):
    """Forward: quantise-dequantise. Backward: straight-through, the gradient message quantised too."""

    @staticmethod
    def forward(ctx, x, bits):
        ctx.bits = bits
        return dequantise(*quantise(x, bits))

    @staticmethod
    def backward(ctx, grad):
        return dequantise(*quantise(grad, ctx.bits)), None


class Quant(Codec):
    """int8 / int4 per token with one bf16 scale."""

    def __init__(self, method: dict, dim: int, is_v: bool):
        super().__init__(method, dim, is_v)
        self.bits = method["bits"]
        if self.bits not in (4, 8):
            raise ValueError(f"quant: bits must be 4 or 8, got {self.bits}")

    def encode(self, x: torch.Tensor) -> Encoded:
        codes, scale = quantise(x.detach(), self.bits)
        return Encoded(chunks=x[..., 0, 0].numel(), scales=scale, codes=codes,
                       packed_bits=x.shape[-2] * self.dim * self.bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _QuantST.apply(x, self.bits)

    def decode(self, e: Encoded) -> torch.Tensor:
        return dequantise(e.codes, e.scales)


def make_codec(method: dict, dim: int, is_v: bool) -> Codec:
    """The codec of one tensor (K: is_v False, V: True) of one layer."""
    kinds = {"none": Codec, "pca": Subspace, "mos": Subspace, "topk": TopK, "quant": Quant}
    if method["method"] not in kinds:
        raise ValueError(f"unknown method {method['method']!r}: expected one of {sorted(kinds)}")
    return kinds[method["method"]](method, dim, is_v)
