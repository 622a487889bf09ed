"""What several commands share: where the node comes from (--port or --sim), the
loop from stream items to leak updates, and how they are printed."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np

from leakmon import units
from leakmon.analysis.cusum import FALSE_ALARM_DAYS
from leakmon.analysis.tracker import LeakTracker, LeakUpdate
from leakmon.cli.argtypes import non_negative, positive
from leakmon.cli.progress import PROGRESS_STEP_BYTES, Progress
from leakmon.errors import LeakmonError, ProtocolError, SimulatorError, TransportError
from leakmon.link.node import Node
from leakmon.link.reconnect import Gap, ReconnectingReader
from leakmon.link.recording import decode_recording, open_recording, report_tail
from leakmon.wire import messages
from leakmon.wire.stream import Item, NodeStream, SampleBlock, SampleTable


def add_source_args(p: argparse.ArgumentParser) -> None:
    """--port or --sim and the virtual board's flags: shared by monitor, record and info."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--port", help="serial port or pyserial URL of a node (e.g. /dev/ttyACM0)")
    src.add_argument("--sim", action="store_true", help="run the firmware on a virtual board (the default without --port)")
    p.add_argument("--scenario", default="steady_leak", help="virtual board scenario: a shipped name or a .toml path")
    p.add_argument("--seed", type=int, default=1, help="virtual board noise seed (default 1)")
    p.add_argument("--speed", type=non_negative, default=1.0,
                   help="virtual board device-time speed-up; 0 = as fast as possible (default 1)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for a UART link (default 115200)")


def add_alarm_args(p: argparse.ArgumentParser) -> None:
    """How the onset alarm is designed: shared by monitor and analyze."""
    p.add_argument("--false-alarm-days", type=positive, default=FALSE_ALARM_DAYS, metavar="D",
                   help=f"accept one false leak alarm per channel every D days (default {FALSE_ALARM_DAYS:g})")
    p.add_argument("--catch", metavar="RATE",
                   help="the leak the alarm must catch, e.g. 1mmHg/day or 0.01Pa/s (default: a "
                        "shift of one long-run standard error of a 10 s block's rate)")


def alarm_settings(args: argparse.Namespace) -> tuple[float, float | None]:
    """(false-alarm spacing in days, leak to catch in Pa/s or None) from the flags."""
    try:
        catch = units.parse_rate(args.catch) if args.catch else None
    except ValueError as e:
        raise LeakmonError(f"--catch: {e}") from e
    if catch is not None and not catch > 0.0:
        raise LeakmonError("--catch: the leak to catch must be a positive rate")
    return args.false_alarm_days, catch


def json_line(d: dict[str, Any]) -> str:
    """One JSON object; NaN and infinities (not JSON) become null."""
    return json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                       for k, v in d.items()})  # fmt: skip


HEADER = (f"{'t_s':>9} {'ch':>2} {'pressure_Pa':>12} {'temp_C':>8} {'leak_Pa/s':>11} "
          f"{'95% interval Pa/s':>23} {'mmHg/day':>9} {'model':>11}")


def format_update(u: LeakUpdate) -> str:
    return (f"{u.t_s:9.1f} {u.channel:2d} {u.pressure_pa:12.3f} {u.temperature_k - 273.15:8.3f} "
            f"{u.leak_rate_pa_per_s:+11.5f} [{u.leak_rate_ci95_low_pa_per_s:+10.5f},{u.leak_rate_ci95_high_pa_per_s:+10.5f}]"
            f" {u.leak_rate_mmhg_per_day:+9.3f} {u.model:>11}")


def describe_design(u: LeakUpdate) -> str | None:
    """The onset alarm's design, once it has learnt the noise."""
    if u.false_alarm_spacing_s is None or u.expected_delay_s is None:
        return None
    return (f"leakmon: channel {u.channel} alarm: a false alarm every "
            f"{units.format_duration(u.false_alarm_spacing_s)} expected; the leak to catch is flagged "
            f"{units.format_duration(u.expected_delay_s)} after it starts, on average")


