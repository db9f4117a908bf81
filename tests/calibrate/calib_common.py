"""Shared set-up of the calibrate/ tests: finds the tool, imports torch (or skips), maps skips to exit 77.

Environment (set by tests/calibrate/CMakeLists.txt): MOSS_SOURCE_DIR (repository root) and
MOSS_BINARY (the built `moss`; the tests that need it skip when it is absent).
"""
import os
import sys
import unittest
from pathlib import Path

SKIP_CODE = 77  # CTest SKIP_RETURN_CODE
SOURCE_DIR = Path(os.environ.get("MOSS_SOURCE_DIR") or Path(__file__).resolve().parents[2])
CALIBRATE_DIR = SOURCE_DIR / "calibrate"
MOSS_BINARY = os.environ.get("MOSS_BINARY", str(SOURCE_DIR / "build" / "moss"))
sys.path.insert(0, str(CALIBRATE_DIR))

try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    print("SKIP: torch is not importable by", sys.executable, "(install Debian's python3-torch)")
    sys.exit(SKIP_CODE)


def main():
    """Runs the calling module's tests; exit 77 when everything that ran was skipped."""
    result = unittest.main(exit=False, verbosity=2).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and len(result.skipped) == result.testsRun:
        sys.exit(SKIP_CODE)
    sys.exit(0)
