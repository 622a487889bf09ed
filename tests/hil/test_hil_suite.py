"""The HIL suite: one pass over a board a technician can run and read.

Against the virtual board by default, or a real board with `--port PORT --board
pico|esp32|pyboard`. Checks run in file order on one connection: handshake and
inventory, sampling at each rate (device-timestamp jitter), every command of
PROTOCOL.md, a short leak estimate, a soak, reset, and last REPL + soft reset
(which leaves the firmware running again). Figures go to the summary printed at
the end of `pytest -m hil` (tests/hil/conftest.py).
"""

from __future__ import annotations

import importlib.util
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import numpy as np
import pytest
from conftest import (
    SCENARIO,
    SPEED,
    HilReport,
    Target,
    needs_real_hardware,
    needs_virtual_board,
)
from leakmon import wire
from leakmon.analysis import student_t_ppf
from leakmon.analysis.lrv import BATCHES
from leakmon.analysis.tracker import LeakTracker
from leakmon.errors import CommandError, LeakmonError
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.wire import messages as protocol
from leakmon.wire.stream import Item, SampleBlock

pytestmark = pytest.mark.hil
ROOT = Path(__file__).resolve().parents[2]
RATES_US = (100_000, 50_000, 20_000, 10_000)
FRAMES_PER_RATE = 12
T = TypeVar("T")
# The virtual board's estimate window. Its standard error has a long upper tail by design
# (a long-run variance from 14 mode powers, which cannot tell white noise from a slow drift):
# over 40 s the median is 7 % of this leak and 4.5 % of fresh windows (2,600 drawn) came out
# above the 20 % bound below. Each CI run judges about five fresh windows (this suite, and the
# testbed test's four boards at once, whose windows fall wherever the checks before them
# ended), so about one healthy run in five could fail; one testbed run in ten did. Over 150 s
# (7.5 s of wall time at 20x) the median is 1.0 % and the largest of 1,000 fresh windows
# 10.6 %. A real board keeps 40 s: nothing is judged against a truth there.
VIRTUAL_ESTIMATE_S = 150.0
Z_BOUND = student_t_ppf(1.0 - 0.5e-4, BATCHES - 3.0)


# -- helpers ---------------------------------------------------------------------------------
def speed(target: Target) -> float:
    """Device seconds per wall second."""
    return SPEED if target.virtual else 1.0


