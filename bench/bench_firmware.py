"""Firmware steady-state costs under the MicroPython unix port: heap bytes per
sample (must be 0), interpreter time per sample and per frame, wire bytes per
sample, for 1, 4 and 16 sensors; then each sensor driver's own time and heap per
sample (read_raw_into on a bus that answers at once). Times are this machine's, not
a Pico's: the ratios are what carries over.

    .venv/bin/python bench/bench_firmware.py [ticks] [--against REV]

--against REV also runs git revision REV's firmware/ folder, in the same
MicroPython process as this tree's (its modules renamed base_*), alternating
between the two, best of 15 short runs each (25 batches of ~2 ms for a driver);
the last column is the ratio this/REV. Separate processes, or runs of several ms,
on a shared machine swung that ratio by +-50%; use few ticks then (100 gives runs
of 0.5-3 ms, whose best agree within a few percent):

    .venv/bin/python bench/bench_firmware.py 100 --against 05fa646
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VBOARD = ROOT / "host" / "leakmon" / "sim" / "vboard"
BASE = "base_"
SIM = {"seed": 3, "speed": 0, "chamber": {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15},
       "sensors": [{"bus": 0, "addr": 0x77, "chip": "BMP390"}, {"bus": 0, "addr": 0x76, "chip": "BMP280"},
                   {"bus": 1, "addr": 0x77, "chip": "DPS310"}, {"bus": 1, "addr": 0x5D, "chip": "LPS22HH"},
                   {"bus": 2, "addr": 0x77, "chip": "MS5611"}]}


def _mp(script: str, args: list[str], path: list[Path], cwd: Path) -> list[dict[str, float | str]]:
    mp = Path(sys.executable).parent / "micropython"
    env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in [VBOARD, *path]) + "::.frozen")
    res = subprocess.run([str(mp), str(ROOT / "bench" / script), *args], env=env, cwd=cwd,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{script} failed: {res.stderr.strip()[-400:]}")
    return [json.loads(line) for line in res.stdout.splitlines()]


def prefixed_firmware(rev: str, dest: Path) -> Path:
    """firmware/ at git revision rev, each module copied as base_<name>.py with its
    imports of the others renamed, so that it loads beside this tree's."""
    res = subprocess.run(["git", "archive", "--format=tar", rev, "firmware"], cwd=ROOT, capture_output=True,
                         check=False)
    if res.returncode != 0:
        raise SystemExit(f"git archive {rev} firmware: {res.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(res.stdout)) as tar:
        tar.extractall(dest / "tree", filter="data")
    src = dest / "tree" / "firmware"
    names = "|".join(p.stem for p in src.glob("*.py"))
    out = dest / "prefixed"
    out.mkdir()
    for f in src.glob("*.py"):
        text = re.sub(rf"^(\s*)import ({names})\s*$", rf"\1import {BASE}\2 as \2", f.read_text(), flags=re.M)
        text = re.sub(rf"^(\s*)import ({names}) as ", rf"\1import {BASE}\2 as ", text, flags=re.M)
        text = re.sub(rf"^(\s*)from ({names}) import ", rf"\1from {BASE}\2 import ", text, flags=re.M)
        text = text.replace("__import__(", f"__import__({BASE!r} + ")
        (out / (BASE + f.name)).write_text(text)
    return out


def node_table(rows: list[dict[str, float | str]], against: str | None) -> None:
    head = (f"{'sensors':>7} {'rows':>4} {'alloc B/sample':>14} {'us/sample':>9} {'us/tick':>8} "
            f"{'us/frame':>8} {'frame B':>7} {'wire B/sample':>13} {'max tick Hz':>13}")
    if against:
        head += f" {against + ' us/sample':>18} {'ratio':>6}"
    print(head)
    base = {(r["sensors"], r["rows"]): r for r in rows if r["tree"] == BASE}
    for r in (r for r in rows if r["tree"] == ""):
        t, f, n = float(r["us_per_tick"]), float(r["us_per_frame"]), float(r["rows"])
        line = (f"{r['sensors']:7d} {r['rows']:4d} {r['alloc_bytes_per_sample']:14.3f} {r['us_per_sample']:9.2f} "
                f"{t:8.2f} {f:8.1f} {r['frame_bytes']:7d} {r['wire_bytes_per_sample']:13.2f} {1e6 / (t + f / n):13.0f}")
        if against:
            b = float(base[(r["sensors"], r["rows"])]["us_per_sample"])
            line += f" {b:18.2f} {float(r['us_per_sample']) / b:6.3f}"
        print(line)


def driver_table(rows: list[dict[str, float | str]], against: str | None) -> None:
    head = f"{'driver':>7} {'alloc B/sample':>14} {'us/sample':>9}"
    if against:
        head += f" {against + ' us/sample':>18} {'ratio this/' + against:>20}"
    print(head)
    base = {r["driver"]: r for r in rows if r["tree"] == BASE}
    for r in (r for r in rows if r["tree"] == ""):
        line = f"{r['driver']:>7} {r['alloc_bytes_per_sample']:14.3f} {r['us_per_sample']:9.3f}"
        if against:
            b = float(base[r["driver"]]["us_per_sample"])
            line += f" {b:18.3f} {float(r['us_per_sample']) / b:20.3f}"
        print(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ticks", nargs="?", default="5000", help="node ticks per run of the first table")
    p.add_argument("--samples", default="20000", help="driver reads per timed batch (default 20000)")
    p.add_argument("--against", metavar="REV", help="also time the firmware of this git revision")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="leakmon-bench-") as tmp:
        work = Path(tmp)
        (work / "sim.json").write_text(json.dumps(SIM))
        path = [ROOT / "firmware"]
        trees = ""
        if a.against:
            path.append(prefixed_firmware(a.against, work))
            trees = "," + BASE
        node_table(_mp("mp_bench_firmware.py", [a.ticks, trees], path, work), a.against)
        print()
        driver_table(_mp("mp_bench_drivers.py", [a.samples, trees], path, work), a.against)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
