"""analysis/moss_report.py on bad input: exit 2 with a message naming the file, the place in it and what
was expected; never a hang, unbounded memory or a traceback. Synthetic inputs (h5py), no moss binary.

Inputs that used to hang or eat memory (FIFOs, HDF5 links and storage in other files, /dev/zero, a huge
sparse file) run in child processes with a timeout and an address-space limit, so a regression fails
instead of hanging; the rest run in-process."""
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ANALYSIS = os.path.join(HERE, "..", "..", "analysis")
sys.path.insert(0, ANALYSIS)
try:
    import h5py  # noqa: E402
    import numpy as np  # noqa: E402

    import moss_report  # noqa: E402
    import moss_results  # noqa: E402
except ImportError as e:  # matplotlib / h5py missing
    print(f"skipped: {e}")
    sys.exit(77)

CHILD_TIMEOUT_S = 20
FAILURES = []


def summary(tps, bw, method):
    links = [{"from": f"node{k}", "to": f"node{(k + 1) % 4}", "bandwidth_bps": bw, "wire_bytes_per_step": 1e8,
              "utilisation": 0.5 - 0.1 * k} for k in range(4)]
    return {"scenario": "synthetic", "tokens_per_second": tps, "step_time_s": 1.0, "mfu": 0.3, "params": 8e8,
            "comm_bytes_per_step_per_device": 1e8, "exposed_comm_s": 0.25, "statistical_efficiency": 1.0,
            "time_to_target_s": 1e9 / tps, "backend": "analytic",
            "compression": {"method": method, "ratio": 1.0 if method == "none" else 0.05},
            "convergence": {"target_tokens": 1e9, "target_loss": 2.5, "gpu_hours": 1.0,
                            "curve": [{"tokens": t, "wall_s": t / tps, "loss": 10 / (1 + t) + 2} for t in (1e3, 1e9)]},
            "network": {"retransmissions": 0, "links": links}}


def write_results(path):
    """A results.h5 in moss's layout (sim/sweep/README.md): 2 designs x 2 bandwidths."""
    rows = [(m, bw, summary(t, bw, m)) for m, tps in (("none", (1000, 2000)), ("mos", (1900, 2000)))
            for bw, t in zip((1e9, 1e10), tps)]
    n = len(rows)
    text = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "moss-results/1", "kind": "sweep", "moss_version": "test", "scenario_name": "synthetic"})
        p = f.create_group("points")
        p["index"] = np.arange(n, dtype=np.int64)
        for name, values in (("status", ["ok"] * n), ("message", [""] * n), ("scenario_json", ["{}"] * n),
                             ("summary_json", [json.dumps(s) for _, _, s in rows])):
            p.create_dataset(name, data=values, dtype=text)
        p.create_group("field").create_dataset("cluster.network.bandwidth", data=[f"{bw:g}bps" for _, bw, _ in rows],
                                               dtype=text)
        metric = p.create_group("metric")
        metric["bandwidth_bps"] = np.array([bw for _, bw, _ in rows], dtype=np.float64)
        for k in ("tokens_per_second", "time_to_target_s", "mfu", "step_time_s", "exposed_comm_s"):
            metric[k] = np.array([s[k] for _, _, s in rows], dtype=np.float64)
        metric["eta"] = np.ones(n)
        metric["exposed_comm_share"] = np.full(n, 0.25)
        label = p.create_group("label")
        for k in ("method", "design"):
            label.create_dataset(k, data=[m for m, _, _ in rows], dtype=text)
        curves = f.create_group("curves")
        for k in ("tokens", "wall_s", "loss"):
            curves[k] = np.array([[c[k] for c in s["convergence"]["curve"]] for _, _, s in rows])


def check(name, ok, detail):
    if not ok:
        FAILURES.append(f"{name}: {detail}")


def expect_refused(name, rc, err, needle):
    check(name, rc == 2 and needle in err and "Traceback" not in err,
          f"expected exit 2 with {needle!r}, got exit {rc}: {err.strip()[-600:]}")


def report_in_process(d):
    """moss_report.main on d: (exit code, stderr); an exception escaping it is a failure, not a crash here."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = moss_report.main([d])
        except BaseException as e:  # noqa: BLE001 -- the defect under test
            rc, err = f"exception {type(e).__name__}", io.StringIO(f"Traceback: {e}")
    return rc, err.getvalue()


# Runs moss_report.main on each directory named in argv, one JSON line [exit code, stderr] per directory.
CHILD = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import moss_report
for d in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = moss_report.main([d])
        except BaseException as e:
            rc, err = "exception " + type(e).__name__, io.StringIO("Traceback: " + str(e))
    print(json.dumps([rc, err.getvalue()]), flush=True)
"""


