"""The firmware type-checks against each port's MicroPython stubs (mypy)."""

import subprocess
import sys

import pytest
from conftest import FIRMWARE, ROOT

STUBS = ROOT / ".venv" / "mpstubs"
# The virtual board's profile imports the simulator's modules, which no port has.
SOURCES = sorted(str(p) for p in FIRMWARE.glob("*.py") if p.name not in ("__init__.py", "board_sim.py"))


@pytest.mark.parametrize("port", ["rp2", "esp32", "stm32"])
def test_firmware_type_checks_against_port_stubs(port, tmp_path):
    pytest.importorskip("mypy")
    stubs = STUBS / port
    if not (stubs / "stdlib").is_dir():
        pytest.skip(f"no stubs for {port}: run scripts/setup.sh")
    config = tmp_path / "mypy.ini"  # not the host's settings in pyproject.toml
    config.write_text("[mypy]\n")
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--custom-typeshed-dir", str(stubs),
         "--python-version", "3.11",
         "--no-site-packages", "--ignore-missing-imports", "--check-untyped-defs", "--explicit-package-bases",
         "--cache-dir", str(tmp_path / "cache"), *SOURCES],
        capture_output=True, text=True, cwd=FIRMWARE, timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
