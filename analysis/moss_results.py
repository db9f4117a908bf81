"""Read moss results (results.h5 of `moss run` / `moss sweep`, or summary.json) into columns.

Layout of results.h5 (format "moss-results/1", see sim/sweep/README.md):
  /points/index, status, message, scenario_json, summary_json   one row per point
  /points/field/<dotted.path>    swept values (float64, or strings)
  /points/metric/<name>          numeric outputs (float64, NaN when unknown)
  /points/label/<name>           text outputs (method, design, eta sources, ...)
  /curves/{tokens,wall_s,loss}   [points, K] predicted loss curve, NaN-padded

    import moss_results
    table = moss_results.load("results/sweeps/x")        # dict: column name -> list
    df = moss_results.to_dataframe(table)                # pandas, when installed
"""
import json
import math
import os

import h5py
import numpy as np


def _links(s):
    return (s.get("network") or {}).get("links") or []


def _busiest(s):
    links = _links(s)
    return max(links, key=lambda l: l.get("utilisation", 0.0)) if links else None


def _vs(s, key):
    return ((s.get("network") or {}).get("vs_analytic") or {}).get(key)


# Columns that newer moss versions store in results.h5, recomputed from summary_json when a file
# (or a run directory with only summary.json) lacks them. name -> (kind, function of the summary).
DERIVED = {
    "cp_comm_time_s": ("metric", lambda s: (s.get("step") or {}).get("cp_comm_time_s")),
    "weight_sync_time_s": ("metric", lambda s: (s.get("step") or {}).get("weight_sync_time_s")),
    "compression_relative_error": ("metric", lambda s: (s.get("compression") or {}).get("relative_error")),
    "compression_relative_error_k": ("metric", lambda s: (s.get("compression") or {}).get("relative_error_k")),
    "compression_relative_error_v": ("metric", lambda s: (s.get("compression") or {}).get("relative_error_v")),
    "compression_ratio": ("metric", lambda s: (s.get("compression") or {}).get("ratio")),
    "memory_total_bytes": ("metric", lambda s: (s.get("memory") or {}).get("total_bytes")),
    "gpu_memory_bytes": ("metric", lambda s: (s.get("memory") or {}).get("gpu_bytes")),
    "retransmissions": ("metric", lambda s: (s.get("network") or {}).get("retransmissions")),
    "links_used": ("metric", lambda s: len(_links(s)) if "network" in s else None),
    "busiest_link_utilisation": ("metric", lambda s: (_busiest(s) or {}).get("utilisation")),
    "busiest_link_wire_bytes_per_step": ("metric", lambda s: (_busiest(s) or {}).get("wire_bytes_per_step")),
    "busiest_link_bandwidth_bps": ("metric", lambda s: (_busiest(s) or {}).get("bandwidth_bps")),
    "vs_analytic_flows": ("metric", lambda s: _vs(s, "flows")),
    "vs_analytic_mean_ratio": ("metric", lambda s: _vs(s, "mean_ratio")),
    "vs_analytic_worst_ratio": ("metric", lambda s: _vs(s, "worst_ratio")),
    "gpu_hours": ("metric", lambda s: (s.get("convergence") or {}).get("gpu_hours")),
    "target_tokens": ("metric", lambda s: (s.get("convergence") or {}).get("target_tokens")),
    "target_loss": ("metric", lambda s: (s.get("convergence") or {}).get("target_loss")),
    "backend": ("label", lambda s: s.get("backend")),
    "eta_source": ("label", lambda s: (s.get("convergence") or {}).get("eta_source")),
    "compression_source": ("label", lambda s: (s.get("compression") or {}).get("source")),
    "compression_timing_source": ("label", lambda s: (s.get("compression") or {}).get("timing_source")),
    "busiest_link": ("label", lambda s: (lambda b: f"{b['from']}->{b['to']}" if b else None)(_busiest(s))),
}


def summaries(table):
    """The parsed summary.json of every row ({} where unreadable or not ok)."""
    if "_summaries" not in table:
        out = []
        for text in table["columns"].get("summary_json", []):
            try:
                s = json.loads(text)
            except ValueError:
                s = {}
            out.append(s if isinstance(s, dict) else {})
        table["_summaries"] = out
    return table["_summaries"]


