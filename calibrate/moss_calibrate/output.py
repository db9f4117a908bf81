"""What a calibration writes: the calibration file, a summary, a plot and a Markdown report.

The calibration file is format "moss-calibration/1" (sim/converge/calibration.h): the baseline's and
every compressed run's held-out loss vs tokens, each averaged over the seeds, plus per run its eta
(seed-averaged curves) and eta per seed (each seed against the baseline of the same seed). Extra keys
are informational; moss reads "format", "description", "baseline", "runs[].label/match/tokens/loss".
"""
import json
import statistics
from pathlib import Path

from .eta import efficiency, tokens_to_reach

MATCH_KEYS = {"pca": ("rank_k", "rank_v"), "mos": ("rank_k", "rank_v", "rotations"),
              "topk": ("fraction",), "quant": ("bits",)}


def match_of(method: dict) -> dict:
    """The scenario fields a run stands for (sim/converge compression_key)."""
    m = {"method": method["method"]}
    for k in MATCH_KEYS.get(method["method"], ()):
        m[k] = method.get(k, 1 if k == "rotations" else None)
    return m


def mean_curve(records):
    """Held-out curve averaged over seeds, without the untrained point (tokens must be > 0)."""
    tokens = records[0]["heldout"]["tokens"]
    loss = [statistics.fmean(r["heldout"]["loss"][i] for r in records) for i in range(len(tokens))]
    keep = [i for i, t in enumerate(tokens) if t > 0]
    return [tokens[i] for i in keep], [loss[i] for i in keep]


def eta_of(base, other):
    """eta of `other` against `base` (records or (tokens, loss)); None without overlap."""
    bt, bl = base if isinstance(base, tuple) else mean_curve([base])
    ot, ol = other if isinstance(other, tuple) else mean_curve([other])
    res = efficiency(bt, bl, ot, ol)
    return None if res is None else res[0]


def eta_at_end(base, other):
    """Token ratio at the lowest loss both curves reach (the late-training end of eta's average)."""
    res = efficiency(*base, *other)
    if res is None:
        return None
    lo = res[1]
    return tokens_to_reach(*base, lo) / tokens_to_reach(*other, lo)


def build(groups: dict, spec: dict, entropy_nats: float, command: str) -> tuple:
    """(calibration document, summary) from {label: [records per seed]}; "none" is the baseline."""
    base = groups["none"]
    base_curve = mean_curve(base)
    by_seed = {r["seed"]: r for r in base}
    runs, rows = [], []
    for label, recs in groups.items():
        curve = mean_curve(recs)
        eta = eta_of(base_curve, curve) if label != "none" else 1.0
        eta_end = eta_at_end(base_curve, curve) if label != "none" else 1.0
        per_seed = [eta_of(by_seed[r["seed"]], r) for r in recs] if label != "none" else [1.0] * len(recs)
        finals = [r["heldout"]["loss"][-1] for r in recs]
        deltas = [r["heldout"]["loss"][-1] - by_seed[r["seed"]]["heldout"]["loss"][-1] for r in recs]
        row = {"label": label, "method": recs[0]["method"], "seeds": [r["seed"] for r in recs],
               "final_heldout_loss": finals, "final_heldout_loss_mean": statistics.fmean(finals),
               "final_minus_baseline_per_seed": deltas,
               "eta": eta, "eta_per_seed": per_seed, "eta_at_lowest_common_loss": eta_end, "wall_s": [round(r["wall_s"], 1) for r in recs],
               "ratio": recs[0]["bytes_per_chunk_per_layer"]["ratio"],
               "bytes_per_chunk_per_layer": recs[0]["bytes_per_chunk_per_layer"]["sent"]}
        rows.append(row)
        if label != "none":
            runs.append({"label": label, "match": match_of(recs[0]["method"]), "tokens": curve[0], "loss": curve[1],
                         "eta": eta, "eta_at_lowest_common_loss": eta_end, "eta_per_seed": per_seed, "ratio": row["ratio"], "seeds": row["seeds"]})
    runs += generic_runs(runs)
    doc = {"format": "moss-calibration/1",
           "description": spec.get("description", "") + f" Held-out loss (nats/byte) vs training tokens, mean of "
                          f"seeds {spec['seeds']}; produced by: {command}",
           "model": spec["model"], "training": spec.get("training", {}), "data": spec.get("data", {"source": "kjv"}),
           "baseline": {"label": "none", "tokens": base_curve[0], "loss": base_curve[1]}, "runs": runs}
    summary = {"unigram_entropy_nats": entropy_nats, "runs": rows, "seed_noise": seed_noise(groups),
               "rank_order": rank_order(groups), "command": command}
    return doc, summary


