"""Firmware steady-state costs under the MicroPython unix port: heap bytes per
sample (must be 0), interpreter time per sample and per frame, wire bytes per
sample, for 1, 4 and 16 sensors. Times are this machine's, not a Pico's: the
ratio between sampling and framing is what carries over.

    .venv/bin/python bench/bench_firmware.py [ticks]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ticks = sys.argv[1] if len(sys.argv) > 1 else "5000"
    mp = Path(sys.executable).parent / "micropython"
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'host/leakmon/sim/vboard'}:{ROOT / 'firmware'}::.frozen")
    res = subprocess.run([str(mp), str(ROOT / "bench" / "mp_bench_firmware.py"), ticks], env=env,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        return 1
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    print(f"{'sensors':>7} {'rows':>4} {'alloc B/sample':>14} {'us/sample':>9} {'us/tick':>8} "
          f"{'us/frame':>8} {'frame B':>7} {'wire B/sample':>13} {'max tick Hz':>13}")
    for r in rows:
        max_hz = 1e6 / (r["us_per_tick"] + r["us_per_frame"] / r["rows"])
        print(f"{r['sensors']:7d} {r['rows']:4d} {r['alloc_bytes_per_sample']:14.3f} {r['us_per_sample']:9.2f} "
              f"{r['us_per_tick']:8.2f} {r['us_per_frame']:8.1f} {r['frame_bytes']:7d} "
              f"{r['wire_bytes_per_sample']:13.2f} {max_hz:13.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
