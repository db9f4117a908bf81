"""Checked reading of the files `moss report` is given (results.h5, summary.json, scenario.json).

Every problem becomes an InputError naming the file, the place in it (HDF5 path or JSON pointer) and
what was expected; nothing blocks or grows without bound:
- Only regular files are opened: os.stat on the path (symlinks followed) before opening, so a FIFO (open
  blocks), a device (/dev/zero never ends) or a directory is refused unread.
- JSON files are read up to MAX_JSON_BYTES.
- results.h5 is walked one hard link at a time. Soft, external and user-defined links are refused without
  being followed (libhdf5 would open the other file itself: a FIFO there hangs, a loop never resolves),
  and so are virtual datasets and datasets with external raw storage. What datasets declare is checked
  against what the file can hold before anything is read (a chunked dataset can declare terabytes of
  fill value in a few bytes).
"""
import json
import math
import os
import stat

import h5py
import numpy as np

MAX_JSON_BYTES = 64 << 20
MAX_MAGNITUDE = 1e100      # far beyond any quantity moss computes; near 1e300 plot axes overflow
MIN_ELEMENT_BUDGET = 1 << 22


_NO_VALUE = object()


class InputError(ValueError):
    """Bad input: `file: where = value: what was expected` (where: HDF5 path or JSON pointer, may be empty;
    the value when there is one)."""

    def __init__(self, file, where, expected, value=_NO_VALUE):
        self.file, self.where, self.expected = file, where, expected
        at = where + ("" if value is _NO_VALUE else f"{' ' if where else ''}= {show(value)}")
        super().__init__(f"{file}: {at}: {expected}" if at else f"{file}: {expected}")


class JsonSyntaxError(InputError):
    """The file is a regular file of acceptable size but not JSON."""


def show(value, limit=60):
    """value as JSON (repr when it is not JSON), cut to `limit` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value) if not isinstance(value, (list, dict)) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _kind(mode):
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def stat_input(path):
    """os.stat of path, symlinks followed; None when nothing is there. InputError unless a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(path, "", f"cannot be examined ({e.strerror}); expected a regular file") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(path, "", f"is {_kind(st.st_mode)}; expected a regular file written by moss")
    return st


def read_text(path, limit=MAX_JSON_BYTES):
    """The UTF-8 text of a regular file of at most `limit` bytes."""
    st = stat_input(path)
    if st is None:
        raise FileNotFoundError(f"{path}: no such file")
    cap = f"expected at most {limit >> 20} MiB (the limit on a JSON input)"
    if st.st_size > limit:
        raise InputError(path, "", f"{st.st_size:,} bytes; {cap}")
    try:
        # O_NONBLOCK: should a FIFO replace the file after the stat, the open cannot block on it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InputError(path, "", f"cannot be opened ({e.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(path, "", f"is {_kind(mode)}; expected a regular file written by moss")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise InputError(path, "", f"cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(path, "", f"grew past {limit >> 20} MiB while read; {cap}")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonSyntaxError(path, f"byte {e.start}", "not UTF-8; expected UTF-8 text") from None


def read_json(path, limit=MAX_JSON_BYTES):
    """The parsed JSON of a regular file of at most `limit` bytes; JsonSyntaxError when it is not JSON."""
    text = read_text(path, limit)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise JsonSyntaxError(path, f"line {e.lineno} column {e.colno}", f"expected JSON ({e.msg})") from None
    except RecursionError:
        raise JsonSyntaxError(path, "", "nested too deeply; expected a moss summary") from None
    except ValueError as e:  # e.g. an integer longer than Python converts
        raise JsonSyntaxError(path, "", f"expected JSON ({e})") from None


# ---------- the parts of a summary the report reads ----------
NUMBER, NUMBER_OR_NULL, TEXT = "a number", "a number or null", "text"
_N = NUMBER_OR_NULL
_MEMORY = ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "gathered_kv_bytes",
           "logits_bytes", "total_bytes", "gpu_bytes")
