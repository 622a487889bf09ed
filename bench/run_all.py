"""Every benchmark behind one command: the firmware (under MicroPython), the decoder
(against pymavlink when it is installed) and the leak-rate fit (against a per-window
numpy.polyfit loop). Each is a script of its own in bench/; this runs them in turn,
prints their output, and ends with the machine they ran on.

    .venv/bin/python bench/run_all.py            # full size, a few minutes
    .venv/bin/python bench/run_all.py --quick    # small inputs, well under a minute

Figures are never pass/fail: ratios are against a baseline measured in the same run.
bench/RESULTS.md keeps the latest full run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS = {  # name: (full arguments, quick arguments)
    "firmware (MicroPython unix port)": (["bench_firmware.py", "5000"], ["bench_firmware.py", "500"]),
    "decoder (bytes -> compensated samples)": (["bench_decoder.py", "--repeat", "3"],
                                               ["bench_decoder.py", "--mb", "8", "--stream-mb", "1",
                                                "--mavlink-mb", "1", "--repeat", "1"]),
    "leak-rate fit (all sliding windows)": (["bench_slope.py"],
                                            ["bench_slope.py", "--samples", "1000000", "--subset", "500"]),
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, load average {load:.1f} at start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small inputs: a smoke run, not figures to quote")
    args = ap.parse_args()
    where = machine()
    status = 0
    for name, (full, quick) in RUNS.items():
        argv = quick if args.quick else full
        print(f"\n== {name}: bench/{' '.join(argv)}", flush=True)
        t0 = time.monotonic()
        res = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], check=False)
        print(f"   ({time.monotonic() - t0:.1f} s)", flush=True)
        status |= res.returncode != 0
    print(f"\nmachine: {where}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
