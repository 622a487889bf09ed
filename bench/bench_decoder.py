"""Benchmark: decoding a large capture in memory, streaming vs vectorized vs pymavlink.

Not a test: prints MB/s and samples/s (decoded and compensated) measured in the same
run, and the byte-rate ratios against pymavlink parsing MAVLink v2 SCALED_PRESSURE
frames (one pressure sample each). pymavlink is optional (pip install 'leakmon[bench]').

    .venv/bin/python bench/bench_decoder.py [--mb 100] [--rows 10] [--channels 1]
        [--stream-mb 10] [--mavlink-mb 5] [--repeat 3] [--wall]

Times are this process's CPU seconds (numpy runs these on one thread), so a busy
machine does not halve the figures; --wall uses the wall clock instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test-only helpers

import argparse
import time
from collections.abc import Callable

import numpy as np
import wiregen
from leakmon.wire.fastdecode import FastStream
from leakmon.wire.framing import DecoderStats, FrameDecoder
from leakmon.wire.scan import find_frames
from leakmon.wire.stream import NodeStream, SampleBlock

READ_CHUNK = 4096  # what the live node feeds the stream per read, at most
FAST_CHUNK = 8 << 20  # what export feeds the vectorized path per call


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


def run_stream(data: bytes) -> int:
    s = NodeStream()
    n = 0
    for k in range(0, len(data), READ_CHUNK):
        for item in s.feed(data[k : k + READ_CHUNK]):
            if isinstance(item, SampleBlock):
                n += len(item.t_s)
    return n


def run_framing(data: bytes) -> int:
    """Frames only (no parsing, no compensation): FrameDecoder at live read sizes."""
    d = FrameDecoder()
    n = 0
    for k in range(0, len(data), READ_CHUNK):
        n += len(d.feed(data[k : k + READ_CHUNK]))
    return n


def run_fast_framing(data: bytes) -> int:
    return len(find_frames(np.frombuffer(data, np.uint8), DecoderStats(), final=True).start)


def run_fast(data: bytes, chunk: int = FAST_CHUNK) -> int:
    f = FastStream()
    n = 0
    for k in range(0, len(data), chunk):
        n += len(f.feed(data[k : k + chunk])[0])
    return n + len(f.finish()[0])


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0, help="capture size for the vectorized path (MB)")
    ap.add_argument("--rows", type=int, default=10, help="rows per SAMPLES frame (firmware default 10)")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--stream-mb", type=float, default=10.0, help="share of the capture for the streaming decoder")
    ap.add_argument("--mavlink-mb", type=float, default=5.0, help="MAVLink capture size for pymavlink")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    ap.add_argument("--wall", action="store_true", help="time with the wall clock, not this process's CPU time")
    args = ap.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter

    data = capture(args.mb, args.rows, args.channels)
    print(f"capture: {len(data) / 1e6:.1f} MB of SAMPLES frames, {args.rows} rows x {args.channels} channel(s); "
          f"best of {args.repeat}, {'wall' if args.wall else 'CPU'} seconds")
    results: list[tuple[str, float, float, int]] = []  # name, MB, seconds, samples
    t, n = best_of(args.repeat, run_fast, data)
    results.append((f"vectorized FastStream ({FAST_CHUNK >> 20} MB feeds)", len(data) / 1e6, t, n))
    t, n = best_of(args.repeat, lambda d: run_fast(d, len(d)), data)
    results.append(("vectorized FastStream (one feed)", len(data) / 1e6, t, n))
    part = data[: int(args.stream_mb * 1e6)]
    t, n = best_of(args.repeat, run_stream, part)
    results.append((f"streaming NodeStream ({READ_CHUNK} B feeds)", len(part) / 1e6, t, n))
    frames: list[tuple[str, float, float, int]] = []  # name, MB, seconds, frames
    t, n = best_of(args.repeat, run_fast_framing, data)
    frames.append(("vectorized find_frames (one call)", len(data) / 1e6, t, n))
    t, n = best_of(args.repeat, run_framing, part)
    frames.append((f"streaming FrameDecoder ({READ_CHUNK} B feeds)", len(part) / 1e6, t, n))
    mav = mavlink_capture(args.mavlink_mb)
    if mav is not None:
        mdata, parse = mav
        t, n = best_of(args.repeat, parse, mdata)
        results.append(("pymavlink parse_buffer, SCALED_PRESSURE", len(mdata) / 1e6, t, n))
    base = results[-1][1] / results[-1][2] if mav is not None else None

    print(f"{'decoder':44} {'MB':>7} {'s':>7} {'MB/s':>8} {'Msamples/s':>11} {'x pymavlink':>12}")
    for name, mb, t, n in results:
        ratio = f"{mb / t / base:12.1f}" if base else f"{'-':>12}"
        print(f"{name:44} {mb:7.1f} {t:7.3f} {mb / t:8.1f} {n / t / 1e6:11.2f} {ratio}")
    print(f"\n{'framing only (no parsing or compensation)':44} {'MB':>7} {'s':>7} {'MB/s':>8} {'Mframes/s':>11}"
          f" {'x pymavlink':>12}")
    for name, mb, t, n in frames:
        ratio = f"{mb / t / base:12.1f}" if base else f"{'-':>12}"
        print(f"{name:44} {mb:7.1f} {t:7.3f} {mb / t:8.1f} {n / t / 1e6:11.3f} {ratio}")
    if mav is None:
        print("pymavlink not installed (pip install 'leakmon[bench]'): no baseline")


if __name__ == "__main__":
    main()
