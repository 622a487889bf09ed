"""The host package type-checks (mypy, configured in pyproject.toml)."""

import subprocess
import sys

import pytest
from conftest import ROOT


def test_host_package_type_checks():
    pytest.importorskip("mypy")
    res = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".venv" / ".mypy_cache")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
