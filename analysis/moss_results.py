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

import moss_input
from moss_input import InputError


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
    "loss_floor": ("metric", lambda s: (s.get("convergence") or {}).get("loss_floor")),
    "loss_law_B": ("metric", lambda s: ((s.get("convergence") or {}).get("loss_law") or {}).get("B")),
    "loss_law_beta": ("metric", lambda s: ((s.get("convergence") or {}).get("loss_law") or {}).get("beta")),
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
            except (ValueError, RecursionError):
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


# The point columns; metric and label names may not reuse them, nor each other's.
POINT_COLUMNS = ("index", "status", "message", "scenario_json", "summary_json")
# Names the report reads as text: a metric of that name would be a number where it expects text.
LABELS = {"method", "design", "gpu", "topology", "cp_algorithm", "scenario", "eta_compression_source",
          "eta_weight_sync_source", "loss_law_source"} | {k for k, (kind, _) in DERIVED.items() if kind == "label"}
METRICS = {k for k, (kind, _) in DERIVED.items() if kind == "metric"} | {
    "tokens_per_second", "step_time_s", "mfu", "params", "comm_bytes_per_step_per_device", "exposed_comm_s",
    "exposed_comm_share", "time_to_target_s", "eta", "cost_usd", "bandwidth_bps"}
# Metrics the report divides by or takes ratios of, so must be > 0 where known.
POSITIVE = {"bandwidth_bps"}


def _read_h5(r, table):
    """The columns of results.h5 through H5Reader r, every dataset checked before it is read."""
    f = r.f
    table["attrs"] = r.attrs(f, ("kind", "scenario_name", "moss_version"))
    pts = r.group(f, "/", "points")
    cols = table["columns"]
    ds = r.dataset(pts, "/points", "index", "int64 point indices", (None,))
    cols["index"] = r.integers(ds, "int64 point indices")
    n = len(cols["index"])
    for name in POINT_COLUMNS[1:]:
        ds = r.dataset(pts, "/points", name, f"{n} strings (one per point, as /points/index)", (n,))
        cols[name] = r.texts(ds, "UTF-8 strings")
    for group, prefix in (("field", "field:"), ("metric", ""), ("label", "")):
        g = r.group(pts, "/points", group)
        gpath = f"/points/{group}"
        for name in r.names(g):
            what = {"field": "swept values (numbers or strings)", "metric": "float64 numbers",
                    "label": "strings"}[group]
            ds = r.dataset(g, gpath, name, f"{n} {what} (one per point, as /points/index)", (n,))
            if prefix + name in cols:
                r.fail("the name of another point column; expected a name used once in /points")
            if (group == "metric" and name in LABELS) or (group == "label" and name in METRICS):
                r.fail(f"expected {name} under /points/{'label' if name in LABELS else 'metric'} "
                       f"({'text' if name in LABELS else 'numbers'})")
            if group == "label" or (group == "field" and h5py.check_string_dtype(ds.dtype) is not None):
                cols[prefix + name] = r.texts(ds, "UTF-8 strings")
            else:
                data = r.numbers(ds, what, bounded=group == "metric")   # a field's value is only shown
                if group == "metric" and name in POSITIVE:
                    r.check_positive(data)
                cols[prefix + name] = [float(x) for x in data]
    curves = r.group(f, "/", "curves", required=False)
    if curves is not None:
        shape = None
        for name in ("tokens", "wall_s", "loss"):
            what = "float64 [points, K] curves (one row per point, NaN-padded, same shape for all three)"
            ds = r.dataset(curves, "/curves", name, what, shape or (n, None))
            shape = ds.shape
            table["curves"][name] = r.numbers(ds, what)
    table["rows"] = n
    r.where = "/points/summary_json"
    for i, s in enumerate(summaries(table)):
        moss_input.check_summary(s, r.path, f"/points/summary_json[{i}]")


def load_h5(path):
    """Columns of results.h5: metrics and labels by name, swept fields as 'field:<path>'.
    Raises moss_input.InputError (a ValueError) naming the file and HDF5 path for anything it cannot use."""
    st = moss_input.stat_input(path)
    if st is None:
        raise FileNotFoundError(f"{path}: no such file")
    table = {"attrs": {}, "columns": {}, "curves": {}}
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise InputError(path, "", f"not a readable HDF5 file ({e}); expected a results.h5 written by moss") from e
    r = moss_input.H5Reader(f, path, st.st_size)
    try:
        with f:
            _read_h5(r, table)
    except InputError:
        raise
    except Exception as e:  # libhdf5 reports damage in many ways: still the file's fault, not the report's
        raise InputError(path, r.where, f"cannot be read ({type(e).__name__}: {e}); expected a results.h5 "
                         "written by moss") from e
    return _backfill(table)


def _number(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def load_summary_json(path):
    """A single-row table from a run's summary.json (no results.h5)."""
    s = moss_input.read_json(path)
    moss_input.check_run_summary(s, path)
    conv = s.get("convergence", {}) or {}
    comp = s.get("compression", {}) or {}
    cols = {"index": [0], "status": ["ok"], "message": [""], "summary_json": [json.dumps(s)], "scenario_json": ["{}"]}
    for k in ("tokens_per_second", "step_time_s", "mfu", "params", "comm_bytes_per_step_per_device",
              "exposed_comm_s", "time_to_target_s", "statistical_efficiency"):
        cols[k] = [_number(s.get(k))]
    cols["eta"] = cols.pop("statistical_efficiency")
    step = cols["step_time_s"][0]
    cols["exposed_comm_share"] = [cols["exposed_comm_s"][0] / step if step else math.nan]
    cols["method"] = [comp.get("method", "none")]
    cols["design"] = [comp.get("method", "none")]
    cols["compression_ratio"] = [_number(comp.get("ratio", 1.0))]
    scen = os.path.join(os.path.dirname(path), "scenario.json")
    if moss_input.stat_input(scen) is not None:
        cols["scenario_json"] = [moss_input.read_text(scen)]
    curve = conv.get("curve") or []
    table = {"attrs": {"kind": "run", "scenario_name": s.get("scenario", "")}, "columns": cols, "rows": 1,
             "curves": {}}
    if curve:
        for name in ("tokens", "wall_s", "loss"):
            table["curves"][name] = np.array([[p[name] for p in curve]])
    return _backfill(table)


def load(directory):
    """results.h5 when present, else summary.json. Raises FileNotFoundError when neither is there, and
    moss_input.InputError (a ValueError) naming the file and the place in it for input it cannot use."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InputError(directory, "", "not a directory; expected a moss run or sweep directory")
    h5 = os.path.join(directory, "results.h5")
    js = os.path.join(directory, "summary.json")
    if moss_input.stat_input(h5) is not None:
        table = load_h5(h5)
        # A run's results.h5 stores the summary without process-dependent counters (phases simulated
        # vs reused, events); its summary.json has them.
        if table["attrs"].get("kind") == "run" and table["rows"] == 1 and moss_input.stat_input(js) is not None:
            try:
                full = moss_input.read_json(js)
            except moss_input.JsonSyntaxError:
                full = None
            if isinstance(full, dict):
                moss_input.check_summary(full, js)
                table["columns"]["summary_json"] = [json.dumps(full)]
                table.pop("_summaries", None)
        return table
    if moss_input.stat_input(js) is not None:
        return load_summary_json(js)
    raise FileNotFoundError(f"{directory}: neither results.h5 nor summary.json")


def to_dataframe(table):
    """pandas DataFrame of the point columns (needs python3-pandas)."""
    import pandas as pd
    return pd.DataFrame({k: v for k, v in table["columns"].items()})
