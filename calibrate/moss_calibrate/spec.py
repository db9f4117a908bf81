"""Checks a calibration spec before anything is trained: every problem is a ValueError naming the
spec file and the JSON pointer, so `moss calibrate` exits 2 at once instead of failing (or, worse,
succeeding on nonsense) after minutes of training."""
import json
import math
from pathlib import Path

TOP_KEYS = ("name", "description", "model", "training", "data", "seeds", "methods", "dump")
METHOD_KEYS = {"none": (), "pca": ("rank_k", "rank_v"), "mos": ("rank_k", "rank_v", "rotations"),
               "topk": ("fraction",), "quant": ("bits",)}
MAX_STEPS = 10_000_000


def _fail(path, pointer, value, expected):
    shown = json.dumps(value) if value is not _ABSENT else None
    raise ValueError(f"{path}: {pointer}" + (f" = {shown}" if shown is not None else "") + f": {expected}")


_ABSENT = object()


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_int(path, pointer, v, lo, hi=None):
    if not _integer(v) or v < lo or (hi is not None and v > hi):
        _fail(path, pointer, v, f"expected an integer in [{lo}, {hi if hi is not None else 'inf'})"
              if hi is None else f"expected an integer in [{lo}, {hi}]")


def _check_object(path, pointer, v, allowed):
    if not isinstance(v, dict):
        _fail(path, pointer, v, "expected an object")
    unknown = sorted(set(v) - set(allowed))
    if unknown:
        _fail(path, f"{pointer}/{unknown[0]}", _ABSENT, f"unknown key; expected some of {', '.join(allowed)}")


# training key -> (kind, low, high, low inclusive)
TRAINING = {
    "steps": ("int", 1, MAX_STEPS), "batch": ("int", 1, 1 << 16), "lr_warmup_steps": ("int", 0, MAX_STEPS),
    "eval_every": ("int", 1, MAX_STEPS), "eval_sequences": ("int", 1, 1 << 20),
    "compress_warmup_steps": ("int", 0, MAX_STEPS),
    "lr": ("positive", 0, 10), "min_lr_fraction": ("number", 0, 1), "weight_decay": ("number", 0, 10),
    "grad_clip": ("positive", 0, 1e6),
}


def check_training(path, training):
    _check_object(path, "/training", training, tuple(TRAINING))
    for key, v in training.items():
        kind, lo, hi = TRAINING[key]
        pointer = f"/training/{key}"
        if kind == "int":
            _check_int(path, pointer, v, lo, hi)
        elif not _number(v) or v < lo or v > hi or (kind == "positive" and v <= lo):
            _fail(path, pointer, v, f"expected a number in {'(' if kind == 'positive' else '['}{lo}, {hi}]")


def check_method(path, i, m, d_model):
    pointer = f"/methods/{i}"
    if not isinstance(m, dict):
        _fail(path, pointer, m, "expected an object such as {\"method\": \"topk\", \"fraction\": 0.1}")
    name = m.get("method")
    if not isinstance(name, str) or name not in METHOD_KEYS:
        _fail(path, f"{pointer}/method", m.get("method", None), f"expected one of {', '.join(METHOD_KEYS)}")
    _check_object(path, pointer, m, ("method",) + METHOD_KEYS[name])
    for key in METHOD_KEYS[name]:
        if key not in m and key != "rotations":
            _fail(path, f"{pointer}/{key}", _ABSENT, f"missing: {name} needs rank_k and rank_v"
                  if name in ("pca", "mos") else f"missing: {name} needs {key}")
    if name in ("pca", "mos"):
        for key in ("rank_k", "rank_v"):
            _check_int(path, f"{pointer}/{key}", m[key], 1, d_model)
        if "rotations" in m:
            _check_int(path, f"{pointer}/rotations", m["rotations"], 0, 16)
    elif name == "topk":
        f = m["fraction"]
        if not _number(f) or not 0 < f <= 1:
            _fail(path, f"{pointer}/fraction", f, "expected a number in (0, 1]")
    elif name == "quant" and (not _integer(m["bits"]) or m["bits"] not in (4, 8)):
        _fail(path, f"{pointer}/bits", m["bits"], "expected 4 or 8")


