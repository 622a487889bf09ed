"""Where the dashboard's data comes from. A Feed runs in a background thread and writes into
the Hub: sample blocks, leak updates from its own LeakTracker (the same live estimation as
`leakmon monitor`), link health.

NodeFeed: a node that has done its handshake (--port, or the virtual board of --sim, both
opened by leakmon.cli.session). SourceFeed: any other live source of decoded items with a
stream core behind it (the fleet's broker, --broker: leakmon.fleet.watch, composed by the
command). TableFeed: sample tables read once at full speed (a recording, --recording, or a
node's time range in the fleet's database, --db/--store).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from leakmon.analysis.tracker import LeakTracker
from leakmon.dashboard.hub import Hub, LinkHealth
from leakmon.errors import TransportError
from leakmon.link.node import Node
from leakmon.link.reconnect import Gap, ReconnectingReader
from leakmon.link.recording import decode_recording, open_recording
from leakmon.wire import messages
from leakmon.wire.stream import Item, NodeStream, SampleBlock, SampleTable

HEALTH_EVERY_S = 0.5
# A channel's estimate refits its whole window (~0.6 ms at 600 s of 10 Hz). A page needs a
# few a second at most: at --speed 60 estimating every block (then ~7 ms each) kept the feed thread (and, through
# the GIL, the web server) so busy that an alarm reached the page minutes of device time late.
# Every block still goes into the window and the onset detector; an alarm is estimated and
# shown on the block that raises it.
ESTIMATE_EVERY_WALL_S = 0.25


class Feed(Protocol):
    name: str

    def run(self, hub: Hub, stop: threading.Event) -> None:
        """Write into hub until stop is set or the source ends; raise LeakmonError on failure."""


def link_health(name: str, hello: messages.Hello, stream: NodeStream, lost_frames: int, frames0: int, t0: float,
                connected: bool, key_base: int = 0) -> LinkHealth:
    """A node's link as the page shows it; frames/s counted from frames0 at monotonic t0."""
    return LinkHealth(
        node=name, firmware=f"{hello.board} {hello.fw_version}",
        sensors=[f"ch{key_base | c.channel} {c.chip_name}@0x{c.addr:02x}" for c in hello.channels],
        rate_hz=1e6 / hello.period_us, frames=stream.stats.frames, lost_frames=lost_frames,
        crc_errors=stream.decoder.stats.crc_errors,
        frames_per_s=(stream.stats.frames - frames0) / max(time.monotonic() - t0, 1e-9),
        last_seen_wall=time.time(), connected=connected)


class _Estimating:
    """Blocks into the tracker, and an estimate to the page at most every ESTIMATE_EVERY_WALL_S."""

    name: str

    def __init__(self, tracker: LeakTracker) -> None:
        self.tracker = tracker
        self._estimated_wall: dict[int, float] = {}  # channel -> monotonic time of its last estimate

    def _take(self, hub: Hub, block: SampleBlock) -> None:
        """The block into the tracker; an estimate for the page when one is due or an alarm is new."""
        first_alarm = self.tracker.ingest(block)
        ch, now = block.channel, time.monotonic()
        if not first_alarm and now - self._estimated_wall.get(ch, -1e18) < ESTIMATE_EVERY_WALL_S:
            return
        u = self.tracker.update(block)
        if u is None:
            return
        self._estimated_wall[ch] = now
        hub.add_update(u)

    def _items(self, hub: Hub, items: list[Item]) -> bool:
        """Blocks to the history and the tracker, node events as alarms; True if any block came."""
        got = False
        for item in items:
            if isinstance(item, SampleBlock):
                got = True
                hub.add_block(item)
                self._take(hub, item)
            elif isinstance(item, messages.Event) and item.name != "boot":
                hub.store.raise_alarm("node event", f"node {self.name}: {item.name} channel {item.channel} "
                                      f"{item.text}".rstrip(), item.channel)
        return got


