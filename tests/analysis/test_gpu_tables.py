#!/usr/bin/env python3
"""scripts/gpu_tables.py against the hand-typed tables of kernels/README.md's "## GPU performance".

The README's tables (parsed from kernels/README.md here, so the check follows the README) were typed
from results/reference/gpu-h200/*.log (and gpu-h200-057dcb2 for "auto before"): every number in them
must equal the script's output on those logs. A figure printed with a 5 in its last decimal (1104.5)
is a tie the README may round either way: for those the cell may equal the script's output with ties
rounded half up instead of to even. Also: a missing table section is skipped with a note, a malformed
row is reported as FILE:LINE and skipped, a missing directory exits 2, and rows in the formats of the
current source (element-wise enc_moss / simple / enc_auto, mos/2/host and mos/2/device, taken from the
printf formats of kernels/bench/*.cpp) are read.
"""
import contextlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from decimal import ROUND_HALF_UP

SOURCE = os.environ.get("MOSS_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(SOURCE, "scripts", "gpu_tables.py")
LOGS = os.path.join(SOURCE, "results", "reference", "gpu-h200")
BEFORE = os.path.join(SOURCE, "results", "reference", "gpu-h200-057dcb2")
README = os.path.join(SOURCE, "kernels", "README.md")
# The README tables the script reproduces; for the others (mos steps) the README shows some rows only.
COVERED = {
    "### Projection (pca; mos and mos-k use the same GEMM), encode | decode": "all rows",
    "### mos-k (K = 4), T = 8192, encode | decode": "all rows",
    "### mos with one rotation: the steps of one theta block": "some rows",
    "### End to end (`moss_gpu_codec_bench`: what `moss compress` measures on a GPU)": "all rows",
}


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(args, rounding=None):
    """(exit code, stdout, stderr) of the script's main, ties rounded by `rounding` if given."""
    module = load_script()
    if rounding is not None:
        module.ROUNDING = rounding
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = module.main(args)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def markdown_tables(text):
    """{'### heading': (header cells, rows of cells)}: the first table under each ### heading."""
    tables, heading = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.strip() if line.startswith("### ") else None
            continue
        if heading is None or not line.startswith("|"):
            if heading in tables and not line.startswith("|"):
                heading = None  # the table ended: a later table under the same heading is another one
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r"-+", c) for c in cells):
            continue
        if heading not in tables:
            tables[heading] = (cells, [])
        else:
            tables[heading][1].append(cells)
    return tables


def readme_gpu_section():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n## GPU performance\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def source_format(path, pattern):
    """A printf format of a C++ source file, in Python's % syntax (%lld -> %d)."""
    with open(os.path.join(SOURCE, path), encoding="utf-8") as f:
        m = re.search(r'std::printf\("(' + pattern + r'[^"]*)"', f.read())
    assert m, f"{path}: no printf format matching {pattern}"
    return re.sub(r"%(-?\d*)lld", r"%\1d", m.group(1).replace("\\n", ""))


