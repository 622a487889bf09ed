"""A testbed of virtual boards: flashing N boards in parallel against one after
another, and the HIL suite on N boards in parallel against one after another, each
pair measured in the same run on fresh boards, with the machine's load stated
(the ratio is only as good as the cores left free for it).

    .venv/bin/python bench/bench_testbed.py                 # 8 boards, flash and HIL (~3 min)
    .venv/bin/python bench/bench_testbed.py --boards 4 --no-hil

Flashing: empty virtual boards (no firmware), the whole firmware copied, hashed
and verified, then the HELLO after the reset; both ways share one build (mpy-cross
runs once). HIL: tests/hil/test_hil_suite.py on boards served by `leakmon sim
--boards N --speed 20` (`--board sim`), without the soak, which starts a board
of its own rather than testing the board under test.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leakmon.deploy import fleetflash
from leakmon.sim import scenario
from leakmon.sim.testbed import Testbed

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def flash_once(n: int, workers: int) -> tuple[float, int]:
    """Seconds to flash n fresh empty boards, workers at a time; boards that failed."""
    sc = [("steady_leak", scenario.load("steady_leak"))]
    with Testbed(n, sc, speed=20, empty=True) as bed, bed.served():
        ports = [fleetflash.PortInfo(s.port) for s in bed.slots]
        t0 = time.perf_counter()
        results = fleetflash.flash_fleet(ports, workers=workers, handshake_s=30)
        seconds = time.perf_counter() - t0
    return seconds, sum(not r.ok for r in results)


def child_cpu_s() -> float:
    """CPU seconds of every child process ended and waited for so far (their own children too)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def hil_once(n: int, jobs: int) -> tuple[float, int, float, float]:
    """The HIL suite on n served virtual boards, jobs at a time: seconds, exit code, and
    the CPU seconds of the pytest sessions and of the virtual boards (their firmware)."""
    with tempfile.TemporaryDirectory(prefix="leakmon-bench-") as tmp:
        links = Path(tmp) / "tb"
        sim = subprocess.Popen([sys.executable, "-m", "leakmon", "sim", "--boards", str(n), "--speed", "20",
                                "--link", str(links)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert sim.stdout is not None
            ports = [sim.stdout.readline().strip() for _ in range(n)]
            args = [sys.executable, "-m", "pytest", "-q", "-m", "hil", "tests/hil/test_hil_suite.py", "--board", "sim",
                    "-k", "not soak", "-p", "no:cacheprovider", f"--hil-jobs={jobs}",
                    f"--junitxml={Path(tmp) / 'hil.xml'}", *sum((["--port", p] for p in ports), [])]
            t0, cpu0 = time.perf_counter(), child_cpu_s()
            code = subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            wall, tests_cpu = time.perf_counter() - t0, child_cpu_s() - cpu0
        finally:
            cpu1 = child_cpu_s()
            sim.terminate()
            sim.wait(30)
        return wall, code, tests_cpu, child_cpu_s() - cpu1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--boards", type=int, default=8)
    p.add_argument("--no-hil", action="store_true", help="only the flashing comparison")
    a = p.parse_args()
    print(f"testbed of {a.boards} virtual boards; before: {load()}", flush=True)
    serial_s, bad_s = flash_once(a.boards, 1)
    parallel_s, bad_p = flash_once(a.boards, a.boards)
    print(f"flash, one after another: {serial_s:7.1f} s  ({bad_s} failed)")
    print(f"flash, all in parallel:   {parallel_s:7.1f} s  ({bad_p} failed)")
    print(f"flash speed-up:           {serial_s / parallel_s:7.2f}x   ({load()})", flush=True)
    if not a.no_hil:
        hs, cs, ts, bs = hil_once(a.boards, 1)
        hp, cp, tp, bp = hil_once(a.boards, a.boards)
        print(f"HIL suite, one after another: {hs:7.1f} s  (exit {cs}; CPU: sessions {ts:.0f} s, boards {bs:.0f} s)")
        print(f"HIL suite, all in parallel:   {hp:7.1f} s  (exit {cp}; CPU: sessions {tp:.0f} s, boards {bp:.0f} s)")
        print(f"HIL speed-up:                 {hs / hp:7.2f}x   ({load()})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