class NodeFeed(_Estimating):
    """A node's stream through the tracker into the hub. With reconnect (a node on a real
    port) a vanished port is reopened until it is back: the outage is an alarm, and the gap
    a note, instead of the end of the dashboard."""

    def __init__(self, node: Node, hello: messages.Hello, tracker: LeakTracker, name: str,
                 alive: Callable[[], None] = lambda: None, reconnect: bool = False) -> None:
        super().__init__(tracker)
        self.node = node
        self.hello = hello
        self.name = name
        self.alive = alive
        self.reconnect = reconnect
        self._health_now: LinkHealth | None = None

    def _reader(self, hub: Hub, stop: threading.Event) -> Callable[[], list[Item]]:
        if not self.reconnect:
            return self.node.read

        def lost(e: TransportError) -> None:
            if self._health_now is not None:
                self._health_now.connected = False
                hub.set_link(self._health_now)
            hub.store.raise_alarm("link lost", f"node {self.name}: link lost ({e}); reconnecting")

        def gap(g: Gap) -> None:
            what = ("the node restarted" if g.node_restarted else f"{g.lost_frames} frames lost"
                    + (f", {g.device_s:.1f} s of device time" if g.device_s is not None else ""))
            hub.store.add_note("link", f"node {self.name}: link back after {g.host_s:.1f} s: {what}", hub.t_now_s)

        return ReconnectingReader(self.node, retry_s=0.5, on_lost=lost, on_gap=gap, stop=stop).read

    def _health(self, frames0: int, t0: float) -> LinkHealth:
        stream = self.node.stream
        return link_health(self.name, self.hello, stream, stream.stats.lost_frames, frames0, t0, True)

    def run(self, hub: Hub, stop: threading.Event) -> None:
        t0, f0, last_health = time.monotonic(), self.node.stream.stats.frames, 0.0
        read = self._reader(hub, stop)
        while not stop.is_set():
            self.alive()
            got = self._items(hub, read())
            now = time.monotonic()
            if got and now - last_health >= HEALTH_EVERY_S:
                self._health_now = self._health(f0, t0)
                hub.set_link(self._health_now)
                if now - t0 > 10.0:  # frames/s over the last ~10 s, not since the start
                    t0, f0 = now, self.node.stream.stats.frames
                last_health = now


class LiveSource(Protocol):
    """A live source of decoded items other than a port (leakmon.fleet.watch.NodeWatch)."""

    stream: NodeStream

    @property
    def lost_frames(self) -> int: ...

    @property
    def wall_minus_device_s(self) -> float: ...

    def read(self) -> list[Item]: ...

    def is_connected(self) -> bool: ...

    def take_notes(self) -> list[tuple[int, str, str]]: ...


@dataclass
class LiveNode:
    """One node of a SourceFeed: its source, what it is, and where its channels go: node
    k's channel c is k * 256 + c (the first node's keys are its channels), its device time
    moved by shift_s onto the first node's clock."""

    name: str
    source: LiveSource
    hello: messages.Hello
    key_base: int = 0
    shift_s: float = 0.0
    up: bool = True
    lost_at: float = 0.0
    frames0: int = 0
    t0: float = field(default_factory=time.monotonic)
    last_health: float = 0.0


def moved(item: Item, key_base: int, shift_s: float) -> Item:
    """A node's item with its channel keyed for a site of several nodes and its time moved."""
    if key_base == 0 and shift_s == 0.0:
        return item
    if isinstance(item, SampleBlock):
        return SampleBlock(key_base | item.channel, item.seq, item.t_s + shift_s, item.pressure_pa,
                           item.temperature_k)
    if isinstance(item, messages.Event) and item.channel != 0xFF:
        return dataclasses.replace(item, channel=key_base | item.channel)
    return item


HatchMove = Callable[[str], tuple[str, bool]]  # a hatch note's text -> (hatch, open?); ValueError if not one