class ReadmeTables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        args = [LOGS, "--before", BEFORE]
        rc, cls.out, cls.err = run_in_process(args)
        assert rc == 0, cls.err
        _, cls.out_half_up, _ = run_in_process(args, ROUND_HALF_UP)
        cls.section = readme_gpu_section()

    def test_every_number_of_the_readme_tables_is_the_scripts(self):
        readme, ours, ours_up = markdown_tables(self.section), markdown_tables(self.out), markdown_tables(self.out_half_up)
        problems = []
        for heading, coverage in COVERED.items():
            self.assertIn(heading, readme, "README table missing")
            self.assertIn(heading, ours, f"the script printed no table for {heading}")
            header, rows = readme[heading]
            self.assertEqual(header, ours[heading][0], heading)
            by_key = {r[0]: r for r in ours[heading][1]}
            by_key_up = {r[0]: r for r in ours_up[heading][1]}
            if coverage == "all rows":
                self.assertEqual([r[0] for r in rows], list(by_key), f"{heading}: rows")
            for row in rows:
                if row[0] not in by_key:
                    problems.append(f"{heading}: row '{row[0]}' not in the script's output")
                    continue
                for col, cell in enumerate(row):
                    if cell not in (by_key[row[0]][col], by_key_up[row[0]][col]):
                        problems.append(f"{heading}: row '{row[0]}', column {col + 1} '{header[col]}': "
                                        f"README {cell}, logs {by_key[row[0]][col]}")
        self.assertEqual(problems, [], "\n".join(problems))

    def test_the_summary_is_the_readmes(self):
        run = re.search(r"^Run \(.*$", self.out, re.M).group(0)
        before = re.search(r"^Before \(.*$", self.out, re.M).group(0)
        m = re.search(r"all parity checks\s+pass \((\d+) lines in\s+this run.*?, (\d+) in\s+057dcb2's.*?worst ([\d.]+)\s+of\s+the\s+"
                      r"tolerance\), (\d+)/(\d+) GPU tests.*?memcheck (\d+) errors, racecheck (\d+) hazards", self.section, re.S)
        self.assertIsNotNone(m, "README: the runs' summary sentence")
        lines, lines_before, worst, passed, tests, mem, race = m.groups()
        self.assertIn(f"parity {lines}/{lines} lines ok, worst {worst} of tolerance", run)
        self.assertIn(f"parity {lines_before}/{lines_before} lines ok", before)
        for line in (run, before):
            self.assertIn(f"gpu_test {passed}/{tests} passed", line)
            self.assertIn(f"memcheck {mem} errors, racecheck {race} hazards", line)
        copy = re.search(r"device to device: (\d+) GB/s in this run", self.section).group(1)
        self.assertEqual(round(float(re.search(r"copy ([\d.]+) GB/s", run).group(1))), int(copy))
        self.assertIn("NVIDIA H200 (sm_90, 132 SMs), driver 580.159.04", run)

    def test_the_figures_the_prose_quotes(self):
        s = self.section
        pairs = {  # the README's words before "X | Y" -> the element-wise table's row and column
            r"topk encode (\d+) \| (\d+) GB/s\s+\(([\d.]+) \| ([\d.]+) of the copy": ("topk", 3),
            r"quant \(8 bit\) encode (\d+) \| (\d+) \(([\d.]+) \| ([\d.]+)\)": ("quant8", 3),
            r"quant\s+decode (\d+) \| (\d+) \(([\d.]+) \| ([\d.]+)\)": ("quant8", 6),
            r"topk decode (\d+) \| (\d+) \(([\d.]+) \| ([\d.]+)\)": ("topk", 6),
        }
        table = markdown_tables(self.out)["### Element-wise kernels, one warp per token"][1]
        for pattern, (method, col) in pairs.items():
            a, b, ra, rb = re.search(pattern, s).groups()
            got = [r[col] for r in table if r[0].startswith(method + ",")]
            self.assertEqual(got, [f"{a} ({ra})", f"{b} ({rb})"], pattern)
        m = re.search(r"none (\d+) / (\d+) GB/s.*?quant \(8 bit\) (\d+) /\s+(\d+), topk \(10 %\) (\d+) / (\d+)", s, re.S)
        self.assertIn("Unranked, encode / decode GB/s: none {} / {}, quant {} / {}, topk {} / {}".format(*m.groups()), self.out)
        m = re.search(r"mos-k decode was (\d+) / (\d+) / (\d+) GB/s in the previous run", s)
        self.assertIn("mos-k decode in the --before run: {} / {} / {} GB/s".format(*m.groups()), self.out)
        m = re.search(r"pca encodes at (\d+) / (\d+) / (\d+) GB/s", s)
        self.assertIn("pca encodes at {} / {} / {} GB/s".format(*m.groups()), self.out)
        m = re.search(r"measures ([\d.]+)-([\d.]+)x the forced cuBLAS\s+figure on all (\d+) shapes", s)
        self.assertIn("auto / cuBLAS {}-{}x ({} figures)".format(*m.groups()), self.out)
        m = re.search(r"moss's own kernels reach ([\d.]+)-([\d.]+) of cuBLAS", s)
        self.assertIn("moss / cuBLAS {}-{}".format(*m.groups()), self.out)
        m = re.search(r"Relative errors of GPU and CPU equal as printed in (\d+) of (\d+) rows$", self.out, re.M)
        self.assertIsNotNone(m, "every row's errors equal, as the README says")
        self.assertEqual(m.group(1), m.group(2))