def generic_runs(runs):
    """Per method, a {"method": m} entry copying its most compressed run: the stand-in for ranks,
    fractions or bit widths not calibrated (moss picks the most specific match first)."""
    out = []
    for name in ("mos", "pca", "topk", "quant"):
        mine = [r for r in runs if r["match"]["method"] == name]
        if mine:
            r = min(mine, key=lambda r: r["ratio"])
            out.append({**r, "label": f"{name} (any parameters): stand-in {r['label']}", "match": {"method": name}})
    return out


def seed_noise(groups):
    """Half the spread of the final held-out loss between seeds, per run and averaged."""
    per = {label: (max(f) - min(f)) / 2 for label, recs in groups.items()
           if len(f := [r["heldout"]["loss"][-1] for r in recs]) > 1}
    return {"per_run": per, "mean": statistics.fmean(per.values()) if per else None}


def rank_order(groups):
    """For each subspace method: runs by rank (high to low) and whether loss never improves beyond
    noise as rank goes down (noise = twice the mean seed half-spread)."""
    noise = seed_noise(groups)["mean"] or 0.0
    result = {}
    for name in ("mos", "pca"):
        recs = sorted(((recs[0]["method"]["rank_k"] + recs[0]["method"]["rank_v"],
                        statistics.fmean(r["heldout"]["loss"][-1] for r in recs), label)
                       for label, recs in groups.items() if recs[0]["method"]["method"] == name), reverse=True)
        if len(recs) < 2:
            continue
        ok = all(recs[i + 1][1] >= recs[i][1] - 2 * noise for i in range(len(recs) - 1))
        result[name] = {"high_to_low_rank": [(label, round(loss, 4)) for _, loss, label in recs],
                        "monotone_within_noise": ok, "noise_allowance": 2 * noise}
    return result


def plot(groups: dict, entropy_nats: float, path_stem: Path):
    """Held-out loss vs tokens, one line per run (mean of seeds, band = seed range), and below it each
    run minus the baseline; PNG and SVG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, dx) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    keep = [i for i, t in enumerate(groups["none"][0]["heldout"]["tokens"]) if t > 0]
    tokens = [groups["none"][0]["heldout"]["tokens"][i] for i in keep]
    base = [statistics.fmean(r["heldout"]["loss"][i] for r in groups["none"]) for i in keep]
    for label, recs in groups.items():
        cols = [[r["heldout"]["loss"][i] for r in recs] for i in keep]
        mean = [statistics.fmean(c) for c in cols]
        style = {"color": "black", "lw": 2, "zorder": 5} if label == "none" else {"lw": 1.3}
        line, = ax.plot(tokens, mean, label=label, **style)
        dx.plot(tokens, [m - b for m, b in zip(mean, base)], color=line.get_color(), lw=style["lw"])
        if len(recs) > 1:
            ax.fill_between(tokens, [min(c) for c in cols], [max(c) for c in cols], color=line.get_color(), alpha=0.12)
    ax.axhline(entropy_nats, ls="--", color="gray", lw=1, label=f"unigram entropy {entropy_nats:.3f}")
    ax.set_xscale("log")
    ax.set_ylabel("held-out loss (nats / byte)")
    ax.set_title("moss calibrate: held-out loss, mean of seeds (band: seed range)")
    ax.legend(fontsize=8)
    dx.set_xlabel("training tokens")
    dx.set_ylabel("minus baseline")
    for a in (ax, dx):
        a.grid(alpha=0.3)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(f"{path_stem}.{ext}", dpi=110)
    plt.close(fig)


def report(summary: dict, path: Path):
    """A short Markdown table of the runs."""
    lines = ["# moss calibrate report", "", f"Command: `{summary['command']}`", "",
             f"Unigram entropy of the training text: {summary['unigram_entropy_nats']:.4f} nats/byte "
             f"({summary['unigram_entropy_nats'] / 0.6931471805599453:.3f} bits).", "",
             "| run | sent/raw | final held-out loss (per seed) | minus same-seed baseline | eta (mean curves) "
             "| eta per seed | token ratio at lowest common loss | wall s |", "|---|---|---|---|---|---|---|---|"]
    for r in summary["runs"]:
        eta = "-" if r["eta"] is None else f"{r['eta']:.3f}"
        per = ", ".join("-" if e is None else f"{e:.3f}" for e in r["eta_per_seed"])
        lines.append(f"| {r['label']} | {r['ratio']:.4f} | {', '.join(f'{x:.4f}' for x in r['final_heldout_loss'])} "
                     f"| {', '.join(f'{x:+.4f}' for x in r['final_minus_baseline_per_seed'])} "
                     f"| {eta} | {per} | {r['eta_at_lowest_common_loss'] or '-':.4} | {', '.join(str(w) for w in r['wall_s'])} |")
    lines += ["", f"Seed noise (half spread of final held-out loss, mean over runs): {summary['seed_noise']['mean']}",
              "", "Rank order: " + json.dumps(summary["rank_order"]), ""]
    path.write_text("\n".join(lines))
