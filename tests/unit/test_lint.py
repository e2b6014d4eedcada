"""ruff, with the rule selection pinned in pyproject.toml, finds nothing in the code, the tests, the
benchmarks and the playbooks' Python (filter plugins)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    assert ruff.exists(), "ruff is not installed (pip install -e '.[test]')"
    result = subprocess.run([str(ruff), "check", "--no-cache", "orchestrator", "tests", "benchmarks", "playbooks"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