def _limit_memory():
    os.setpgrp()
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def report_in_child(cases):
    """moss_report.main on every (name, dir) in a child process with a timeout and a 2 GiB address-space
    limit; yields (name, dir, exit code, stderr). A case that hangs is reported as such; a fresh child
    takes the cases after it."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    while cases:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, ANALYSIS] + [d for _, d in cases], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=_limit_memory)
        try:
            out, _ = proc.communicate(timeout=CHILD_TIMEOUT_S)
            hung = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
            hung = True
        done = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
        for (name, d), (rc, err) in zip(cases, done):
            yield name, d, rc, err
        if len(done) < len(cases):
            name, d = cases[len(done)]
            yield name, d, f"hung (killed after {CHILD_TIMEOUT_S} s)" if hung else f"child exit {proc.returncode}", ""
        cases = cases[len(done) + 1:]


def check_unreadable_and_unbounded_inputs(root, base):
    """FIFOs, HDF5 data in other files (external link, virtual dataset, external raw storage, each into a
    FIFO), summary.json -> /dev/zero and a 50 GiB sparse summary.json; and a FIFO where the report's
    temporary output used to go."""
    fifo = os.path.join(root, "fifo")
    os.mkfifo(fifo)

    def case(name, h5=False):
        d = os.path.join(root, name)
        os.makedirs(d)
        if h5:
            shutil.copy(base, os.path.join(d, "results.h5"))
        return d

    expected = {}
    d = case("fifo_results")
    os.mkfifo(os.path.join(d, "results.h5"))
    expected["fifo_results"] = (d, f"{d}/results.h5: is a FIFO")
    d = case("fifo_summary")
    os.mkfifo(os.path.join(d, "summary.json"))
    expected["fifo_summary"] = (d, f"{d}/summary.json: is a FIFO")
    d = case("external_link", h5=True)
    with h5py.File(os.path.join(d, "results.h5"), "a") as f:
        del f["points/metric/mfu"]
        f["points/metric/mfu"] = h5py.ExternalLink(fifo, "/x")
    expected["external_link"] = (d, f"{d}/results.h5: /points/metric/mfu: an external link to {fifo}:/x")
    d = case("virtual_dataset", h5=True)
    with h5py.File(os.path.join(d, "results.h5"), "a") as f:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
        layout[:] = h5py.VirtualSource(fifo, "x", shape=(4,))
        del f["points/metric/mfu"]
        f["points/metric"].create_virtual_dataset("mfu", layout, fillvalue=0)
    expected["virtual_dataset"] = (d, f"{d}/results.h5: /points/metric/mfu: a virtual dataset")
    d = case("external_storage", h5=True)
    with h5py.File(os.path.join(d, "results.h5"), "a") as f:
        del f["points/metric/mfu"]
        f["points/metric"].create_dataset("mfu", shape=(4,), dtype="f8", external=[(fifo, 0, h5py.h5f.UNLIMITED)])
    expected["external_storage"] = (d, f"{d}/results.h5: /points/metric/mfu: stored in external raw data files")
    d = case("dev_zero")
    os.symlink("/dev/zero", os.path.join(d, "summary.json"))
    expected["dev_zero"] = (d, f"{d}/summary.json: is a character device")
    d = case("sparse_50g")
    try:
        with open(os.path.join(d, "summary.json"), "wb") as fh:
            fh.truncate(50 << 30)
        expected["sparse_50g"] = (d, f"{d}/summary.json: 53,687,091,200 bytes; expected at most 64 MiB")
    except OSError as e:  # a file system without sparse files
        print(f"sparse_50g skipped: {e}")
    d = case("fifo_at_output_tmp")
    with open(os.path.join(d, "summary.json"), "w") as fh:
        json.dump(summary(1000, 1e9, "none"), fh)
    os.mkfifo(os.path.join(d, "report.html.tmp"))
    for name, d, rc, err in report_in_child([(name, d) for name, (d, _) in expected.items()] +
                                            [("fifo_at_output_tmp", d)]):
        if name == "fifo_at_output_tmp":
            check(name, rc == 0 and os.path.isfile(os.path.join(d, "report.html")), f"exit {rc}: {err[-600:]}")
        else:
            expect_refused(name, rc, err, expected[name][1])


def damaged(root, base, name, damage):
    d = os.path.join(root, name)
    os.makedirs(d)
    path = os.path.join(d, "results.h5")
    shutil.copy(base, path)
    if damage is not None:
        with h5py.File(path, "a") as f:
            damage(f)
    return d


def _replace(f, path, **dataset):
    del f[path]
    f.create_dataset(path, **dataset)


def check_damaged_results_h5(root, base):
    """Damage inside results.h5: exit 2 naming the file and the HDF5 path, never a traceback."""
    def extreme(f):
        for k in f["points/metric"]:
            f["points/metric"][k][...] = -1e308

    def huge_curves(f):  # declared 32 GB each, stored in a few bytes (chunks never written)
        for k in ("tokens", "wall_s", "loss"):
            _replace(f, f"curves/{k}", shape=(4, 10**9), dtype="f8", chunks=(1, 1024), fillvalue=np.nan)

    cases = {
        "missing_index": (lambda f: f.__delitem__("points/index"), "/points/index: missing"),
        "soft_link_loop": (lambda f: (f.__delitem__("points/metric/mfu"),
                                      f["points/metric"].__setitem__("mfu", h5py.SoftLink("/points/metric/mfu"))),
                           "/points/metric/mfu: a soft link"),
        "hard_link_to_points": (lambda f: f["points/metric"].__setitem__("back", f["points"]),
                                "/points/metric/back: a group; expected"),
        "huge_curves": (huge_curves, "/curves/tokens: declares 4,000,000,000 values"),
        "metrics_minus_1e308": (extreme, "/points/metric/bandwidth_bps[0] = -1e+308: expected a number of magnitude"),
        "metric_wrong_length": (lambda f: _replace(f, "points/metric/mfu", data=np.zeros(3)),
                                "/points/metric/mfu: shape (3,); expected 4 float64 numbers"),
        "metric_as_strings": (lambda f: _replace(f, "points/metric/tokens_per_second", data=["1"] * 4,
                                                 dtype=h5py.string_dtype()),
                              "/points/metric/tokens_per_second: text; expected"),
    }
    dirs = {name: damaged(root, base, name, damage) for name, (damage, _) in cases.items()}
    # huge_curves in a child: should the size check regress, reading 96 GB of fill value fails fast there.
    results = list(report_in_child([("huge_curves", dirs["huge_curves"])]))
    results += [(name, d) + report_in_process(d) for name, d in dirs.items() if name != "huge_curves"]
    for name, d, rc, err in results:
        expect_refused(name, rc, err, f"{d}/results.h5: {cases[name][1]}")
    d = damaged(root, base, "truncated", None)
    path = os.path.join(d, "results.h5")
    os.truncate(path, os.path.getsize(path) // 2)
    rc, err = report_in_process(d)
    expect_refused("truncated", rc, err, f"{d}/results.h5: not a readable HDF5 file")


def check_summary_types(root):
    """summary.json values of a type the report cannot compute with: exit 2 with the JSON pointer."""
    bad = summary(1000, 1e9, "none")
    bad["network"]["links"][1]["utilisation"] = "high"
    for name, doc, needle in (("link_utilisation_text", bad, '/network/links/1/utilisation = "high": expected a number'),
                              ("summary_not_object", [1, 2], "/ = [1, 2]: expected an object"),
                              # another tool's summary.json, or an empty object: not presented as a run
                              ("foreign_summary", {"accuracy": 0.93, "epochs": 10}, "/: not a moss summary.json: no 'scenario'"),
                              ("empty_summary", {}, "/: not a moss summary.json: no 'scenario'")):
        d = os.path.join(root, name)
        os.makedirs(d)
        with open(os.path.join(d, "summary.json"), "w") as fh:
            json.dump(doc, fh)
        rc, err = report_in_process(d)
        expect_refused(name, rc, err, f"{d}/summary.json: {needle}")


def check_valid_results_h5(root, base):
    """The undamaged file loads (the report itself on valid input: test_report_tables.py, report_test)."""
    d = damaged(root, base, "valid", None)
    table = moss_results.load(d)
    check("valid", table["rows"] == 4 and table["columns"]["method"][2] == "mos" and
          table["curves"]["loss"].shape == (4, 2), f"loaded {table['rows']} rows")


with tempfile.TemporaryDirectory() as tmp:
    base_h5 = os.path.join(tmp, "base.h5")
    write_results(base_h5)
    check_valid_results_h5(tmp, base_h5)
    check_unreadable_and_unbounded_inputs(tmp, base_h5)
    check_damaged_results_h5(tmp, base_h5)
    check_summary_types(tmp)
if FAILURES:
    print("\n".join(FAILURES))
    sys.exit(1)
print("ok")
