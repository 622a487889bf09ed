"""What broke when leakmon was tried from outside, on the virtual board: a node with no
sensor answering, and a monitor whose cable is pulled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.hil
LEAKMON = [sys.executable, "-m", "leakmon"]

NO_SENSOR = """
name = "no_sensor"
description = "a chamber whose only sensor sits at an address the node does not probe"

[[segments]]
name = "chamber"
volume_m3 = 0.05
pressure_pa = 101325.0

[[sensors]]
chip = "BMP390"
bus = 0
addr = 0x10
segment = "chamber"
"""


def test_duration_ends_a_monitor_whose_node_has_no_sensor(micropython, tmp_path: Path):
    """Device time comes from the node's STATUS uptime too, not only from samples."""
    sc = tmp_path / "no_sensor.toml"
    sc.write_text(NO_SENSOR)
    res = subprocess.run(LEAKMON + ["monitor", "--sim", "--scenario", str(sc), "--speed", "0", "--duration", "30"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "0 sensor(s)" in res.stderr
