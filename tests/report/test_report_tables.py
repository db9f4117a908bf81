"""Fast checks of analysis/moss_report.py on synthetic results (no moss binary, no Chromium):
the single-run report from summary.json alone, the network section (busiest links, ns-3 vs analytic),
the compression error column, and break-even by tokens/s vs by time to loss (eta included)."""
import json
import math
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "analysis"))
try:
    import moss_report  # noqa: E402
    import moss_results  # noqa: E402
except ImportError as e:  # matplotlib / h5py missing
    print(f"skipped: {e}")
    sys.exit(77)


def summary(tps, bw, method="none", eta=1.0, err=None, backend="analytic", util=0.5, vs=None, retx=0):
    links = [{"from": f"node{k}", "to": f"node{(k + 1) % 4}", "bandwidth_bps": bw, "wire_bytes_per_step": 1e8,
              "utilisation": util - 0.1 * k} for k in range(4)]
    s = {"scenario": "synthetic", "tokens_per_second": tps, "step_time_s": 1.0, "mfu": 0.3, "params": 8e8,
         "comm_bytes_per_step_per_device": 1e8, "exposed_comm_s": 0.25, "statistical_efficiency": eta,
         "time_to_target_s": 1e9 / tps, "backend": backend,
         "compression": {"method": method, "ratio": 1.0 if method == "none" else 0.05, "relative_error": err,
                         "relative_error_k": err and err * 1.2, "relative_error_v": err and err * 0.9,
                         "source": "kernels on synthetic", "timing_source": "roofline"},
         "step": {"cp_comm_time_s": 0.5, "compute_only_step_s": 0.75},
         "memory": {"total_bytes": 3e10, "gpu_bytes": 8e10, "weights_bytes": 2e9, "gradients_bytes": 2e9,
                    "optimizer_bytes": 4e9, "activations_bytes": 1e10, "gathered_kv_bytes": 8e9, "logits_bytes": 4e9},
         "convergence": {"eta_source": f"compression=assumed {eta}", "target_tokens": 1e9, "target_loss": 3.0 - eta,
                         "gpu_hours": 1.0, "curve": [{"tokens": t, "wall_s": t / tps, "loss": 10 / (1 + t) + 2}
                                                     for t in (1e3, 1e6, 1e9)]},
         "network": {"retransmissions": retx, "links": links}}
    if vs:
        s["network"]["vs_analytic"] = {"flows": 8, "mean_ratio": vs[0], "worst_ratio": vs[1]}
    return s


DESIGNS = (("none", 1.0, [100, 1000, 2000], None), ("mos", 1.0, [1920, 2000, 2050], 0.2),
           ("topk", 0.8, [1500, 1950, 2000], 0.7))


def sweep_table(designs=DESIGNS):
    rows = []
    bws = [1e9, 1e10, 1e11]
    for method, eta, tps, err in designs:
        for bw, t in zip(bws, tps):
            backend = "ns3" if bw == 1e9 else "analytic"
            s = summary(t, bw, method, eta, err, backend, vs=(1.05, 1.3) if backend == "ns3" else None, retx=3)
            rows.append((method, bw, s))
    cols = {"index": list(range(len(rows))), "status": ["ok"] * len(rows), "message": [""] * len(rows),
            "scenario_json": ["{}"] * len(rows), "summary_json": [json.dumps(s) for _, _, s in rows],
            "field:cluster.network.bandwidth": [f"{bw:g}bps" for _, bw, _ in rows],
            "bandwidth_bps": [bw for _, bw, _ in rows], "method": [m for m, _, _ in rows],
            "design": [m for m, _, _ in rows], "tokens_per_second": [s["tokens_per_second"] for _, _, s in rows],
            "time_to_target_s": [s["time_to_target_s"] for _, _, s in rows],
            "step_time_s": [s["step_time_s"] for _, _, s in rows], "params": [s["params"] for _, _, s in rows],
            "eta": [s["statistical_efficiency"] for _, _, s in rows],
            "exposed_comm_share": [0.25] * len(rows), "cost_usd": [s["time_to_target_s"] for _, _, s in rows]}
    table = {"attrs": {"kind": "sweep", "scenario_name": "synthetic"}, "columns": cols, "rows": len(rows), "curves": {}}
    return moss_results._backfill(table)


def check_sweep():
    table = sweep_table()
    c = table["columns"]
    for col in ("busiest_link_utilisation", "retransmissions", "vs_analytic_mean_ratio", "compression_relative_error",
                "cp_comm_time_s", "backend"):
        assert col in c, col
    assert math.isnan(c["vs_analytic_mean_ratio"][1]) and c["vs_analytic_mean_ratio"][0] == 1.05
    p = moss_report.Points(table)
    ref, ref_t, be = moss_report.break_even(p)
    assert ref == 2000 and abs(ref_t - 1e9 / 2000) < 1e-6, (ref, ref_t)
    by = {r[0]: r for r in be}
    # mos: 1920 >= 0.95 * 2000 at the lowest bandwidth on both criteria (time in whole steps)
    assert by["mos"][1].startswith("<=") and by["mos"][3].startswith("<="), by["mos"]
    # topk (eta 0.8): reaches the tokens/s criterion, never the time-to-loss one (2000 * 0.8 < 0.95 * 2000)
    assert by["topk"][1].startswith("~") and by["topk"][3] == "not reached", by["topk"]
    assert p.token_target, "different target losses: a token target"
    assert abs(p.get("time_to_ref_loss_s", 8) - 1e9 / (0.8 * 2000)) < 1e-3
    meet, under = moss_report.recommendations(p, 1e12, 1e12)
    assert meet and all("topk" not in r[0] for r in meet[:1]), meet
    net = moss_report.network_rows(p)
    assert any("node0->node1 50.0 %" in r[3] for r in net), net
    pkt = moss_report.packet_rows(p)
    assert len(pkt) == 3 and pkt[0][5] == "1.050" and pkt[0][6] == "1.300", pkt
    tc = moss_report.time_cost_table(p)
    assert any(r[5] == "0.2 (K 0.24, V 0.18)" for r in tc), tc
    assert any(r[5] == "0 (exact)" for r in tc), tc
    # swept numbers come back from results.h5 as doubles: labels show them as the scenario wrote them
    assert [moss_report.fmt_field(v) for v in (4.0, 0.5, "ring", 1e20)] == ["4", "0.5", "ring", "1e+20"]


