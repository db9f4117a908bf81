"""`moss-calibrate SPEC.json [--out DIR]`: train the baseline and every method of a spec, per seed,
then write DIR/calibration.json, summary.json, report.md, heldout_loss.{png,svg}, kv_activations.npy.

Spec (JSON; every block optional except "methods"):
    {"name": "default", "description": "...",
     "model": {"layers": 4, "d_model": 128, "heads": 4, "ffn_hidden": 352, "seq_len": 128, "chunks": 4},
     "training": {"steps": 300, "batch": 8, "lr": 3e-3, "eval_every": 20, "compress_warmup_steps": 30},
     "data": {"source": "kjv"} | {"file": "corpus.txt"},
     "seeds": [1, 2],
     "methods": [{"method": "mos", "rank_k": 8, "rank_v": 8, "rotations": 1}, {"method": "topk", "fraction": 0.1}],
     "dump": {"sequences": 16}}
The uncompressed baseline is always run. Finished runs (DIR/runs/*.json with the same settings) are
reused unless --fresh.
"""
import argparse
import json
import multiprocessing as mp
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

EXIT_INPUT = 2


def parse_args(argv):
    p = argparse.ArgumentParser(prog="moss calibrate", description=__doc__.split("\n")[0])
    p.add_argument("spec", nargs="?", help="calibration spec (JSON)")
    p.add_argument("--out", default=None, help="output folder (default results/calibrate/<name>)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--steps", type=int, default=None, help="override training.steps")
    p.add_argument("--seeds", default=None, help="override seeds, e.g. 1,2")
    p.add_argument("--calibration-file", default=None, help="also copy calibration.json here")
    p.add_argument("--fresh", action="store_true", help="retrain runs already in DIR/runs")
    p.add_argument("--device", default="cpu", help="torch device (cpu; cuda on a GPU machine)")
    p.add_argument("--quiet", action="store_true")
    args, unknown = p.parse_known_args(argv)
    # An unknown flag is named first (argparse would only say that the spec is missing).
    if unknown:
        p.error(f"unrecognised arguments: {' '.join(unknown)}")
    if args.spec is None:
        p.error("the following arguments are required: spec")
    return args


def load_spec(path: Path, args) -> dict:
    """The spec with command-line overrides, checked whole (spec.py) before anything is trained;
    raises ValueError naming the file (or flag) and the JSON pointer of the problem."""
    from .spec import check_spec
    try:
        with open(path, "rb") as fh:
            text = fh.read((64 << 20) + 1)
        if len(text) > 64 << 20:
            raise ValueError(f"{path}: larger than 64 MiB: not a calibration spec")
        spec = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: cannot read the spec: {e}")
    check_flags(args)
    if isinstance(spec, dict):
        spec.setdefault("name", path.stem)
        spec.setdefault("seeds", [1])
        spec.setdefault("training", {})
        if isinstance(spec["training"], dict) and args.steps is not None:
            spec["training"]["steps"] = args.steps
        if args.seeds is not None:
            spec["seeds"] = args.seeds
    check_spec(spec, path, path.parent)
    if not any(m.get("method") == "none" for m in spec["methods"]):
        spec["methods"] = [{"method": "none"}] + spec["methods"]
    return spec


def check_flags(args) -> None:
    """Flags with values the spec's rules also apply to: checked before anything is trained."""
    if args.steps is not None and not 1 <= args.steps <= 10_000_000:
        raise ValueError(f"--steps {args.steps}: expected an integer in [1, 10000000]")
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise ValueError(f"--seeds {args.seeds!r}: expected integers separated by commas, e.g. 1,2") from None
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"--seeds {args.seeds!r}: expected distinct integers of 0 or more, e.g. 1,2")
        args.seeds = seeds
    for flag, v in (("--jobs", args.jobs), ("--threads", args.threads)):
        if not 1 <= v <= 1024:
            raise ValueError(f"{flag} {v}: expected an integer in [1, 1024]")
    if args.device != "cpu" and not (args.device == "cuda" or (args.device.startswith("cuda:") and args.device[5:].isdigit())):
        raise ValueError(f"--device {args.device!r}: expected cpu, cuda or cuda:N")
    if args.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: this torch sees no CUDA device; use --device cpu")


