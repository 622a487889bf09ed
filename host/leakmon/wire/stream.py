"""From node bytes to compensated sample blocks and events, with no I/O.

The same object serves a live port and a recording: feed it bytes, get items.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from leakmon import wire
from leakmon.errors import HandshakeError, ProtocolError
from leakmon.sensors import Compensator, compensator
from leakmon.wire import messages
from leakmon.wire.framing import Frame, FrameDecoder
from leakmon.wire.timebase import TickUnwrapper


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """Compensated samples of one channel from one SAMPLES frame."""

    channel: int
    seq: int
    t_s: np.ndarray  # unwrapped device time, seconds
    pressure_pa: np.ndarray
    temperature_k: np.ndarray


@dataclass(slots=True)
class LinkStats:
    frames: int = 0
    lost_frames: int = 0
    malformed: int = 0
    unknown_types: int = 0
    samples_before_handshake: int = 0


Item = SampleBlock | messages.Message


@dataclass
class NodeStream:
    """Decodes and interprets everything a node sends."""

    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    stats: LinkStats = field(default_factory=LinkStats)
    hello: messages.Hello | None = None
    calibrations: dict[int, messages.Calibration] = field(default_factory=dict)
    _comp: dict[int, Compensator] = field(default_factory=dict)
    _unwrap: TickUnwrapper | None = None
    _next_seq: int | None = None

    @property
    def ready(self) -> bool:
        """HELLO and every channel's calibration have arrived."""
        return self.hello is not None and all(c.channel in self._comp for c in self.hello.channels)

    def feed(self, data: bytes) -> list[Item]:
        return self._items(self.decoder.feed(data))

    def finish(self) -> list[Item]:
        """At the end of a recording: what the decoder recovers behind a torn frame."""
        return self._items(self.decoder.finish())

    def _items(self, frames: list[Frame]) -> list[Item]:
        out: list[Item] = []
        for fr in frames:
            self._count_seq(fr.seq)
            try:
                msg = messages.parse(fr)
            except ProtocolError:
                self.stats.malformed += 1
                continue
            if isinstance(msg, messages.Samples):
                out.extend(self._blocks(msg))
                continue
            if isinstance(msg, messages.Hello):
                self._on_hello(msg)
            elif isinstance(msg, messages.Calibration):
                self._on_calibration(msg)
            elif isinstance(msg, messages.Unknown):
                self.stats.unknown_types += 1
            out.append(msg)
        return out

    def _count_seq(self, seq: int) -> None:
        self.stats.frames += 1
        if self._next_seq is not None and seq != self._next_seq:
            self.stats.lost_frames += (seq - self._next_seq) & 0xFFFF
        self._next_seq = (seq + 1) & 0xFFFF

    def _on_hello(self, h: messages.Hello) -> None:
        if h.proto_major != wire.VERSION:
            raise HandshakeError(
                f"node speaks protocol v{h.proto_major}.{h.proto_minor}, this host speaks v{wire.VERSION}"
            )
        if self.hello is None or self.hello.ticks_bits != h.ticks_bits:
            self._unwrap = TickUnwrapper(h.ticks_bits)
        if self.hello is not None and self.hello.channels != h.channels:
            self._comp.clear()
        self.hello = h

    def _on_calibration(self, c: messages.Calibration) -> None:
        self.calibrations[c.channel] = c
        self._comp[c.channel] = compensator(c.chip, c.block)

    def _blocks(self, s: messages.Samples) -> list[SampleBlock]:
        if not self.ready or self._unwrap is None:
            self.stats.samples_before_handshake += len(s.raw)
            return []
        t0_us = self._unwrap.unwrap(s.t0_ticks_us)
        n = s.raw.shape[0]
        t_s = (t0_us + s.period_us * np.arange(n, dtype=np.float64)) * 1e-6
        blocks = []
        for k, (ch, _size) in enumerate(s.channels):
            comp = self._comp.get(ch)
            if comp is None:
                self.stats.malformed += 1
                continue
            p, t = comp(np.ascontiguousarray(s.channel_raw(k)))
            blocks.append(SampleBlock(ch, s.seq, t_s, p, t))
        return blocks
