#!/usr/bin/env python3
"""The moss capacity-planning report: report.html (plots inline as SVG) + report.md.

    python3 analysis/moss_report.py DIR [--out OUT] [--deadline 30d] [--budget 50000]

DIR is a `moss run` or `moss sweep` directory (results.h5 and/or summary.json). Exit 2 on bad input.
"""
import argparse
import html
import io
import json
import math
import os
import re
import sys
import tempfile

import matplotlib

matplotlib.use("svg")
matplotlib.rcParams["svg.fonttype"] = "none"    # text stays text: smaller, searchable
matplotlib.rcParams["svg.hashsalt"] = "moss"    # deterministic element ids
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moss_results  # noqa: E402

BREAK_EVEN = 0.95  # within 5 % of the fastest uncompressed design


# ---------- formatting ----------
def fmt_rate(bps):
    if not _ok(bps):
        return "-"
    for unit, scale in (("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps:.3g} bps"


def fmt_duration(s):
    if not _ok(s):
        return "unreachable"
    for unit, scale in (("y", 365.25 * 86400), ("d", 86400), ("h", 3600), ("min", 60)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s:.3g} s"


def fmt_field(v):
    """A swept field's value as the scenario wrote it: results.h5 keeps numbers as doubles (4.0 -> 4)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return str(int(v))
    return str(v)


def fmt_usd(x):
    return "-" if not _ok(x) else f"${x:,.0f}"


def _ok(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def parse_duration(text):
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|min|h|d|w|y)?\s*", text)
    if not m:
        raise ValueError(f"--deadline {text!r}: expected e.g. 30d, 72h, 3600s")
    scale = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365.25 * 86400}[m.group(2) or "s"]
    return float(m.group(1)) * scale


# ---------- the data ----------
class Points:
    """Rows of the results table with the design each belongs to."""

    def __init__(self, table):
        self.t = table
        self.c = table["columns"]
        self.n = table["rows"]
        self.fields = [k[len("field:"):] for k in self.c if k.startswith("field:")]
        self.swept_bandwidth = "cluster.network.bandwidth" in self.fields
        self.add_same_loss()

    def get(self, name, i, default=math.nan):
        col = self.c.get(name)
        return default if col is None else col[i]

    def add_same_loss(self):
        """time/cost/GPU-hours to the loss the reference design reaches, eta included.

        Reference: the uncompressed point with the shortest time to target (any point when none is
        uncompressed). Each design needs its own tokens to reach that loss, from its own loss law
        L(N, eta D) = floor + B / (eta D)^beta (summary.json's convergence.loss_law and loss_floor): a
        design of another size (N) reaches it after another token count, or never, when the loss is
        at or below its floor. The time is the whole steps those tokens take times the step time, as
        moss computes time_to_target_s."""
        ok = [i for i in self.ok() if _ok(self.get("time_to_target_s", i)) and _ok(self.get("eta", i))
              and _ok(self.get("target_tokens", i))]
        pool = [i for i in ok if not self.compressed(i)] or ok
        self.ref_point = min(pool, key=lambda i: self.get("time_to_target_s", i)) if pool else None
        self.ref_loss = self.get("target_loss", self.ref_point) if self.ref_point is not None else math.nan
        t, c, g = [], [], []
        for i in range(self.n):
            tt = self.get("time_to_target_s", i)
            same = self.time_to_loss(i, self.ref_loss) if i in ok else math.nan
            scale = same / tt if _ok(same) and tt > 0 else (same if same == math.inf else math.nan)
            t.append(same)
            c.append(self.get("cost_usd", i) * scale)
            g.append(self.get("gpu_hours", i) * scale)
        self.c["time_to_ref_loss_s"], self.c["cost_to_ref_loss_usd"], self.c["gpu_hours_to_ref_loss"] = t, c, g
        self.ref_loss_text = f"{self.ref_loss:.4g}" if _ok(self.ref_loss) else "(no reference)"
        self.token_target = len({round(self.get("target_loss", i), 9) for i in ok}) > 1
        self.mixed_models = len({self.get("params", i) for i in ok}) > 1

    def time_to_loss(self, i, level):
        """Wall-clock for design i to reach loss `level` (eta included): inf when its loss law never
        gets there, nan when it cannot be told (results written before the law was recorded, for a
        design of another size than the reference)."""
        eta, tps, step = self.get("eta", i), self.get("tokens_per_second", i), self.get("step_time_s", i)
        if not (_ok(level) and _ok(eta) and eta > 0 and _ok(tps) and tps > 0 and _ok(step) and step > 0):
            return math.nan
        floor, b, beta = self.get("loss_floor", i), self.get("loss_law_B", i), self.get("loss_law_beta", i)
        if _ok(floor) and _ok(b) and _ok(beta) and b > 0 and beta > 0:
            if level <= floor:
                return math.inf
            tokens = (b / (level - floor)) ** (1 / beta) / eta
        elif self.get("params", i) == self.get("params", self.ref_point):
            # The same model without its law recorded: the tokens scale with 1 / eta alone.
            tokens = self.get("eta", self.ref_point) * self.get("target_tokens", self.ref_point) / eta
        else:
            return math.nan
        if not _ok(tokens):
            return math.inf
        steps = max(1.0, math.ceil(tokens / (tps * step) * (1 - 1e-12)))
        return steps * step

    def summary(self, i):
        return moss_results.summaries(self.t)[i]

    def is_run(self):
        return self.t["attrs"].get("kind") == "run" or (self.n == 1 and not self.fields)

    def ok(self):
        return [i for i in range(self.n) if self.c["status"][i] == "ok"]

    def design(self, i):
        """Compression design plus every swept field that is not the bandwidth or the design itself."""
        parts = [self.get("design", i, self.get("method", i, "?"))]
        for f in self.fields:
            # The design names the method and its parameters, not the data they were measured on.
            data = f.startswith("compression.activations") or f.startswith("compression.datasets")
            if f == "cluster.network.bandwidth" or (f.startswith("compression") and not data) or f.startswith("convergence.efficiency"):
                continue
            parts.append(f"{f.split('.')[-1]}={fmt_field(self.c['field:' + f][i])}")
        return " | ".join(parts)

    def compressed(self, i):
        return self.get("method", i, "none") != "none"

    def designs(self):
        out = {}
        for i in self.ok():
            out.setdefault(self.design(i), []).append(i)
        for d in out:
            out[d].sort(key=lambda i: self.get("bandwidth_bps", i, 0.0))
        return out


# ---------- plots ----------
def svg_of(fig):
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def plot_loss(p):
    figs = []
    designs = p.designs()
    bws = sorted({p.get("bandwidth_bps", i) for i in p.ok() if _ok(p.get("bandwidth_bps", i))})
    picks = [("all points", None)] if len(bws) <= 1 else [(fmt_rate(bws[0]), bws[0]), (fmt_rate(bws[-1]), bws[-1])]
    curves = p.t.get("curves", {})
    if "loss" not in curves:
        return figs
    fig, axes = plt.subplots(1, len(picks), figsize=(6.2 * len(picks), 4), squeeze=False)
    for ax, (title, bw) in zip(axes[0], picks):
        for d, rows in designs.items():
            for i in rows:
                if bw is not None and p.get("bandwidth_bps", i) != bw:
                    continue
                row = p.c["index"].index(p.c["index"][i])
                wall, loss = curves["wall_s"][row], curves["loss"][row]
                keep = [k for k in range(len(loss)) if math.isfinite(loss[k]) and wall[k] > 0]
                if keep:
                    ax.plot([wall[k] / 86400 for k in keep], [loss[k] for k in keep], label=d)
        ax.set_xscale("log")
        ax.set_xlabel("wall-clock (days)")
        ax.set_ylabel("predicted loss")
        ax.set_title(f"loss vs wall-clock at {title}")
        ax.grid(True, which="both", alpha=0.3)
        _legend(ax)
    figs.append(("loss-vs-wallclock", "Loss vs wall-clock per design", svg_of(fig)))
    return figs


def plot_vs_bandwidth(p, metric, ylabel, title, key, logy=False):
    designs = p.designs()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for d, rows in designs.items():
        xs = [p.get("bandwidth_bps", i) / 1e9 for i in rows]
        ys = [p.get(metric, i) for i in rows]
        pts = [(x, y) for x, y in zip(xs, ys) if _ok(x) and _ok(y)]
        if pts:
            ax.plot(*zip(*pts), marker="o", markersize=3, label=d, linestyle="-" if p.compressed(rows[0]) else "--")
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("link bandwidth (Gbit/s, per direction)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return key, title, svg_of(fig)


def plot_links(p, top=12):
    """Utilisation of the busiest links: one bar group per link, one bar per design (run: every link)."""
    series = []
    for d, rows in p.designs().items():
        i = rows[0]  # lowest bandwidth: where the network matters most
        links = (p.summary(i).get("network") or {}).get("links") or []
        if links:
            label = d if p.is_run() else f"{d} @ {fmt_rate(p.get('bandwidth_bps', i))}"
            series.append((label, {f"{l.get('from')}->{l.get('to')}": l.get("utilisation", 0.0) for l in links}))
    if not series:
        return None
    busiest = {}
    for _, m in series:
        for k, v in m.items():
            busiest[k] = max(busiest.get(k, 0.0), v)
    names = sorted(busiest, key=lambda k: (-busiest[k], k))[:top]
    if len(series) == 1:
        label, m = series[0]
        fig, ax = plt.subplots(figsize=(max(5.5, 0.5 * len(names) + 2), 4))
        ax.bar(range(len(names)), [100 * m.get(n, 0.0) for n in names], label=label)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("utilisation (% of the step)")
        ax.set_ylim(0, 105)
        ax.grid(True, axis="y", alpha=0.3)
        _legend(ax)
    else:  # designs x links heat map, value in each cell
        series = series[:20]
        grid = [[100 * m.get(n, 0.0) for n in names] for _, m in series]
        fig, ax = plt.subplots(figsize=(min(11.0, 0.75 * len(names) + 4.5), 0.38 * len(series) + 1.8))
        im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=100)
        for r, row in enumerate(grid):
            for k, v in enumerate(row):
                ax.text(k, r, f"{v:.0f}", ha="center", va="center", fontsize=6, color="w" if v < 60 else "k")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(series)))
        ax.set_yticklabels([label for label, _ in series], fontsize=7)
        fig.colorbar(im, ax=ax, label="utilisation (%)")
    ax.set_title("Per-link utilisation of the busiest links" + ("" if p.is_run() else " (lowest bandwidth)"))
    return "link-utilisation", "Per-link utilisation (wire bytes / (bandwidth x step time))", svg_of(fig)


MEMORY_PARTS = (("weights_bytes", "weights"), ("gradients_bytes", "gradients"), ("optimizer_bytes", "optimizer"),
                ("activations_bytes", "activations"), ("gathered_kv_bytes", "gathered K/V"), ("logits_bytes", "logits"))


def plot_memory(p):
    """Memory per GPU by part, one stacked bar per design (lowest bandwidth point), HBM capacity marked."""
    bars = []
    for d, rows in p.designs().items():
        mem = p.summary(rows[0]).get("memory") or {}
        if any(k in mem for k, _ in MEMORY_PARTS):
            bars.append((d, mem))
    if not bars:
        return None
    bars = bars[:12]
    fig, ax = plt.subplots(figsize=(max(5.5, 1.1 * len(bars) + 3), 4.2))
    bottom = [0.0] * len(bars)
    for key, name in MEMORY_PARTS:
        vals = [float(m.get(key, 0.0) or 0.0) / 2**30 for _, m in bars]
        ax.bar(range(len(bars)), vals, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, vals)]
    cap = max((float(m.get("gpu_bytes", 0.0) or 0.0) for _, m in bars), default=0.0) / 2**30
    if cap > 0:
        ax.axhline(cap, color="k", linestyle="--", linewidth=1, label=f"GPU memory {cap:.0f} GiB")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([d for d, _ in bars], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("GiB per GPU")
    ax.set_title("Memory per GPU")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return "memory", "Memory breakdown per GPU", svg_of(fig)


# ---------- tables ----------
def _crossing(bw, score, target):
    """Lowest bandwidth where score >= target, interpolated in log bandwidth; text."""
    for k, (b, v) in enumerate(zip(bw, score)):
        if _ok(v) and _ok(target) and v >= target:
            if k == 0 or not _ok(score[k - 1]):
                return f"<= {fmt_rate(b)}"
            v0, b0 = score[k - 1], bw[k - 1]
            f = (target - v0) / (v - v0) if v != v0 else 1.0
            return "~" + fmt_rate(b0 * (b / b0) ** f)
    return "not reached"


def break_even(p):
    """Per compressed design: lowest bandwidth where (a) tokens/s >= 95 % of the fastest uncompressed
    design's and (b) time to target (eta included) <= the fastest uncompressed time to target / 0.95."""
    designs = p.designs()
    unc = [i for d, rows in designs.items() for i in rows if not p.compressed(i)]
    ref = max((p.get("tokens_per_second", i) for i in unc), default=math.nan)
    ref_t = min((p.get("time_to_ref_loss_s", i) for i in unc if _ok(p.get("time_to_ref_loss_s", i))), default=math.nan)
    rows_out = []
    for d, rows in designs.items():
        if not p.compressed(rows[0]):
            continue
        bw = [p.get("bandwidth_bps", i) for i in rows]
        tps = [p.get("tokens_per_second", i) for i in rows]
        # speed relative to the reference time: higher is better, eta included
        speed = [ref_t / t if _ok(t) and t > 0 and _ok(ref_t) else math.nan
                 for t in (p.get("time_to_ref_loss_s", i) for i in rows)]
        best = max(tps) / ref if _ok(ref) and ref > 0 else math.nan
        best_t = max((v for v in speed if _ok(v)), default=math.nan)
        etas = sorted({f"{p.get('eta', i):.3g}" for i in rows if _ok(p.get("eta", i))})
        rows_out.append([d, _crossing(bw, tps, BREAK_EVEN * ref), f"{100 * best:.1f} %" if _ok(best) else "-",
                         _crossing(bw, speed, BREAK_EVEN), f"{100 * best_t:.1f} %" if _ok(best_t) else "-",
                         ", ".join(etas) or "-"])
    return ref, ref_t, rows_out


def cost_of(p, i):
    c = p.get("cost_to_ref_loss_usd", i)
    return (c, "USD") if _ok(c) else (p.get("gpu_hours_to_ref_loss", i), "GPU-hours")


def recommendations(p, deadline_s, budget):
    """Ranked by time and cost to the reference loss (eta included), not by tokens/s."""
    t = lambda i: p.get("time_to_ref_loss_s", i)  # noqa: E731
    pts = [i for i in p.ok() if _ok(t(i))]
    label = lambda i: f"{p.design(i)} @ {fmt_rate(p.get('bandwidth_bps', i))}"  # noqa: E731
    meet = sorted((i for i in pts if t(i) <= deadline_s), key=lambda i: (cost_of(p, i)[0], t(i)))
    under = sorted((i for i in pts if _ok(cost_of(p, i)[0]) and cost_of(p, i)[0] <= budget), key=t)
    row = lambda i: [label(i), fmt_duration(t(i)), fmt_usd(p.get("cost_to_ref_loss_usd", i)),  # noqa: E731
                     f"{p.get('gpu_hours_to_ref_loss', i):,.0f}", f"{p.get('eta', i):.3g}", fmt_error(p, i)]
    return [row(i) for i in meet[:5]], [row(i) for i in under[:5]]


def fmt_error(p, i):
    """Reconstruction error of the K/V exchange as the kernels measured it."""
    if not p.compressed(i):
        return "0 (exact)"
    e = p.get("compression_relative_error", i)
    if not _ok(e):
        return "not measured"
    k, v = p.get("compression_relative_error_k", i), p.get("compression_relative_error_v", i)
    return f"{e:.3g} (K {k:.3g}, V {v:.3g})" if _ok(k) and _ok(v) else f"{e:.3g}"


def fmt_pct(x):
    return f"{100 * x:.1f} %" if _ok(x) else "-"


def time_cost_table(p):
    out = []
    for d, rows in p.designs().items():
        for i in (rows[0], rows[-1]) if len(rows) > 1 else rows:
            ratio = p.get("compression_ratio", i)
            out.append([d, fmt_rate(p.get("bandwidth_bps", i)), f"{p.get('tokens_per_second', i):,.0f}",
                        fmt_pct(p.get("exposed_comm_share", i)),
                        f"{ratio:.3g}" if _ok(ratio) else "-", fmt_error(p, i),
                        fmt_duration(p.get("time_to_target_s", i)), fmt_duration(p.get("time_to_ref_loss_s", i)),
                        fmt_usd(p.get("cost_usd", i)), f"{p.get('eta', i):.3g}"])
    return out


def fmt_bytes(b):
    if not _ok(b):
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.3g} B"


def network_rows(p, top=3):
    """Per design (lowest and highest bandwidth; every point of a run): busiest links and CP time."""
    out = []
    for d, rows in p.designs().items():
        for i in (rows[0], rows[-1]) if len(rows) > 1 else rows:
            links = sorted((p.summary(i).get("network") or {}).get("links") or [],
                           key=lambda l: -l.get("utilisation", 0.0))
            text = "; ".join(f"{l.get('from')}->{l.get('to')} {fmt_pct(l.get('utilisation'))} "
                             f"({fmt_bytes(l.get('wire_bytes_per_step'))}/step)" for l in links[:top])
            if not links and _ok(p.get("busiest_link_utilisation", i)):
                text = f"{p.get('busiest_link', i, '?')} {fmt_pct(p.get('busiest_link_utilisation', i))}"
            out.append([d, fmt_rate(p.get("bandwidth_bps", i)), p.get("backend", i, "?") or "?", text or "-",
                        fmt_duration(p.get("cp_comm_time_s", i)) if _ok(p.get("cp_comm_time_s", i)) else "-",
                        fmt_pct(p.get("exposed_comm_share", i))])
    return out


def packet_rows(p):
    """Points simulated packet by packet (ns3): retransmissions and flow completion vs analytic."""
    out = []
    for d, rows in p.designs().items():
        for i in rows:
            if p.get("backend", i, "") != "ns3" and not _ok(p.get("vs_analytic_mean_ratio", i)):
                continue
            r = p.get("retransmissions", i)
            net = p.summary(i).get("network") or {}
            if "phases_simulated" in net:
                phases = f"{net.get('phases_simulated', 0):,} / {net.get('phases_reused', 0):,}"
            else:
                phases = f"{net['phases']:,.0f} in all" if _ok(net.get("phases")) else "-"
            out.append([d, fmt_rate(p.get("bandwidth_bps", i)), phases, f"{r:,.0f}" if _ok(r) else "-",
                        f"{p.get('vs_analytic_flows', i):,.0f}" if _ok(p.get("vs_analytic_flows", i)) else "-",
                        f"{p.get('vs_analytic_mean_ratio', i):.3f}" if _ok(p.get("vs_analytic_mean_ratio", i)) else "-",
                        f"{p.get('vs_analytic_worst_ratio', i):.3f}" if _ok(p.get("vs_analytic_worst_ratio", i)) else "-"])
    return out


def run_summary_rows(p, i):
    s = p.summary(i)
    step = s.get("step") or {}
    conv = s.get("convergence") or {}
    mem = s.get("memory") or {}
    rows = [
        ["scenario", s.get("scenario", p.t["attrs"].get("scenario_name", ""))],
        ["design", p.design(i)],
        ["network", f"{fmt_rate(p.get('bandwidth_bps', i))}, {p.get('topology', i, '')} "
                    f"(backend {p.get('backend', i, s.get('backend', '?'))})".replace(", ,", ",")],
        ["tokens/s", f"{p.get('tokens_per_second', i):,.0f}"],
        ["step time", fmt_duration(p.get("step_time_s", i))],
        ["compute-only step", fmt_duration(step.get("compute_only_step_s", math.nan))],
        ["CP communication per step", fmt_duration(p.get("cp_comm_time_s", i))],
        ["exposed communication", f"{fmt_duration(p.get('exposed_comm_s', i))} ({fmt_pct(p.get('exposed_comm_share', i))} of the step)"],
        ["MFU", fmt_pct(p.get("mfu", i))],
        ["bytes sent per GPU per step", fmt_bytes(p.get("comm_bytes_per_step_per_device", i))],
        ["compression ratio (sent/raw)", f"{p.get('compression_ratio', i):.4g}" if _ok(p.get("compression_ratio", i)) else "-"],
        ["compression error (kernels)", fmt_error(p, i)],
        ["memory per GPU", f"{mem.get('total_bytes', math.nan) / 2**30:.1f} GiB of {mem.get('gpu_bytes', math.nan) / 2**30:.1f} GiB"
                           if _ok(mem.get("total_bytes")) and _ok(mem.get("gpu_bytes")) else "-"],
        ["statistical efficiency eta", f"{p.get('eta', i):.3g} ({conv.get('eta_source', p.get('eta_source', i, '?'))})"],
        ["target", f"{p.get('target_tokens', i):.3g} tokens, loss {p.get('target_loss', i):.4g}"
                   if _ok(p.get("target_tokens", i)) else "-"],
        ["time to target", fmt_duration(p.get("time_to_target_s", i))],
        ["GPU-hours", f"{p.get('gpu_hours', i):,.0f}" if _ok(p.get("gpu_hours", i)) else "-"],
        ["cost", fmt_usd(p.get("cost_usd", i))],
    ]
    return rows


def assumptions(p):
    out = {}
    for i in p.ok():
        for k in ("eta_compression_source", "eta_weight_sync_source", "loss_law_source", "compression_source",
                  "compression_timing_source", "backend"):
            v = p.get(k, i, None)
            if v:
                out.setdefault(k, {}).setdefault(v, set()).add(p.get("design", i, "?"))
    eff = set()
    for i in p.ok():
        f = [(k, p.get("efficiency_" + k, i)) for k in ("gemm", "attention_fwd", "attention_bwd", "memory")]
        if all(_ok(v) for _, v in f):
            eff.add(f"{p.get('gpu', i, '?')}: " + ", ".join(f"{k} {v:.2g}" for k, v in f))
        s = p.summary(i)
        for k in ("efficiency", "efficiency_factors", "assumptions"):
            if k in s:
                eff.add(json.dumps(s[k], sort_keys=True))
    return out, sorted(eff)


# ---------- output ----------
def md_table(head, rows):
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(head, rows):
    if not rows:
        return "<p><em>none</em></p>"
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}figure.plot{margin:1em 0}figure.plot svg{max-width:100%;height:auto}.warn{color:#a40}
code{background:#f5f5f5;padding:0 .2em}"""

CHECK_JS = """(function(){var figs=document.querySelectorAll('figure.plot');var ok=0;
figs.forEach(function(f){var s=f.querySelector('svg');if(s){var b=s.getBoundingClientRect();if(b.width>0&&b.height>0)ok++;}});
document.getElementById('moss-check').textContent='plots-ok '+ok+'/'+figs.length;})();"""


class Page:
    """Sections rendered both as Markdown and HTML."""

    def __init__(self):
        self.md, self.html = [], []

    def section(self, heading):
        self.md.append(f"## {heading}\n")
        self.html.append(f"<h2>{html.escape(heading)}</h2>")

    def text(self, text, cls=None, strong=False):
        self.md.append(f"**{text}**\n" if strong else f"{text}\n")
        inner = f"<strong>{html.escape(text)}</strong>" if strong else html.escape(text)
        self.html.append(f'<p class="{cls}">{inner}</p>' if cls else f"<p>{inner}</p>")

    def table(self, head, rows):
        self.md.append(md_table(head, rows))
        self.html.append(html_table(head, rows))


def build(p, args):
    title = p.t["attrs"].get("scenario_name", "") or "moss results"
    deadline_s = parse_duration(args.deadline)
    run = p.is_run()
    costs = sorted(cost_of(p, i)[0] for i in p.ok() if _ok(cost_of(p, i)[0]))
    budget = args.budget if args.budget is not None else (costs[len(costs) // 2] if costs else math.inf)
    # The unit of the costs compared: USD where the scenario has prices (an unreachable design's
    # cost is infinite, so the first point alone cannot tell).
    budget_unit = "USD" if any(_ok(p.get("cost_to_ref_loss_usd", i)) for i in p.ok()) or not p.ok() else "GPU-hours"
    figs = plot_loss(p)
    if p.swept_bandwidth:
        figs.append(plot_vs_bandwidth(p, "tokens_per_second", "tokens/s", "Throughput vs bandwidth per method and rank",
                                      "tokens-vs-bandwidth", logy=True))
        figs.append(plot_vs_bandwidth(p, "exposed_comm_share", "exposed communication / step time",
                                      "Exposed communication share", "exposed-comm"))
        figs.append(plot_vs_bandwidth(p, "time_to_target_s", "time to target (s)", "Time to target", "time-to-target",
                                      logy=True))
        if any(_ok(p.get("cost_usd", i)) for i in p.ok()):
            figs.append(plot_vs_bandwidth(p, "cost_usd", "cost to target (USD)", "Cost to target", "cost-to-target",
                                          logy=True))
        if any(_ok(p.get("busiest_link_utilisation", i)) for i in p.ok()):
            figs.append(plot_vs_bandwidth(p, "busiest_link_utilisation", "busiest link utilisation",
                                          "Busiest link utilisation vs bandwidth", "busiest-link"))
    for extra in (plot_links(p), plot_memory(p) if run else None):
        if extra:
            figs.append(extra)
    failed = [[p.c["index"][i], p.c["status"][i], p.c["message"][i].splitlines()[0] if p.c["message"][i] else ""]
              for i in range(p.n) if p.c["status"][i] != "ok"]
    pg = Page()
    pg.section("Overview")
    pg.text(f"{p.n} points ({len(p.ok())} ok, {len(failed)} not ok); moss {p.t['attrs'].get('moss_version', '?')}; "
            f"swept: {', '.join(p.fields) or 'nothing (single run)'}.")
    if run and p.ok():
        pg.section("Summary")
        pg.table(["quantity", "value"], run_summary_rows(p, p.ok()[0]))
    if not run:
        ref, ref_t, be = break_even(p)
        pg.section("Break-even bandwidth")
        if not _ok(ref):
            # Break-even is judged against an uncompressed design; without one there is nothing to meet.
            pg.text("No uncompressed design ran successfully in this sweep, so there is no reference to break even "
                    "with. Add \"none\" to a swept compression.method (or a point with compression.method "
                    "\"none\") to get the bandwidth at which each compressed design matches it.", cls="warn")
        else:
            pg.text(f"Reference: fastest uncompressed design, {ref:,.0f} tokens/s and {fmt_duration(ref_t)} to loss "
                    f"{p.ref_loss_text}. Two criteria side by side: tokens/s within 5 % of the reference, and time "
                    "to that loss within 5 % of the reference time. Time to loss includes the statistical efficiency "
                    "eta (a design with eta < 1 needs 1/eta times the tokens, so it can match tokens/s and still lose "
                    "on time). The recommendation below uses time to loss (eta included) and cost, not tokens/s.")
            pg.table(["compressed design", "tokens/s: bandwidth within 5 %", "best tokens/s vs reference",
                      "time to loss: bandwidth within 5 % (eta included)", "best speed to loss vs reference", "eta"],
                     be)
    pg.section("Time and cost to target")
    pg.text("compression error: ||X - X^||_F / ||X||_F of the K/V exchange, K and V together (and each), as measured "
            "by the compression kernels: the accuracy traded for the bytes saved; 'not measured' where the bytes "
            "came from the formula only.")
    if p.token_target:
        pg.text(f"The target is a token count: eta changes the loss reached, not the time. 'time to loss "
                f"{p.ref_loss_text}' is the time to the loss the reference design reaches (eta included): the "
                "tokens each design's own loss law needs for it, divided by eta, in whole steps.", cls="warn")
    if p.mixed_models:
        pg.text(f"The designs are models of different sizes: each reaches loss {p.ref_loss_text} after its own token "
                "count (its loss law), and a model whose loss floor E + A / N^alpha lies at or above it never does "
                "('unreachable'; left out of the recommendations).", cls="warn")
    pg.table(["design", "bandwidth", "tokens/s", "exposed comm", "ratio", "compression error", "time to target",
              f"time to loss {p.ref_loss_text} (eta incl.)", "cost to target", "eta"], time_cost_table(p))
    pg.section("Network")
    pg.text("Busiest links per design (utilisation = wire bytes per step incl. headers / (bandwidth x step time)); "
            "CP comm = network time of the context-parallel exchange per step; exposed comm = step time not hidden "
            "behind compute.")
    pg.table(["design", "bandwidth", "backend", "busiest links", "CP comm / step", "exposed comm"], network_rows(p))
    pkt = packet_rows(p)
    if pkt:
        pg.text("Packet-level (ns-3) points: TCP retransmissions per step and flow completion times relative to the "
                "analytic model on the same flows (ratio > 1: ns-3 slower, e.g. slow start on long RTTs, loss, "
                "contention).")
        pg.table(["design", "bandwidth", "phases simulated / reused", "retransmissions / step", "flows compared",
                  "mean ns-3 / analytic", "worst ns-3 / analytic"], pkt)
        if not run:
            pg.text("In a sweep the phase cache is shared by the points a process runs, so only the total number "
                    "of phases per point is kept (see sim/sweep/README.md).")
    elif not run:
        pg.text("All points use the analytic network model (no packet-level comparison).")
    if not run:
        meet, under = recommendations(p, deadline_s, budget)
        rec_head = ["design", f"time to loss {p.ref_loss_text}", "cost", "GPU-hours", "eta", "compression error"]
        budget_text = fmt_usd(budget) if budget_unit == "USD" else f"{budget:,.0f} GPU-hours"
        pg.section("Recommendation")
        pg.text(f"Ranked by time and cost to loss {p.ref_loss_text} (the reference design's loss; eta included), "
                "not by tokens/s.")
        pg.text(f"Cheapest designs meeting the deadline of {fmt_duration(deadline_s)}:")
        pg.table(rec_head, meet)
        pg.text(f"Fastest designs under the budget of {budget_text}" +
                (" (no prices in the scenario: budget in GPU-hours)" if budget_unit != "USD" else "") + ":")
        pg.table(rec_head, under)
    assum, eff = assumptions(p)
    a_rows = [[k, v, ", ".join(sorted(ds))] for k, vals in assum.items() for v, ds in sorted(vals.items())]
    pg.section("Assumptions")
    pg.table(["assumption", "value", "designs"], a_rows)
    if any("assumed" in r[1] for r in a_rows):
        pg.text("Statistical efficiency (eta) is ASSUMED for some designs, not measured.", cls="warn", strong=True)
    if eff:
        pg.text("Roofline efficiency factors (fraction of peak per op class): " + "; ".join(eff))
    if failed:
        pg.section("Points that failed")
        pg.table(["index", "status", "message"], failed)

    md = [f"# Capacity-planning report: {title}\n"] + pg.md
    md.append("## Plots\n\nSee report.html: " + ", ".join(t for _, t, _ in figs) + ".\n")
    body = [f"<h1>Capacity-planning report: {html.escape(title)}</h1>"] + pg.html
    body.append("<h2>Plots</h2>")
    for key, t, svg in figs:
        body.append(f'<figure class="plot" data-plot="{key}"><figcaption>{html.escape(t)}</figcaption>{svg}</figure>')
    body.append('<p id="moss-check" style="color:#999;font-size:.8em">plots not checked</p>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>moss report: {html.escape(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) +
            f"\n<script>{CHECK_JS}</script>\n</body></html>\n")
    return page, "\n".join(md), len(figs)


def write_atomic(path, text):
    """Write through a new temporary file beside path, then rename: whatever sits at path (or at a
    fixed temporary name, e.g. a FIFO) is replaced, never opened."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fh.fileno(), 0o666 & ~umask)   # as open() would have created it, not mkstemp's 0600
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def budget_value(text):
    """--budget: a finite amount, 0 or more (0: nothing is affordable)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an amount such as 50000") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite amount, 0 or more")
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--out", help="output directory (default: DIR)")
    ap.add_argument("--deadline", default="30d", help="deadline for the recommendation (default 30d)")
    ap.add_argument("--budget", type=budget_value, default=None, help="budget (USD, 0 or more; default: the median cost)")
    args = ap.parse_args(argv)
    try:
        parse_duration(args.deadline)
        table = moss_results.load(args.dir)
    except (ValueError, FileNotFoundError, OSError) as e:   # moss_input.InputError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 -- reading only: what the inputs provoke is still bad input
        print(f"error: {args.dir}: cannot read the results ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    # Rendering is outside the guard: a failure there is a bug in the report, not bad input.
    page, md, nfigs = build(Points(table), args)
    out = args.out or args.dir
    try:
        os.makedirs(out, exist_ok=True)
        write_atomic(os.path.join(out, "report.html"), page)
        write_atomic(os.path.join(out, "report.md"), md)
    except OSError as e:
        print(f"error: cannot write the report to {out}: {e}", file=sys.stderr)
        return 1
    print(f"report: {os.path.join(out, 'report.html')} ({nfigs} plots), {os.path.join(out, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
