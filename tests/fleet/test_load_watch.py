"""A gateway near one CPU core says so in its log, once, and again when it is back under."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from fleet.fleetkit import leakmon_cmd, wait_until

from leakmon.fleet import envelope
from leakmon.fleet.load import Cadence, LoadWatch


class Clocks:
    """Wall and CPU time moved by the test: cores = CPU seconds per wall second."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def run(self, wall_s: float, cores: float) -> None:
        self.wall += wall_s
        self.cpu += wall_s * cores


def test_busy_and_calm_are_each_said_once_with_no_flapping_between() -> None:
    clk, lines = Clocks(), list[str]()
    watch = LoadWatch(lines.append, period_s=60.0, cpu_s=lambda: clk.cpu, wall_s=lambda: clk.wall)
    for cores in (0.5, 0.85):  # under the line: nothing
        clk.run(60.0, cores)
        watch.poll()
    assert lines == [] and watch.cores is not None and abs(watch.cores - 0.85) < 1e-9
    clk.run(30.0, 1.0)
    watch.poll()  # half a period: not looked at yet
    assert lines == []
    clk.run(30.0, 1.0)
    watch.poll()
    assert len(lines) == 1 and "1.00 of a CPU core" in lines[0] and "--estimate-every" in lines[0]
    for cores in (0.95, 0.8, 0.75, 1.2):  # still busy, or between the lines: nothing more
        clk.run(60.0, cores)
        watch.poll()
    assert len(lines) == 1
    clk.run(60.0, 0.4)
    watch.poll()
    assert len(lines) == 2 and "back to 0.40" in lines[1]
    clk.run(60.0, 0.92)
    watch.poll()
    assert len(lines) == 3 and "0.92" in lines[2]


def test_a_thread_spinning_in_python_is_seen_as_busy_and_an_idle_one_is_not() -> None:
    """The process's own CPU clock: a thread that holds the interpreter reads near one core."""
    lines: list[str] = []
    watch = LoadWatch(lines.append, period_s=0.6)
    time.sleep(0.7)
    watch.poll()
    assert lines == [] and watch.cores is not None and watch.cores < 0.5, watch.cores
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    th = threading.Thread(target=spin)
    th.start()
    try:
        deadline = time.monotonic() + 10.0
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
            watch.poll()
    finally:
        stop.set()
        th.join()
    assert len(lines) == 1 and "gateway busy" in lines[0], (lines, watch.cores)


def test_the_cadence_doubles_per_busy_period_up_to_its_bound_and_halves_back_per_calm_one() -> None:
    lines: list[str] = []
    cad = Cadence(10.0, 35.0, lines.append)
    assert [cad.after(c) for c in (0.5, 0.85)] == [False, False] and cad.every_s == 10.0 and lines == []
    assert cad.after(0.95) and cad.every_s == 20.0
    assert not cad.after(0.8) and cad.every_s == 20.0  # between the lines: as it is
    assert cad.after(1.3) and cad.every_s == 35.0  # doubled, but no further than the bound
    assert not cad.after(1.3) and cad.every_s == 35.0
    assert cad.after(0.3) and cad.every_s == 17.5  # one step back
    assert not cad.after(0.75) and cad.every_s == 17.5
    assert cad.after(0.5) and cad.every_s == 10.0  # and no further than the base
    assert not cad.after(0.1) and cad.every_s == 10.0
    assert [ln.split("every ")[1].split(" s")[0] for ln in lines] == ["20", "35", "17.5", "10"], lines
    assert "again" in lines[3] and "again" not in lines[2]
    never = Cadence(10.0, 10.0, lines.append)  # no bound above the cadence: never stretched
    assert not never.after(1.5) and never.every_s == 10.0 and len(lines) == 4


