"""Checks that results.h5 reads with h5py (and pandas, when installed) as documented.
Usage: check_results_h5.py RESULTS.h5 EXPECTED_POINTS"""
import json
import os
import sys

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "analysis"))
import moss_results  # noqa: E402

path, expected = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "r") as f:
    assert f.attrs["format"] == "moss-results/1", f.attrs["format"]
    assert f.attrs["moss_version"], "moss_version attribute"
    n = f["points/index"].shape[0]
    assert n == expected, (n, expected)
    assert list(f["points/index"][:]) == list(range(n))
    for col in ("tokens_per_second", "time_to_target_s", "exposed_comm_share", "bandwidth_bps",
                "busiest_link_utilisation", "busiest_link_wire_bytes_per_step", "cp_comm_time_s", "retransmissions",
                "compression_relative_error", "compression_relative_error_k", "compression_relative_error_v",
                "vs_analytic_mean_ratio", "vs_analytic_worst_ratio", "efficiency_gemm", "memory_total_bytes"):
        assert f["points/metric/" + col].shape == (n,), col
    for col in ("compression_source", "busiest_link", "backend"):
        assert f["points/label/" + col].shape == (n,), col
    status0 = list(f["points/status"].asstr()[:])
    ok = [i for i in range(n) if status0[i] == "ok"]
    util = f["points/metric/busiest_link_utilisation"][:]
    links = f["points/metric/links_used"][:]
    assert all(0 < util[i] <= 1.0 + 1e-9 if links[i] > 0 else util[i] != util[i] for i in ok), util
    assert all(f["points/metric/cp_comm_time_s"][i] >= 0 for i in ok)
    backend = list(f["points/label/backend"].asstr()[:])
    mean_ratio = f["points/metric/vs_analytic_mean_ratio"][:]
    for i in ok:  # the packet-level comparison exists exactly for ns3 points
        assert (mean_ratio[i] == mean_ratio[i]) == (backend[i] == "ns3"), (i, backend[i], mean_ratio[i])
    scen = list(f["points/scenario_json"].asstr()[:])
    method = {i: json.loads(scen[i]).get("compression", {}).get("method", "none") for i in ok}
    err = f["points/metric/compression_relative_error"][:]
    src = list(f["points/label/compression_source"].asstr()[:])
    for i in ok:
        if method[i] != "none" and src[i].startswith("kernels"):
            assert 0 < err[i] < 1.5, (i, err[i])
    for s in f["points/summary_json"].asstr()[:]:  # no process-dependent counters in stored summaries
        net = json.loads(s or "{}").get("network", {})
        assert not set(net) & {"phases_simulated", "phases_reused", "events", "backend_wall_s"}, net.keys()
    assert f["points/field/cluster.network.bandwidth"].shape == (n,)
    assert f["points/scenario_json"].asstr()[0].startswith("{")
    assert f["curves/loss"].shape[0] == n
    status = list(f["points/status"].asstr()[:])
    assert "ok" in status
table = moss_results.load(os.path.dirname(path))
assert table["rows"] == expected
try:
    import pandas  # noqa: F401
except ImportError:
    print("pandas not installed: skipped the DataFrame check")
else:
    df = moss_results.to_dataframe(table)
    assert len(df) == expected and "tokens_per_second" in df.columns and "field:compression" in df.columns
print("ok")
