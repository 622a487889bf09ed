"""What reading files through leakmon.config (pydantic models) costs against a baseline
revision of the package (default 05fa646: the hand-made validators), in the same run:
a fresh process that imports the scenario module and loads station_hatches, and one
scenario load in a warm process (every shipped scenario, round robin, for 2 s).

    .venv/bin/python bench/bench_config_load.py [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLD = "from leakmon.sim import scenario; scenario.load('station_hatches')"
WARM = """import time
from leakmon.sim import scenario
names = scenario.shipped()
scenario.load('station_hatches')
t, n = time.perf_counter(), 0
while time.perf_counter() - t < 2.0:
    [scenario.load(x) for x in names]
    n += len(names)
print((time.perf_counter() - t) / n)
"""


def baseline_tree(rev: str, into: Path) -> Path:
    """The package at rev, laid out as installed: leakmon.hardware and leakmon.firmware inside."""
    archive = subprocess.run(["git", "archive", rev, "host/leakmon", "firmware", "hardware"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    tar = into / "src.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(into, filter="data")
    (into / "host" / "leakmon" / "hardware").symlink_to(into / "hardware")
    (into / "host" / "leakmon" / "firmware").symlink_to(into / "firmware")
    return into / "host"


def run(pythonpath: str | None, code: str) -> tuple[float, str]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="05fa646", help="git revision to compare with (default 05fa646)")
    ap.add_argument("--cold-runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for label, path in ((f"baseline {args.baseline}", str(baseline_tree(args.baseline, Path(tmp)))),
                            ("leakmon.config", None)):
            cold = statistics.median(run(path, COLD)[0] for _ in range(args.cold_runs))
            rows[label] = (cold, float(run(path, WARM)[1]))
    base = next(iter(rows.values()))
    print(f"{'':26} {'fresh process + load':>22} {'ratio':>6} {'one load, warm':>16} {'ratio':>6}")
    for label, (cold, warm) in rows.items():
        print(f"{label:26} {cold * 1e3:19.0f} ms {cold / base[0]:6.2f} {warm * 1e3:13.3f} ms {warm / base[1]:6.2f}")


if __name__ == "__main__":
    main()