def check_sweep_without_uncompressed_design():
    """Break-even is judged against an uncompressed design: without one the report says so, no 'nan'."""
    p = moss_report.Points(sweep_table(DESIGNS[1:]))
    ref, _, _ = moss_report.break_even(p)
    assert math.isnan(ref), ref
    page, md, _ = moss_report.build(p, Args())
    assert "No uncompressed design ran successfully" in md, md
    assert "nan" not in md.lower().replace("nanosecond", ""), [l for l in md.splitlines() if "nan" in l.lower()]


def check_models_of_different_sizes():
    """Each design reaches the reference loss after its own token count (its loss law), or never: a
    smaller model whose floor lies above the reference's loss is 'unreachable' and left out of the
    recommendations (the report used to scale the reference's tokens by eta alone: 145 years)."""
    law = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    rows = []
    for params, tps in ((8e8, 5000.0), (7e10, 9000.0), (8e9, 20000.0)):
        s = summary(tps, 1e11)
        floor = law["E"] + law["A"] / params ** law["alpha"]
        tokens = 2e12
        s["params"], s["step_time_s"] = params, 10.0
        s["convergence"].update({"loss_law": law, "loss_floor": floor, "target_tokens": tokens,
                                 "target_loss": floor + law["B"] / tokens ** law["beta"]})
        s["time_to_target_s"] = math.ceil(tokens / (tps * 10.0)) * 10.0
        rows.append(s)
    cols = {"index": [0, 1, 2], "status": ["ok"] * 3, "message": [""] * 3, "scenario_json": ["{}"] * 3,
            "summary_json": [json.dumps(s) for s in rows], "field:model.preset": ["800m", "70b", "8b"],
            "bandwidth_bps": [1e11] * 3, "method": ["none"] * 3, "design": ["none"] * 3,
            "tokens_per_second": [s["tokens_per_second"] for s in rows], "step_time_s": [10.0] * 3,
            "params": [s["params"] for s in rows], "time_to_target_s": [s["time_to_target_s"] for s in rows],
            "eta": [1.0] * 3, "exposed_comm_share": [0.25] * 3, "cost_usd": [1e6, 2e6, 3e6]}
    table = moss_results._backfill({"attrs": {"kind": "sweep", "scenario_name": "sizes"}, "columns": cols, "rows": 3,
                                    "curves": {}})
    p = moss_report.Points(table)
    assert p.ref_point == 2, p.ref_point  # the 8B model reaches its target first (2e12 / 20000 tokens/s)
    level = rows[2]["convergence"]["target_loss"]  # 8B at 2e12 tokens: 1.69 + 0.0808 + 0.1268 = 1.898
    assert rows[0]["convergence"]["loss_floor"] > level  # 800M: floor 2.07, never gets there
    assert p.get("time_to_ref_loss_s", 0) == math.inf
    assert moss_report.fmt_duration(p.get("time_to_ref_loss_s", 0)) == "unreachable"
    # 70B: (B / (L - floor))^(1/beta) tokens, by hand, in whole steps of 9000 x 10 tokens.
    floor70 = rows[1]["convergence"]["loss_floor"]
    tokens70 = (law["B"] / (level - floor70)) ** (1 / law["beta"])
    want = math.ceil(tokens70 / 90000.0) * 10.0
    assert abs(p.get("time_to_ref_loss_s", 1) - want) < 1e-6 * want, (p.get("time_to_ref_loss_s", 1), want)
    assert tokens70 < 2e12  # the larger model needs fewer tokens for the same loss
    meet, under = moss_report.recommendations(p, 1e12, 1e12)
    assert all("800m" not in r[0] for r in meet + under), (meet, under)
    page, md, _ = moss_report.build(p, Args())
    assert "models of different sizes" in md, md
    # the first point is the unreachable one: the budget is still in the scenario's USD
    assert "budget of $" in md and "GPU-hours (no prices" not in md, [l for l in md.splitlines() if "budget" in l]


class Args:
    deadline = "30d"
    budget = None
    out = None


def check_run_from_summary_json():
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "summary.json"), "w") as fh:
            json.dump(summary(5000, 3e8, "mos", 1.0, 0.19, "ns3", util=0.97, vs=(1.1, 1.4), retx=12), fh)
        table = moss_results.load(d)
        p = moss_report.Points(table)
        assert p.is_run()
        page, md, nfigs = moss_report.build(p, Args())
        for section in ("## Summary", "## Time and cost to target", "## Network", "## Assumptions",
                        "retransmissions", "0.19 (K 0.228, V 0.171)", "node0->node1 97.0 %", "1.100"):
            assert section in md, section
        assert "## Break-even" not in md and "## Recommendation" not in md
        for plot in ("loss-vs-wallclock", "link-utilisation", "memory"):
            assert f'data-plot="{plot}"' in page, plot
        assert nfigs == 3, nfigs


check_sweep()
check_models_of_different_sizes()
check_run_from_summary_json()
check_sweep_without_uncompressed_design()
print("ok")
