"""Benchmark: the fleet's two hot paths, on the real servers (private instances).

1. Gateway ingest: N node streams of synthetic node bytes through the gateway's live
   path (frame keys, NodeStream decode, LeakTracker, envelopes) into an Outbox: a null
   one (CPU of the path alone, against the bare NodeStream decode in the same run), then
   the real one (spool + paho into Mosquitto) paced at the nodes' real rate, with the
   p99 latency from a frame's bytes arriving to its estimate reaching a subscriber.
2. Central writer: rows/s the PostgreSQL writer sustains, one process and two at once,
   by each of its two ways in the same run (binary COPY straight into the tables, and
   the staged way, COPY into temporary tables + INSERT ... ON CONFLICT, that it falls
   back on when a batch meets a row already stored); then `leakmon serve` end to end (broker ->
   serve -> PostgreSQL), one instance and two in a shared subscription; with the CPU
   used by the PostgreSQL backends, the clients and the whole machine meanwhile.
3. USB re-plug: `leakmon gateway --usb` following a virtual board through re-plugs
   (udev played by tests/usbplay.py), link appearing -> first frame at a subscriber.

    .venv/bin/python bench/bench_fleet.py [--nodes 100] [--channels 10] [--frames 60] [--rows 10]
        [--paced-s 10] [--replugs 15] [--pg-rows 200000] [--writer-cores 0.9] [--e2e-messages 50000]

CPU seconds of this process for (1); wall clock for the paced run and for (2).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # test-only helpers: synthetic bytes, private servers
sys.path.insert(0, str(ROOT / "bench"))  # cpucap (also when a test loads this file by its path)

import argparse
import json
import multiprocessing as mp
import os
import secrets
import shutil
import tempfile
import threading
import time

import cpucap
import numpy as np
import servers
import wiregen

from leakmon.fleet import envelope
from leakmon.fleet.edge import ESTIMATE_EVERY_S, EdgeNode
from leakmon.wire.stream import NodeStream, SampleBlock


class NullOutbox:
    def __init__(self) -> None:
        self.n = 0

    def put(self, topic: str, payload: bytes) -> None:
        self.n += 1

    def put_retained(self, topic: str, payload: bytes) -> None:
        pass


def node_frames(channels: int, frames: int, rows: int, seed: int) -> tuple[bytes, list[bytes]]:
    """The handshake, and each SAMPLES frame as the bytes of one read."""
    one = len(wiregen.samples(1, channels, rows))
    data = wiregen.samples(frames, channels, rows, seq=1 + channels, seed=seed)
    return wiregen.handshake(channels, rows=rows), [data[i:i + one] for i in range(0, len(data), one)]


def cpu_path(nodes: int, channels: int, frames: int, rows: int,
             cadences_s: tuple[float, ...] = (1.0, ESTIMATE_EVERY_S, 60.0)) -> None:
    streams = [node_frames(channels, frames, rows, k) for k in range(nodes)]
    samples = nodes * channels * frames * rows
    # baseline: the bare live decode (what monitor does per read)
    t0 = time.process_time()
    decoded = 0
    for hs, fr in streams:
        s = NodeStream()
        s.feed(hs)
        for f in fr:
            decoded += sum(len(b.t_s) for b in s.feed(f) if isinstance(b, SampleBlock))
    base = time.process_time() - t0
    if decoded != samples:  # a HELLO the stream core refuses leaves nothing to time (as on 2026-12-01)
        raise SystemExit(f"bench: the synthetic nodes decode to {decoded} of {samples} samples ({s.refused})")
    print(f"live path, {nodes} nodes x {channels} ch x {rows} rows/frame, {samples / 1e6:.2f} M samples (CPU s)")
    print(f"{'path':46} {'s':>7} {'Msamples/s':>11} {'channels@10Hz':>14} {'x decode':>9}")
    print(f"{'NodeStream decode only (baseline)':46} {base:7.2f} {samples / base / 1e6:11.3f} "
          f"{samples / base / 10:14.0f} {1.0:9.2f}")
    for every_s in sorted(set(cadences_s)):
        out = NullOutbox()
        t0 = time.process_time()
        for k, (hs, fr) in enumerate(streams):
            s = NodeStream()
            e = EdgeNode(f"n{k}", out, 600.0, estimate_every_s=every_s)
            e.follow(s)  # (the frames cut once, as the gateway's runner does)
            e.on_items(s.feed(hs))
            for f in fr:
                e.on_items(s.feed(f))
        path = time.process_time() - t0
        name = f"gateway, an estimate every {every_s:g} s" + (" (default)" if every_s == ESTIMATE_EVERY_S else "")
        print(f"{name:46} {path:7.2f} {samples / path / 1e6:11.3f} {samples / path / 10:14.0f} {path / base:9.2f}"
              f"   ({out.n} messages)")


def paced(broker: servers.Broker, nodes: int, channels: int, rows: int, seconds: float,
          spool_dir: Path, estimate_every_s: float = ESTIMATE_EVERY_S, warm_s: float = 0.0,
          stagger: bool = False, repeats: int = 1) -> dict[str, float]:
    """Nodes at their real rate (10 Hz, rows per frame) into Mosquitto; estimates' latency at a subscriber.
    warm_s: device seconds fed first as fast as they decode, estimated at the cadence but
    nothing published, so that the paced part runs on full windows with current running sums
    (steady state: at 600 s an estimate costs what it costs for good). stagger: node k's frames
    fall due k / nodes of a frame period after node 0's (nodes that started at different times,
    as real ones do); else all at once (nodes in step: the worst case for latency, since the
    last node of each burst waits for all the others). repeats: that many paced sections of
    `seconds` back to back after the one warm-up, each reported, then their medians (this
    machine's speed moves by 15-30 % over tens of seconds: one section is one draw). Returns
    what was fed and what the subscriber got (tests/fleet/test_paced_estimates.py checks it)."""
    from leakmon.fleet.creds import parse_broker
    from leakmon.fleet.mqttclient import connect, make_client
    from leakmon.fleet.publisher import Publisher
    from leakmon.fleet.spool import Spool

    frame_period_s = rows * 0.1
    warm = int(warm_s / frame_period_s)
    section = int(seconds / frame_period_s)  # frames of one paced section
    frames = section * max(repeats, 1) + 3 + warm
    streams = [node_frames(channels, frames, rows, k) for k in range(nodes)]
    lat: list[float] = []
    lat_due: list[float] = []  # from when the frame was due (the node sent it), not when the feed got to it
    lat_frame: list[int] = []  # the paced frame (0 = the first paced one) each latency is of
    due0 = [0.0]  # wall clock of frame 0's due time
    rows_got: list[int] = []
    got = threading.Event()
    addr_r = parse_broker(f"mqtt://reader@127.0.0.1:{broker.port}")
    sub = make_client(addr_r, broker.users["reader"], "bench-sub", clean_session=True)
    connect(sub, addr_r)

    def on_message(c, u, m) -> None:  # type: ignore[no-untyped-def]
        env = envelope.unpack(m.payload)
        now = time.time()
        lat.append(now - env.t_us / 1e6)
        offset_s = int(env.node_id[1:]) / nodes * frame_period_s if stagger else 0.0
        lat_due.append(now - (due0[0] + (env.seq - 1 - channels - warm) * frame_period_s + offset_s))  # samples seqs follow the handshake
        lat_frame.append(env.seq - 1 - channels - warm - 2)
        rows_got.append(len(json.loads(env.body)))
        got.set()

    sub.on_message = on_message
    sub.subscribe(envelope.topic("+", "estimate"), 1)
    sub.loop_start()
    pub = Publisher(parse_broker(f"mqtt://gw@127.0.0.1:{broker.port}"), broker.users["gw"], "gw",
                    Spool(spool_dir), confirm=False, log=lambda m: None)
    pub.start()
    edges = [(NodeStream(), EdgeNode(f"n{k}", pub, 600.0, estimate_every_s=estimate_every_s))
             for k in range(nodes)]
    for (s, e), (hs, _) in zip(edges, streams):
        e.follow(s)
        e.on_items(s.feed(hs))
    for i in range(2):  # warm-up: the first blocks of each channel allocate its fit; not timed
        for (s, e), (_, fr) in zip(edges, streams):
            e.on_items(s.feed(fr[i]))
    if warm:  # fill the windows, estimating at the cadence (the running sums current), nothing to the broker
        c0 = time.process_time()
        for _, e in edges:
            e.outbox = NullOutbox()
        for i in range(2, 2 + warm):
            for (s, e), (_, fr) in zip(edges, streams):
                e.on_items(s.feed(fr[i]))
        for _, e in edges:
            e.outbox = pub
        print(f"  windows filled with {warm_s:g} s of device time ({time.process_time() - c0:.0f} s CPU)")
    pub.drain(30)
    time.sleep(0.3)
    lat.clear()
    lat_due.clear()
    lat_frame.clear()
    rows_got.clear()
    est0 = sum(e.estimates_out for _, e in edges)
    cpu0, thr0, t0 = time.process_time(), time.thread_time(), time.monotonic()
    due0[0] = time.time()
    per_frame_cpu: list[float] = []  # the feed thread's CPU for each frame period's frames
    per_frame_behind: list[float] = []  # how far behind the feed fell in each frame period
    per_frame_proc: list[float] = []  # the process's CPU (feed, publisher, subscriber) at each period's start
    for i in range(2 + warm, frames):
        per_frame_cpu.append(time.thread_time())
        per_frame_proc.append(time.process_time())
        per_frame_behind.append(0.0)
        due = t0 + (i - warm) * frame_period_s
        for k, ((s, e), (_, fr)) in enumerate(zip(edges, streams)):
            if stagger or k == 0:
                node_due = due + k / nodes * frame_period_s if stagger else due
                ahead = node_due - time.monotonic()
                per_frame_behind[-1] = max(per_frame_behind[-1], -ahead)
                if ahead > 0.0:
                    time.sleep(ahead)
            e.on_items(s.feed(fr[i]))
    behind = max(per_frame_behind, default=0.0)
    feed_cpu = time.thread_time() - thr0  # this thread: the gateway's read-decode-estimate loop
    period_cpu = np.diff(np.array(per_frame_cpu + [thr0 + feed_cpu]))
    period_proc = np.diff(np.array(per_frame_proc + [time.process_time()]))
    pub.drain(30)
    time.sleep(0.5)
    sub.loop_stop()
    pub.close(0)
    wall = time.monotonic() - t0
    samples = nodes * channels * (frames - 2 - warm) * rows
    arr = np.array(lat) if lat else np.array([np.nan])
    arr_due = np.array(lat_due) if lat_due else np.array([np.nan])
    print(f"paced into Mosquitto: {nodes} nodes x {channels} ch = {nodes * channels} channels at 10 Hz, "
          f"{'staggered over' if stagger else 'all due at the start of'} each frame period, "
          f"an estimate every {estimate_every_s:g} s, "
          f"{frames - 2 - warm} frames each after {2 + warm} of warm-up ({wall:.1f} s wall)")
    print(f"  {samples / wall / 1e3:.1f} k samples/s offered, {pub.sent} messages published, "
          f"publisher thread + feed CPU {time.process_time() - cpu0:.1f} s of {wall:.1f} s, feed thread alone {feed_cpu:.1f} s")
    print(f"  feed thread CPU per frame period ({frame_period_s:g} s of device time): median "
          f"{np.median(period_cpu) * 1e3:.0f} ms, p90 {np.percentile(period_cpu, 90) * 1e3:.0f} ms, "
          f"max {period_cpu.max() * 1e3:.0f} ms")
    print(f"  frame fed -> estimate at a subscriber: p50 {np.nanpercentile(arr, 50) * 1e3:.0f} ms, "
          f"p99 {np.nanpercentile(arr, 99) * 1e3:.0f} ms ({len(lat)} estimate messages, {sum(rows_got)} channel "
          f"estimates); feed fell behind by at most {behind * 1e3:.0f} ms")
    print(f"  frame due (sent by the node) -> estimate at a subscriber: p50 {np.nanpercentile(arr_due, 50) * 1e3:.0f} ms, "
          f"p99 {np.nanpercentile(arr_due, 99) * 1e3:.0f} ms (what a user sees when the feed falls behind)")
    if repeats > 1:
        by_frame, dues = np.array(lat_frame), np.array(lat_due)
        print(f"  {repeats} sections of {section * frame_period_s:g} s (the last periods' estimates may still be in flight at the end):")
        print(f"    {'section':>7} {'process cores':>13} {'feed cores':>10} {'fell behind s':>13} {'due -> estimate p50 s':>21} {'p99 s':>6}")
        p99s, cores = [], []
        for j in range(repeats):
            sl = slice(j * section, (j + 1) * section)
            mine = dues[(by_frame >= sl.start) & (by_frame < sl.stop)]
            p99 = float(np.percentile(mine, 99)) if mine.size else float("nan")
            p99s.append(p99)
            cores.append(float(period_proc[sl].sum() / (section * frame_period_s)))
            print(f"    {j + 1:7d} {cores[-1]:13.2f} {period_cpu[sl].sum() / (section * frame_period_s):10.2f} "
                  f"{max(per_frame_behind[sl]):13.2f} {np.median(mine) if mine.size else float('nan'):21.3f} {p99:6.3f}")
        print(f"    median: {np.median(cores):.2f} of a core, p99 {np.nanmedian(p99s):.3f} s; "
              f"p99 < 1 s in {sum(p < 1.0 for p in p99s)} of {repeats} sections")
    return {"frames_fed": nodes * (frames - 2 - warm), "channel_seconds": nodes * channels * (frames - 2 - warm) * frame_period_s,
            "estimates_made": sum(e.estimates_out for _, e in edges) - est0, "messages_got": len(lat),
            "estimates_got": sum(rows_got), "p99_s": float(np.nanpercentile(arr, 99)),
            "p99_due_s": float(np.nanpercentile(arr_due, 99))}


def _writer(url: str, password: str, boot: int, nodes: int, rows: int, batch: int, out: "mp.Queue[float]",
            who: "mp.Queue[tuple[int, int]]", start: "mp.Event", finish: "mp.Event",  # type: ignore[type-arg]
            direct: bool = True) -> None:
    """Frame rows of `nodes` nodes taking turns, as a shared subscription hands each
    instance messages of every node; `boot` keeps each writer's keys its own."""
    from leakmon.fleet.ingest import Batch
    from leakmon.fleet.pgstore import PgStore

    store = PgStore(url, password)
    store.direct = direct
    frame = wiregen.samples(1, 1, 10)
    t_us = time.time_ns() // 1000
    batches = []
    for b0 in range(0, rows, batch):
        b = Batch()
        b.frames = [(f"n{s % nodes}", boot, s // nodes, t_us + s, 3, s & 0xFFFF, False, frame)
                    for s in range(b0, min(rows, b0 + batch))]
        batches.append(b)
    store.write(batches[0])  # connect, partitions
    assert store._conn is not None
    who.put((os.getpid(), store._conn.info.backend_pid))  # an instance: this process and its backend
    start.wait()
    t0 = time.monotonic()
    for b in batches[1:]:
        store.write(b)
    rate = (rows - batch) / (time.monotonic() - t0)
    out.put(rate if store.rewritten == 0 else float("nan"))  # fresh rows that met stored ones: no figure
    finish.wait(60)  # the backend stays until its CPU time is read
    store.close()


def _bench_db(pg: servers.Postgres, pw: str, dbname: str = "bench") -> str:
    """A database with the schema, and the writer role (made once per cluster); returns
    the server version."""
    import psycopg

    from leakmon.fleet.pgstore import init_db

    with psycopg.connect(pg.dsn(), password=pg.password, autocommit=True) as c:
        version = str(c.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        c.execute(f"CREATE DATABASE {dbname}")
        if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = 'leakmon_writer'").fetchone():
            c.execute(f"CREATE ROLE leakmon_writer LOGIN PASSWORD '{pw}'")
    init_db(pg.dsn("postgres", dbname), pg.password, "leakmon_writer", "leakmon_reader")
    return version


def central(pg: servers.Postgres, rows: int, batch: int, instance_cores: float = 0.0, rounds: int = 1,
            ways: tuple[str, ...] = ("staged", "direct"), apart: servers.Postgres | None = None,
            apart_db: bool = False, nodes: int = 100) -> str:
    """instance_cores > 0: each instance (a writer and its PostgreSQL backend) held to that
    many cores by a cgroup (cpucap: root only), so that two fit on the machine's cores.
    rounds: one instance then two, that many times (each round's x is of its own one; on a
    shared virtual machine one process's rate moves by 15 % from second to second), and
    the median x at the end. ways: "direct" (COPY into the tables, the writer's first
    way) and "staged" (temporary tables + ON CONFLICT, its fallback and its only way
    before), each round timing both, so that the two are compared in one run.
    Controls, direct writes with the second instance writing elsewhere:
    - apart (a second cluster): two writers that share nothing in PostgreSQL (no table,
      lock, WAL or buffer), what this machine gives two of them at best;
    - apart_db: the way "other db", a second database in the same cluster (WAL and
      buffers shared, no table)."""
    pw = secrets.token_urlsafe(12)
    version = _bench_db(pg, pw)
    main_url = pg.dsn("leakmon_writer", "bench")
    urls = {way: [main_url, main_url] for way in ways}
    if apart is not None:
        _bench_db(apart, pw)
        urls["other cluster"] = [main_url, apart.dsn("leakmon_writer", "bench")]
    if apart_db:
        _bench_db(pg, pw, "bench2")
        urls["other db"] = [main_url, pg.dsn("leakmon_writer", "bench2")]
    ways = tuple(urls)
    print(f"central writer: frame rows (84-byte frames) of {nodes} nodes into PostgreSQL {version}, batches of {batch}, "
          "wall clock"
          + (f"; each instance (writer + its backend) held to {instance_cores:g} of a core" if instance_cores else ""))
    ctx = mp.get_context("spawn")
    xs: dict[str, list[float]] = {w: [] for w in ways}
    ones: dict[str, list[float]] = {w: [] for w in ways}
    # the ways take turns going first, so that neither always runs on the other's table growth
    for rnd, way, n in [(r, w, n) for r in range(rounds) for w in (ways if r % 2 == 0 else ways[::-1])
                        for n in (1, 2)]:
        if n == 1:
            single = single_cpu = 0.0
            print(f"  {way}:")
        q: mp.Queue[float] = ctx.Queue()
        who: mp.Queue[tuple[int, int]] = ctx.Queue()
        start, finish = ctx.Event(), ctx.Event()
        ps = [ctx.Process(target=_writer, args=(urls[way][k], pw, 1000 * rnd + 10 * ways.index(way) + 3 * n + k,
                                                nodes, rows, batch, q, who, start, finish, way != "staged"))
              for k in range(n)]
        for p in ps:
            p.start()
        caps = []
        instances = [who.get(timeout=120) for _ in range(n)]  # (writer pid, its backend's pid)
        for k, pids in enumerate(instances if instance_cores else []):
            caps.append(cpucap.CpuCap(f"leakmon-bench-writer{k}", instance_cores))
            for pid in pids:
                caps[-1].add(pid)
        time.sleep(1.0)
        cpu = CpuUse([pg] if apart is None else [pg, apart], [client for client, _ in instances], {backend for _, backend in instances})
        t0 = time.monotonic()
        start.set()
        rates = [q.get(timeout=600) for _ in ps]
        wall = time.monotonic() - t0
        used = cpu.used()
        finish.set()
        for p in ps:
            p.join()
        for cap in caps:
            cap.close()
        total = n * (rows - batch) / wall
        single = single or total
        print(f"  {n} instance(s): {total / 1e3:7.1f} k rows/s ({' + '.join(f'{r / 1e3:.1f}k' for r in rates)}), "
              f"x{total / single:.2f} of one")
        print(f"    CPU over {wall:.2f} s x {cpu.cores} cores: PostgreSQL backends {used['backends'] / wall:.2f} cores, "
              f"other PostgreSQL processes {used['pg_other'] / wall:.2f}, writer clients {used['clients'] / wall:.2f}; "
              f"whole machine {used['machine'] / wall:.2f} of {cpu.cores} busy "
              f"({used['machine'] - used['backends'] - used['pg_other'] - used['clients']:.1f} CPU s by others)")
        path_cpu = used["backends"] + used["pg_other"] + used["clients"]
        per_cpu = n * (rows - batch) / path_cpu if path_cpu > 0 else float("nan")
        single_cpu = single_cpu or per_cpu
        print(f"    per CPU second of the write path (backends, PostgreSQL's others, clients): {per_cpu / 1e3:.1f} k rows, "
              f"x{per_cpu / single_cpu:.2f} of one instance's (near 1: the writers scale with the cores they get)")
        if n == 2:
            xs[way].append(total / single)
        else:
            ones[way].append(total)
    for way in ways:
        print(f"  {way}, median of {rounds} round(s): one instance {np.median(ones[way]) / 1e3:.1f} k rows/s"
              + (f" ({np.median(ones[way]) / np.median(ones['staged']):.2f}x the staged way's)" if way != "staged"
                 and "staged" in ways else "")
              + f"; two instances x{np.median(xs[way]):.2f} of one (rounds: {', '.join(f'{x:.2f}' for x in xs[way])})")
    return pw


class CpuUse:
    """CPU seconds of the PostgreSQL backends serving the writers, of PostgreSQL's other
    processes, of the writer clients and of the whole machine (psutil; /proc on Linux),
    from now to used(): are the cores saturated, or is there room the design leaves?"""

    def __init__(self, pgs: list[servers.Postgres], clients: list[int], backends: set[int]) -> None:
        import psutil

        self.cores = psutil.cpu_count() or 1
        self.pg = []
        for pg in pgs:
            postmaster = psutil.Process(int((pg.folder / "data" / "postmaster.pid").read_text().split()[0]))
            self.pg += [postmaster, *postmaster.children()]
        self.backends = backends
        self.clients = [psutil.Process(pid) for pid in clients]
        self._psutil = psutil
        self.t0 = self._sample()

    def _sample(self) -> dict[str, float]:
        def cpu(ps: list) -> float:  # type: ignore[type-arg]
            total = 0.0
            for p in ps:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except self._psutil.NoSuchProcess:
                    pass
            return total

        m = self._psutil.cpu_times()
        return {"backends": cpu([p for p in self.pg if p.pid in self.backends]),
                "pg_other": cpu([p for p in self.pg if p.pid not in self.backends]),
                "clients": cpu(self.clients), "machine": m.user + m.system + getattr(m, "nice", 0.0)
                + getattr(m, "irq", 0.0) + getattr(m, "softirq", 0.0)}

    def used(self) -> dict[str, float]:
        t1 = self._sample()
        return {k: t1[k] - self.t0[k] for k in t1}


def through_broker(broker: servers.Broker, pg: servers.Postgres, writer_pw: str, messages: int) -> None:
    """serve end to end: frame messages queued in the broker for 1, then 2, paused `leakmon
    serve` processes (SIGSTOP), then rows/s from their SIGCONT to the last row stored."""
    import os
    import signal
    import subprocess

    import psycopg

    from leakmon.fleet.creds import parse_broker
    from leakmon.fleet.mqttclient import connect, make_client

    frame = wiregen.samples(1, 1, 10)
    url = pg.dsn("leakmon_writer", "bench")
    print(f"serve end to end: {messages} frame messages through Mosquitto into PostgreSQL, wall clock")
    single = 0.0
    for n in (1, 2):
        procs = [subprocess.Popen([sys.executable, "-m", "leakmon", "serve", "--broker",
                                   f"mqtt://serve@127.0.0.1:{broker.port}", "--db", url, "--client-id", f"b{n}-{k}",
                                   "--group", f"bench{n}"],
                                  env={**os.environ, "LEAKMON_MQTT_PASSWORD": broker.users["serve"], "PGPASSWORD": writer_pw},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for k in range(n)]
        for p in procs:
            assert p.stderr is not None
            while "subscribed" not in p.stderr.readline():
                pass
        for p in procs:  # paused: the broker queues their share, so the timing below is serve's alone
            p.send_signal(signal.SIGSTOP)
        addr = parse_broker(f"mqtt://gw@127.0.0.1:{broker.port}")
        c = make_client(addr, broker.users["gw"], f"bench-pub-{n}", clean_session=True, inflight=10000)
        connect(c, addr)
        t_us = time.time_ns() // 1000
        t0 = time.monotonic()
        for i in range(messages):
            node = f"e{n}-{i % 100}"
            c.publish(f"leakmon/{node}/frame", envelope.pack(node, 1, i, t_us + i, frame), qos=1)
            if i % 200 == 0:
                c.loop(0)
        while c.want_write():
            c.loop(0.01)
        t_pub = time.monotonic() - t0
        time.sleep(1.0)
        t0 = time.monotonic()
        for p in procs:
            p.send_signal(signal.SIGCONT)
        with psycopg.connect(pg.dsn("postgres", "bench"), password=pg.password, autocommit=True) as db:
            q = f"SELECT count(*) FROM leakmon.frames WHERE node_id LIKE 'e{n}-%'"
            while db.execute(q).fetchone()[0] < messages and time.monotonic() - t0 < 300:
                c.loop(0.05)
            stored = db.execute(q).fetchone()[0]
        wall = time.monotonic() - t0
        for p in procs:
            p.terminate()
            p.wait(20)
        rate = stored / wall
        single = single or rate
        print(f"  {n} instance(s): {messages} queued in {t_pub:.1f} s while serve was paused; "
              f"{stored} stored in {wall:.1f} s after it resumed: {rate / 1e3:.1f} k rows/s, x{rate / single:.2f} of one")


def replug(broker: servers.Broker, root: Path, n: int) -> None:
    """`leakmon gateway --usb` through n re-plugs of a virtual board; the bench plays udev
    (tests/usbplay.py): a by-id folder whose link is removed and put back at a new pty."""
    import os
    import subprocess

    from usbplay import SERIAL, FrameWatch, UdevPlay, replug_times

    from leakmon import wire

    by_id = root / "by-id"
    with UdevPlay(by_id) as play:
        play.plug()
        watch = FrameWatch(broker.port, "reader", broker.users["reader"], "usb1")
        log = open(root / "replug-gateway.log", "w+")
        gw = subprocess.Popen([sys.executable, "-m", "leakmon", "gateway", "--broker",
                               f"mqtt://gw@127.0.0.1:{broker.port}", "--usb", SERIAL, "--node-id", "usb1",
                               "--spool", str(root / "replug-spool"), "--no-store-confirm"],
                              env={**os.environ, "LEAKMON_MQTT_PASSWORD": broker.users["gw"],
                                   "LEAKMON_SERIAL_BY_ID": str(by_id)}, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not any(g[4] == wire.T_SAMPLES for g in watch.got) and time.monotonic() < deadline:
                time.sleep(0.05)
            times = np.array(replug_times(play, watch, n))
        finally:
            gw.terminate()
            gw.wait(20)
            watch.close()
    print(f"USB re-plug (udev played: a by-id link re-pointed at a fresh virtual board's new pty), {n} re-plugs:")
    for k, what in enumerate(("first frame", "first SAMPLES frame")):
        col = times[:, k]
        print(f"  link appears -> {what} at a subscriber: p50 {np.nanpercentile(col, 50) * 1e3:.0f} ms, "
              f"p99 {np.nanpercentile(col, 99) * 1e3:.0f} ms, max {np.nanmax(col) * 1e3:.0f} ms "
              f"({int(np.sum(col < 2.0))} of {n} under 2 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--paced-s", type=float, default=10.0, help="paced run through the broker, s (0: skip it)")
    ap.add_argument("--paced-nodes", type=int, default=100)
    ap.add_argument("--paced-warm-s", type=float, default=0.0,
                    help="paced run: device seconds fed first, unpaced, to fill the windows (600: steady state)")
    ap.add_argument("--cadences", default=f"1,{ESTIMATE_EVERY_S:g},60",
                    help="live path: estimate cadences to time, s (a full 600 s window needs --frames > 600)")
    ap.add_argument("--paced-repeats", type=int, default=1,
                    help="paced run: sections of --paced-s after the one warm-up, each reported, and their medians")
    ap.add_argument("--paced-stagger", action="store_true",
                    help="paced run: nodes' frames spread over the frame period (else all at once)")
    ap.add_argument("--estimate-every", type=float, default=ESTIMATE_EVERY_S, help="paced run: estimate cadence, s")
    ap.add_argument("--pg-rows", type=int, default=200_000, help="rows for the central writer (0: skip it)")
    ap.add_argument("--pg-batch", type=int, default=2000)
    ap.add_argument("--pg-nodes", type=int, default=100, help="central writer: nodes whose rows take turns in a batch")
    ap.add_argument("--pg-rounds", type=int, default=1, help="central writer: one instance then two, this many times")
    ap.add_argument("--pg-bindir", type=Path, default=None,
                    help="PostgreSQL's bin folder to bench against (default: the newest /usr/lib/postgresql/*/bin)")
    ap.add_argument("--pg-apart", default="", type=lambda v: set(v.split(",")) - {""},
                    help="central writer controls, comma-separated: 'cluster' (the second instance writes to "
                         "a second cluster: sharing nothing in PostgreSQL, the most two can get on this machine), "
                         "'database' (to a second database of the same cluster: sharing its WAL and buffers)")
    ap.add_argument("--writer-cores", type=float, default=0.0,
                    help="hold each writer instance (its process and its PostgreSQL backend) to this many cores "
                         "(a cgroup; root only), so that two fit beside each other (bench/RESULTS.md: this VM's vCPUs still slow each other)")
    ap.add_argument("--replugs", type=int, default=15, help="USB re-plugs of a virtual board (0: skip)")
    ap.add_argument("--e2e-messages", type=int, default=50_000, help="messages through broker and serve (0: skip)")
    a = ap.parse_args()
    if a.writer_cores:
        try:  # fail before the long parts, not after them
            cpucap.CpuCap("leakmon-bench-probe", a.writer_cores).close()
        except cpucap.CapError as e:
            sys.exit(f"bench_fleet.py: --writer-cores: {e}")
    cpu_path(a.nodes, a.channels, a.frames, a.rows, tuple(float(c) for c in a.cadences.split(",")))
    root = Path(tempfile.mkdtemp(prefix="leakmon-bench-"))
    root.chmod(0o711)
    broker = pg = pg2 = None
    try:
        if servers.have_mosquitto():
            users = {u: secrets.token_urlsafe(12) for u in ("gw", "reader", "serve")}
            broker = servers.Broker(root / "mq", users, ["user gw", "topic write leakmon/#", "user reader",
                                                         "topic read leakmon/#", "user serve", "topic read leakmon/#",
                                                         "topic write leakmon/+/stored"])
            broker.folder.mkdir(parents=True)
            broker.folder.chmod(0o755)
            broker.start()
            if a.paced_s > 0:
                paced(broker, a.paced_nodes, a.channels, a.rows, a.paced_s, root / "spool", a.estimate_every,
                      a.paced_warm_s, a.paced_stagger, a.paced_repeats)
            if a.replugs:
                replug(broker, root, a.replugs)
        bindir = a.pg_bindir or servers.postgres_bin()
        if bindir is not None and a.pg_rows > 0:
            pg = servers.Postgres(root / "pg", bindir)
            pg.init()
            pg.start()
            if "cluster" in a.pg_apart:
                pg2 = servers.Postgres(root / "pg2", bindir)
                pg2.init()
                pg2.start()
            writer_pw = central(pg, a.pg_rows, a.pg_batch, a.writer_cores, a.pg_rounds, apart=pg2,
                                apart_db="database" in a.pg_apart, nodes=a.pg_nodes)
            if broker is not None and a.e2e_messages:
                through_broker(broker, pg, writer_pw, a.e2e_messages)
    finally:
        if broker is not None:
            broker.stop()
        for cluster in (pg, pg2):
            if cluster is not None:
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
