#!/usr/bin/python3
"""`moss-calibrate` end to end on the tiny spec: the calibration file, plot, report and K/V dump it
writes; `moss compress` reads the dump; a scenario with the measured eta source runs on the file."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import calib_common
import numpy as np

SPEC = calib_common.CALIBRATE_DIR / "specs" / "ci.json"
SCENARIO = calib_common.SOURCE_DIR / "scenarios" / "mos-800m-300mbps-mos.json"


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = Path(cls.tmp.name) / "cal"
        cls.proc = subprocess.run([sys.executable, str(calib_common.CALIBRATE_DIR / "moss-calibrate"), str(SPEC),
                                   "--out", str(cls.out), "--quiet"], capture_output=True, text=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_outputs(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        doc = json.loads((self.out / "calibration.json").read_text())
        self.assertEqual(doc["format"], "moss-calibration/1")
        matches = [r["match"] for r in doc["runs"]]
        self.assertIn({"method": "mos", "rank_k": 4, "rank_v": 4, "rotations": 1}, matches)
        self.assertIn({"method": "mos"}, matches)
        self.assertIn({"method": "quant", "bits": 4}, matches)
        for ext in ("png", "svg"):
            self.assertGreater((self.out / f"heldout_loss.{ext}").stat().st_size, 1000)
        summary = json.loads((self.out / "summary.json").read_text())
        self.assertAlmostEqual(summary["unigram_entropy_nats"], 3.02, delta=0.05)
        kv = np.load(self.out / "kv_activations.npy")
        self.assertEqual(kv.shape, (2, 2, 4 * 32, 32))

    def test_bad_spec_exit_2(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write("{}")
            f.flush()
            proc = subprocess.run([sys.executable, str(calib_common.CALIBRATE_DIR / "moss-calibrate"), f.name],
                                  capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("/methods", proc.stderr)

    def test_every_bad_spec_or_flag_exits_2_before_training(self):
        """Each was a traceback after training, or a calibration file of nonsense (topk fraction 2)."""
        base = json.loads(SPEC.read_text())
        cases = [({"training": {**base["training"], "steps": 0}}, [], "/training/steps = 0"),
                 ({"training": {**base["training"], "lr": "fast"}}, [], "/training/lr = \"fast\""),
                 ({"data": {"source": "/etc/passwd"}}, [], "/data/source"),
                 ({"modle": {}}, [], "/modle: unknown key"),
                 ({"methods": [{"method": "topk", "fraction": 2}]}, [], "/methods/0/fraction = 2"),
                 ({"methods": [{"method": ["mos"]}]}, [], "/methods/0/method = [\"mos\"]"),
                 ({"methods": [{"method": "mos", "rank_k": 4}]}, [], "/methods/0/rank_v: missing"),
                 ({"methods": [{"method": "quant", "bits": 4}] * 2}, [], "/methods/1"),
                 ({"seeds": [1, 1]}, [], "/seeds"),
                 ({}, ["--steps", "-5"], "--steps -5"),
                 ({}, ["--seeds", "abc"], "--seeds 'abc'"),
                 ({}, ["--device", "tpu"], "--device 'tpu'")]
        with tempfile.TemporaryDirectory() as d:
            for i, (change, flags, needle) in enumerate(cases):
                spec = Path(d) / f"spec{i}.json"
                spec.write_text(json.dumps({**base, **change}))
                proc = subprocess.run([sys.executable, str(calib_common.CALIBRATE_DIR / "moss-calibrate"), str(spec),
                                       "--out", str(Path(d) / f"out{i}"), "--quiet", *flags],
                                      capture_output=True, text=True, timeout=60)
                self.assertEqual(proc.returncode, 2, (needle, proc.stderr[-800:]))
                self.assertIn(needle, proc.stderr)
                self.assertNotIn("Traceback", proc.stderr)
                self.assertFalse((Path(d) / f"out{i}" / "runs").exists(), needle)  # nothing trained or created

    def test_moss_reads_outputs(self):
        if not os.access(calib_common.MOSS_BINARY, os.X_OK):
            self.skipTest(f"moss binary not built ({calib_common.MOSS_BINARY})")
        moss = calib_common.MOSS_BINARY
        proc = subprocess.run([moss, "compress", "--activations", str(self.out / "kv_activations.npy"), "--method",
                               "mos", "--rank-k", "4", "--rank-v", "4", "--json"], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertLess(json.loads(proc.stdout)["ratio"], 0.2)
        scenario = json.loads(SCENARIO.read_text())
        scenario["convergence"]["efficiency"]["compression"] = {"source": "measured", "file": "cal/calibration.json"}
        path = Path(self.tmp.name) / "measured.json"
        path.write_text(json.dumps(scenario))
        proc = subprocess.run([moss, "run", str(path), "--out", str(Path(self.tmp.name) / "run")],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        summary = json.loads((Path(self.tmp.name) / "run" / "summary.json").read_text())
        doc = json.loads((self.out / "calibration.json").read_text())
        stand_in = next(r for r in doc["runs"] if r["match"] == {"method": "mos"})
        self.assertAlmostEqual(summary["statistical_efficiency"], stand_in["eta"], places=6)


if __name__ == "__main__":
    calib_common.main()
