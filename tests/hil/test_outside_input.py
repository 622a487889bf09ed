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


def _monitor_through_an_unplug(tmp_path: Path, *extra: str, until: str, stream: str = "stdout") -> tuple[int, str, str]:
    """monitor --reconnect on a virtual board whose cable is pulled for a second; read its
    output until `until` appears (or 60 s pass), then Ctrl-C it."""
    import signal
    import threading
    import time

    from leakmon.sim import scenario as scenario_mod
    from leakmon.sim.board import VirtualBoard

    link = tmp_path / "ttyLEAK"
    out: list[str] = []
    err_lines: list[str] = []
    with VirtualBoard(scenario_mod.load("steady_leak"), seed=5, speed=5, link=link) as board:
        proc = subprocess.Popen(LEAKMON + ["monitor", "--port", str(link), "--reconnect", "20", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        readers = [threading.Thread(target=lambda f=f, to=to: to.extend(iter(f.readline, "")), daemon=True)
                   for f, to in ((proc.stdout, out), (proc.stderr, err_lines))]
        for r in readers:
            r.start()
        watched = out if stream == "stdout" else err_lines
        try:
            deadline = time.monotonic() + 60
            while len(out) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            board.control("disconnect 1")  # the node samples on meanwhile
            while until not in "".join(watched) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # a few updates after it
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        for r in readers:
            r.join(5)
    return proc.returncode, "".join(out), "".join(err_lines)


def test_monitor_rides_out_an_unplug_and_states_the_gap(micropython, tmp_path: Path):
    status, out, err = _monitor_through_an_unplug(tmp_path, "--json", until="link back after", stream="stderr")
    assert status == 0, err
    assert "waiting up to 20 s" in err and "link back after" in err and "frames lost" in err
    assert "Traceback" not in err
    assert len(out.splitlines()) >= 8  # updates went on after the gap


def test_monitor_view_shows_the_gap_inside_the_screen(micropython, tmp_path: Path):
    status, out, err = _monitor_through_an_unplug(tmp_path, "--view", until="link back after")
    assert status == 0, err
    assert "link back after" in out  # drawn in the view, not scrolled over it on stderr
    assert "link back after" not in err and "waiting up to" not in err