# dict: an object (or null) whose listed keys, when present, have these types; [spec]: an array (or null)
# of such elements; ("required", spec): an object whose listed keys must all be present.
SUMMARY = {
    "scenario": TEXT,   # the report's title
    **{k: _N for k in ("tokens_per_second", "step_time_s", "mfu", "params", "comm_bytes_per_step_per_device",
                       "exposed_comm_s", "time_to_target_s", "statistical_efficiency")},
    "compression": {"method": TEXT, "ratio": _N, "relative_error": _N, "relative_error_k": _N,
                    "relative_error_v": _N},
    "step": {"cp_comm_time_s": _N, "weight_sync_time_s": _N, "compute_only_step_s": _N},
    "memory": {k: _N for k in _MEMORY},
    "network": {"retransmissions": _N, "phases": _N, "phases_simulated": NUMBER, "phases_reused": NUMBER,
                "links": [{"utilisation": NUMBER, "wire_bytes_per_step": _N, "bandwidth_bps": _N}],
                "vs_analytic": {"flows": _N, "mean_ratio": _N, "worst_ratio": _N}},
    "convergence": {"gpu_hours": _N, "target_tokens": _N, "target_loss": _N, "loss_floor": _N,
                    "loss_law": {"B": _N, "beta": _N},
                    "curve": [("required", {"tokens": NUMBER, "wall_s": NUMBER, "loss": NUMBER})]},
}


def _check(s, file, where, spec, top=False):
    def fail(expected):
        raise InputError(file, where or "/", expected, s)

    if isinstance(spec, tuple):      # ("required", {...})
        if not isinstance(s, dict):
            fail("expected an object")
        missing = [k for k in spec[1] if k not in s]
        if missing:
            raise InputError(file, where, f"missing '{missing[0]}'; expected an object with " + ", ".join(spec[1]))
        spec = spec[1]
    if isinstance(spec, dict):
        if s is None and not top:    # the report reads `s.get(part) or {}`
            return
        if not isinstance(s, dict):
            fail("expected an object")
        for k, sub in spec.items():
            if k in s:
                _check(s[k], file, f"{where}/{k}", sub)
    elif isinstance(spec, list):
        if s is None:
            return
        if not isinstance(s, list):
            fail("expected an array")
        for i, v in enumerate(s):
            _check(v, file, f"{where}/{i}", spec[0])
    elif spec == TEXT:
        if not isinstance(s, str):
            fail("expected text")
    elif not (s is None and spec == NUMBER_OR_NULL):
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            fail(f"expected {spec}")
        try:
            ok = math.isfinite(s) and abs(s) <= MAX_MAGNITUDE
        except OverflowError:    # an integer beyond float
            ok = False
        if not ok:
            fail(f"expected {spec}, finite and of magnitude at most 1e100")


# What every moss summary.json holds (CONTRACT.md): a JSON file without them is another tool's.
CONTRACT_SUMMARY_KEYS = ("scenario", "tokens_per_second", "step_time_s", "mfu", "params",
                         "comm_bytes_per_step_per_device", "exposed_comm_s", "compression",
                         "statistical_efficiency", "time_to_target_s", "backend")


def check_run_summary(s, file):
    """check_summary for a run's own summary.json, which must also hold every key moss writes."""
    if isinstance(s, dict):
        missing = [k for k in CONTRACT_SUMMARY_KEYS if k not in s]
        if missing:
            raise InputError(file, "/", f"not a moss summary.json: no '{missing[0]}' (moss run writes "
                             + ", ".join(CONTRACT_SUMMARY_KEYS) + ")")
    check_summary(s, file)


def check_summary(s, file, where=""):
    """InputError unless the parts of summary `s` the report reads have the types it computes with.
    where: the summary's place in `file` ("" for a summary.json; errors add the JSON pointer)."""
    _check(s, file, where, SUMMARY, top=True)


# ---------- results.h5 ----------
def _what(obj):
    if isinstance(obj, h5py.Group):
        return "a group"
    if isinstance(obj, h5py.Dataset):
        return "a dataset"
    if isinstance(obj, h5py.Datatype):
        return "a named datatype"
    return "an unknown kind of object"


def _dtype_text(dt):
    return "text" if h5py.check_string_dtype(dt) is not None else str(dt)


