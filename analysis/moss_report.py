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


def fmt_usd(x):
    return "-" if not _ok(x) else f"${x:,.0f}"


def _ok(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def parse_duration(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*(s|min|h|d|w|y)?\s*", text)
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

    def get(self, name, i, default=math.nan):
        col = self.c.get(name)
        return default if col is None else col[i]

    def ok(self):
        return [i for i in range(self.n) if self.c["status"][i] == "ok"]

    def design(self, i):
        """Compression design plus every swept field that is not the bandwidth or the design itself."""
        parts = [self.get("design", i, self.get("method", i, "?"))]
        for f in self.fields:
            if f == "cluster.network.bandwidth" or f.startswith("compression") or f.startswith("convergence.efficiency"):
                continue
            parts.append(f"{f.split('.')[-1]}={self.c['field:' + f][i]}")
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


# ---------- tables ----------
def break_even(p):
    """Per compressed design: lowest bandwidth with tokens/s >= 95 % of the fastest uncompressed design."""
    designs = p.designs()
    ref = max((p.get("tokens_per_second", i) for d, rows in designs.items() for i in rows if not p.compressed(i)),
              default=math.nan)
    rows_out = []
    for d, rows in designs.items():
        if not p.compressed(rows[0]):
            continue
        bw = [p.get("bandwidth_bps", i) for i in rows]
        tps = [p.get("tokens_per_second", i) for i in rows]
        found = "not reached"
        for k, (b, t) in enumerate(zip(bw, tps)):
            if _ok(ref) and t >= BREAK_EVEN * ref:
                if k == 0:
                    found = f"<= {fmt_rate(b)}"
                else:  # interpolate the crossing in log bandwidth
                    t0, t1, b0 = tps[k - 1], t, bw[k - 1]
                    f = (BREAK_EVEN * ref - t0) / (t1 - t0) if t1 != t0 else 1.0
                    found = "~" + fmt_rate(b0 * (b / b0) ** f)
                break
        best = max(tps) / ref if _ok(ref) and ref > 0 else math.nan
        rows_out.append([d, found, f"{100 * best:.1f} %" if _ok(best) else "-"])
    return ref, rows_out


def cost_of(p, i):
    c = p.get("cost_usd", i)
    return (c, "USD") if _ok(c) else (p.get("gpu_hours", i), "GPU-hours")


def recommendations(p, deadline_s, budget):
    pts = [i for i in p.ok() if _ok(p.get("time_to_target_s", i))]
    label = lambda i: f"{p.design(i)} @ {fmt_rate(p.get('bandwidth_bps', i))}"  # noqa: E731
    meet = sorted((i for i in pts if p.get("time_to_target_s", i) <= deadline_s), key=lambda i: cost_of(p, i)[0])
    under = sorted((i for i in pts if _ok(cost_of(p, i)[0]) and cost_of(p, i)[0] <= budget),
                   key=lambda i: p.get("time_to_target_s", i))
    row = lambda i: [label(i), fmt_duration(p.get("time_to_target_s", i)), fmt_usd(p.get("cost_usd", i)),  # noqa: E731
                     f"{p.get('gpu_hours', i):,.0f}"]
    return [row(i) for i in meet[:5]], [row(i) for i in under[:5]]


def time_cost_table(p):
    out = []
    for d, rows in p.designs().items():
        for i in (rows[0], rows[-1]) if len(rows) > 1 else rows:
            out.append([d, fmt_rate(p.get("bandwidth_bps", i)), f"{p.get('tokens_per_second', i):,.0f}",
                        f"{100 * p.get('exposed_comm_share', i):.1f} %" if _ok(p.get("exposed_comm_share", i)) else "-",
                        fmt_duration(p.get("time_to_target_s", i)), fmt_usd(p.get("cost_usd", i)),
                        f"{p.get('eta', i):.3g}"])
    return out


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
        try:
            s = json.loads(p.c["summary_json"][i])
        except (ValueError, KeyError):
            continue
        for k in ("efficiency", "efficiency_factors", "assumptions"):
            if k in s:
                eff.add(json.dumps(s[k], sort_keys=True))
    return out, sorted(eff)


# ---------- output ----------
def md_table(head, rows):
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
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


def build(p, args):
    title = p.t["attrs"].get("scenario_name", "") or "moss results"
    deadline_s = parse_duration(args.deadline)
    costs = sorted(cost_of(p, i)[0] for i in p.ok() if _ok(cost_of(p, i)[0]))
    budget = args.budget if args.budget else (costs[len(costs) // 2] if costs else math.inf)
    budget_unit = cost_of(p, p.ok()[0])[1] if p.ok() else "USD"
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
    ref, be = break_even(p)
    meet, under = recommendations(p, deadline_s, budget)
    tc = time_cost_table(p)
    assum, eff = assumptions(p)
    failed = [[p.c["index"][i], p.c["status"][i], p.c["message"][i].splitlines()[0] if p.c["message"][i] else ""]
              for i in range(p.n) if p.c["status"][i] != "ok"]
    sections = []  # (heading, markdown, html)
    sections.append(("Overview", f"{p.n} points ({len(p.ok())} ok, {len(failed)} not ok); moss "
                     f"{p.t['attrs'].get('moss_version', '?')}; swept: {', '.join(p.fields) or 'nothing (single run)'}.\n", None))
    be_head = ["compressed design", "bandwidth within 5 % of fastest uncompressed", "best tokens/s vs reference"]
    sections.append(("Break-even bandwidth",
                     f"Reference: fastest uncompressed design, {ref:,.0f} tokens/s.\n\n" + md_table(be_head, be), None))
    tc_head = ["design", "bandwidth", "tokens/s", "exposed comm", "time to target", "cost", "eta"]
    sections.append(("Time and cost to target", md_table(tc_head, tc), None))
    rec_head = ["design", "time to target", "cost", "GPU-hours"]
    budget_text = fmt_usd(budget) if budget_unit == "USD" else f"{budget:,.0f} GPU-hours"
    rec_md = (f"Cheapest designs meeting the deadline of {fmt_duration(deadline_s)}:\n\n" + md_table(rec_head, meet) +
              f"\nFastest designs under the budget of {budget_text}" +
              (" (no prices in the scenario: budget in GPU-hours)" if budget_unit != "USD" else "") + ":\n\n" +
              md_table(rec_head, under))
    sections.append(("Recommendation", rec_md, None))
    a_rows = [[k, v, ", ".join(sorted(ds))] for k, vals in assum.items() for v, ds in sorted(vals.items())]
    a_md = md_table(["assumption", "value", "designs"], a_rows)
    if any("assumed" in r[1] for r in a_rows):
        a_md += "\n**Statistical efficiency (eta) is ASSUMED for some designs, not measured.**\n"
    if eff:
        a_md += "\nEfficiency factors: " + "; ".join(eff) + "\n"
    sections.append(("Assumptions", a_md, None))
    if failed:
        sections.append(("Points that failed", md_table(["index", "status", "message"], failed), None))

    md = [f"# Capacity-planning report: {title}\n"]
    for h, body, _ in sections:
        md.append(f"## {h}\n\n{body}")
    md.append("## Plots\n\nSee report.html: " + ", ".join(t for _, t, _ in figs) + ".\n")

    body = [f"<h1>Capacity-planning report: {html.escape(title)}</h1>"]
    tables = {"Break-even bandwidth": (be_head, be), "Time and cost to target": (tc_head, tc)}
    for h, text, _ in sections:
        body.append(f"<h2>{html.escape(h)}</h2>")
        if h in tables:
            if h == "Break-even bandwidth":
                body.append(f"<p>Reference: fastest uncompressed design, {ref:,.0f} tokens/s.</p>")
            body.append(html_table(*tables[h]))
        elif h == "Recommendation":
            body.append(f"<p>Cheapest designs meeting the deadline of {html.escape(fmt_duration(deadline_s))}:</p>")
            body.append(html_table(rec_head, meet))
            body.append(f"<p>Fastest designs under the budget of {html.escape(budget_text)}:</p>")
            body.append(html_table(rec_head, under))
        elif h == "Assumptions":
            body.append(html_table(["assumption", "value", "designs"], a_rows))
            if any("assumed" in r[1] for r in a_rows):
                body.append('<p class="warn"><strong>Statistical efficiency (eta) is ASSUMED for some designs, '
                            'not measured.</strong></p>')
        elif h == "Points that failed":
            body.append(html_table(["index", "status", "message"], failed))
        else:
            body.append(f"<p>{html.escape(text.strip())}</p>")
    body.append("<h2>Plots</h2>")
    for key, t, svg in figs:
        body.append(f'<figure class="plot" data-plot="{key}"><figcaption>{html.escape(t)}</figcaption>{svg}</figure>')
    body.append('<p id="moss-check" style="color:#999;font-size:.8em">plots not checked</p>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>moss report: {html.escape(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) +
            f"\n<script>{CHECK_JS}</script>\n</body></html>\n")
    return page, "\n".join(md), len(figs)


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--out", help="output directory (default: DIR)")
    ap.add_argument("--deadline", default="30d", help="deadline for the recommendation (default 30d)")
    ap.add_argument("--budget", type=float, default=0.0, help="budget (USD; default: the median cost)")
    args = ap.parse_args(argv)
    try:
        parse_duration(args.deadline)
        table = moss_results.load(args.dir)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    page, md, nfigs = build(Points(table), args)
    out = args.out or args.dir
    os.makedirs(out, exist_ok=True)
    write_atomic(os.path.join(out, "report.html"), page)
    write_atomic(os.path.join(out, "report.md"), md)
    print(f"report: {os.path.join(out, 'report.html')} ({nfigs} plots), {os.path.join(out, 'report.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
