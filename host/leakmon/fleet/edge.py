"""The gateway's live path for one node: the node's bytes in; out, its frames as received
(each with its key), the live leak estimates of `monitor` and its onset alarms.

No I/O here: `follow` taps the frames the link's NodeStream cuts (or `on_bytes` the raw
bytes, cut here), `on_items` takes what the NodeStream made of them, and every message
goes to an Outbox (the MQTT publisher with its spool, or the embedded store).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from leakmon import wire
from leakmon.analysis.tracker import LeakTracker, LeakUpdate
from leakmon.fleet import envelope, homeassistant
from leakmon.wire import messages
from leakmon.wire.framing import Batch, Expected, FrameDecoder
from leakmon.wire.stream import Item, NodeStream, SampleBlock


# A channel's leak estimate is published every ESTIMATE_EVERY_S of device time, a node's
# channels together from running sums (analysis.windowsums: ~0.15 ms a channel at 600 s of
# 10 Hz, against ~0.5 ms for a refit; bench/bench_fleet.py): a 600 s window moves little in
# 10 s, and onset alarms still go out on the block that raises them.
ESTIMATE_EVERY_S = 10.0


class Outbox(Protocol):
    """Where a gateway's messages go; put() must keep order per node and never drop."""

    def put(self, topic: str, payload: bytes) -> None: ...

    def put_retained(self, topic: str, payload: bytes) -> None: ...


def wall_us() -> int:
    return time.time_ns() // 1000


class FrameKeys:
    """Whole frames cut from the node's raw bytes, each keyed (boot, seq).

    seq is the wire seq unwrapped past 65535; boot starts anew at the node's boot event
    (its seq restarts) and at the gateway's start, stamped with the gateway's clock so it
    never repeats. After the port was reopened (a re-plug) a seq that went back is a new
    boot too: the boot event is often lost, sent before the port was open again, but a
    running node's seq only goes forward (by the frames sent meanwhile, < 32768 of them).
    The frame bytes are re-sealed from the decoded frame: the CRC has been checked, so
    they equal what the node sent.
    """

    def __init__(self, clock_us: Callable[[], int] = wall_us) -> None:
        self.decoder = FrameDecoder()
        self.clock_us = clock_us
        self.boot: int | None = None
        self._last_wire: int | None = None
        self._seq = 0
        self.pending: list[tuple[int, int, int, bytes, int]] = []  # (seq, t_us, msg_type, frame bytes, boot)
        self.seq_of_wire: dict[int, int] = {}  # wire seq -> key seq, for the estimates of a frame
        self._reopened = False
        self.restarts_unheard = 0  # new boots told by a seq going back after a reopen
        # The node's latest handshake (its HELLO and the CALIB frames after it): what a
        # subscriber who joins later needs to decode the frames (published retained).
        self.handshake: list[bytes] = []
        self.handshake_key = (0, 0, 0)  # (boot, seq, t_us) of its HELLO
        self.handshake_changed = False
        self._expect: Expected | None = None  # the frames a steady stream repeats (the last SAMPLES')

    def reopened(self) -> None:
        """The port was opened again: a partial frame is dropped; the next frame may be a new boot's."""
        self.decoder.drop_pending()
        self._reopened = True
        self._expect = None

    def feed(self, data: bytes) -> None:
        """The node's raw bytes: cut here (a node whose NodeStream is not at hand)."""
        if self._expect is not None:  # a steady stream: the frames like the last SAMPLES, checked in one pass
            block = self.decoder.take_expected(data, self._expect)
            if block is not None:
                self.on_cut(block)
                return
        batch = self.decoder.take(data)
        self.on_cut(batch)
        self._expect = None
        if len(batch) and batch.buf[int(batch.start[-1]) + wire.OFF_TYPE] == wire.T_SAMPLES:
            start = int(batch.start[-1])
            head = batch.a[start : start + wire.HEADER_SIZE]
            self._expect = Expected(int(batch.plen[-1]) + wire.OVERHEAD, head & _KEEP, _KEEP)

    def on_cut(self, cut: Batch | np.ndarray) -> None:
        """Frames already cut (CRC checked): a NodeStream's cut tap, or feed()'s own cut. A
        (frames, size) array is a steady read's SAMPLES frames, else a Batch of any frames."""
        if isinstance(cut, np.ndarray):
            for seq, row in zip(cut[:, wire.OFF_SEQ : wire.OFF_SEQ + 2].view("<u2")[:, 0].tolist(), cut):
                self._key(wire.T_SAMPLES, seq, False, row.tobytes())
            return
        for k in range(len(cut)):
            fr = cut.frame(k)
            is_boot = fr.msg_type == wire.T_EVENT and len(fr.payload) > 4 and fr.payload[4] == wire.EV_BOOT
            self._key(fr.msg_type, fr.seq, is_boot, wire.frame(fr.msg_type, fr.seq, fr.payload))

    def _key(self, msg_type: int, wire_seq: int, is_boot: bool, raw: bytes) -> None:
        """Key one frame (its CRC checked: raw is what the node sent) and hold it for take()."""
        t_us = self.clock_us()
        went_back = (self._reopened and not is_boot and self._last_wire is not None
                     and (wire_seq - self._last_wire) & 0xFFFF >= 0x8000)
        self._reopened = False
        self.restarts_unheard += went_back
        if self.boot is None or is_boot or went_back:
            self.boot = t_us if self.boot is None or t_us > self.boot else self.boot + 1
            self._seq = wire_seq
        elif self._last_wire is not None:
            self._seq += (wire_seq - self._last_wire) & 0xFFFF or 0x10000
        self._last_wire = wire_seq
        self.seq_of_wire[wire_seq] = self._seq
        if msg_type == wire.T_HELLO:
            self.handshake, self.handshake_changed = [raw], True
            self.handshake_key = (self.boot, self._seq, t_us)
        elif msg_type == wire.T_CALIB and self.handshake:
            self.handshake.append(raw)
            self.handshake_changed = True
        self.pending.append((self._seq, t_us, msg_type, raw, self.boot))

    def take(self) -> list[tuple[int, int, int, bytes, int]]:
        out, self.pending = self.pending, []
        return out


