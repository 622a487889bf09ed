"""Benchmark: decoding a capture in memory with the one stream core, beside the two
decoders it replaced and pymavlink, all in the same run.

Not a test: prints MB/s and samples/s (decoded and compensated), the ratios of the
core's live path (4 KB feeds, as Node.read() feeds it) and whole-recording path (8 MB
feeds, as export and analyze feed it) against the decoders before it, and the byte-rate
ratios against pymavlink parsing MAVLink v2 SCALED_PRESSURE frames (one pressure sample
each; pip install 'leakmon[bench]').

The decoders before the core (NodeStream per frame, FastStream vectorized) are read from
git at BEFORE into a temporary package, so "before" is today's code of that commit, not
a copy kept here; without git (or that commit) those rows are left out.

    .venv/bin/python bench/bench_decoder.py [--mb 100] [--rows 10] [--channels 1]
        [--stream-mb 10] [--mavlink-mb 5] [--repeat 3] [--wall]

Times are this process's CPU seconds (numpy runs these on one thread), so a busy
machine does not halve the figures; --wall uses the wall clock instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # test-only helpers

import argparse
import importlib
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import wiregen
from leakmon.wire.framing import FrameDecoder
from leakmon.wire.scan import DecoderStats, find_frames
from leakmon.wire.stream import NodeStream, SampleBlock

READ_CHUNK = 4096  # what the live node feeds the stream per read, at most
FAST_CHUNK = 8 << 20  # what export feeds the table form per call
BEFORE = "05fa646"  # the last commit with two decoders (NodeStream and FastStream)


def before_modules() -> dict[str, ModuleType] | None:
    """The wire package of BEFORE, imported as 'wire_before' (sensors and the wire format are today's)."""
    names = ("framing", "messages", "scan", "stream", "fastdecode", "timebase")
    pkg = Path(tempfile.mkdtemp(prefix="leakmon-bench-")) / "wire_before"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for m in names:
        r = subprocess.run(["git", "show", f"{BEFORE}:host/leakmon/wire/{m}.py"], cwd=ROOT, capture_output=True,
                           text=True, check=False)
        if r.returncode != 0:
            return None
        src = re.sub(r"from leakmon\.wire import", "from wire_before import", r.stdout)
        (pkg / f"{m}.py").write_text(re.sub(r"leakmon\.wire\.", "wire_before.", src))
    sys.path.insert(0, str(pkg.parent))
    return {m: importlib.import_module(f"wire_before.{m}") for m in names}


def capture(mb: float, rows: int, channels: int) -> bytes:
    """A handshake then enough SAMPLES frames for mb megabytes (built in 50 000-frame blocks)."""
    head = wiregen.handshake(channels, rows=rows)
    one = len(wiregen.samples(1, channels, rows))
    n = max(1, int(mb * 1e6 / one))
    block = wiregen.samples(min(n, 50_000), channels, rows, seq=1 + channels)
    # Repeating a block keeps sequence numbers and ticks continuous only within it: the
    # decoder does the same work either way (gaps are counted, not corrected).
    reps = -(-n // min(n, 50_000))
    out: bytes = head + (block * reps)[: n * one]
    return out


def live(make: Callable[[], Any], block: type) -> Callable[[bytes], int]:
    """Items at live read sizes: what `leakmon monitor` does with a node (its session keeps
    the items that are `block`s, as cli/session.py does, and reads their pressures)."""
    def run(data: bytes) -> int:
        s = make()
        n = 0
        for k in range(0, len(data), READ_CHUNK):
            for item in s.feed(data[k : k + READ_CHUNK]):
                if isinstance(item, block):
                    n += len(item.pressure_pa)
        return n
    return run


def whole(feed: Callable[[Any, bytes], Any], finish: Callable[[Any], Any], make: Callable[[], Any],
          chunk: int | None = FAST_CHUNK) -> Callable[[bytes], int]:
    """Tables a chunk at a time: what export and analyze do with a recording."""
    def run(data: bytes) -> int:
        s = make()
        step = chunk or len(data)
        n = sum(len(feed(s, data[k : k + step])[0]) for k in range(0, len(data), step))
        return n + len(finish(s)[0])
    return run


def framing_live(make: Callable[[], Any]) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        d = make()
        return sum(len(d.feed(data[k : k + READ_CHUNK])) for k in range(0, len(data), READ_CHUNK))
    return run


def mavlink_capture(mb: float) -> tuple[bytes, Callable[[bytes], int]] | None:
    try:
        from pymavlink.dialects.v20 import common as mavlink2
    except ImportError:
        return None
    mav = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    rng = np.random.default_rng(1)
    msgs = [mav.scaled_pressure_encode(100 * k, 1013.25 + float(rng.normal(0, 0.01)), 0.0, 2000, 0).pack(mav)
            for k in range(10_000)]
    block = b"".join(msgs)
    data = (block * (-(-int(mb * 1e6) // len(block))))[: int(mb * 1e6)]

    def parse(buf: bytes) -> int:
        p = mavlink2.MAVLink(None)
        return sum(1 for m in p.parse_buffer(buf) or [] if m.get_type() == "SCALED_PRESSURE")

    return data, parse


CLOCK = time.process_time  # CPU seconds of this process: one core, whatever else the machine runs


def best_of(repeat: int, fn: Callable[[bytes], int], data: bytes) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        t0 = CLOCK()
        n = fn(data)
        best = min(best, CLOCK() - t0)
    return best, n


Row = tuple[str, float, float, int]  # name, MB, seconds, samples or frames


def table(title: str, unit: str, rows: list[Row], base: float | None) -> None:
    print(f"\n{title:48} {'MB':>7} {'s':>7} {'MB/s':>8} {unit:>11} {'x pymavlink':>12}")
    for name, mb, t, n in rows:
        ratio = f"{mb / t / base:12.1f}" if base else f"{'-':>12}"
        print(f"{name:48} {mb:7.1f} {t:7.3f} {mb / t:8.1f} {n / t / 1e6:11.3f} {ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0, help="capture size for the whole-recording paths (MB)")
    ap.add_argument("--rows", type=int, default=10, help="rows per SAMPLES frame (firmware default 10)")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--stream-mb", type=float, default=10.0, help="share of the capture for the live paths")
    ap.add_argument("--mavlink-mb", type=float, default=5.0, help="MAVLink capture size for pymavlink")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    ap.add_argument("--wall", action="store_true", help="time with the wall clock, not this process's CPU time")
    args = ap.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter

    before = before_modules()
    data = capture(args.mb, args.rows, args.channels)
    part = data[: int(args.stream_mb * 1e6)]
    print(f"capture: {len(data) / 1e6:.1f} MB of SAMPLES frames, {args.rows} rows x {args.channels} channel(s); "
          f"best of {args.repeat}, {'wall' if args.wall else 'CPU'} seconds")
    runs: list[tuple[str, Callable[[bytes], int], bytes]] = [
        (f"one core, items ({READ_CHUNK} B feeds): live", live(NodeStream, SampleBlock), part),
        (f"one core, table ({FAST_CHUNK >> 20} MB feeds): recording",
         whole(NodeStream.feed_table, NodeStream.finish_table, NodeStream), data),
        ("one core, table (one feed)", whole(NodeStream.feed_table, NodeStream.finish_table, NodeStream, None), data),
    ]
    frame_runs: list[tuple[str, Callable[[bytes], int], bytes]] = [
        (f"one core: FrameDecoder ({READ_CHUNK} B feeds)", framing_live(FrameDecoder), part),
        ("one core: find_frames (one call)", lambda d: len(find_frames(d, DecoderStats(), True).start), data),
    ]
    if before is not None:
        old_stream, old_fast = before["stream"].NodeStream, before["fastdecode"].FastStream
        runs += [
            (f"before: NodeStream ({READ_CHUNK} B feeds)", live(old_stream, before["stream"].SampleBlock), part),
            (f"before: FastStream ({FAST_CHUNK >> 20} MB feeds)",
             whole(old_fast.feed, old_fast.finish, old_fast), data),
        ]
        old_scan, old_framing = before["scan"], before["framing"]
        frame_runs += [
            (f"before: FrameDecoder ({READ_CHUNK} B feeds)", framing_live(old_framing.FrameDecoder), part),
            ("before: find_frames (one call)", lambda d: len(old_scan.find_frames(
                np.frombuffer(d, np.uint8), old_framing.DecoderStats(), final=True).start), data),
        ]
    # Round robin, best of N each: no configuration always runs first (cold) or last.
    best = {name: (float("inf"), 0) for name, _, _ in runs + frame_runs}
    for _ in range(args.repeat):
        for name, fn, d in runs + frame_runs:
            t, n = best_of(1, fn, d)
            best[name] = min(best[name], (t, n))
    results: list[Row] = [(name, len(d) / 1e6, *best[name]) for name, _, d in runs]
    frames: list[Row] = [(name, len(d) / 1e6, *best[name]) for name, _, d in frame_runs]
    mav = mavlink_capture(args.mavlink_mb)
    base = None
    if mav is not None:
        mdata, parse = mav
        t, n = best_of(args.repeat, parse, mdata)
        results.append(("pymavlink parse_buffer, SCALED_PRESSURE", len(mdata) / 1e6, t, n))
        base = results[-1][1] / results[-1][2]

    table("decoder (bytes -> compensated samples)", "Msamples/s", results, base)
    table("framing only (no parsing or compensation)", "Mframes/s", frames, base)
    rate = {name: mb / t for name, mb, t, _ in results + frames}
    if before is not None:
        print(f"\none core / before, same run: live path {rate[runs[0][0]] / rate[runs[3][0]]:.1f}x, "
              f"whole recording {rate[runs[1][0]] / rate[runs[4][0]]:.2f}x, "
              f"live framing {rate[frame_runs[0][0]] / rate[frame_runs[2][0]]:.1f}x")
    else:
        print(f"\n(no 'before' rows: git or commit {BEFORE} not available here)")
    if mav is None:
        print("pymavlink not installed (pip install 'leakmon[bench]'): no baseline")


if __name__ == "__main__":
    main()