def check_data(path, data, base_dir, seq_len):
    """The corpus the runs will read: "kjv" or a UTF-8 text file that exists (read now, not after
    training) and holds a held-out window: the held-out split is 5 % of it (data.Corpus)."""
    _check_object(path, "/data", data, ("source", "file"))
    if "file" in data:
        if "source" in data:
            _fail(path, "/data", data, "expected either \"source\" or \"file\", not both")
        f = data["file"]
        if not isinstance(f, str) or not f:
            _fail(path, "/data/file", f, "expected the path of a UTF-8 text file")
        p = Path(f) if Path(f).is_absolute() else Path(base_dir) / f
        if not p.is_file():
            _fail(path, "/data/file", f, f"no such file ({p})")
        try:
            with open(p, "rb") as fh:
                raw = fh.read()
            raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            _fail(path, "/data/file", f, f"cannot be read as UTF-8 text ({e})")
        need = 20 * (seq_len + 2)
        if len(raw) < need:
            _fail(path, "/data/file", f, f"{len(raw)} bytes: expected at least {need} (its 5 % held out must hold a "
                  f"sequence of {seq_len} + 1 bytes)")
    elif data.get("source", "kjv") != "kjv":
        _fail(path, "/data/source", data.get("source"), "expected \"kjv\" (or give \"file\" instead)")


def check_spec(spec, path, base_dir):
    """Raises ValueError naming `path` and the JSON pointer of the first problem."""
    from .model import ModelConfig
    if not isinstance(spec, dict):
        _fail(path, "", spec, "expected a JSON object")
    _check_object(path, "", spec, TOP_KEYS)
    for key in ("name", "description"):
        if key in spec and not isinstance(spec[key], str):
            _fail(path, f"/{key}", spec[key], "expected text")
    if "/" in spec.get("name", "") or spec.get("name") in ("", ".", ".."):
        _fail(path, "/name", spec.get("name"), "expected a name usable as a folder name")
    model = spec.get("model", {})
    _check_object(path, "/model", model, tuple(ModelConfig.__dataclass_fields__))
    for key, v in model.items():
        _check_int(path, f"/model/{key}", v, 1, 1 << 16)
    try:
        cfg = ModelConfig(**model)
        cfg.check()
    except ValueError as e:
        _fail(path, "/model", model, str(e))
    check_training(path, spec.get("training", {}))
    check_data(path, spec.get("data", {}), base_dir, cfg.seq_len)
    seeds = spec.get("seeds", [1])
    if not isinstance(seeds, list) or not seeds:
        _fail(path, "/seeds", seeds, "expected a non-empty array of seeds, e.g. [1, 2]")
    for i, s in enumerate(seeds):
        _check_int(path, f"/seeds/{i}", s, 0, (1 << 63) - 1)
    if len(set(seeds)) != len(seeds):
        _fail(path, "/seeds", seeds, "expected distinct seeds")
    methods = spec.get("methods")
    if not isinstance(methods, list) or not methods:
        _fail(path, "/methods", methods if "methods" in spec else _ABSENT,
              "expected an array of methods, e.g. [{\"method\": \"mos\", \"rank_k\": 8, \"rank_v\": 8}]")
    from .train import method_label
    labels = {}
    for i, m in enumerate(methods):
        check_method(path, i, m, cfg.d_model)
        label = method_label(m)
        if label in labels:
            _fail(path, f"/methods/{i}", m, f"the same method as /methods/{labels[label]}: give each once")
        labels[label] = i
    dump = spec.get("dump", {})
    _check_object(path, "/dump", dump, ("sequences",))
    if "sequences" in dump:
        _check_int(path, "/dump/sequences", dump["sequences"], 1, 1 << 16)