class SourceFeed(_Estimating):
    """LiveSources (one node, or the nodes of a site) through the tracker into the hub, in
    one thread; a lost connection is an alarm and its return a note, as for a port. The
    operators' notes come too, and their hatch moves (parsed by hatch_move) go into the
    page's hatch log, on the first node's clock."""

    def __init__(self, nodes: list[LiveNode], tracker: LeakTracker, name: str,
                 hatch_move: HatchMove | None = None) -> None:
        super().__init__(tracker)
        self.nodes = nodes
        self.name = name
        self.hatch_move = hatch_move

    def _notes(self, hub: Hub, n: LiveNode) -> None:
        offset_s = self.nodes[0].source.wall_minus_device_s
        for t_us, kind, text in n.source.take_notes():
            t_s = t_us * 1e-6 - offset_s if math.isfinite(offset_s) else hub.t_now_s
            if kind == "hatch" and self.hatch_move is not None:
                try:
                    hatch, is_open = self.hatch_move(text)
                except ValueError as e:
                    hub.store.add_note(n.name, f"hatch note not understood: {text!r} ({e})", t_s)
                    continue
                hub.store.set_hatch(hatch, is_open, t_s, n.name)
            else:
                hub.store.add_note(n.name, text, t_s)

    def _poll(self, hub: Hub, n: LiveNode) -> bool:
        got = self._items(hub, [moved(i, n.key_base, n.shift_s) for i in n.source.read()])
        self._notes(hub, n)
        up, now = n.source.is_connected(), time.monotonic()
        if up != n.up:
            if up:
                hub.store.add_note("link", f"{n.name}: back after {now - n.lost_at:.1f} s", hub.t_now_s)
            else:
                n.lost_at = now
                hub.store.raise_alarm("link lost", f"{n.name}: link lost; reconnecting")
            n.up, n.last_health = up, 0.0
        if (got or not up) and now - n.last_health >= HEALTH_EVERY_S:
            hub.set_link(link_health(n.name, n.hello, n.source.stream, n.source.lost_frames, n.frames0, n.t0, up,
                                     n.key_base))
            if now - n.t0 > 10.0:  # frames/s over the last ~10 s, not since the start
                n.t0, n.frames0 = now, n.source.stream.stats.frames
            n.last_health = now
        return got

    def run(self, hub: Hub, stop: threading.Event) -> None:
        for n in self.nodes:
            n.frames0, n.t0 = n.source.stream.stats.frames, time.monotonic()
        while not stop.is_set():
            got = False
            for n in self.nodes:
                got |= self._poll(hub, n)
            if not got:
                stop.wait(0.05)


def recording_hello(path: str | Path) -> messages.Hello | None:
    """The HELLO at the start of a recording (which sensors, which channels), read from its
    first chunks only."""
    fs = NodeStream()
    with open_recording(path) as rec:
        for _ in decode_recording(rec, 64 << 10, fs):
            if fs.hello is not None:
                return fs.hello
    return None


def recording_tables(path: str | Path) -> Iterator[SampleTable]:
    """A recording's samples, table by table (8 MiB of it at a time)."""
    fs = NodeStream()
    with open_recording(path) as rec:
        yield from decode_recording(rec, 8 << 20, fs)


def table_series(tables: Iterable[SampleTable]) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Each table's samples, channel by channel: (channel, t_s, pressure_pa, temperature_k)."""
    for table in tables:
        for ch in np.unique(table.channel):
            sel = table.channel == ch
            yield int(ch), table.t_s[sel], table.pressure_pa[sel], table.temperature_k[sel]


class TableFeed:
    """Samples read at full speed into the history (all at once, for zooming), and through
    the tracker in one-second blocks (for the leak rate and its alarms): a recording, or
    the time range of a node (or of a site's nodes) read from the fleet's database."""

    def __init__(self, name: str, series: Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
                 tracker: LeakTracker, remarks: Iterable[tuple[str, float, str]] = ()) -> None:
        """remarks: the operators' notes of the range (who, device time, text), for the page's notes."""
        self.name = name
        self.series = series
        self.tracker = tracker
        self.remarks = remarks

    def run(self, hub: Hub, stop: threading.Event) -> None:
        for who, t_note_s, text in self.remarks:
            hub.store.add_note(who, text, t_note_s)
        for ch, t_s, p_pa, t_k in self.series:
            if stop.is_set():
                return
            self._feed_channel(hub, ch, t_s, p_pa, t_k)
        hub.set_link(LinkHealth(node=self.name, last_seen_wall=time.time()))

    def _feed_channel(self, hub: Hub, ch: int, t_s: np.ndarray, p_pa: np.ndarray, t_k: np.ndarray) -> None:
        if len(t_s) < 2:
            return
        hub.add_block(SampleBlock(ch, 0, t_s, p_pa, t_k))
        dt = float(np.median(np.diff(t_s[:100])))
        n = max(int(round(1.0 / dt)), 2) if dt > 0 else 10
        for i in range(0, len(t_s) - n + 1, n):
            u = self.tracker.add(SampleBlock(ch, 0, t_s[i:i + n], p_pa[i:i + n], t_k[i:i + n]))
            if u is not None:
                hub.add_update(u)
