"""Benchmark: a board publishing straight to the broker (firmware/mqttlink.py), on the
virtual board (MicroPython unix port) and a private Mosquitto on loopback.

Per published frame, in one run: the time service() takes with mqttlink's gathered send
against umqtt.simple's own piecewise writes (the baseline: Nagle's algorithm and the
broker's delayed ACK hold each of its publishes), and the bytes a publish allocates.

    .venv/bin/python bench/bench_board_mqtt.py [--ticks 300]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # test-only helpers: private servers

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile

import servers

from leakmon.deploy.netconfig import default_lib_dir
from leakmon.fleet.brokerconf import acl_lines
from leakmon.sim import scenario
from leakmon.sim.board import find_micropython, vboard_dir


def run(mode: str, port: int, password: str, ticks: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as d:
        flash = Path(d)
        (flash / "mqtt.pw").write_text(password + "\n")
        shutil.copytree(default_lib_dir() / "umqtt", flash / "umqtt")
        (flash / "sim.json").write_text(json.dumps(scenario.load("steady_leak").sim_config(seed=1, speed=0)))
        env = dict(os.environ, MICROPYPATH=f"{vboard_dir()}:{ROOT / 'firmware'}::.frozen")
        res = subprocess.run([find_micropython(), str(ROOT / "bench" / "mp_bench_board_mqtt.py"), str(port), str(ticks),
                              "board", mode], cwd=flash, env=env, capture_output=True, timeout=600)
    err = res.stderr.decode()
    if res.returncode != 0 or "published=" not in err:
        raise SystemExit(f"bench: the board failed ({mode}): {err[-500:]}")
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", err)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ticks", type=int, default=300, help="ticks (one frame each) per mode (default 300)")
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="leakmon-bench-"))
    root.chmod(0o711)
    users = {"board": secrets.token_urlsafe(12)}
    broker = servers.Broker(root / "broker", users, acl_lines({}, boards={"board": "board"}))
    broker.folder.mkdir(parents=True)
    broker.folder.chmod(0o755)
    broker.start()
    try:
        out = {m: run(m, broker.port, users["board"], a.ticks) for m in ("piecewise", "gathered")}
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'mode':10} {'frames':>7} {'ms/frame':>9} {'B alloc/frame':>14}")
    per = {}
    for m, r in out.items():
        per[m] = r["service_us"] / 1000 / max(r["published"], 1)
        print(f"{m:10} {r['published']:7d} {per[m]:9.2f} {r['alloc_per_frame']:14d}")
    print(f"gathered send: {per['piecewise'] / per['gathered']:.0f}x less time per published frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
