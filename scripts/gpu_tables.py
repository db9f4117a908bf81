#!/usr/bin/env python3
"""The Markdown tables of kernels/README.md's "## GPU performance" from the logs of a GPU run.

    python3 scripts/gpu_tables.py LOG_DIR [--before OLD_LOG_DIR]

LOG_DIR is what scripts/gpu_check.sh wrote (device.log, gpu_check.log, gpu_test.log, codec_bench.log,
memcheck.log, racecheck.log, codec_bench_moss.log). Prints a one-line summary of the run (and of
--before's), then each table under the README subsection title it belongs to, in the README's column
layout: the projection (pca), mos-k, mos's theta block steps and the element-wise kernels from
gpu_check.log, end to end from codec_bench.log. --before gives mos-k's "auto before" column and the
previous run's figures the README quotes; without it that column is left out.
GB/s are rounded to whole numbers (one decimal below 10; ties to even), ratios to two decimals.
A table whose log section is absent is skipped with a note on stderr; a malformed row is reported on
stderr as FILE:LINE and skipped. Exit 2: LOG_DIR (or --before's directory) missing, or no gpu_check.log.
Standard library only.
"""
import argparse
import os
import re
import sys
from decimal import ROUND_HALF_EVEN, Decimal

PROG = "gpu_tables.py"
# A figure printed as 1104.5 rounds to 1104, as printf("%.0f") would round it (the README's hand-typed
# tables round most such ties this way; the test accepts either way for them).
ROUNDING = ROUND_HALF_EVEN
HEAD_PROJECTION = "### Projection (pca; mos and mos-k use the same GEMM), encode | decode"
HEAD_MOS_K = "### mos-k (K = 4), T = 8192, encode | decode"
HEAD_MOS_STEPS = "### mos with one rotation: the steps of one theta block"
HEAD_END_TO_END = "### End to end (`moss_gpu_codec_bench`: what `moss compress` measures on a GPU)"
HEAD_ELEMENTWISE = "### Element-wise kernels, one warp per token"
# moss_gpu_codec_bench's method names -> the README's row labels (others print as they are).
END_TO_END_LABELS = {
    "mos/1": "mos, 1 rotation (the default)",
    "mos/1/b512": "mos, 1 rotation, a theta per 512 tokens",
    "mos/2": "mos, 2 rotations",
    "mos/2/host": "mos, 2 rotations, theta fit on the host",
    "mos/2/device": "mos, 2 rotations, theta fit on the device",
    "mos-k": "mos-k, 4 bases, exhaustive",
    "mos-k/sketch": "mos-k, 4 bases, sketch routing",
}
# The three formats of gpu_check.cpp's parity lines (methods, split-k, mos-theta).
_TOL = r"\((\S+) of tolerance\)"
PARITY_FORMS = [
    re.compile(r"^parity \S+\s+\S+\s+T=\d+\s+d=\d+\s+r=\d+\s+worst \|gpu-ref\| \S+ at \d+ " + _TOL + r".*?\s(ok|FAIL)$"),
    re.compile(r"^parity split-k \d+ \([a-z ]+\) m=\d+ n=\d+\s+k=\d+ (?:bf16|fp32) C: worst \|gpu-ref\| \S+ at \d+ " + _TOL + r"\s+(ok|FAIL)$"),
    re.compile(r"^parity mos-theta rows=\d+\s+r=\d+\s+theta gpu \S+ host \S+ \(objective \S+ vs \S+\), scales worst rel \S+, "
               r"U beyond 1 bf16 step \d+\s+(ok|FAIL)$"),
]
# gpu_check's benchmark columns, the same name for encode and decode; enc_GB/s and dec_GB/s: a run
# from before auto existed, when moss's kernels were the only ones.
BENCH_NAMES = {"enc_moss": "moss", "dec_moss": "moss", "enc_auto": "auto", "dec_auto": "auto", "enc_GB/s": "moss", "dec_GB/s": "moss"}
# A table section ends at a blank line or at one of these; any other line in it is a row.
SECTION_ENDS = ("auto's choices", "GB/s:", "PASS", "FAIL", "mos, one rotation")


def warn(message):
    print(f"{PROG}: {message}", file=sys.stderr)


