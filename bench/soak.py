"""Soak: hours of device time through the whole chain, looking for slow failures.

The firmware runs on the virtual board free-running (speed 0: device time runs as
fast as the host reads) at a high sample rate, optionally with sensor faults at
random (NACKs, a sensor pulled and plugged back); the host reads it through the
same Node/NodeStream/LeakTracker path as `leakmon monitor`. Reported: lost frames
(sequence gaps: must be 0, faults or not, since sensor faults never cost a frame),
CRC errors, the node's free heap from its STATUS messages (first/last/min: flat
means no leak), the host's RSS over the run, frames/s and samples/s.

    .venv/bin/python bench/soak.py                       # 1 h of device time at 200 Hz
    .venv/bin/python bench/soak.py --hours 8 --faults --seed 3
    .venv/bin/python bench/soak.py --port /dev/ttyACM0 --hours 0.1   # a real board, in real time

Exit status 1 if a frame was lost or corrupted or STATUS stopped coming (and, with
--heap-slack-bytes, if the free-heap peaks fell by more); timings never fail it.
The node reads gc.mem_free() without collecting first, so one reading is a point
on the collector's sawtooth: the peaks of the first and last thirds are compared.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from leakmon import wire
from leakmon.analysis.tracker import LeakTracker
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.sim.scenario import Scenario
from leakmon.wire import messages as protocol
from leakmon.wire.stream import SampleBlock

try:
    import psutil
except ImportError:  # RSS from /proc or getrusage then
    psutil = None


MIN_STATUS_PER_THIRD = 10  # STATUS messages per third of the run needed to judge the heap


@dataclass(frozen=True)
class FaultyScenario(Scenario):
    """A scenario whose sim.json also injects faults: per-sensor keys of vboard's Faulty."""

    faults: tuple[tuple[tuple[str, float], ...], ...] = ()  # per sensor: ((key, value), ...)

    def sim_config(self, seed: int, speed: float) -> dict[str, Any]:
        cfg = super().sim_config(seed, speed)
        for sensor, fault in zip(cfg["sensors"], self.faults):
            sensor.update(dict(fault))
        return cfg


def random_faults(sc: Scenario, duration_s: float, rng: random.Random) -> FaultyScenario:
    """NACKs at 0.1 %, and each sensor pulled once for 5..60 s somewhere in the run."""
    faults = []
    for _ in sc.sensors:
        out_s = rng.uniform(0.2, 0.7) * duration_s
        faults.append((("nack_prob", 0.001), ("remove_at_s", round(out_s, 3)),
                       ("replug_at_s", round(out_s + rng.uniform(5.0, 60.0), 3))))
    base = {f.name: getattr(sc, f.name) for f in fields(Scenario)}
    return FaultyScenario(**base, faults=tuple(faults))


def host_rss_bytes() -> int:
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class SoakResult:
    device_s: float = 0.0
    wall_s: float = 0.0
    period_us: int = 0
    frames: int = 0
    samples: int = 0
    lost_frames: int = 0
    crc_errors: int = 0
    malformed: int = 0
    bytes_skipped: int = 0
    events: dict[str, int] = field(default_factory=dict)
    free_heap: list[int] = field(default_factory=list)  # from each STATUS
    overruns: int = 0
    i2c_errors: int = 0
    host_rss: list[int] = field(default_factory=list)  # one per STATUS
    faults: list[dict[str, float]] = field(default_factory=list)
    leak_rate_pa_per_s: float | None = None

    def heap_drop_bytes(self) -> int | None:
        """How far the upper envelope of free heap fell from the first to the last third of
        the run (0 = flat), or None with too few STATUS messages to tell.

        The garbage collector makes free heap a sawtooth (on the virtual board the sensor
        models' float maths make garbage; the firmware's own loop makes none), so single
        readings say little: a leak shows as the peaks, reached just after collections,
        coming down.
        """
        k = len(self.free_heap) // 3
        if k < MIN_STATUS_PER_THIRD:
            return None
        return max(0, max(self.free_heap[:k]) - max(self.free_heap[-k:]))

    def ok(self, heap_slack_bytes: int | None = None) -> bool:
        """No frame lost or corrupted, STATUS kept coming; the heap only if a slack is given."""
        drop = self.heap_drop_bytes()
        heap_ok = heap_slack_bytes is None or drop is None or drop <= heap_slack_bytes
        return self.lost_frames == 0 and self.crc_errors == 0 and self.malformed == 0 \
            and len(self.free_heap) >= 2 and heap_ok


@contextmanager
def open_node(port: str | None, sc: Scenario, seed: int) -> Iterator[Node]:
    with ExitStack() as stack:
        if port is None:
            port = stack.enter_context(VirtualBoard(sc, seed=seed, speed=0)).port
        node = stack.enter_context(Node.open(port))
        yield node