def updates_from(batches: Iterable[list[Item]], tracker: LeakTracker, duration_s: float | None,
                 on_event: Callable[[messages.Event], None] = lambda e: None) -> Iterator[LeakUpdate]:
    """Leak updates from batches of stream items: the one loop behind monitor and replay.

    duration_s counts device time: the samples' time, and the node's uptime in its
    STATUS frames, so a node with no sensor (or none answering) still ends the run."""
    first: dict[str, float] = {}  # where each device clock stood at its first reading
    last_t_s: dict[int, float] = {}  # per channel: the fit needs time that never goes back

    def elapsed_s(clock: str, t_s: float) -> float:
        return t_s - first.setdefault(clock, t_s)

    for batch in batches:
        for item in batch:
            if isinstance(item, messages.Event):
                on_event(item)
            if isinstance(item, messages.Status):
                if duration_s is not None and elapsed_s("uptime", float(item.uptime_s)) >= duration_s:
                    return
            if not isinstance(item, SampleBlock) or not len(item.t_s):
                continue
            # within a block times rise (the core checks the period); between blocks they may not
            if item.t_s[0] < last_t_s.get(item.channel, -np.inf):
                warn(f"channel {item.channel}: a block of samples goes back in time (frame {item.seq}): skipped")
                continue
            last_t_s[item.channel] = float(item.t_s[-1])
            elapsed_s("samples", float(item.t_s[0]))
            u = tracker.add(item)
            if u is not None:
                yield u
            if duration_s is not None and elapsed_s("samples", float(item.t_s[-1])) >= duration_s:
                return


def node_batches(node: Node, alive: Callable[[], None] = lambda: None,
                 read: Callable[[], list[Item]] | None = None) -> Iterator[list[Item]]:
    """What the node sends, batch by batch (read: another reader of it, e.g. a reconnecting one)."""
    while True:
        alive()
        yield read() if read is not None else node.read()


def monitor_updates(node: Node, tracker: LeakTracker, duration_s: float | None,
                    alive: Callable[[], None] = lambda: None,
                    on_event: Callable[[messages.Event], None] = lambda e: None,
                    read: Callable[[], list[Item]] | None = None) -> Iterator[LeakUpdate]:
    """Leak updates from a node that has completed its handshake (read: e.g. a reconnecting reader)."""
    return updates_from(node_batches(node, alive, read), tracker, duration_s, on_event)


def open_source(args: argparse.Namespace, stack: ExitStack) -> tuple[Node, Callable[[], None]]:
    """The node of --port, or of a virtual board started for --sim; and a liveness check."""
    if args.port:
        return stack.enter_context(Node.open(args.port, args.baud)), lambda: None
    from leakmon.sim import scenario as scenario_mod
    from leakmon.sim.board import VirtualBoard

    board = stack.enter_context(VirtualBoard(scenario_mod.load(args.scenario), args.seed, args.speed))

    def alive() -> None:
        if board.poll() is not None:
            raise SimulatorError(f"virtual board stopped (exit {board.poll()}): {board.log_tail(1)}")

    print(f"leakmon: virtual board on {board.port} (scenario {args.scenario}, seed {args.seed}, speed {args.speed:g})",
          file=sys.stderr)
    return stack.enter_context(Node.open(board.port, args.baud)), alive


def describe(hello: messages.Hello) -> str:
    names = ", ".join(f"ch{c.channel}={c.chip_name}@0x{c.addr:02x}" for c in hello.channels)
    return (f"leakmon: node {hello.board} firmware {hello.fw_version} protocol v{hello.proto_major}.{hello.proto_minor}, "
            f"{len(hello.channels)} sensor(s): {names or 'none'}, {1e6 / hello.period_us:g} Hz")


