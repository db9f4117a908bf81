"""Checks that results.h5 reads with h5py (and pandas, when installed) as documented.
Usage: check_results_h5.py RESULTS.h5 EXPECTED_POINTS"""
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
    for col in ("tokens_per_second", "time_to_target_s", "exposed_comm_share", "bandwidth_bps"):
        assert f["points/metric/" + col].shape == (n,), col
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
