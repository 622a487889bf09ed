"""`leakmon record`, `replay`, `export` and `info` as a user runs them, on the virtual
board: a replay shows exactly what the live run showed, and interrupted runs leave
readable recordings."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from leakmon.link.recording import KIND_NOTE, open_recording
from leakmon.sim import scenario as scenario_mod
from leakmon.sim.board import VirtualBoard

pytestmark = pytest.mark.hil
LEAKMON = [sys.executable, "-m", "leakmon"]


def leakmon(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LEAKMON + list(argv), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, micropython):
    """A 40 s steady-leak run recorded while its --json updates were printed."""
    path = tmp_path_factory.mktemp("rec") / "run.lkr"
    res = leakmon("record", "--sim", "--speed", "0", "--seed", "3", "--duration", "40", "--window", "20",
                  "--json", "-o", str(path))
    assert res.returncode == 0, res.stderr
    return path, res


def test_replay_prints_line_for_line_what_the_live_run_printed(recorded):
    path, live = recorded
    replay = leakmon("replay", str(path), "--fast", "--json")
    assert replay.returncode == 0, replay.stderr
    assert len(live.stdout.splitlines()) >= 35
    assert replay.stdout.splitlines() == live.stdout.splitlines()
    # The same run, judged against the simulator: the live analysis was a real one.
    last = json.loads(live.stdout.splitlines()[-1])
    truth = scenario_mod.load("steady_leak").chamber().leak_rate_pa_per_s(last["temperature_k"])
    assert last["leak_rate_ci95_low_pa_per_s"] - 0.05 <= truth <= last["leak_rate_ci95_high_pa_per_s"] + 0.05
    assert "0 CRC errors" in replay.stderr and "BMP390" in replay.stderr


def test_replay_text_view_and_options(recorded):
    path, live = recorded
    res = leakmon("replay", str(path), "--speed", "1000", "--window", "5", "--duration", "10")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["t_s", "ch", "pressure_Pa", "temp_C"]
    first = json.loads(live.stdout.splitlines()[0])
    assert float(lines[1].split()[0]) == pytest.approx(first["t_s"], abs=0.05)
    assert float(lines[-1].split()[0]) - float(lines[1].split()[0]) == pytest.approx(9.0, abs=1.01)


def test_export_rows_are_the_samples_the_live_fit_used(recorded, tmp_path):
    path, live = recorded
    out = tmp_path / "run.csv"
    res = leakmon("export", str(path), "--to", "csv", "-o", str(out))
    assert res.returncode == 0, res.stderr
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["t_s", "channel", "pressure_pa", "temperature_k", "seq"]
    t = np.array([float(r["t_s"]) for r in rows])
    p = np.array([float(r["pressure_pa"]) for r in rows])
    updates = [json.loads(line) for line in live.stdout.splitlines()]
    for u in updates[-3:]:
        block = np.flatnonzero((t > u["t_s"] - 0.95) & (t <= u["t_s"] + 1e-9))
        assert len(block) == 10
        assert p[block].mean() == pytest.approx(u["pressure_pa"], abs=1e-9)
    assert np.count_nonzero(t <= updates[-1]["t_s"] + 1e-9) >= updates[-1]["n_samples"]


def test_info_reports_the_boards_sensors(micropython):
    res = leakmon("info", "--sim", "--speed", "0", "--json", timeout=60)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    sensors = scenario_mod.load("steady_leak").sensors
    assert [(c["chip"], c["bus"], c["address"]) for c in d["channels"]] == [(s.chip, s.bus, s.addr) for s in sensors]
    assert d["board"] == "sim" and d["protocol"].startswith("1.") and d["period_s"] > 0
    text = leakmon("info", "--sim", "--speed", "0", timeout=60)
    assert text.returncode == 0 and "BMP390" in text.stdout and "0x77" in text.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_leaves_a_recording_that_replays(micropython, tmp_path, sig):
    path = tmp_path / "run.lkr"
    proc = subprocess.Popen(LEAKMON + ["record", "--sim", "--speed", "5", "--json", "-o", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline() for _ in range(2)]
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    live = seen + rest.splitlines(keepends=True)
    replay = leakmon("replay", str(path), "--fast", "--json")
    assert replay.returncode == 0, replay.stderr
    got = replay.stdout.splitlines(keepends=True)
    assert got[: len(live)] == live  # the file may hold the bytes read just before the interrupt


def test_the_port_vanishing_leaves_a_readable_recording_and_one_error_line(micropython, tmp_path):
    path = tmp_path / "run.lkr"
    with VirtualBoard(scenario_mod.load("steady_leak"), seed=4, speed=5) as board:
        proc = subprocess.Popen(LEAKMON + ["record", "--port", board.port, "--json", "-o", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            seen = [proc.stdout.readline() for _ in range(2)]
            assert all(seen)
            board.close()  # the board is unplugged
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "link lost" in err
    with open_recording(path) as r:
        chunks = list(r.chunks())
        assert not r.truncated
    assert chunks[-1].kind == KIND_NOTE and chunks[-1].note["event"] == "link-lost"
    replay = leakmon("replay", str(path), "--fast", "--json")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines()[:2] == [s.rstrip("\n") for s in seen]


@pytest.mark.parametrize("argv, needle", [
    (["record", "--sim", "--speed", "0", "-o", "/no/such/dir/run.lkr"], "cannot write /no/such/dir/run.lkr"),
    (["record", "--port", "/dev/does-not-exist", "-o", "{tmp}/x.lkr"], "cannot open /dev/does-not-exist"),
    (["info", "--port", "/dev/does-not-exist"], "cannot open /dev/does-not-exist"),
    (["replay", "{tmp}/missing.lkr"], "cannot read"),
])
def test_bad_input_gets_one_clear_line(argv, needle, tmp_path):
    res = leakmon(*[a.format(tmp=tmp_path) for a in argv], timeout=30)
    assert res.returncode == 1
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_record_rides_out_an_unplug_and_reports_the_gap(micropython, tmp_path):
    path, link = tmp_path / "run.lkr", tmp_path / "ttyLEAK"
    with VirtualBoard(scenario_mod.load("steady_leak"), seed=5, speed=5, link=link) as board:
        proc = subprocess.Popen(LEAKMON + ["record", "--port", str(link), "--reconnect", "20", "--json", "-o", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            live = [proc.stdout.readline() for _ in range(3)]
            board.control("disconnect 1")  # the cable pulled for a second; the node samples on
            live += [proc.stdout.readline() for _ in range(5)]
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "link back after" in err and "Traceback" not in err
    live += rest.splitlines(keepends=True)
    with open_recording(path) as r:
        notes = [c.note for c in r.chunks() if c.kind == KIND_NOTE]
    assert [n["event"] for n in notes][:3] == ["link-lost", "reconnected", "gap"]
    gap = notes[2]
    assert gap["lost_frames"] >= 1 and not gap["node_restarted"]
    # The samples themselves (exported by the vectorized decoder) show the same hole.
    csv_path = tmp_path / "run.csv"
    assert leakmon("export", str(path), "-o", str(csv_path)).returncode == 0
    t = np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=0)
    period_s = float(np.median(np.diff(t)))
    assert float(np.max(np.diff(t))) - period_s == pytest.approx(gap["device_s"], abs=1e-6)
    replay = leakmon("replay", str(path), "--fast", "--json")
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines(keepends=True)[: len(live)] == live


def test_text_view_of_a_replay_is_the_live_text_view(micropython, tmp_path):
    path = tmp_path / "run.lkr"
    live = leakmon("record", "--sim", "--speed", "0", "--seed", "6", "--duration", "12", "-o", str(path))
    assert live.returncode == 0, live.stderr
    replay = leakmon("replay", str(path), "--fast")
    assert replay.returncode == 0, replay.stderr
    assert len(live.stdout.splitlines()) >= 10
    assert replay.stdout == live.stdout