def fmt_round(value, places=0):
    """value rounded to places decimals (ties by ROUNDING), as text."""
    quantum = Decimal(1).scaleb(-places)
    return str(Decimal(repr(value)).quantize(quantum, rounding=ROUNDING))


def fmt_gbps(value):
    """A GB/s figure or a speed-up: a whole number, one decimal below 10; '-' when absent."""
    if value is None:
        return "-"
    return fmt_round(value, 1 if abs(value) < 10 else 0)


def fmt_with_ratio(value, ratio):
    """'2904 (0.69)': a figure and its ratio over the copy; '-' when the figure is absent."""
    if value is None:
        return "-"
    return f"{fmt_gbps(value)} ({fmt_round(ratio, 2)})" if ratio is not None else fmt_gbps(value)


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


def column_names(segment):
    """A header segment's names; '/x' after 'y' becomes 'y/x'; BENCH_NAMES renamed."""
    names, last = [], ""
    for token in segment.split():
        if token.startswith("/"):
            names.append(last + token)
            continue
        last = BENCH_NAMES.get(token, token)
        names.append(last)
    return names


def parse_number(token):
    return None if token == "-" else float(token)


def parse_row(line, header):
    """{'key': [...], 'seg': [{name: value}], 'fail': bool} or None when the line does not fit header."""
    fail = False
    annotated = re.match(r"^(.*?)\s+FAIL: .*$", line)
    if annotated:  # moss_gpu_codec_bench: "  FAIL: errors differ" after the row
        line, fail = annotated.group(1), True
    parts = line.split("|")
    key = parts[0].split()
    if len(key) != len(header[0]) or not 2 <= len(parts) <= len(header):
        return None
    try:
        [parse_number(k) for k in key[1:]]  # T, d, r, ratio: numbers or '-'
    except ValueError:
        return None
    segments = []
    for i, part in enumerate(parts[1:], start=1):
        tokens = part.split()
        names = header[i]
        # Before the row-in-registers kernels, gpu_check printed the element-wise decode as one figure and its /copy.
        if len(tokens) != len(names) and not (i == 2 and len(tokens) == 2 and key[0] in ("topk", "quant8")):
            return None
        try:
            segments.append({name: parse_number(token) for name, token in zip(names, tokens)})
        except ValueError:
            return None
    return {"key": key, "seg": segments, "fail": fail}


def parse_tables(path, lines, is_header):
    """Every table in lines whose header line satisfies is_header: a list of (header, rows)."""
    tables, current = [], None
    for number, line in enumerate(lines, start=1):
        if is_header(line):
            current = ([column_names(s) for s in line.split("|")], [])
            tables.append(current)
            continue
        if current is None or not line.strip() or line.startswith(SECTION_ENDS):
            current = None
            continue
        row = parse_row(line, current[0])
        if row is None:
            warn(f"{path}:{number}: malformed row, skipped: {line.strip()}")
        else:
            row["line"] = number
            current[1].append(row)
    return tables


def is_bench_header(line):
    return re.match(r"^method\s+T\s+d\s+r\s+\|", line) is not None


def is_steps_header(line):
    return re.match(r"^\s*T\s+d\s+r\s+\|\s+sample\s+theta", line) is not None


def is_codec_header(line):
    return re.match(r"^method\s+r\s+ratio\s+\|", line) is not None


class Run:
    """What one log directory holds, parsed."""

    def __init__(self, directory):
        self.dir = directory
        self.check_path = os.path.join(directory, "gpu_check.log")
        self.check = read_lines(self.check_path) if os.path.isfile(self.check_path) else None
        self.copy_gbps = None
        self.bench_rows, self.steps_rows = [], []
        self.bench_seen = self.steps_seen = False
        if self.check is not None:
            for line in self.check:
                m = re.match(r"^device-to-device copy of 1 GiB: (\S+) GB/s", line)
                if m:
                    self.copy_gbps = float(m.group(1))
            bench = parse_tables(self.check_path, self.check, is_bench_header)
            steps = parse_tables(self.check_path, self.check, is_steps_header)
            self.bench_seen, self.steps_seen = bool(bench), bool(steps)
            self.bench_rows = [r for _, rows in bench for r in rows]
            self.steps_rows = [r for _, rows in steps for r in rows]
        self.codec_rows = self.read_codec("codec_bench.log")
        self.moss_codec_rows = self.read_codec("codec_bench_moss.log")

    def path(self, name):
        return os.path.join(self.dir, name)

    def read_codec(self, name):
        """moss_gpu_codec_bench's rows; None when the log or its table is absent."""
        if not os.path.isfile(self.path(name)):
            return None
        tables = parse_tables(self.path(name), read_lines(self.path(name)), is_codec_header)
        return [r for _, rows in tables for r in rows] if tables else None

    def rows(self, name):
        return [r for r in self.bench_rows if r["key"][0] == name]