def soak(duration_s: float, period_us: int = 5000, *, faults: bool = False, seed: int = 1,
         scenario_name: str = "steady_leak", port: str | None = None, wall_limit_s: float | None = None,
         progress: bool = False) -> SoakResult:
    """Run until duration_s of device time (or wall_limit_s of wall time) has passed."""
    sc = scenario.load(scenario_name)
    if faults:
        if port is not None:
            raise ValueError("faults can only be injected on the virtual board")
        sc = random_faults(sc, duration_s, random.Random(seed))
    res = SoakResult(period_us=period_us)
    if isinstance(sc, FaultyScenario):
        res.faults = [dict(f) for f in sc.faults]
    events: Counter[str] = Counter()
    tracker = LeakTracker(window_s=600.0)
    t_wall0 = time.monotonic()
    with open_node(port, sc, seed) as node:
        node.handshake()
        node.command(wire.C_SET_PERIOD, struct.pack("<I", period_us))
        t0: float | None = None
        next_report = 0.0
        while True:
            now = time.monotonic()
            if wall_limit_s is not None and now - t_wall0 > wall_limit_s:
                break
            for item in node.read():
                if isinstance(item, SampleBlock):
                    if t0 is None:
                        t0 = float(item.t_s[0])
                    res.samples += len(item.t_s)
                    res.device_s = float(item.t_s[-1]) - t0
                    update = tracker.add(item)
                    if update is not None:
                        res.leak_rate_pa_per_s = update.leak_rate_pa_per_s
                elif isinstance(item, protocol.Status):
                    res.free_heap.append(item.free_heap)
                    res.overruns, res.i2c_errors = item.overruns, item.i2c_errors
                    res.host_rss.append(host_rss_bytes())
                elif isinstance(item, protocol.Event):
                    events[item.name] += 1
            if progress and now >= next_report:
                next_report = now + 10.0
                print(f"soak: {res.device_s:9.0f} s device, {now - t_wall0:7.0f} s wall, {res.samples} samples, "
                      f"lost {node.stream.stats.lost_frames}", file=sys.stderr)
            if res.device_s >= duration_s:
                break
        st, ds = node.stream.stats, node.stream.decoder.stats
        res.frames, res.lost_frames, res.malformed = st.frames, st.lost_frames, st.malformed
        res.crc_errors, res.bytes_skipped = ds.crc_errors, ds.bytes_skipped
    res.wall_s = time.monotonic() - t_wall0
    res.events = dict(events)
    return res


def report(r: SoakResult, heap_slack_bytes: int | None = None) -> str:
    mb = 1 / 2**20
    heap = f"{r.free_heap[0]} / {r.free_heap[-1]} / {min(r.free_heap)}" if r.free_heap else "no STATUS"
    drop = r.heap_drop_bytes()
    k = len(r.free_heap) // 3
    peaks = f"{max(r.free_heap[:k])} -> {max(r.free_heap[-k:])}" if k else "-"
    if drop is None:
        verdict_heap = f"too few STATUS to judge (< {MIN_STATUS_PER_THIRD} per third)"
    else:
        verdict_heap = f"peak drop {drop} B, " + (f"slack {heap_slack_bytes} B" if heap_slack_bytes is not None
                                                 else "advisory: readings are not taken after a collection")
    rss = f"{r.host_rss[0] * mb:.1f} / {r.host_rss[-1] * mb:.1f} / {max(r.host_rss) * mb:.1f}" if r.host_rss else "-"
    j = len(r.host_rss) // 3
    if j:  # the leak tracker's window fills during the first 600 s: compare the thirds
        rss += f"; thirds {max(r.host_rss[:j]) * mb:.1f} -> {max(r.host_rss[j:-j] or r.host_rss) * mb:.1f} " \
               f"-> {max(r.host_rss[-j:]) * mb:.1f}"
    wall = max(r.wall_s, 1e-9)
    lines = [
        f"device time         {r.device_s:12.1f} s   ({r.device_s / 3600:.2f} h, {r.device_s / wall:.0f}x real time)",
        f"wall time           {r.wall_s:12.1f} s",
        f"sample period       {r.period_us:12d} us  ({1e6 / r.period_us:.0f} Hz)",
        f"frames              {r.frames:12d}     {r.frames / wall:10.0f} frames/s",
        f"samples             {r.samples:12d}     {r.samples / wall:10.0f} samples/s",
        f"lost frames         {r.lost_frames:12d}     (sequence gaps; must be 0)",
        f"CRC errors          {r.crc_errors:12d}     malformed {r.malformed}, bytes skipped {r.bytes_skipped}",
        f"node free heap      {heap}  (first / last / min, bytes; {len(r.free_heap)} STATUS)",
        f"  peaks by third    {peaks}  (first third -> last third: {verdict_heap})",
        f"host RSS            {rss}  (first / last / max, MiB)",
        f"node overruns       {r.overruns:12d}     I2C errors {r.i2c_errors}",
        f"events              {', '.join(f'{k} {v}' for k, v in sorted(r.events.items())) or '-'}",
        f"faults injected     {r.faults or 'none'}",
        f"leak rate (last)    {r.leak_rate_pa_per_s if r.leak_rate_pa_per_s is None else f'{r.leak_rate_pa_per_s:.5f}'}"
        " Pa/s",
        f"verdict             {'PASS' if r.ok(heap_slack_bytes) else 'FAIL'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0, help="device time to run (default 1)")
    ap.add_argument("--period-us", type=int, default=5000, help="sample period (default 5000 = 200 Hz)")
    ap.add_argument("--faults", action="store_true", help="inject sensor faults at random (virtual board)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenario", default="steady_leak")
    ap.add_argument("--port", help="a real board's port (no faults; device time is real time)")
    ap.add_argument("--heap-slack-bytes", type=int, default=None,
                    help="fail if the free-heap peaks fall by more (default: report only; see SoakResult)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    r = soak(args.hours * 3600, args.period_us, faults=args.faults, seed=args.seed, scenario_name=args.scenario,
             port=args.port, progress=not args.json)
    print(json.dumps(asdict(r)) if args.json else report(r, args.heap_slack_bytes))
    return 0 if r.ok(args.heap_slack_bytes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
