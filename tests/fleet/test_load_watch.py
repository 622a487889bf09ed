"""A gateway near one CPU core says so in its log, once, and again when it is back under."""

from __future__ import annotations

import threading
import time

from leakmon.fleet.load import LoadWatch


class Clocks:
    """Wall and CPU time moved by the test: cores = CPU seconds per wall second."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def run(self, wall_s: float, cores: float) -> None:
        self.wall += wall_s
        self.cpu += wall_s * cores


def test_busy_and_calm_are_each_said_once_with_no_flapping_between() -> None:
    clk, lines = Clocks(), []
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
