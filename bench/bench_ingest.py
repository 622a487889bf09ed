"""Benchmark: a node's frame into the live tracker, block by block (LeakTracker.ingest, as
before and as `monitor` does) against the frame in one pass (LeakTracker.ingest_many, what
the gateway now does), in the same run.

A node of --channels channels on one time axis at 10 Hz, frames of --rows rows (one a
second), white noise plus a slow AR(1) on every other channel. Both trackers first take
--warm-frames frames (full 600 s windows, the onset CUSUMs past their first designs), then
the next --frames are timed. Both must end in the same state (checked).

    .venv/bin/python bench/bench_ingest.py [--channels 10] [--rows 10] [--frames 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from leakmon.analysis.tracker import LeakTracker
from leakmon.wire.stream import SampleBlock


def frames_of(rng: np.random.Generator, channels: int, rows: int, frames: int) -> list[list[SampleBlock]]:
    n = frames * rows
    t = 1000.0 + np.arange(n) / 10.0
    p = 101_325.0 + rng.normal(0.0, 2.0, (channels, n))
    p[1::2] += np.cumsum(rng.normal(0.0, 0.05, (channels // 2, n)), axis=1)
    k = 293.15 + 0.01 * rng.normal(size=(channels, n))
    return [[SampleBlock(c, f, t[f * rows:(f + 1) * rows], p[c, f * rows:(f + 1) * rows], k[c, f * rows:(f + 1) * rows])
             for c in range(channels)] for f in range(frames)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--warm-frames", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    frames = frames_of(np.random.default_rng(a.seed), a.channels, a.rows, a.warm_frames + a.frames)
    each, one = LeakTracker(600.0), LeakTracker(600.0)
    for f in frames[: a.warm_frames]:
        for b in f:
            each.ingest(b)
        one.ingest_many(f)
    timed = frames[a.warm_frames :]
    print(f"a node of {a.channels} channels, frames of {a.rows} rows at 10 Hz, {a.frames} frames after "
          f"{a.warm_frames} (CPU us a frame, best of {a.repeat})")
    best_each = best_one = np.inf
    for r in range(a.repeat):  # each repeat goes on from where the last ended (times only move forward)
        part = timed[r * len(timed) // a.repeat : (r + 1) * len(timed) // a.repeat]
        c0 = time.process_time()
        for f in part:
            for b in f:
                each.ingest(b)
        c1 = time.process_time()
        for f in part:
            one.ingest_many(f)
        c2 = time.process_time()
        best_each, best_one = min(best_each, (c1 - c0) / len(part)), min(best_one, (c2 - c1) / len(part))
    same = all(np.array_equal(x, y) for ch in each._windows for x, y in
               zip(each._windows[ch].columns(), one._windows[ch].columns()))  # fmt: skip
    same &= all(each._cusums[ch].alarms == one._cusums[ch].alarms and each._cusums[ch].plan == one._cusums[ch].plan
                for ch in each._cusums)  # fmt: skip
    print(f"  block by block (ingest, baseline)   {best_each * 1e6:7.1f} us   x1.00")
    print(f"  the frame in one pass (ingest_many) {best_one * 1e6:7.1f} us   x{best_each / best_one:.2f} faster")
    print(f"  windows and CUSUM designs and alarms the same: {same}")
    if not same:
        raise SystemExit("bench: the two paths ended in different states")


if __name__ == "__main__":
    main()
