"""Benchmark: the real `leakmon gateway` command reading N nodes on N serial ports.

bench_fleet.py times the gateway's live path in one thread (decode, ingest, estimates,
publisher). A user runs the command: a thread per node, each blocked on its own port
through pyserial, the runner's checks, the spool and the broker. This runs exactly that, as
a separate process, on pseudo-terminals: a feeder process answers each node's handshake
with a real HELLO and calibrations, then writes its SAMPLES frames at the real rate (10 Hz,
a frame of --rows rows per node, every node due at one instant or --stagger'ed over the
frame period). A subscriber takes the estimates from Mosquitto. Printed: the gateway
process's CPU (user + system, /proc) per wall second and per node-frame, over the second
half of the run (the first half starts the nodes), with nothing fed as well (what the
ports cost idle), and p50/p99 from a frame's due time to its estimate at the subscriber.

    .venv/bin/python bench/bench_gateway_ports.py --nodes 100 [--seconds 60] [--stagger] [--idle-s 10] [--warm-s 600]

By default no warm-up: the windows are partly filled, so the estimates cost less than at
steady state; this measures what the port layer adds to the same live path. --warm-s W
first writes W seconds of device time to every port as fast as the gateway takes them
(round robin, a frame per node at a time) and waits until every node's last warm-up
estimate has reached the subscriber, so that the timed part runs on full windows.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import argparse
import multiprocessing as mp
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np
import servers
from bench_fleet import node_frames
from ptyboards import PtyBoards

from leakmon.fleet import envelope

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v) - v[3] - v[4]) / CLOCK_TICKS


def feeder(nodes: int, channels: int, rows: int, frames: int, stagger: bool, idle_s: float, warm: int,
           conn: "mp.connection.Connection") -> None:  # fmt: skip
    """Own the masters of N ptys; answer each node's first command with its handshake; after
    every node has answered, idle_s of nothing, then `warm` frames per node unpaced, then
    frames at the real rate."""
    period_s = rows * 0.1
    boards = PtyBoards(nodes)
    masters = boards.masters
    streams = [node_frames(channels, warm + frames, rows, k) for k in range(nodes)]
    conn.send(boards.names)
    never = boards.answer_handshakes([hs for hs, _ in streams], 120.0)
    if never:
        conn.send(("error", f"{never} nodes never asked for their handshake"))
        return
    conn.send(("ready", time.time()))
    time.sleep(idle_s)
    conn.send(("warming", time.time()))
    for i in range(warm):
        for k, m in enumerate(masters):
            os.write(m, streams[k][1][i])  # blocks while the gateway has not read the last ones
    if warm:
        conn.send(("written", time.time()))
        conn.recv()  # the gateway has caught up
    t0_wall, t0 = time.time(), time.monotonic()
    conn.send(("t0", t0_wall))
    behind = 0.0
    for i in range(frames):
        for k, m in enumerate(masters):
            due = t0 + (i + (k / nodes if stagger else 0.0)) * period_s
            ahead = due - time.monotonic()
            if ahead > 0.0:
                time.sleep(ahead)
            else:
                behind = max(behind, -ahead)
            os.write(m, streams[k][1][warm + i])
    conn.send(("done", behind))
    conn.recv()  # held open until the gateway has stopped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60.0, help="frames fed at the real rate, s")
    ap.add_argument("--idle-s", type=float, default=10.0, help="after the handshakes, nothing fed for this long")
    ap.add_argument("--stagger", action="store_true", help="nodes' frames spread over the frame period")
    ap.add_argument("--estimate-every", type=float, default=10.0)
    ap.add_argument("--warm-s", type=float, default=0.0,
                    help="device seconds written unpaced first, to fill the windows (600: steady state)")
    ap.add_argument("--leakmon", default=str(ROOT / ".venv" / "bin" / "leakmon"), help="the leakmon command to run")
    a = ap.parse_args()
    period_s = a.rows * 0.1
    frames = int(a.seconds / period_s)
    warm = int(a.warm_s / period_s)
    root = Path(tempfile.mkdtemp(prefix="leakmon-bench-ports-"))
    root.chmod(0o711)
    users = {u: secrets.token_urlsafe(12) for u in ("gw", "reader")}
    acl = ["user gw", "topic write leakmon/#", "user reader", "topic read leakmon/#"]
    broker = servers.Broker(root / "mq", users, acl)
    broker.folder.mkdir(parents=True)
    broker.folder.chmod(0o755)
    broker.start()
    parent, child = mp.Pipe()
    feed = mp.Process(target=feeder, args=(a.nodes, a.channels, a.rows, frames, a.stagger, a.idle_s, warm, child),
                      daemon=True)  # fmt: skip
    feed.start()
    names = parent.recv()
    from leakmon.fleet.creds import parse_broker
    from leakmon.fleet.mqttclient import connect, make_client

    t0 = [0.0]
    lat: list[tuple[float, float]] = []  # (due time, latency)
    newest = np.full(a.nodes, -1)  # each node's newest frame index with an estimate

    def on_message(c, u, m) -> None:  # type: ignore[no-untyped-def]
        env = envelope.unpack(m.payload)
        now = time.time()
        k = int(env.node_id[1:])
        newest[k] = max(newest[k], env.seq - 1 - a.channels)
        due = t0[0] + ((env.seq - 1 - a.channels - warm) + (k / a.nodes if a.stagger else 0.0)) * period_s
        lat.append((due, now - due))

    addr = parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}")
    sub = make_client(addr, users["reader"], "bench-ports-sub", clean_session=True)
    connect(sub, addr)
    sub.on_message = on_message
    sub.subscribe(envelope.topic("+", "estimate"), 1)
    sub.loop_start()
    cmd = [a.leakmon, "gateway", "--broker", f"mqtt://gw@127.0.0.1:{broker.port}", "--no-store-confirm",
           "--spool", str(root / "spool"), "--estimate-every", str(a.estimate_every)]
    for k, name in enumerate(names):
        cmd += ["--port", name, "--node-id", f"n{k}"]
    env = dict(os.environ, LEAKMON_MQTT_PASSWORD=users["gw"])
    log = (root / "gateway.log").open("wb")
    gw = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        print(f"  started the gateway on {len(names)} ports; waiting for the handshakes", file=sys.stderr, flush=True)
        kind, value = parent.recv()
        print(f"  {kind}", file=sys.stderr, flush=True)
        if kind == "error":
            sys.exit(f"bench_gateway_ports.py: {value}")
        time.sleep(min(2.0, a.idle_s / 2))
        c0, w0 = cpu_s(gw.pid), time.monotonic()
        kind, warm_wall = parent.recv()
        idle = (cpu_s(gw.pid) - c0) / (time.monotonic() - w0)
        if warm:
            parent.recv()
            last_due = warm - 1 - int(a.estimate_every / period_s)
            give_up = time.monotonic() + 1800.0
            while newest.min() < last_due and gw.poll() is None:
                if time.monotonic() > give_up:
                    sys.exit(f"bench_gateway_ports.py: after 30 min, {int((newest < last_due).sum())} nodes' "
                             "last warm-up estimates never came")
                time.sleep(0.2)
            time.sleep(1.0)
            parent.send("go")
        kind, t0[0] = parent.recv()
        warm_took_s = t0[0] - warm_wall
        half = t0[0] + frames * period_s / 2
        time.sleep(max(0.0, half - time.time()))
        others = {"feeder": feed.pid, "broker": broker.proc.pid if broker.proc else None}
        o1 = {k: cpu_s(p) for k, p in others.items() if p}
        c1, w1, m1 = cpu_s(gw.pid), time.monotonic(), machine_busy_s()
        kind, behind = parent.recv()
        c2, w2, m2 = cpu_s(gw.pid), time.monotonic(), machine_busy_s()
        o2 = {k: cpu_s(p) for k, p in others.items() if p}
        time.sleep(3.0)
        if gw.poll() is not None:
            sys.exit(f"bench_gateway_ports.py: the gateway stopped: {(root / 'gateway.log').read_text()[-2000:]}")
    finally:
        gw.terminate()
        try:
            gw.wait(10)
        except subprocess.TimeoutExpired:
            gw.kill()
        parent.send("stop")
        feed.join(5)
        sub.loop_stop()
        broker.stop()
        tail = (root / "gateway.log").read_text()[-600:]
        shutil.rmtree(root, ignore_errors=True)
    busy = (c2 - c1) / (w2 - w1)
    node_frames_s = a.nodes / period_s
    second = np.array([x for d, x in lat if d >= half]) if lat else np.array([np.nan])
    print(f"leakmon gateway on {a.nodes} ports (pseudo-terminals) x {a.channels} ch = {a.nodes * a.channels} channels "
          f"at 10 Hz, {'staggered' if a.stagger else 'every node due at one instant'}, an estimate every "
          f"{a.estimate_every:g} s, {frames * period_s:g} s fed"
          + (f" after {warm * period_s:g} s of device time written unpaced (written and caught up in {warm_took_s:.0f} s)"
             if warm else ""))
    print(f"  idle (handshaken, nothing fed): {idle:.3f} cores = {idle / a.nodes * 1e3:.2f} ms CPU per port per second")
    print(f"  fed, second half: {busy:.3f} cores = {busy / node_frames_s * 1e6:.0f} us CPU per node-frame "
          f"({node_frames_s:g} node-frames/s); the feeder fell behind by at most {behind:.2f} s")
    print(f"  the machine meanwhile: {(m2 - m1) / (w2 - w1):.2f} of its {os.cpu_count()} cores busy; "
          + ", ".join(f"{k} {(o2[k] - o1[k]) / (w2 - w1):.2f}" for k in o1) + " cores")
    if second.size:
        print(f"  frame due -> estimate at a subscriber (second half): "
              f"p50 {np.nanpercentile(second, 50) * 1e3:.0f} ms, "
              f"p99 {np.nanpercentile(second, 99) * 1e3:.0f} ms ({second.size} estimate messages)")
    if "Traceback" in tail or "error" in tail.lower():
        print(f"  gateway log ends: {tail!r}")


if __name__ == "__main__":
    main()