# The header bytes a steady stream of SAMPLES repeats: all but the seq.
_KEEP = np.full(wire.HEADER_SIZE, 0xFF, np.uint8)
_KEEP[wire.OFF_SEQ : wire.OFF_SEQ + 2] = 0

_UPDATE_FIELDS = tuple(f.name for f in dataclasses.fields(LeakUpdate))


def update_row(u: LeakUpdate) -> dict[str, Any]:
    """The update as JSON-ready fields (dataclasses.asdict deep-copies: 10x slower here)."""
    row = {k: getattr(u, k) for k in _UPDATE_FIELDS}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            row[k] = None
    return row


class EdgeNode:
    """One node's messages: frames as received, estimates once per estimate_every_s of
    device time per channel, an alarm the first time a channel's onset detector fires."""

    def __init__(self, node_id: str, outbox: Outbox, window_s: float = 600.0, gateway_id: str = "",
                 estimate_every_s: float = ESTIMATE_EVERY_S, clock_us: Callable[[], int] = wall_us,
                 home_assistant: bool = False) -> None:
        self.node_id = envelope.check_id(node_id)
        self.outbox = outbox
        self.gateway_id = gateway_id
        self.window_s = window_s
        # The node's estimates fall due together, at a phase of the cadence of its own, and its
        # running sums restart at a phase of the window of its own, so that nodes do not all
        # pay for them on the same second (the CPU stays level).
        self._phase = zlib.crc32(self.node_id.encode()) / 2**32
        self.tracker = LeakTracker(window_s, phase=self._phase)
        self.restarts = 0  # the node booted again (re-plugged, reset): its estimates start afresh
        self._tracked = False  # the tracker holds samples
        self._tracker_boot: int | None = None
        self._last_t_s: dict[int, float] = {}  # channel -> its last sample's device time
        self.keys = FrameKeys(clock_us)
        self.estimate_every_s = estimate_every_s
        self.home_assistant = home_assistant
        self._next_estimate: dict[int, float] = {}
        self._due: dict[int, tuple[SampleBlock, int]] = {}  # channel -> (its due block, frame seq)
        self._t_topic = envelope.topic(node_id, "frame")
        self._e_topic = envelope.topic(node_id, "estimate")
        self._a_topic = envelope.topic(node_id, "alarm")
        self._h_topic = envelope.topic(node_id, "handshake")
        self.frames_out = 0
        self.estimates_out = 0
        self._extra: dict[str, Any] = {}
        self._hello: messages.Hello | None = None

    def _due_after(self, t_s: float) -> float:
        """The next estimate's device time: on the cadence's grid, shifted by the node's phase."""
        every = self.estimate_every_s
        phase = self._phase * every
        return math.floor((t_s - phase) / every + 1.0) * every + phase

    def set_estimate_every(self, every_s: float) -> None:
        """Change the cadence: each channel's next estimate moves to its phase on the new grid."""
        self.estimate_every_s = every_s
        self._next_estimate = {ch: self._due_after(t) for ch, t in self._last_t_s.items()}

    def on_bytes(self, data: bytes) -> None:
        """A tap on the link (Node.rx_taps): every byte the node sent, before decoding.
        (follow() instead when the node's NodeStream is at hand: the frames are cut once.)"""
        self.keys.feed(data)

    def follow(self, stream: NodeStream) -> None:
        """Key the frames the node's NodeStream cuts (its cut_taps) rather than cutting its
        bytes again here (on_bytes): the same frames, cut once (bench_live_ab: 0.83 -> 0.81
        of 5fe9c95's CPU)."""
        stream.cut_taps.append(self.keys.on_cut)

    def publish_info(self, hello: messages.Hello, extra: dict[str, Any] | None = None) -> None:
        self._extra = extra or self._extra
        info = {"node_id": self.node_id, "gateway": self.gateway_id, "board": hello.board,
                "fw_version": hello.fw_version, "protocol": f"{hello.proto_major}.{hello.proto_minor}",
                "period_us": hello.period_us,
                "channels": [{"channel": c.channel, "chip": c.chip_name, "bus": c.bus, "mux": c.mux, "addr": c.addr}
                             for c in hello.channels], **self._extra}
        self._hello = hello
        self.outbox.put_retained(envelope.topic(self.node_id, "info"), json.dumps(info).encode())
        if self.home_assistant:
            for topic, payload in homeassistant.discovery(self.node_id, hello, self.gateway_id):
                self.outbox.put_retained(topic, payload)

    def publish_state(self, online: bool) -> None:
        state = {"state": "online" if online else "offline", "gateway": self.gateway_id, "t_us": wall_us()}
        self.outbox.put_retained(envelope.topic(self.node_id, "state"), json.dumps(state).encode())

    def _estimate_due(self, rows: dict[int, list[dict[str, Any]]]) -> None:
        """The estimates of the channels due, in one vectorized pass (LeakTracker.update_many),
        each on its window as it was at the block that made it due; rows by frame seq."""
        if not self._due:
            return
        due, self._due = list(self._due.values()), {}
        for (item, seq), u in zip(due, self.tracker.update_many([b for b, _ in due])):
            if u is not None:  # (too few samples yet: due again at the next block)
                self._next_estimate[item.channel] = self._due_after(u.t_s)
                rows.setdefault(seq, []).append(update_row(u))

    def _restart(self, rows: dict[int, list[dict[str, Any]]]) -> None:
        self._estimate_due(rows)  # what is due belongs to the boot that ends
        self.tracker = LeakTracker(self.window_s, phase=self._phase)
        self._tracked = False
        self._next_estimate.clear()
        self._last_t_s.clear()
        self.restarts += 1

    def _on_frame(self, blocks: list[SampleBlock], boot: int | None, t_of_seq: dict[int, int],
                  rows: dict[int, list[dict[str, Any]]]) -> None:
        """The blocks of one frame (one per channel): into the tracker in one pass; an alarm
        for a channel's first onset, and the channels now due marked for their estimates."""
        if self._due and any(b.channel in self._due for b in blocks):
            self._estimate_due(rows)  # their windows as they were at their due blocks, before these
        # Each block's first and last device time (None: empty), read once: a node's frame
        # has one time axis (the core's blocks share its row), so once for all of them.
        b0 = blocks[0]
        if all(b.same_times(b0) for b in blocks):
            t = b0.t_s
            spans = [(float(t[0]), float(t[-1])) if len(t) else None] * len(blocks)
        else:
            spans = [(float(t[0]), float(t[-1])) if len(t) else None for t in (b.t_s for b in blocks)]
        last = self._last_t_s
        if any(s is not None and s[0] < last.get(b.channel, -math.inf) for b, s in zip(blocks, spans)):
            self._restart(rows)  # device time went back with no boot heard: the node started again
        for b, s in zip(blocks, spans):
            if s is not None:
                last[b.channel] = s[1]
        self._tracked = True
        firsts = self.tracker.ingest_many(blocks)  # O(frame); estimates at their cadence only
        for item, s, first_alarm in zip(blocks, spans, firsts):
            if s is None:
                continue
            due = s[1] >= self._next_estimate.get(item.channel, -math.inf)
            if not (first_alarm or due):
                continue
            seq = self.keys.seq_of_wire.get(item.seq, item.seq)
            if first_alarm:
                u = self.tracker.update(item)
                if u is not None:
                    self.outbox.put(self._a_topic, envelope.pack_json(
                        self.node_id, boot or 0, seq, t_of_seq.get(seq, wall_us()), update_row(u)))
            if due:
                self._due[item.channel] = (item, seq)  # a node's channels fall due on one frame: estimated together

    def on_items(self, items: list[Item]) -> None:
        """Publish the frames cut since the last call, then the estimates their samples give."""
        boot = self.keys.boot
        frames = self.keys.take()
        for seq, t_us, _type, raw, fboot in frames:
            self.outbox.put(self._t_topic, envelope.pack(self.node_id, fboot, seq, t_us, raw))
        self.frames_out += len(frames)
        if self.keys.handshake_changed:
            self.keys.handshake_changed = False
            hboot, hseq, ht_us = self.keys.handshake_key
            self.outbox.put_retained(self._h_topic, envelope.pack(self.node_id, hboot, hseq, ht_us,
                                                                  b"".join(self.keys.handshake)))
        t_of_seq = {seq: t_us for seq, t_us, *_ in frames}
        rows: dict[int, list[dict[str, Any]]] = {}
        heard = any(isinstance(i, messages.Event) and i.code == wire.EV_BOOT for i in items)
        if boot != self._tracker_boot:
            if self._tracked and not heard:
                self._restart(rows)  # a new boot told by its seq (FrameKeys): the device time starts again
            self._tracker_boot = boot
        frame: list[SampleBlock] = []  # the blocks of one frame, ingested together
        for item in items:
            if isinstance(item, SampleBlock):
                if frame and item.seq != frame[0].seq:
                    self._on_frame(frame, boot, t_of_seq, rows)
                    frame = []
                frame.append(item)
                continue
            if frame:
                self._on_frame(frame, boot, t_of_seq, rows)
                frame = []
            if isinstance(item, messages.Hello) and self._hello is not None and item != self._hello:
                self.publish_info(item)  # re-plugged, reflashed or re-configured: the retained info follows
            if isinstance(item, messages.Event) and item.code == wire.EV_BOOT and self._tracked:
                self._restart(rows)  # a new boot: its device time starts again; the old window is no estimate of it
        if frame:
            self._on_frame(frame, boot, t_of_seq, rows)
        self._estimate_due(rows)
        for seq, rs in rows.items():
            self.outbox.put(self._e_topic, envelope.pack_json(self.node_id, boot or 0, seq,
                                                               t_of_seq.get(seq, wall_us()), rs))
            self.estimates_out += len(rs)
            if self.home_assistant:
                for r in rs:
                    self.outbox.put_retained(homeassistant.state_topic(self.node_id, r["channel"]), homeassistant.state(r))
        if len(self.keys.seq_of_wire) > 4096:
            self.keys.seq_of_wire.clear()
