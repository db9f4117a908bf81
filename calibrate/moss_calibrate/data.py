"""The training text as bytes: the King James Bible from Debian (default) or any UTF-8 file.

Held-out split: the text is cut into 100 contiguous segments and every 20th one (5 %) is held out,
so both splits cover the whole book. Batches are random windows drawn with a seeded generator, so two
runs with the same seed see the same batches; the held-out set is a fixed set of evenly spaced windows.
"""
import math
import re
import shutil
import subprocess
from pathlib import Path

import torch

KJV_RANGE = "Gen1:1-Rev22:21"
_VERSE_REF = re.compile(rb"^\S+?\d+:\d+ ", re.MULTILINE)  # "Ge1:1 " at the start of each verse


def load_kjv() -> bytes:
    """The whole King James text from `bible` (package bible-kjv + bible-kjv-text), verse refs removed."""
    exe = shutil.which("bible") or "/usr/bin/bible"
    if not Path(exe).exists():
        raise RuntimeError("the default corpus needs the Debian packages bible-kjv and bible-kjv-text "
                           "(`bible` not found); or give \"data\": {\"file\": \"some.txt\"}")
    text = subprocess.run([exe, "-f", KJV_RANGE], check=True, capture_output=True).stdout
    return _VERSE_REF.sub(b"", text)


def load_text(source: dict, base_dir: Path) -> bytes:
    """Corpus bytes for a spec's "data" block: {"source": "kjv"} or {"file": "path.txt"}."""
    if "file" in source:
        path = Path(source["file"])
        path = path if path.is_absolute() else base_dir / path
        raw = path.read_bytes()
        raw.decode("utf-8")  # must be UTF-8 text
        return raw
    if source.get("source", "kjv") != "kjv":
        raise ValueError(f"data.source {source.get('source')!r}: expected \"kjv\" or a \"file\"")
    return load_kjv()


class Corpus:
    """Train / held-out byte tensors and batch sampling."""

    def __init__(self, text: bytes, segments: int = 100, every: int = 20):
        data = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
        bounds = [len(data) * i // segments for i in range(segments + 1)]
        parts = [data[bounds[i]:bounds[i + 1]] for i in range(segments)]
        self.heldout = torch.cat([p for i, p in enumerate(parts) if i % every == every - 1])
        self.train = torch.cat([p for i, p in enumerate(parts) if i % every != every - 1])
        self.text_bytes = len(data)

    def batch(self, gen: torch.Generator, batch: int, seq_len: int):
        """Random windows of the training split: inputs and next-byte targets, [batch, seq_len]."""
        starts = torch.randint(0, len(self.train) - seq_len - 1, (batch,), generator=gen)
        x = torch.stack([self.train[s:s + seq_len + 1] for s in starts.tolist()])
        return x[:, :-1], x[:, 1:]

    def heldout_batches(self, sequences: int, seq_len: int, batch: int):
        """`sequences` evenly spaced held-out windows, in batches of `batch`."""
        span = len(self.heldout) - seq_len - 1
        starts = [span * i // max(1, sequences - 1) for i in range(sequences)]
        x = torch.stack([self.heldout[s:s + seq_len + 1] for s in starts])
        return [(x[i:i + batch, :-1], x[i:i + batch, 1:]) for i in range(0, sequences, batch)]

    def unigram_entropy_nats(self) -> float:
        """Entropy of the byte frequencies of the training split, in nats (loss units)."""
        counts = torch.bincount(self.train, minlength=256).double()
        p = counts[counts > 0] / counts.sum()
        return float(-(p * p.log()).sum())


def nats_to_bits(x: float) -> float:
    return x / math.log(2)
