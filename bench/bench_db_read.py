"""Benchmark: reading a node's history back (analyze/export --db/--store) against reading
the same frames from a recording, and batched reads against one big fetch.

One synthetic node (wiregen: a real BMP3xx calibration, the firmware's wire module) is
stored by the gateway's path (FrameKeys, envelope, ingest) into SQLite and a private
PostgreSQL, and written as a recording. Each read runs in a fresh process, so its peak
RSS is its own; it decodes every sample and counts them, as `export` does:

    recording          decode_recording (the baseline for speed)
    sqlite batched     fleet.history.sqlite_rows + fleet.readback.RowDecoder
    sqlite fetchall    the same rows fetched at once (the baseline for memory)
    pg batched         server-side cursor, 5,000 rows a fetch
    pg fetchall        the same rows fetched at once

    .venv/bin/python bench/bench_db_read.py [--frames 100000] [--channels 4] [--rows 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # test-only helpers: synthetic bytes, private servers

import argparse
import json
import multiprocessing as mp
import secrets
import shutil
import tempfile
import time
from typing import Any

import servers
import wiregen

from leakmon.fleet import envelope, history, ingest
from leakmon.fleet.edge import FrameKeys
from leakmon.fleet.readback import RowDecoder
from leakmon.link.recording import KIND_RX, RecordingWriter, decode_recording, open_recording

T0_US = 1_795_000_000_000_000
NODE = "bench-1"


def make(frames: int, channels: int, rows: int, root: Path, stores: list[Any]) -> int:
    """Store and record the node; returns the number of samples."""
    data = wiregen.handshake(channels, rows=rows) + wiregen.samples(frames, channels, rows, seq=1 + channels, seed=3)
    with RecordingWriter(root / "node.lkmrec", {}) as w:
        for i in range(0, len(data), 1 << 20):
            w.write(data[i:i + (1 << 20)], KIND_RX)
    now = [T0_US]
    keys = FrameKeys(clock_us=lambda: now[0])
    step = 64 << 10
    for i in range(0, len(data), step):
        now[0] = T0_US + i
        keys.feed(data[i:i + step])
        batch = ingest.Batch()
        for seq, t_us, _t, raw in keys.take():
            ingest.add(batch, envelope.topic(NODE, "frame"), envelope.pack(NODE, keys.boot or 0, seq, t_us, raw))
        for s in stores:
            s.write(batch)
    return frames * channels * rows


def _fetchall_rows(kind: str, where: str, password: str | None) -> list[history.FrameRow]:
    if kind == "sqlite":
        import sqlite3

        db = sqlite3.connect(where)
        rows = db.execute("SELECT boot, seq, t_us, frame FROM frames WHERE node_id = ? ORDER BY boot, seq",
                          (NODE,)).fetchall()
    else:
        import psycopg

        with psycopg.connect(where, password=password) as c:
            rows = c.execute("SELECT boot, seq, 0, frame FROM leakmon.frames WHERE node_id = %s ORDER BY boot, seq",
                             (NODE,)).fetchall()
    return [history.FrameRow(b, s, t, bytes(f), True) for b, s, t, f in rows]


def _read(mode: str, where: str, password: str | None, out: "mp.Queue[str]") -> None:
    t0 = time.perf_counter()
    n = 0
    if mode == "recording":
        with open_recording(where) as rec:
            n = sum(len(t) for t in decode_recording(rec))
    elif mode.endswith("batched"):
        rows = (history.sqlite_rows(where, NODE, 0, 2**62) if mode.startswith("sqlite")
                else history.pg_rows(where, password, NODE, 0, 2**62))
        n = sum(len(t) for t in RowDecoder().tables(rows))
    else:
        n = sum(len(t) for t in RowDecoder().tables(_fetchall_rows(mode.split()[0], where, password)))
    dt = time.perf_counter() - t0
    out.put(json.dumps({"samples": n, "s": dt, "rss_mb": _hwm_mb()}))


def _hwm_mb() -> float:
    """This process's peak RSS (VmHWM: its own address space; ru_maxrss would carry the
    parent's peak across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(mode: str, where: str, password: str | None = None) -> dict[str, float]:
    ctx = mp.get_context("spawn")  # a fresh interpreter: its peak RSS is this read's alone
    q: mp.Queue[str] = ctx.Queue()
    p = ctx.Process(target=_read, args=(mode, where, password, q))
    p.start()
    r = json.loads(q.get(timeout=600))
    p.join()
    return r  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--rows", type=int, default=10)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="leakmon-bench-"))
    root.chmod(0o711)
    pg = None
    try:
        from leakmon.fleet.sqlitestore import SqliteStore

        stores: list[Any] = [SqliteStore(root / "s.sqlite")]
        url = pw = None
        bindir = servers.postgres_bin()
        if bindir is not None:
            import psycopg

            from leakmon.fleet.pgstore import PgStore, init_db

            pg = servers.Postgres(root / "pg", bindir)
            pg.init()
            pg.start()
            pw = secrets.token_urlsafe(12)
            with psycopg.connect(pg.dsn(), password=pg.password, autocommit=True) as c:
                c.execute(f"CREATE ROLE leakmon_writer LOGIN PASSWORD '{pw}'")
                c.execute(f"CREATE ROLE leakmon_reader LOGIN PASSWORD '{pw}'")
                c.execute("CREATE DATABASE bench")
            init_db(pg.dsn("postgres", "bench"), pg.password, "leakmon_writer", "leakmon_reader")
            stores.append(PgStore(pg.dsn("leakmon_writer", "bench"), pw))
            url = pg.dsn("leakmon_reader", "bench")
        t = time.perf_counter()
        n = make(a.frames, a.channels, a.rows, root, stores)
        for s in stores:
            s.close()
        print(f"{a.frames} frames, {n} samples ({a.channels} channels x {a.rows} rows a frame) stored and recorded "
              f"in {time.perf_counter() - t:.1f} s")
        runs = [("recording", str(root / "node.lkmrec"), None), ("sqlite batched", str(root / "s.sqlite"), None),
                ("sqlite fetchall", str(root / "s.sqlite"), None)]
        if url:
            runs += [("pg batched", url, pw), ("pg fetchall", url, pw)]
        res = {mode: measure(mode, where, p) for mode, where, p in runs}
        base = res["recording"]
        print(f"{'read':<16} {'samples':>9} {'s':>6} {'M samples/s':>11} {'vs recording':>12} {'peak RSS MB':>11}")
        for mode, r in res.items():
            assert r["samples"] == n, (mode, r)
            print(f"{mode:<16} {r['samples']:>9} {r['s']:>6.2f} {n / r['s'] / 1e6:>11.2f} "
                  f"{base['s'] / r['s']:>11.2f}x {r['rss_mb']:>11.0f}")
        for kind in ("sqlite", "pg"):
            if f"{kind} batched" in res:
                b, f = res[f"{kind} batched"], res[f"{kind} fetchall"]
                print(f"{kind}: batched peak RSS {b['rss_mb']:.0f} MB against {f['rss_mb']:.0f} MB fetched at once "
                      f"({f['rss_mb'] / b['rss_mb']:.1f}x less)")
    finally:
        if pg is not None:
            pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