def print_event(e: messages.Event) -> None:
    if e.name != "boot":
        print(f"leakmon: node event {e.name} channel {e.channel} detail {e.detail} {e.text}".rstrip(), file=sys.stderr)


def print_updates(updates: Iterable[LeakUpdate], as_json: bool) -> None:
    """The monitor view: a header and one line per update, or one JSON object per update."""
    if not as_json:
        print(HEADER, flush=True)
    designed: set[int] = set()
    for u in updates:
        line = describe_design(u) if u.channel not in designed else None
        if line is not None:
            designed.add(u.channel)
            print(line, file=sys.stderr, flush=True)
        print(json_line(u.as_dict()) if as_json else format_update(u), flush=True)


def sensor_labels(hello: messages.Hello, args: argparse.Namespace) -> dict[int, str]:
    """'ch0 zvezda BMP390': with --sim the scenario says which segment each sensor is in."""
    segment: dict[tuple[int, int, int], str] = {}
    if not args.port:
        from leakmon.sim import scenario as scenario_mod

        for sp in scenario_mod.load(args.scenario).sensors:
            mux = sp.mux_channel if sp.mux_addr is not None else 0xFF
            segment[(sp.bus, mux, sp.addr)] = sp.segment
    return {c.channel: " ".join(x for x in (f"ch{c.channel}", segment.get((c.bus, c.mux, c.addr), ""),
                                             c.chip_name) if x) for c in hello.channels}


def summary(stream: NodeStream) -> str:
    st = stream.stats
    return f"leakmon: {st.frames} frames, {st.lost_frames} lost, {stream.decoder.stats.crc_errors} CRC errors"


def warn(message: str) -> None:
    print(f"leakmon: {message}", file=sys.stderr)


Series = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]


def load_series(path: str) -> tuple[NodeStream, Series, Callable[[], None]]:
    """Every compensated sample of a recording, by channel: (t_s, pressure_pa, temperature_k).
    Decoded a chunk at a time by the stream core's table form, with progress for big files.

    The third item reports the file's tail: call it once the output is written, so a
    damaged chunk costs nothing that came before it (a cut-short tail only warns)."""
    fs = NodeStream()
    parts: list[SampleTable] = []
    with open_recording(path) as rec:
        progress = Progress(rec.size, "analyzing")
        try:
            for table in decode_recording(rec, PROGRESS_STEP_BYTES, fs):
                parts.append(table)
                progress.update(rec.position)
        except ProtocolError as e:
            raise LeakmonError(f"{path}: {e}") from e
        progress.close()
    return fs, SampleTable.concat(parts).by_channel(), lambda: report_tail(rec, warn)


def reconnecting(node: Node, give_up_s: float, say: Callable[[str], None],
                 note: Callable[..., None] = lambda event, **fields: None) -> Callable[[], list[Item]]:
    """A reader that rides out the port vanishing for up to give_up_s: what happened is
    said to the user (say) and noted (note: the recording's notes, for record)."""

    def lost(e: TransportError) -> None:
        note("link-lost", error=str(e))
        say(f"{e}; waiting up to {give_up_s:g} s for the port to return")

    def gap(g: Gap) -> None:
        note("gap", host_s=g.host_s, lost_frames=g.lost_frames, device_s=g.device_s, node_restarted=g.node_restarted)
        what = ("the node restarted" if g.node_restarted else
                f"{g.lost_frames} frames lost, {g.device_s:.1f} s of device time" if g.device_s is not None else
                f"{g.lost_frames} frames lost")
        say(f"link back after {g.host_s:.1f} s: {what}")

    reader = ReconnectingReader(node, retry_s=0.2, give_up_s=give_up_s, on_lost=lost, on_gap=gap,
                                on_reopened=lambda: note("reconnected"))
    return reader.read


def add_reconnect_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reconnect", type=positive, metavar="S",
                   help="when the port vanishes, wait up to S seconds for it to return and go on")