class Box:
    """The gateway's outbox, kept: what it would publish."""

    def __init__(self) -> None:
        self.msgs: list[tuple[str, bytes]] = []

    def put(self, topic: str, payload: bytes) -> None:
        self.msgs.append((topic, payload))

    def put_retained(self, topic: str, payload: bytes) -> None:
        pass

    def estimate_times(self, channel: int) -> list[float]:
        """The device time of each estimate of the channel, in the order published."""
        out = []
        for topic, payload in list(self.msgs):
            if topic.endswith("/estimate"):
                out += [r["t_s"] for r in json.loads(envelope.unpack(payload).body) if r["channel"] == channel]
        return out


def test_a_busy_gateway_stretches_its_estimate_cadence_and_takes_it_back(micropython: str) -> None:
    """The real runner and node thread on a virtual board; only the load is told (its clocks
    moved by the test, as above): busy twice, busy again at the bound, then calm twice."""
    from leakmon.fleet.runner import NodeSource, run_nodes
    from leakmon.link.node import Node
    from leakmon.sim import scenario
    from leakmon.sim.board import VirtualBoard

    clk, lines, box = Clocks(), list[str](), Box()
    watch = LoadWatch(lines.append, period_s=60.0, cpu_s=lambda: clk.cpu, wall_s=lambda: clk.wall)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(port: str) -> None:
        try:
            with Node.open(port) as node:
                run_nodes([NodeSource("a1", node)], box, stop, window_s=60.0, estimate_every_s=5.0,
                          estimate_every_max_s=20.0, load=watch, log=lines.append)
        except BaseException as e:  # noqa: BLE001 - shown by the assert below
            errors.append(e)

    # (the period's cores, the cadence then, its estimates to see)
    phases = [(None, 5.0, 4), (0.95, 10.0, 4), (1.0, 20.0, 3), (1.1, 20.0, 3), (0.3, 10.0, 4), (0.2, 5.0, 5)]
    starts = []
    with VirtualBoard(scenario.load("steady_leak"), seed=3, speed=20.0) as board:
        th = threading.Thread(target=run, args=(board.port,), daemon=True)
        th.start()
        try:
            for cores, _, more in phases:
                if cores is not None:
                    clk.run(60.0, cores)  # the runner polls every 0.1 s: it measures this period
                    assert wait_until(lambda c=cores: abs((watch.cores or 0.0) - c) < 1e-9, 10), (watch.cores, lines, errors)
                starts.append(len(box.estimate_times(0)))
                assert wait_until(lambda n=starts[-1], k=more: len(box.estimate_times(0)) >= n + k, 120), \
                    (lines, box.estimate_times(0), errors)
        finally:
            stop.set()
            th.join(30)
    assert not errors, errors
    said = [ln for ln in lines if "each channel's estimate" in ln]
    assert len(said) == 4 and "now every 10 s" in said[0] and "now every 20 s" in said[1], lines
    assert "every 10 s of device time" in said[2] and "every 5 s of device time again" in said[3], lines
    t = np.array(box.estimate_times(0))
    ends = starts[1:] + [len(t)]
    for (_, every_s, _), a, b in zip(phases, starts, ends):
        gaps = np.diff(t[a:b])[1:]  # the first gap of a phase straddles the change
        assert len(gaps) and abs(float(np.median(gaps)) - every_s) <= 1.0, (every_s, t[a:b].tolist(), lines)


def test_a_bound_under_the_cadence_is_refused_before_anything_is_opened(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    for cmd in (["gateway", "--broker", "mqtt://gw@127.0.0.1:1", "--sim", "1"], ["serve", "--sim", "1", "--store", str(store)]):
        r = subprocess.run(leakmon_cmd(*cmd, "--estimate-every", "10", "--estimate-every-max", "5"),
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "LEAKMON_MQTT_PASSWORD": ""})
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and "--estimate-every-max 5 is shorter than --estimate-every 10" in lines[0], r.stderr
    assert not store.exists()
    r = subprocess.run(leakmon_cmd("serve", "--sim", "1", "--store", str(store), "--estimate-every-max", "0"),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "--estimate-every-max" in r.stderr.splitlines()[-1] and "Traceback" not in r.stderr