def _worker(job):
    """One (method, seed) run in its own process; returns its record."""
    import torch
    from .data import Corpus, load_text
    from .model import ModelConfig
    from .train import capture_kv, train_run
    spec, method, seed, out, threads, dump, quiet, base_dir, device = job
    torch.set_num_threads(threads)
    corpus = Corpus(load_text(spec.get("data", {}), Path(base_dir)))
    cfg = ModelConfig(**spec.get("model", {}))
    log = None if quiet else (lambda s: print(s, flush=True))
    rec, model = train_run(cfg, spec["training"], method, seed, corpus, log=log, keep_model=True, device=device)
    if dump:
        import numpy as np
        kv = capture_kv(model, corpus, spec.get("dump", {}).get("sequences", 16), rec["training"]["batch"], device)
        np.save(Path(out) / "kv_activations.npy", kv.numpy().astype("float32"))
        rec["kv_dump"] = {"file": "kv_activations.npy", "shape": list(kv.shape),
                          "layout": "[2 (K before RoPE, V), layers, tokens, d_model] float32"}
    (Path(out) / "runs" / f"{rec['label']}-s{seed}.json").write_text(json.dumps(rec))
    return rec


def _reusable(path: Path, spec: dict, method: dict) -> dict | None:
    from .train import TRAIN_DEFAULTS
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    same = (rec["method"] == method and rec["model"] == {**rec["model"], **spec.get("model", {})}
            and rec["training"] == {**TRAIN_DEFAULTS, **spec["training"]})
    return rec if same else None


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spec_path = Path(args.spec)
    try:
        spec = load_spec(spec_path, args)
    except ValueError as e:
        print(f"moss calibrate: {e}", file=sys.stderr)
        return EXIT_INPUT
    out = Path(args.out or f"results/calibrate/{spec['name']}")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    from .data import Corpus, load_text
    from .train import method_label
    from . import output
    corpus = Corpus(load_text(spec.get("data", {}), spec_path.parent))
    entropy = corpus.unigram_entropy_nats()
    shown = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("--quiet", "--fresh")]  # same results
    command = "moss calibrate " + " ".join(shlex.quote(a) for a in shown)
    done, jobs = {}, []
    for method in spec["methods"]:
        for seed in spec["seeds"]:
            path = out / "runs" / f"{method_label(method)}-s{seed}.json"
            dump = method["method"] == "none" and seed == spec["seeds"][0]
            rec = None if args.fresh or (dump and not (out / "kv_activations.npy").exists()) else _reusable(path, spec, method)
            if rec:
                done[(method_label(method), seed)] = rec
            else:
                jobs.append((spec, method, seed, str(out), args.threads, dump, args.quiet, str(spec_path.parent), args.device))
    start = time.time()
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for rec in pool.map(_worker, jobs):
                done[(rec["label"], rec["seed"])] = rec
    else:
        for job in jobs:
            rec = _worker(job)
            done[(rec["label"], rec["seed"])] = rec
    groups = {}
    for method in spec["methods"]:
        groups[method_label(method)] = [done[(method_label(method), s)] for s in spec["seeds"]]
    doc, summary = output.build(groups, spec, entropy, command)
    summary["wall_s_total_this_invocation"] = round(time.time() - start, 1)
    (out / "calibration.json").write_text(json.dumps(doc, indent=1))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    output.report(summary, out / "report.md")
    output.plot(groups, entropy, out / "heldout_loss")
    if args.calibration_file:
        Path(args.calibration_file).write_text(json.dumps(doc, indent=1))
    if not args.quiet:
        print((out / "report.md").read_text())
    return 0