def wait_for(node: Node, pick: Callable[[Item], T | None], timeout_s: float) -> T:
    """Read until pick() returns something for an item; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for item in node.read():
            got = pick(item)
            if got is not None:
                return got
    raise AssertionError(f"nothing matching within {timeout_s:g} s")


def blocks(node: Node, device_s: float, target: Target, channel: int = 0) -> list[tuple[float, SampleBlock]]:
    """(host arrival time, block) of one channel until device_s of samples have arrived."""
    out: list[tuple[float, SampleBlock]] = []
    deadline = time.monotonic() + 5.0 + 2.0 * device_s / speed(target)
    while time.monotonic() < deadline:
        for item in node.read():
            if isinstance(item, SampleBlock) and item.channel == channel:
                out.append((time.monotonic(), item))
        if out and out[-1][1].t_s[-1] - out[0][1].t_s[0] >= device_s:
            return out
    raise AssertionError(f"{len(out)} blocks, not {device_s:g} s of samples, within the deadline")


def nothing_for(node: Node, wall_s: float) -> list[Item]:
    """Every item that arrives in a fixed window (to show that something does not)."""
    out: list[Item] = []
    end = time.monotonic() + wall_s
    while time.monotonic() < end:
        out += node.read()
    return out


def refused(node: Node, cmd: int, payload: bytes, reason: str) -> str:
    with pytest.raises(CommandError, match=reason) as e:
        node.command(cmd, payload)
    return str(e.value)


def reconnect(port: str, timeout_s: float = 15.0) -> Node:
    """A node on the same port after the board restarted (a real board's USB re-enumerates)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            new = Node.open(port)
            new.handshake(timeout_s=max(0.5, deadline - time.monotonic()))
            return new
        except LeakmonError as e:
            last = e
            time.sleep(0.2)  # the port is gone until the board enumerates again
    raise AssertionError(f"board did not come back on {port} within {timeout_s:g} s: {last}")


@dataclass
class Link:
    """The connection to the board under test; RESET and REPL checks may replace it."""

    node: Node


@pytest.fixture(scope="module")
def link(board_port: str) -> Iterator[Link]:
    lk = Link(Node.open(board_port))
    lk.node.handshake()
    yield lk
    lk.node.close()


# -- checks ----------------------------------------------------------------------------------
def test_handshake_and_inventory(link: Link, hil_target: Target, hil_report: HilReport) -> None:
    """Handshake and inventory."""
    t0 = time.monotonic()
    hello = link.node.handshake()
    hil_report.figure(f"HELLO in {1000 * (time.monotonic() - t0):.0f} ms")
    assert (hello.proto_major, hello.ticks_bits) == (wire.VERSION, 30)
    assert hello.channels, "no sensor found"
    chans = ", ".join(f"ch{c.channel}={c.chip_name}@0x{c.addr:02x} bus {c.bus}" for c in hello.channels)
    hil_report.node = (f"firmware {hello.fw_version}, protocol v{hello.proto_major}.{hello.proto_minor}, "
                       f"board {hello.board}, {len(hello.channels)} sensor(s): {chans}")
    hil_report.figure(f"{len(hello.channels)} sensor(s): {chans}")
    hil_report.figure(f"period {hello.period_us / 1000:g} ms, {hello.rows_per_frame} rows/frame")
    assert hello.board == hil_target.board or hil_target.board == "unknown"
    assert all(c.chip_name in protocol.CHIP_NAMES.values() for c in hello.channels)
    assert set(link.node.stream.calibrations) == {c.channel for c in hello.channels}


@pytest.mark.parametrize("period_us", RATES_US, ids=[f"{p // 1000} ms" for p in RATES_US])
def test_sampling_rate(link: Link, hil_target: Target, hil_report: HilReport, period_us: int) -> None:
    """Sampling at a rate, device-timestamp jitter."""
    n = link.node
    assert n.command(wire.C_SET_PERIOD, struct.pack("<I", period_us)).ok
    n.read()  # what came with the ACK may be at the old rate
    assert n.stream.hello is not None
    device_s = FRAMES_PER_RATE * n.stream.hello.rows_per_frame * period_us * 1e-6
    got = blocks(n, device_s, hil_target)
    dt = np.concatenate([np.diff(b.t_s) for _, b in got if len(b.t_s) > 1])
    np.testing.assert_allclose(dt, period_us * 1e-6, atol=1e-6)
    # Between frames: the next frame's first row is one period after the last row.
    gaps_us = np.array([(b.t_s[0] - a.t_s[-1]) * 1e6 - period_us for (_, a), (_, b) in zip(got, got[1:])])
    missed = int(np.sum(np.round(gaps_us / period_us)))
    jitter = np.abs(gaps_us - np.round(gaps_us / period_us) * period_us)
    span_dev = got[-1][1].t_s[0] - got[0][1].t_s[0]  # first rows: sent a frame later, alike
    span_host = got[-1][0] - got[0][0]
    samples = sum(len(b.t_s) for _, b in got)
    hil_report.figure(f"{samples} samples over {got[-1][1].t_s[-1] - got[0][1].t_s[0]:.1f} s device time; "
                      f"missed slots {missed}")
    hil_report.figure(f"timestamp jitter: max {jitter.max(initial=0):.1f} us, "
                      f"rms {np.sqrt(np.mean(jitter ** 2)) if len(jitter) else 0:.1f} us")
    if span_host > 0:
        hil_report.figure(f"device/host time ratio {span_dev / span_host:.3f} (frame arrival, host clock)")
    assert missed == 0, f"{missed} sampling slots missed"
    assert jitter.max(initial=0) <= 1.0


def test_ping_round_trip(link: Link, hil_report: HilReport) -> None:
    """PING: acknowledged, round-trip time."""
    n = link.node
    n.command(wire.C_SET_PERIOD, struct.pack("<I", 100_000))
    rtt = []
    for _ in range(10):
        t0 = time.monotonic()
        assert n.command(wire.C_PING).ok
        rtt.append(time.monotonic() - t0)
    hil_report.figure(f"round trip: median {1000 * float(np.median(rtt)):.1f} ms, max {1000 * max(rtt):.1f} ms")


def test_info_resends_hello_and_calibrations(link: Link) -> None:
    """INFO: HELLO and every CALIB again."""
    n = link.node
    hello = n.stream.hello
    n.command(wire.C_INFO)
    wait_for(n, lambda i: i if isinstance(i, protocol.Hello) else None, 5.0)
    assert n.stream.hello == hello


def test_stop_and_start(link: Link, hil_target: Target, hil_report: HilReport) -> None:
    """STOP and START: no samples while stopped."""
    n = link.node
    assert n.stream.hello is not None
    frame_s = n.stream.hello.rows_per_frame * 0.1 / speed(hil_target)
    n.command(wire.C_STOP)
    n.read()
    quiet = [i for i in nothing_for(n, 3 * frame_s) if isinstance(i, SampleBlock)]
    assert quiet == [], "samples while stopped"
    n.command(wire.C_START)
    wait_for(n, lambda i: i if isinstance(i, SampleBlock) else None, 5.0 + 3 * frame_s)
    hil_report.figure(f"silent for {3 * frame_s:.2f} s while stopped, sampling again after START")


def test_set_period_refuses_bad_values(link: Link, hil_report: HilReport) -> None:
    """SET_PERIOD out of range: refused with a reason."""
    n = link.node
    for p in (1999, 60_000_001):
        hil_report.figure(refused(n, wire.C_SET_PERIOD, struct.pack("<I", p), "bad value"))
    refused(n, wire.C_SET_PERIOD, b"\x10\x27\x00", "bad length")


def test_calib_resends_one_or_all(link: Link) -> None:
    """CALIB: all, one, a missing channel."""
    n = link.node
    assert n.stream.hello is not None
    nch = len(n.stream.hello.channels)
    n.command(wire.C_PING)
    n.read()
    n.command(wire.C_CALIB)
    n.command(wire.C_CALIB, b"\x00")
    n.command(wire.C_PING)  # answered in order: every CALIB is in by now
    cals = [i for i in n.read() if isinstance(i, protocol.Calibration)]
    assert len(cals) == nch + 1
    assert all(c.block == n.stream.calibrations[c.channel].block for c in cals)
    refused(n, wire.C_CALIB, bytes([nch]), f"no channel {nch}")


def test_set_time(link: Link, hil_report: HilReport) -> None:
    """SET_TIME: TIME pairs device ticks with host time."""
    n = link.node
    host_us = int(time.time() * 1e6)
    n.command(wire.C_SET_TIME, struct.pack("<Q", host_us))
    ref = wait_for(n, lambda i: i if isinstance(i, protocol.TimeRef) else None, 5.0)
    assert ref.host_time_us == host_us and 0 <= ref.ticks_us < 1 << 30
    hil_report.figure(f"device ticks {ref.ticks_us} us at host time {host_us} us")
    refused(n, wire.C_SET_TIME, b"\x00" * 4, "bad length")


def test_set_oversampling(link: Link, hil_report: HilReport) -> None:
    """SET_OVERSAMPLING: in range, out of range."""
    n = link.node
    assert n.stream.hello is not None
    chip = n.stream.hello.channels[0].chip_name
    if chip not in ("BMP388", "BMP390"):
        pytest.skip(f"codes checked for BMP3xx only; channel 0 is a {chip}")
    assert n.command(wire.C_SET_OVERSAMPLING, bytes([0, 3, 0])).ok
    wait_for(n, lambda i: i if isinstance(i, SampleBlock) else None, 5.0)
    hil_report.figure(refused(n, wire.C_SET_OVERSAMPLING, bytes([0, 9, 0]), "bad value"))
    refused(n, wire.C_SET_OVERSAMPLING, bytes([0, 3]), "bad length")
    assert n.command(wire.C_SET_OVERSAMPLING, bytes([0, 4, 1])).ok


def test_set_rate(link: Link, hil_target: Target) -> None:
    """SET_RATE: one channel at 2x the period."""
    set_rate = getattr(wire, "C_SET_RATE", None)
    if set_rate is None:
        pytest.skip("this protocol has no SET_RATE")
    n = link.node
    assert n.command(set_rate, struct.pack("<BI", 0, 200_000)).ok
    n.read()
    got = blocks(n, 4.0, hil_target)
    np.testing.assert_allclose(np.diff(got[-1][1].t_s), 0.2, atol=1e-6)
    refused(n, set_rate, struct.pack("<BI", 0, 150_000), "multiple")
    assert n.command(set_rate, struct.pack("<BI", 0, 100_000)).ok


def test_unknown_and_malformed_commands_are_refused(link: Link, hil_report: HilReport) -> None:
    """Unknown command, bad length: refused."""
    n = link.node
    hil_report.figure(refused(n, 0x7F, b"", "unknown command"))
    refused(n, wire.C_PING, b"x", "bad length")
    assert n.command(wire.C_PING).ok


def test_garbage_on_the_link_is_ignored(link: Link) -> None:
    """Noise on the link: ignored (Ctrl-C, which a host never sends, stops the firmware)."""
    n = link.node
    noise = bytes(b for b in range(256) if b != 0x03)
    n.port.write(noise + wire.SYNC + b"\x01\x41\x00\x00\x00\x00\x00\x00" + noise)
    assert n.command(wire.C_PING).ok
    n.read()
    wait_for(n, lambda i: i if isinstance(i, SampleBlock) else None, 5.0)


def test_leak_estimate(link: Link, hil_target: Target, hil_report: HilReport) -> None:
    """Leak estimate, 40 s device time (virtual board: 150 s)."""
    n = link.node
    n.read()
    tracker = LeakTracker(window_s=None)
    update = None
    for _, b in blocks(n, VIRTUAL_ESTIMATE_S if hil_target.virtual else 40.0, hil_target):
        update = tracker.add(b) or update
    assert update is not None
    hil_report.figure(f"leak {update.leak_rate_pa_per_s:+.4f} Pa/s "
                      f"[{update.leak_rate_ci95_low_pa_per_s:+.4f}, {update.leak_rate_ci95_high_pa_per_s:+.4f}] "
                      f"= {update.leak_rate_mmhg_per_day:+.2f} mmHg/day; {update.n_samples} samples; "
                      f"{update.pressure_pa:.1f} Pa, {update.temperature_k - 273.15:.2f} C")
    assert np.isfinite(update.leak_rate_stderr_pa_per_s) and update.leak_rate_stderr_pa_per_s > 0
    if hil_target.virtual:
        sc = scenario.load(SCENARIO)
        truth = sc.chamber().leak_rate_pa_per_s(update.temperature_k)
        z = (update.leak_rate_pa_per_s - truth) / update.leak_rate_stderr_pa_per_s
        hil_report.figure(f"simulator truth {truth:+.4f} Pa/s: {z:+.1f} standard errors off")
        # The standard error comes from 14 mode powers, so z has Student's t tails (13 dof:
        # |z| > 4.5 came up 3 times in 8,350 fresh windows of 40-150 s): the bound is t's
        # two-sided 1e-4 quantile, 5.5, which over 150 s still fails a bias of about 6 % of
        # the leak (4.5 standard errors over 40 s let one of 30 % pass).
        assert abs(z) < Z_BOUND, f"estimate {update.leak_rate_pa_per_s} vs truth {truth}: {z:+.1f} sigma"
        # And precise: the same absolute bound as over 40 s; healthy windows stay under half
        # of it, a standard error grown twentyfold (lost samples, a wrong time base) fails.
        assert update.leak_rate_stderr_pa_per_s < 0.2 * truth


def _soak_module() -> ModuleType:  # bench/ is not a package: load bench/soak.py by path
    spec = importlib.util.spec_from_file_location("leakmon_bench_soak", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_soak_two_minutes_with_sensor_faults(hil_target: Target, hil_report: HilReport) -> None:
    """Soak: 2 min at 200 Hz, sensor faults."""
    needs_virtual_board(hil_target, "faults are injected through sim.json; for a real board run "
                        "bench/soak.py --port PORT --hours H")
    soak = _soak_module()
    r = soak.soak(120.0, 5000, faults=True, seed=2, wall_limit_s=30.0)
    hil_report.figure(f"{r.device_s:.0f} s device in {r.wall_s:.1f} s: {r.frames} frames, {r.samples} samples, "
                      f"{r.samples / r.wall_s:.0f} samples/s")
    hil_report.figure(f"lost frames {r.lost_frames}, CRC errors {r.crc_errors}; events {r.events}")
    hil_report.figure(f"free heap first/last/min {r.free_heap[0]}/{r.free_heap[-1]}/{min(r.free_heap)} B; "
                      f"host RSS {r.host_rss[0] / 2**20:.1f} -> {r.host_rss[-1] / 2**20:.1f} MiB")
    assert r.device_s >= 119.0, f"only {r.device_s:.0f} s of device time within the wall limit"
    assert r.ok(), soak.report(r)
    assert r.events.get("sensor-lost", 0) >= 1 and r.events.get("sensor-back", 0) >= 1, r.events
    assert r.samples >= 0.9 * 120.0 * 200 * 0.5  # the sensor was out for at most 60 s


def test_clock_against_host(link: Link, hil_target: Target, hil_report: HilReport) -> None:
    """Device clock against the host's (ppm)."""
    needs_real_hardware(hil_target, "the virtual clock is paced by the host's")
    n = link.node
    n.read()
    got = blocks(n, 20.0, hil_target)
    dev = got[-1][1].t_s[0] - got[1][1].t_s[0]
    host = got[-1][0] - got[1][0]
    ppm = (dev / host - 1) * 1e6
    hil_report.figure(f"device clock {ppm:+.0f} ppm against the host over {host:.1f} s (frame arrival)")
    assert abs(ppm) < 2000


def at_repl(n: Node, timeout_s: float = 3.0) -> bool:
    """True if the board's REPL answers a return with its prompt."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while b">>> " not in seen and time.monotonic() < deadline:
        n.port.write(b"\r")
        seen += n.port.read(256)
    return b">>> " in seen


def answering(n: Node, timeout_s: float = 10.0) -> float:
    """Seconds until the node acknowledges a PING, asking every 0.5 s (bounded)."""
    t0 = time.monotonic()
    while True:
        try:
            n.command(wire.C_PING, timeout_s=0.5)
            return time.monotonic() - t0
        except CommandError:
            if time.monotonic() - t0 > timeout_s:
                raise


def soft_reset(n: Node) -> float:
    """Ctrl-D at the REPL: main.py runs again. Returns how long after its boot event the
    node first answered a command (the virtual board drops commands for a while after
    a soft reboot: see the issue 7 report)."""
    n.port.write(b"\x04")
    wait_for(n, lambda i: True if isinstance(i, protocol.Event) and i.name == "boot" else None, 10.0)
    waited = answering(n)
    n.handshake(timeout_s=10.0)
    return waited


def test_reset_restarts_the_board(link: Link, hil_target: Target, board_port: str, hil_report: HilReport) -> None:
    """RESET: the board boots again and answers."""
    n = link.node
    assert n.command(wire.C_RESET).ok
    t0 = time.monotonic()
    try:
        wait_for(n, lambda i: True if isinstance(i, protocol.Event) and i.name == "boot" else None,
                 3.0 if hil_target.virtual else 10.0)
    except LeakmonError:  # a real board's USB goes away: open it again
        n.close()
        link.node = reconnect(board_port)
    booted = time.monotonic() - t0
    waited = answering(link.node, 3.0 if hil_target.virtual else 10.0)
    hil_report.figure(f"boot event {booted:.2f} s after the ACK; first command answered {waited:.2f} s after it")


def test_repl_then_soft_reset(link: Link, hil_report: HilReport) -> None:
    """REPL, then Ctrl-D brings the firmware back."""
    n = link.node
    assert n.command(wire.C_REPL).ok
    t0 = time.monotonic()
    assert at_repl(n, 5.0), "no REPL prompt after the REPL command"
    hil_report.figure(f"REPL prompt after {1000 * (time.monotonic() - t0):.0f} ms")
    waited = soft_reset(n)
    assert n.command(wire.C_PING).ok
    hil_report.figure(f"firmware back after Ctrl-D (soft reset); first command answered {waited:.2f} s after boot")
