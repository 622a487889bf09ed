"""Benchmark: the onset detectors' bursts on a gateway whose nodes started together: every
node's CUSUM blocks and redesigns in step (phase 0, as before) against each node at its own
phase (what `fleet.edge.EdgeNode` gives its tracker: its blocks start part of a block in,
its redesigns wait part of a quarter of their power of two), in the same run.

--nodes nodes of --channels channels at 10 Hz, one 10-row frame a second, all starting at
device time 0 (a gateway restarted: every channel's CUSUM counts its blocks from the same
second). Each node's frame goes through `LeakTracker.ingest_many`, as on the gateway; the
CPU of each device second, summed over the nodes, is what the feed thread spends to keep up
with that second. A CUSUM steps once a block of 10 s (in step: every channel on one frame in
ten) and redesigns after 2^j blocks (then at the first renewal):
at 80, 160, 320, 640 and 1280 s here (the first design, after 6 blocks, is at 60 s for every
node in step; at a phase, the blocks' later start spreads it over 60-69 s). Prints, over the
seconds from --after on (400: a gateway that has been running for a while; 0: its first
minutes after a restart), the median, p99 and worst second, the worst second's ratio to the
median, and how many seconds took over 3x the median.

    .venv/bin/python bench/bench_redesign.py [--nodes 100] [--channels 10] [--seconds 1400]
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np
from leakmon.analysis.tracker import LeakTracker
from leakmon.wire.stream import SampleBlock


def run(nodes: int, channels: int, seconds: int, phased: bool, seed: int) -> np.ndarray:
    """CPU seconds spent on each device second, over all nodes."""
    rng = np.random.default_rng(seed)
    trackers = [LeakTracker(600.0, phase=zlib.crc32(f"n{k}".encode()) / 2**32 if phased else 0.0)
                for k in range(nodes)]  # fmt: skip
    noise = rng.normal(0.0, 2.0, (nodes, channels, 10 * 64))  # reused: the CPU does not depend on it
    k_node = np.full((channels, 10), 293.15)
    cpu = np.empty(seconds)
    for s in range(seconds):
        t = s + np.arange(10) / 10.0
        col = (s % 64) * 10
        c0 = time.process_time()
        for k, tr in enumerate(trackers):
            p = 101_325.0 + noise[k, :, col:col + 10]
            tr.ingest_many([SampleBlock(c, s, t, p[c], k_node[c]) for c in range(channels)])
        cpu[s] = time.process_time() - c0
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=1400)
    ap.add_argument("--after", type=int, default=400, help="first device second counted")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(f"{a.nodes} nodes x {a.channels} channels started together, {a.seconds} device s; "
          f"CPU per device second summed over the nodes, seconds {a.after}-{a.seconds - 1}")
    print(f"{'blocks and redesigns':30} {'median ms':>10} {'p99 ms':>8} {'worst ms':>9} {'at s':>6} "
          f"{'worst/median':>13} {'s > 3x median':>14} {'total CPU s':>12}")
    for phased in (False, True):
        cpu = run(a.nodes, a.channels, a.seconds, phased, a.seed)[a.after:]
        med = float(np.median(cpu))
        label = "each node at its phase (now)" if phased else "nodes in step (before)"
        print(f"{label:30} {med * 1e3:10.1f} {np.percentile(cpu, 99) * 1e3:8.1f} {cpu.max() * 1e3:9.1f} "
              f"{a.after + int(cpu.argmax()):6d} {cpu.max() / med:13.1f} {int((cpu > 3 * med).sum()):14d} "
              f"{cpu.sum():12.1f}")


if __name__ == "__main__":
    main()