class LogDirectories(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gpu_tables_test_")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def copy_logs(self, names):
        for name in names:
            shutil.copy(os.path.join(LOGS, name), self.tmp)

    def write(self, name, lines):
        with open(os.path.join(self.tmp, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def read_reference(self, name):
        with open(os.path.join(LOGS, name), encoding="utf-8") as f:
            return f.read().splitlines()

    def test_a_missing_directory_or_gpu_check_log_exits_2(self):
        missing = os.path.join(self.tmp, "no-such-dir")
        p = subprocess.run([sys.executable, SCRIPT, missing], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no such directory", p.stderr)
        self.assertEqual(p.stdout, "")
        self.copy_logs(["codec_bench.log"])
        rc, out, err = run_in_process([self.tmp])
        self.assertEqual(rc, 2)
        self.assertIn("no gpu_check.log", err)
        rc, _, err = run_in_process([LOGS, "--before", missing])
        self.assertEqual(rc, 2)
        self.assertIn("--before", err)

    def test_a_missing_section_is_skipped_with_a_note(self):
        lines = self.read_reference("gpu_check.log")
        parity_only = lines[:lines.index("")] + ["", "PASS"]  # what --parity-only prints
        self.write("gpu_check.log", parity_only)
        rc, out, err = run_in_process([self.tmp])
        self.assertEqual(rc, 0, err)
        self.assertIn("parity 314/314 lines ok", out)
        self.assertIn("copy: not measured", out)
        self.assertIn("gpu_test: no log", out)
        self.assertNotIn("###", out)
        self.assertEqual(err.count("skipped"), 5, err)
        self.assertIn("codec_bench.log: absent", err)

    def test_a_malformed_row_is_reported_and_skipped(self):
        check = self.read_reference("gpu_check.log")
        bad_row = next(i for i, l in enumerate(check) if l.startswith("pca       8192  2048   64"))
        check[bad_row] = re.sub(r"\|(\s+)(\d+)\.", r"|\g<1>\g<2>x.", check[bad_row], count=1)  # the first figure
        check[2] = check[2][:40]  # a parity line cut short
        codec = self.read_reference("codec_bench.log")
        bad_codec = next(i for i, l in enumerate(codec) if l.startswith("mos/1/b512     64"))
        codec[bad_codec] = codec[bad_codec][:60]
        self.write("gpu_check.log", check)
        self.write("codec_bench.log", codec)
        rc, out, err = run_in_process([self.tmp])
        self.assertEqual(rc, 0, err)
        self.assertIn(f"gpu_check.log:{bad_row + 1}: malformed row, skipped", err)
        self.assertIn("gpu_check.log:3: malformed parity line", err)
        self.assertIn(f"codec_bench.log:{bad_codec + 1}: malformed row, skipped", err)
        self.assertIn("parity 313/314 lines ok", out)
        tables = markdown_tables(out)
        projection = [r[0] for r in tables["### Projection (pca; mos and mos-k use the same GEMM), encode | decode"][1]]
        self.assertEqual(len(projection), 11)
        self.assertNotIn("8192, 2048, 64", projection)
        e2e = {r[0]: r for r in tables["### End to end (`moss_gpu_codec_bench`: what `moss compress` measures on a GPU)"][1]}
        _, whole, _ = run_in_process([LOGS])
        e2e_whole = {r[0]: r for r in markdown_tables(whole)["### End to end (`moss_gpu_codec_bench`: what `moss compress` measures on a GPU)"][1]}
        b512 = e2e_whole["mos, 1 rotation, a theta per 512 tokens"]
        self.assertEqual(e2e["mos, 1 rotation, a theta per 512 tokens"][1:], [b512[1], "-", b512[3]])

    def test_rows_in_the_current_sources_formats(self):
        check = self.read_reference("gpu_check.log")
        header = next(l for l in check if l.startswith("method "))
        row = source_format("kernels/bench/gpu_check.cpp", r"%-7s %6lld %5lld %4s \| %8\.1f %5\.2f %5s %7\.1f")
        copy = 4000.0
        gbps = [700.0, 400.0, 800.0, 3000.0, 2200.0, 2100.0]  # enc moss, simple, auto; dec moss, simple, auto
        elementwise = row % ("topk", 65536, 2048, "-", gbps[0], gbps[0] / copy, "-", gbps[1], "-", gbps[2], gbps[2] / copy,
                             gbps[3], gbps[3] / copy, "-", gbps[4], "-", gbps[5], gbps[5] / copy)
        self.write("gpu_check.log", [check[0], "", f"device-to-device copy of 1 GiB: {copy:.1f} GB/s (read + write bytes per second)",
                                     header, elementwise, "", "PASS"])
        # the reference log's own mos/2/host and mos/2/device rows give way to the two below
        codec = [l for l in self.read_reference("codec_bench.log") if not l.startswith(("mos/2/host", "mos/2/device"))]
        fmt = source_format("kernels/bench/gpu_codec_bench.cpp", r"%-12s %4s %7\.4f \|")
        extra = [fmt % ("mos/2/host", "16", 0.0078, 0.2884, 0.2884, 1.63, 150.25, 2250.2, 92.2, 1395.9, ""),
                 fmt % ("mos/2/device", "16", 0.0078, 0.2884, 0.2901, 1.63, 201.5, 2250.2, 7.44, 1395.9, "  FAIL: errors differ")]
        at = next(i for i, l in enumerate(codec) if l.startswith("mos-k "))
        self.write("codec_bench.log", codec[:at] + extra + codec[at:])
        rc, out, err = run_in_process([self.tmp])
        self.assertEqual(rc, 0, err)
        self.assertNotIn("malformed", err)
        tables = markdown_tables(out)
        rows = tables["### Element-wise kernels, one warp per token"][1]
        self.assertEqual(rows, [["topk, 65536, 2048", "700", "400", "800 (0.20)", "3000", "2200", "2100 (0.53)"]])
        e2e = {r[0]: r for r in tables["### End to end (`moss_gpu_codec_bench`: what `moss compress` measures on a GPU)"][1]}
        self.assertEqual(e2e["mos, 2 rotations, theta fit on the host"], ["mos, 2 rotations, theta fit on the host", "150 / 2250 (92x)", "-", "-"])
        self.assertEqual(e2e["mos, 2 rotations, theta fit on the device"][1], "202 / 2250 (7.4x)")
        self.assertIn("Relative errors of GPU and CPU equal as printed in 22 of 23 rows; 1 rows FAIL: errors differ", out)


if __name__ == "__main__":
    unittest.main()
