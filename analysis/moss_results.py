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
    return table


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
    curve = conv.get("curve") or []
    table = {"attrs": {"kind": "run", "scenario_name": s.get("scenario", "")}, "columns": cols, "rows": 1,
             "curves": {}}
    if curve:
        for name in ("tokens", "wall_s", "loss"):
            table["curves"][name] = np.array([[p[name] for p in curve]])
    return table


def load(directory):
    """results.h5 when present, else summary.json. Raises FileNotFoundError."""
    h5 = os.path.join(directory, "results.h5")
    if os.path.exists(h5):
        return load_h5(h5)
    js = os.path.join(directory, "summary.json")
    if os.path.exists(js):
        return load_summary_json(js)
    raise FileNotFoundError(f"{directory}: neither results.h5 nor summary.json")


def to_dataframe(table):
    """pandas DataFrame of the point columns (needs python3-pandas)."""
    import pandas as pd
    return pd.DataFrame(table["columns"])