def value(row, segment, name):
    """A figure of a row's segment (1 = encode, 2 = decode, 3 = copy), None when absent or '-'."""
    segs = row["seg"]
    return segs[segment - 1].get(name) if len(segs) >= segment else None


def nonzero(x):
    return x if x else None  # gpu_check prints 0.0 for cuBLAS when it did not load


# ---- the summary line ----

def parity_summary(run):
    lines = [(n, l) for n, l in enumerate(run.check, start=1) if l.startswith("parity ")]
    passed, worst = 0, None
    for number, line in lines:
        m = next(filter(None, (f.match(line) for f in PARITY_FORMS)), None)
        if m is None:
            warn(f"{run.check_path}:{number}: malformed parity line: {line.strip()}")
            continue
        passed += m.groups()[-1] == "ok"
        if len(m.groups()) == 2:
            try:
                worst = max(worst or 0.0, float(m.group(1)))
            except ValueError:  # nan
                worst = float("inf")
    worst_text = f", worst {worst:.2f} of tolerance" if worst is not None else ""
    return f"parity {passed}/{len(lines)} lines ok{worst_text}"


def grep_file(path, pattern):
    if not os.path.isfile(path):
        return None
    for line in read_lines(path):
        m = re.search(pattern, line)
        if m:
            return m
    return None


def gtest_summary(run):
    path = run.path("gpu_test.log")
    if not os.path.isfile(path):
        return "gpu_test: no log"
    ran = grep_file(path, r"^\[==========\] (\d+) tests? from (\d+) test suites? ran")
    passed = grep_file(path, r"^\[  PASSED  \] (\d+) tests?")
    failed = grep_file(path, r"^\[  FAILED  \] (\d+) tests?, listed below")
    if ran is None:
        return "gpu_test: no gtest summary"
    text = f"gpu_test {passed.group(1) if passed else 0}/{ran.group(1)} passed"
    return text + (f", {failed.group(1)} failed" if failed else "")


def sanitizer_summary(run):
    mem = grep_file(run.path("memcheck.log"), r"ERROR SUMMARY: (\d+) errors?")
    race = grep_file(run.path("racecheck.log"), r"RACECHECK SUMMARY: (\d+) hazards?")
    mem_text = f"memcheck {mem.group(1)} errors" if mem else "memcheck: no summary"
    race_text = f"racecheck {race.group(1)} hazards" if race else "racecheck: no summary"
    return f"{mem_text}, {race_text}"


def device_summary(run):
    first = run.check[0] if run.check else ""
    m = re.match(r"^moss_gpu_check on (.*)$", first)
    name = m.group(1) if m else "device unknown"
    smi = read_lines(run.path("device.log")) if os.path.isfile(run.path("device.log")) else []
    if len(smi) >= 2 and smi[0].startswith("name"):
        fields = [f.strip() for f in smi[1].split(",")]
        if len(fields) >= 3:
            name += f", driver {fields[1]}, {fields[2]}"
    return name


def summary(run):
    copy = f"copy {run.copy_gbps:.1f} GB/s" if run.copy_gbps else "copy: not measured"
    return "; ".join([device_summary(run), copy, parity_summary(run), gtest_summary(run), sanitizer_summary(run)])


# ---- the tables ----

