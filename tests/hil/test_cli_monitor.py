"""`leakmon monitor --sim` as a user runs it: a real process, its output, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from leakmon.sim import scenario as scenario_mod

pytestmark = pytest.mark.hil
LEAKMON = [sys.executable, "-m", "leakmon"]


def test_monitor_json_reports_the_true_leak(micropython):
    res = subprocess.run(LEAKMON + ["monitor", "--sim", "--speed", "0", "--duration", "60", "--json", "--seed", "7"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) >= 50
    last = lines[-1]
    assert 59.0 <= last["t_s"] - lines[0]["t_s"] + 1.0 <= 62.0
    truth = scenario_mod.load("steady_leak").chamber().leak_rate_pa_per_s(last["temperature_k"])
    assert last["leak_rate_ci95_low_pa_per_s"] <= truth <= last["leak_rate_ci95_high_pa_per_s"], (last, truth)
    assert last["leak_rate_mmhg_per_day"] == pytest.approx(last["leak_rate_pa_per_s"] * 86400 / 133.322)
    assert "BMP390" in res.stderr and "0 lost" in res.stderr


def test_monitor_text_view_has_a_header_and_a_line_per_update(micropython):
    res = subprocess.run(LEAKMON + ["monitor", "--speed", "0", "--duration", "5"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0].split()[:4] == ["t_s", "ch", "pressure_Pa", "temp_C"]
    fields = out[-1].split()
    assert float(fields[2]) == pytest.approx(101325, abs=50)  # pressure in Pa
    assert float(fields[3]) == pytest.approx(20.0, abs=0.5)  # temperature in C


def test_ctrl_c_stops_cleanly_and_takes_the_virtual_board_down(micropython):
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen(LEAKMON + ["monitor", "--sim", "--speed", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # header
        first = proc.stdout.readline()  # a first live update
        assert first.strip()
        board = psutil.Process(proc.pid).children(recursive=True)  # supervisor, interpreter
        assert board
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    _, alive = psutil.wait_procs(board, timeout=5)
    assert not alive, f"virtual board processes left running: {alive}"


@pytest.mark.parametrize("argv, needle", [
    (["monitor", "--duration", "-3"], "must be positive"),
    (["monitor", "--scenario", "no_such_thing", "--speed", "0"], "no scenario 'no_such_thing'"),
    (["monitor", "--port", "/dev/does-not-exist"], "cannot open /dev/does-not-exist"),
])
def test_bad_input_gets_one_clear_line(argv, needle):
    res = subprocess.run(LEAKMON + argv, capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_view_draws_rows_for_every_segment(micropython):
    res = subprocess.run(LEAKMON + ["monitor", "--sim", "--scenario", "station_hatches", "--speed", "0",
                                    "--duration", "30", "--view", "--limit", "520mmHg", "--unit", "mmHg"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert res.returncode == 0, res.stderr
    last = res.stdout.split("\x1b[H\x1b[J")[-1]
    for seg in ("zvezda", "zarya", "unity", "destiny"):
        assert any(line.startswith("ch") and seg in line for line in last.splitlines()), seg
    assert "0 lost, 0 CRC errors" in last and "to 520 mmHg" in last and "pressure (mmHg)" in last


@pytest.mark.parametrize("argv, needle", [
    (["--view", "--limit", "lots"], "--limit: not a pressure"),
    (["--view", "--unit", "furlong"], "furlong"),
])
def test_view_flags_are_checked(micropython, argv, needle):
    res = subprocess.run(LEAKMON + ["monitor", "--speed", "0", "--duration", "2", *argv],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and needle in res.stderr and "Traceback" not in res.stderr