class H5Reader:
    """Reads results.h5 by hard links only; `where` is the HDF5 path being read (for error messages)."""

    def __init__(self, f, path, file_bytes):
        self.f, self.path, self.where, self.file_bytes = f, path, "/", file_bytes
        # Elements all datasets together may declare: moss stores them contiguously (8 bytes a number,
        # 16 a string reference), so a valid file holds at most file_bytes / 8; /2 leaves room for
        # compressed chunks in files written by other tools.
        self.budget = max(MIN_ELEMENT_BUDGET, file_bytes // 2)

    def fail(self, expected, where=None):
        raise InputError(self.path, self.where if where is None else where, expected)

    def child(self, group, gpath, name, expected):
        """group's member `name` reached by a hard link, or None when absent; links are never followed."""
        self.where = f"{gpath.rstrip('/')}/{name}"
        link = group.get(name, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            self.fail(f"an external link to {link.filename}:{link.path}; expected {expected} stored in this "
                      "file (links to other files are never followed)")
        if isinstance(link, h5py.SoftLink):
            self.fail(f"a soft link to {link.path}; expected {expected} (moss writes no links)")
        if not isinstance(link, h5py.HardLink):
            self.fail(f"a user-defined link; expected {expected}")
        return group[name]

    def names(self, group):
        return list(group.keys())   # link names only: nothing is traversed

    def group(self, parent, ppath, name, required=True):
        obj = self.child(parent, ppath, name, "a group")
        if obj is None:
            if required:
                self.fail("missing; expected a group (results.h5 layout: sim/sweep/README.md)")
            return None
        if not isinstance(obj, h5py.Group):
            self.fail(f"{_what(obj)}; expected a group")
        return obj

    def dataset(self, parent, ppath, name, expected, shape):
        """The dataset `name` with `shape` (None in a dimension: any), checked and charged to the budget."""
        ds = self.child(parent, ppath, name, expected)
        if ds is None:
            self.fail(f"missing; expected {expected}")
        if not isinstance(ds, h5py.Dataset):
            self.fail(f"{_what(ds)}; expected {expected}")
        if ds.is_virtual:
            self.fail("a virtual dataset (its data lives in other files); expected data stored in this file")
        if ds.id.get_create_plist().get_external_count():
            self.fail("stored in external raw data files; expected data stored in this file")
        dims = " x ".join(str(n) for n in shape).replace("None", "K" if len(shape) > 1 else "n")
        if ds.shape is None or len(ds.shape) != len(shape) or any(
                want is not None and got != want for got, want in zip(ds.shape, shape)):
            self.fail(f"shape {ds.shape}; expected {expected} of shape [{dims}]")
        size = math.prod(ds.shape)
        if size > self.budget:
            self.fail(f"declares {size:,} values, more than the {self.budget:,} left for a file of "
                      f"{self.file_bytes:,} bytes; expected {expected} written by moss")
        self.budget -= size
        return ds

    def numbers(self, ds, expected, bounded=True):
        """ds as float64; bounded: finite values of magnitude at most MAX_MAGNITUDE (the report computes
        with them)."""
        if ds.dtype.kind not in "fiu":
            self.fail(f"{_dtype_text(ds.dtype)}; expected {expected}")
        data = np.asarray(ds[()], dtype=np.float64)
        bad = np.flatnonzero(np.isfinite(data) & (np.abs(data) > MAX_MAGNITUDE)) if bounded else []
        if len(bad):
            at = np.unravel_index(bad[0], data.shape)
            raise InputError(self.path, self.where + "".join(f"[{k}]" for k in at),
                             "expected a number of magnitude at most 1e100 (NaN when unknown)",
                             float(data[at]))
        return data

    def check_positive(self, data):
        bad = np.flatnonzero(data <= 0)
        if bad.size:
            raise InputError(self.path, f"{self.where}[{bad[0]}]", "expected a number > 0 (NaN when unknown)",
                             float(data[bad[0]]))

    def integers(self, ds, expected):
        if ds.dtype.kind not in "iu":
            self.fail(f"{_dtype_text(ds.dtype)}; expected {expected}")
        return [int(x) for x in ds[()]]

    def texts(self, ds, expected):
        if h5py.check_string_dtype(ds.dtype) is None:
            self.fail(f"{ds.dtype}; expected {expected}")
        out = []
        for i, v in enumerate(ds[()]):
            try:
                out.append(v.decode("utf-8") if isinstance(v, bytes) else str(v))
            except UnicodeDecodeError:
                self.fail("not UTF-8; expected UTF-8 text", f"{self.where}[{i}]")
        return out

    def attrs(self, obj, text_keys):
        """obj's attributes as Python values; those named in text_keys must be text."""
        out = {}
        for k in list(obj.attrs.keys()):
            self.where = f"/ attribute '{k}'"
            v = obj.attrs[k]
            if isinstance(v, bytes):
                try:
                    v = v.decode()
                except UnicodeDecodeError:
                    self.fail("not UTF-8; expected UTF-8 text")
            elif isinstance(v, np.ndarray) and v.size != 1:
                v = v.tolist()
            elif hasattr(v, "item"):
                v = v.item()
            if k in text_keys and not isinstance(v, str):
                raise InputError(self.path, self.where, "expected text", v)
            out[k] = v
        return out