def markdown(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def auto_cell(row, segment):
    return fmt_with_ratio(value(row, segment, "auto"), value(row, segment, "auto/copy"))


def projection_table(run):
    rows = run.rows("pca")
    if not rows:
        return None
    header = ["T, d, r", "moss", "cuBLAS", "auto (/ copy)", "moss", "cuBLAS", "auto (/ copy)", "copyT"]
    body = []
    for r in rows:
        cells = [", ".join(r["key"][1:4])]
        for seg in (1, 2):
            cells += [fmt_gbps(value(r, seg, "moss")), fmt_gbps(nonzero(value(r, seg, "cublas"))), auto_cell(r, seg)]
        body.append(cells + [fmt_gbps(value(r, 3, "copyT"))])
    return markdown(header, body) + "\n\n" + projection_ranges(rows)


def projection_ranges(rows):
    """The ranges the section's prose quotes: auto over cuBLAS, moss over cuBLAS."""
    auto_blas, moss_blas = [], []
    for r in rows:
        for seg in (1, 2):
            auto, blas, moss = value(r, seg, "auto"), nonzero(value(r, seg, "cublas")), value(r, seg, "moss")
            if auto and blas:
                auto_blas.append(auto / blas)
            printed = value(r, seg, "moss/blas")
            if printed is not None or (moss and blas):
                moss_blas.append(printed if printed is not None else moss / blas)
    parts = []
    if auto_blas:
        parts.append(f"auto / cuBLAS {fmt_round(min(auto_blas), 2)}-{fmt_round(max(auto_blas), 2)}x ({len(auto_blas)} figures)")
    if moss_blas:
        parts.append(f"moss / cuBLAS {fmt_round(min(moss_blas), 2)}-{fmt_round(max(moss_blas), 2)}")
    return "Ranges (encode and decode): " + ("; ".join(parts) if parts else "none (no cuBLAS figures)")


def mos_k_table(run, before):
    rows = run.rows("mos-k4")
    if not rows:
        return None
    header = ["d, r", "moss", "cuBLAS", "auto (/ copy)", "routed (moss)", "one GEMM (cuBLAS)", "auto (/ copy)"]
    header += ["auto before"] if before else []
    body = []
    for r in rows:
        cells = [", ".join(r["key"][2:4])]
        for seg in (1, 2):
            cells += [fmt_gbps(value(r, seg, "moss")), fmt_gbps(nonzero(value(r, seg, "cublas"))), auto_cell(r, seg)]
        if before:
            old = next((o for o in before.rows("mos-k4") if o["key"][1:4] == r["key"][1:4]), None)
            # What the codec ran: auto's figure, or moss's in a run from before auto existed.
            old_value = None if old is None else value(old, 2, "auto") if value(old, 2, "auto") is not None else value(old, 2, "moss")
            cells.append(fmt_gbps(old_value))
        body.append(cells)
    return markdown(header, body)


def mos_steps_table(run):
    if not run.steps_rows:
        return None
    header = ["T, d, r", "sample", "theta", "rotate", "project", "sum", "GB/s (/ copy)"]
    body = []
    for r in run.steps_rows:
        steps = [fmt_round(value(r, 1, n), 1) if value(r, 1, n) is not None else "-" for n in ("sample", "theta", "rotate", "project", "sum")]
        gbps = value(r, 2, "GB/s")
        ratio = gbps / run.copy_gbps if gbps is not None and run.copy_gbps else None
        body.append([", ".join(r["key"])] + steps + [fmt_with_ratio(gbps, ratio)])
    return markdown(header, body)


def elementwise_table(run):
    rows = [r for r in run.bench_rows if r["key"][3] == "-"]
    if not rows:
        return None
    header = ["method, T, d", "moss", "simple", "auto (/ copy)", "moss", "simple", "auto (/ copy)"]
    body = []
    for r in rows:
        cells = [", ".join(r["key"][0:3])]
        for seg in (1, 2):
            moss, simple, auto = value(r, seg, "moss"), value(r, seg, "simple"), value(r, seg, "auto")
            if auto is None and simple is None:  # one figure (older gpu_check): what the codec ran
                cells += ["-", "-", fmt_with_ratio(moss, value(r, seg, "moss/copy"))]
            else:
                cells += [fmt_gbps(moss), fmt_gbps(simple), fmt_with_ratio(auto, value(r, seg, "auto/copy"))]
        body.append(cells)
    return markdown(header, body)


def end_to_end_table(run, before):
    ranked = [r for r in run.codec_rows or [] if r["key"][1] != "-"]
    if not ranked:
        return None
    ranks = list(dict.fromkeys(r["key"][1] for r in ranked))
    methods = list(dict.fromkeys(r["key"][0] for r in ranked))
    body = []
    for method in methods:
        cells = [END_TO_END_LABELS.get(method, method)]
        for rank in ranks:
            r = next((x for x in ranked if x["key"][0] == method and x["key"][1] == rank), None)
            cells.append("-" if r is None else f"{fmt_gbps(value(r, 2, 'enc_gpu'))} / {fmt_gbps(value(r, 2, 'dec_gpu'))} "
                         f"({fmt_gbps(value(r, 2, 'enc_x'))}x)")
        body.append(cells)
    table = markdown(["method"] + [f"r = {rank}" for rank in ranks], body)
    return table + "\n\n" + "\n".join(end_to_end_notes(run, before))


def end_to_end_notes(run, before):
    """The figures the prose beside the table quotes."""
    rows = run.codec_rows
    unranked = [f"{r['key'][0]} {fmt_gbps(value(r, 2, 'enc_gpu'))} / {fmt_gbps(value(r, 2, 'dec_gpu'))}" for r in rows if r["key"][1] == "-"]
    notes = []
    if unranked:
        notes.append("Unranked, encode / decode GB/s: " + ", ".join(unranked))
    alike = sum(value(r, 1, "err_gpu") == value(r, 1, "err_cpu") for r in rows)
    failed = sum(r["fail"] for r in rows)
    notes.append(f"Relative errors of GPU and CPU equal as printed in {alike} of {len(rows)} rows"
                 + (f"; {failed} rows FAIL: errors differ" if failed else ""))
    if before and before.codec_rows:
        old = [r for r in before.codec_rows if r["key"][0] == "mos-k"]
        if old:
            notes.append("mos-k decode in the --before run: " + " / ".join(fmt_gbps(value(r, 2, "dec_gpu")) for r in old)
                         + " GB/s (r = " + " / ".join(r["key"][1] for r in old) + ")")
    for source in [run] + ([before] if before else []):
        pca = [r for r in source.moss_codec_rows or [] if r["key"][0] == "pca"]
        if pca:
            notes.append(f"Under MOSS_GPU_GEMM=moss ({source.path('codec_bench_moss.log')}): pca encodes at "
                         + " / ".join(fmt_gbps(value(r, 2, "enc_gpu")) for r in pca) + " GB/s (r = "
                         + " / ".join(r["key"][1] for r in pca) + ")")
            break
    return notes


def print_tables(run, before):
    bench_missing = f"{run.check_path}: no benchmark table (a --parity-only run?)"
    tables = [
        (HEAD_PROJECTION, lambda: projection_table(run), bench_missing if not run.bench_seen else f"{run.check_path}: no pca rows"),
        (HEAD_MOS_K, lambda: mos_k_table(run, before), bench_missing if not run.bench_seen else f"{run.check_path}: no mos-k4 rows"),
        (HEAD_MOS_STEPS, lambda: mos_steps_table(run), f"{run.check_path}: no mos steps table"),
        (HEAD_END_TO_END, lambda: end_to_end_table(run, before),
         f"{run.path('codec_bench.log')}: " + ("absent" if run.codec_rows is None else "no ranked rows")),
        (HEAD_ELEMENTWISE, lambda: elementwise_table(run), bench_missing if not run.bench_seen else f"{run.check_path}: no element-wise rows"),
    ]
    for heading, build, why in tables:
        table = build()
        if table is None:
            warn(f"note: {why}: table \"{heading[4:]}\" skipped")
            continue
        print(f"{heading}\n\n{table}\n")


def load(directory, what):
    if not os.path.isdir(directory):
        warn(f"{what} {directory}: no such directory")
        sys.exit(2)
    run = Run(directory)
    if run.check is None:
        warn(f"{what} {directory}: no gpu_check.log (expected the log directory of scripts/gpu_check.sh)")
        sys.exit(2)
    return run


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log_dir", help="a log directory of scripts/gpu_check.sh")
    p.add_argument("--before", help="the log directory of an earlier run (mos-k's 'auto before', the previous figures)")
    args = p.parse_args(argv)
    run = load(args.log_dir, "LOG_DIR")
    before = load(args.before, "--before") if args.before else None
    print(f"Run ({args.log_dir}): {summary(run)}")
    if before:
        print(f"Before ({args.before}): {summary(before)}")
    print()
    print_tables(run, before)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
