#!/usr/bin/python3
"""eta in calibrate/ is the convergence definition of sim/converge: the known answers of the synthetic
calibration fixture, and the shipped calibration file's stored eta values recomputed from its curves."""
import json
import unittest

import calib_common
from moss_calibrate.eta import efficiency

FIXTURE = calib_common.SOURCE_DIR / "tests" / "data" / "converge" / "calibration-synthetic.json"
SHIPPED = calib_common.SOURCE_DIR / "scenarios" / "calibration" / "kjv-small.json"


def eta(doc, run):
    b = doc["baseline"]
    return efficiency(b["tokens"], b["loss"], run["tokens"], run["loss"])


class EtaTest(unittest.TestCase):
    def test_synthetic_fixture(self):
        doc = json.loads(FIXTURE.read_text())
        want = {"mos r40/100": 0.8, "mos any rank": 1.0, "topk 10%": 0.5, "noisy": 0.8}
        for run in doc["runs"]:
            self.assertAlmostEqual(eta(doc, run)[0], want[run["label"]], places=6, msg=run["label"])

    def test_no_overlap_is_none(self):
        self.assertIsNone(efficiency([1, 2], [4.0, 3.0], [1, 2], [2.0, 1.0]))

    def test_shipped_file(self):
        if not SHIPPED.exists():
            self.skipTest(f"{SHIPPED} not shipped yet")
        doc = json.loads(SHIPPED.read_text())
        self.assertEqual(doc["format"], "moss-calibration/1")
        for run in doc["runs"]:
            self.assertTrue(all(t > 0 for t in run["tokens"]))
            self.assertAlmostEqual(eta(doc, run)[0], run["eta"], places=9, msg=run["label"])


if __name__ == "__main__":
    calib_common.main()
