"""Firmware steady-state costs under the MicroPython unix port: heap bytes per
sample (must be 0), interpreter time per sample and per frame, wire bytes per
sample, for 1, 4 and 16 sensors; then each sensor driver's own time and heap per
sample (read_raw_into on a bus that answers at once). Times are this machine's, not
a Pico's: the ratios are what carries over.

    .venv/bin/python bench/bench_firmware.py [ticks] [--against REV]

--against REV also runs git revision REV's firmware/ folder in the same run,
alternating with this tree's (best of 5 each, the order swapped every round), and prints the ratio this/REV.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VBOARD = ROOT / "host" / "leakmon" / "sim" / "vboard"
ROUNDS = 5  # runs per firmware tree, alternating (and which goes first); the best of each is kept


def _alternating(trees: dict[str, Path], rounds: int) -> list[tuple[str, Path]]:
    order = list(trees.items())
    return [t for r in range(rounds) for t in (order if r % 2 == 0 else order[::-1])]
SIM = {"seed": 3, "speed": 0, "chamber": {"volume_m3": 0.05, "p0_pa": 101325.0, "t0_k": 293.15},
       "sensors": [{"bus": 0, "addr": 0x77, "chip": "BMP390"}, {"bus": 0, "addr": 0x76, "chip": "BMP280"},
                   {"bus": 1, "addr": 0x77, "chip": "DPS310"}, {"bus": 1, "addr": 0x5D, "chip": "LPS22HH"},
                   {"bus": 2, "addr": 0x77, "chip": "MS5611"}]}


def _mp(script: str, args: list[str], firmware: Path, cwd: Path | None = None) -> list[dict[str, float]]:
    mp = Path(sys.executable).parent / "micropython"
    env = dict(os.environ, MICROPYPATH=f"{VBOARD}:{firmware}::.frozen")
    res = subprocess.run([str(mp), str(ROOT / "bench" / script), *args], env=env, cwd=cwd,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{script} failed: {res.stderr.strip()[-400:]}")
    return [json.loads(line) for line in res.stdout.splitlines()]


def node_table(ticks: str, trees: dict[str, Path]) -> None:
    """The node loop with fake sensors; with a second tree, its us/sample and the ratio."""
    best: dict[str, list[dict[str, float]]] = {}
    for name, fw in _alternating(trees, ROUNDS if len(trees) > 1 else 1):
        rows = _mp("mp_bench_firmware.py", [ticks], fw)
        old = best.get(name)
        best[name] = rows if old is None else [min(a, b, key=lambda r: r["us_per_sample"])
                                               for a, b in zip(old, rows)]
    base = [n for n in trees if n != "this"]
    head = (f"{'sensors':>7} {'rows':>4} {'alloc B/sample':>14} {'us/sample':>9} {'us/tick':>8} "
            f"{'us/frame':>8} {'frame B':>7} {'wire B/sample':>13} {'max tick Hz':>13}")
    if base:
        head += f" {base[0] + ' us/sample':>18} {'ratio':>6}"
    print(head)
    for i, r in enumerate(best["this"]):
        max_hz = 1e6 / (r["us_per_tick"] + r["us_per_frame"] / r["rows"])
        line = (f"{r['sensors']:7d} {r['rows']:4d} {r['alloc_bytes_per_sample']:14.3f} {r['us_per_sample']:9.2f} "
                f"{r['us_per_tick']:8.2f} {r['us_per_frame']:8.1f} {r['frame_bytes']:7d} "
                f"{r['wire_bytes_per_sample']:13.2f} {max_hz:13.0f}")
        if base:
            b = best[base[0]][i]
            line += f" {b['us_per_sample']:18.2f} {r['us_per_sample'] / b['us_per_sample']:6.3f}"
        print(line)


def export_firmware(rev: str, dest: Path) -> Path:
    """firmware/ as it was at git revision rev, unpacked under dest."""
    res = subprocess.run(["git", "archive", "--format=tar", rev, "firmware"], cwd=ROOT, capture_output=True,
                         check=False)
    if res.returncode != 0:
        raise SystemExit(f"git archive {rev} firmware: {res.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(res.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "firmware"


def driver_table(samples: str, trees: dict[str, Path], against: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="leakmon-bench-") as tmp:
        work = Path(tmp)
        (work / "sim.json").write_text(json.dumps(SIM))
        best: dict[str, dict[str, dict[str, float]]] = {name: {} for name in trees}
        for name, fw in _alternating(trees, ROUNDS):
            for r in _mp("mp_bench_drivers.py", [samples], fw, cwd=work):
                old = best[name].get(str(r["driver"]))
                if old is None or r["us_per_sample"] < old["us_per_sample"]:
                    best[name][str(r["driver"])] = r
    head = f"{'driver':>7} {'alloc B/sample':>14} {'us/sample':>9}"
    if against:
        head += f" {against + ' us/sample':>18} {'ratio this/' + against:>20}"
    print(head)
    for drv, r in best["this"].items():
        line = f"{drv:>7} {r['alloc_bytes_per_sample']:14.3f} {r['us_per_sample']:9.3f}"
        if against:
            b = best[against][drv]
            line += f" {b['us_per_sample']:18.3f} {r['us_per_sample'] / b['us_per_sample']:20.3f}"
        print(line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ticks", nargs="?", default="5000", help="node ticks per row of the first table")
    p.add_argument("--samples", default="20000", help="reads per driver per run (default 20000)")
    p.add_argument("--against", metavar="REV", help="also time the drivers of this git revision")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="leakmon-bench-base-") as tmp:
        trees = {"this": ROOT / "firmware"}
        if a.against:
            trees[a.against] = export_firmware(a.against, Path(tmp))
        node_table(a.ticks, trees)
        print()
        driver_table(a.samples, trees, a.against)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