def _backfill(table):
    cols = table["columns"]
    sums = summaries(table)
    for name, (kind, fn) in DERIVED.items():
        if name in cols:
            continue
        values = []
        for s in sums:
            try:
                values.append(fn(s) if s else None)
            except (TypeError, KeyError, ValueError):
                values.append(None)
        if all(v is None for v in values):
            continue
        if kind == "metric":
            cols[name] = [float(v) if isinstance(v, (int, float)) else math.nan for v in values]
        else:
            cols[name] = ["" if v is None else str(v) for v in values]
    return table


def _text(values):
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def load_h5(path):
    """Columns of results.h5: metrics and labels by name, swept fields as 'field:<path>'."""
    table = {"attrs": {}, "columns": {}, "curves": {}}
    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            table["attrs"][k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
        pts = f["points"]
        cols = table["columns"]
        cols["index"] = [int(x) for x in pts["index"][:]]
        for name in ("status", "message", "scenario_json", "summary_json"):
            cols[name] = _text(pts[name][:])
        for group, prefix in (("field", "field:"), ("metric", ""), ("label", "")):
            for name, ds in pts[group].items():
                data = ds[:]
                cols[prefix + name] = _text(data) if data.dtype.kind in "OSU" else [float(x) for x in data]
        if "curves" in f:
            for name in ("tokens", "wall_s", "loss"):
                table["curves"][name] = np.array(f["curves"][name][:])
    table["rows"] = len(table["columns"]["index"])
    return _backfill(table)


def load_summary_json(path):
    """A single-row table from a run's summary.json (no results.h5)."""
    with open(path) as fh:
        s = json.load(fh)
    conv = s.get("convergence", {}) or {}
    comp = s.get("compression", {}) or {}
    cols = {"index": [0], "status": ["ok"], "message": [""], "summary_json": [json.dumps(s)], "scenario_json": ["{}"]}
    for k in ("tokens_per_second", "step_time_s", "mfu", "params", "comm_bytes_per_step_per_device",
              "exposed_comm_s", "time_to_target_s", "statistical_efficiency"):
        v = s.get(k)
        cols[k] = [float(v) if isinstance(v, (int, float)) else math.nan]
    cols["eta"] = cols.pop("statistical_efficiency")
    step = cols["step_time_s"][0]
    cols["exposed_comm_share"] = [cols["exposed_comm_s"][0] / step if step else math.nan]
    cols["method"] = [comp.get("method", "none")]
    cols["design"] = [comp.get("method", "none")]
    cols["compression_ratio"] = [float(comp.get("ratio", 1.0))]
    scen = os.path.join(os.path.dirname(path), "scenario.json")
    if os.path.exists(scen):
        with open(scen) as fh:
            cols["scenario_json"] = [fh.read()]
    curve = conv.get("curve") or []
    table = {"attrs": {"kind": "run", "scenario_name": s.get("scenario", "")}, "columns": cols, "rows": 1,
             "curves": {}}
    if curve:
        for name in ("tokens", "wall_s", "loss"):
            table["curves"][name] = np.array([[p[name] for p in curve]])
    return _backfill(table)


def load(directory):
    """results.h5 when present, else summary.json. Raises FileNotFoundError."""
    h5 = os.path.join(directory, "results.h5")
    js = os.path.join(directory, "summary.json")
    if os.path.exists(h5):
        table = load_h5(h5)
        # A run's results.h5 stores the summary without process-dependent counters (phases simulated
        # vs reused, events); its summary.json has them.
        if table["attrs"].get("kind") == "run" and table["rows"] == 1 and os.path.exists(js):
            try:
                with open(js) as fh:
                    full = json.load(fh)
            except ValueError:
                full = None
            if isinstance(full, dict):
                table["columns"]["summary_json"] = [json.dumps(full)]
                table.pop("_summaries", None)
        return table
    if os.path.exists(js):
        return load_summary_json(js)
    raise FileNotFoundError(f"{directory}: neither results.h5 nor summary.json")


def to_dataframe(table):
    """pandas DataFrame of the point columns (needs python3-pandas)."""
    import pandas as pd
    return pd.DataFrame({k: v for k, v in table["columns"].items()})
