"""The stream core: from node bytes to compensated samples and messages, with no I/O.

One state machine serves a live port, a replay and a whole-recording export: feed
it bytes in batches of any size (a 4 KB read, a 16 MiB recording chunk) and it
gives the same items and counters whatever the batching. Per batch:

1. leakmon.wire.framing finds the frames (vectorized; pending bytes kept);
2. sequence gaps are counted for all frames at once;
3. SAMPLES frames between two other messages share the stream's state, so each
   such run is read by the array (leakmon.wire.samples): layouts checked, every
   t0 unwrapped (leakmon.wire.timebase), all rows of one layout compensated in one
   call of the compensator the registry (leakmon.sensors) made from the CALIB;
4. the other messages (HELLO, CALIB, EVENT...) are parsed one by one and change the
   state: the time base, the channels, their compensation.

``feed``/``finish`` give items (a SampleBlock per channel per SAMPLES frame, and the
messages, in stream order): the live and replay form. ``feed_table``/``finish_table``
give the same samples as one SampleTable per batch, and the messages: the export form.

A frame with a good CRC and an impossible field is counted in ``stats.malformed`` and
skipped; nothing a node sends makes the core raise. ``refused`` says why the last
message was refused, for a handshake that never completes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from leakmon import sensors, wire
from leakmon.errors import ProtocolError
from leakmon.sensors import Compensator
from leakmon.wire import messages
from leakmon.wire.framing import Batch, Expected, FrameDecoder
from leakmon.wire.samples import (
    CHANNELS_AT,
    PERIOD_AT,
    T0_AT,
    Channels,
    Compensated,
    Layout,
    SampleTable,
    assemble,
    layouts,
)
from leakmon.wire.scan import column, u16, u32
from leakmon.wire.timebase import TickUnwrapper

__all__ = ["Item", "LinkStats", "NodeStream", "SampleBlock", "SampleTable"]


class SampleBlock:
    """Compensated samples of one channel from one SAMPLES frame.

    The core compensates many frames at once into (frames, rows) arrays; a block keeps
    its frame's row number and slices its arrays when they are read, so that handing out
    one block per frame costs one small object, not three array views. (A block kept alive
    keeps those arrays: at most RUN_FRAMES frames' worth.)
    """

    __slots__ = ("channel", "seq", "_arrays", "_row")

    def __init__(self, channel: int, seq: int, t_s: np.ndarray, pressure_pa: np.ndarray,
                 temperature_k: np.ndarray, row: int | None = None) -> None:
        self.channel = channel
        self.seq = seq
        self._arrays, self._row = (t_s, pressure_pa, temperature_k), row

    @property
    def t_s(self) -> np.ndarray:
        """Unwrapped device time, seconds."""
        t = self._arrays[0]
        return t if self._row is None else t[self._row]

    @property
    def pressure_pa(self) -> np.ndarray:
        p = self._arrays[1]
        return p if self._row is None else p[self._row]

    @property
    def temperature_k(self) -> np.ndarray:
        k = self._arrays[2]
        return k if self._row is None else k[self._row]

    def same_times(self, other: SampleBlock) -> bool:
        """True when both read one row of one time array (the core's blocks of one frame):
        their t_s are then equal, without comparing them. False says nothing."""
        return self._arrays[0] is other._arrays[0] and self._row == other._row

    def __repr__(self) -> str:
        return f"SampleBlock(channel={self.channel}, seq={self.seq}, t_s={self.t_s!r}, ...)"


class _RowBlock(SampleBlock):
    """A SampleBlock made by the core: row `row` of (t_s, pressure_pa, temperature_k) arrays
    shared by the run. Four stores instead of six: a live read makes some 48 of these, and
    their constructor is a fair share of its cost."""

    __slots__ = ()

    def __init__(self, channel: int, seq: int, arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
                 row: int) -> None:  # (not SampleBlock.__init__: it would build the tuple again)
        self.channel = channel
        self.seq = seq
        self._arrays = arrays
        self._row = row


def _blocks(channel: int, seqs: list[int], arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[Item]:
    """One block per frame (row of arrays) of one channel, made by map: no Python loop."""
    return list(map(_RowBlock, repeat(channel), seqs, repeat(arrays), range(len(seqs))))


@dataclass(slots=True)
class LinkStats:
    frames: int = 0
    lost_frames: int = 0
    malformed: int = 0
    unknown_types: int = 0
    samples_before_handshake: int = 0


Item = SampleBlock | messages.Message
RUN_FRAMES = 8192  # SAMPLES frames decoded together at most (about 0.7 MB of a node's stream)


@dataclass(frozen=True, slots=True)
class _Run:
    """SAMPLES frames between two other messages, decoded: their seqs and per-layout results."""

    seq: np.ndarray  # uint16, of every well-formed frame of the run, in order
    groups: list[Compensated]

    def blocks(self) -> list[Item]:
        seqs = self.seq.tolist()
        if len(self.groups) == 1 and len(self.groups[0].channels) == 1:  # the common case, in order
            g = self.groups[0]
            ch, p, k = g.channels[0]
            return _blocks(ch, seqs, (g.t_s, p, k))
        per_frame: list[list[Item]] = [[] for _ in seqs]
        for g in self.groups:
            for j, f in enumerate(g.idx.tolist()):
                per_frame[f] += [_RowBlock(ch, seqs[f], (g.t_s, p, k), j) for ch, p, k in g.channels]
        return [b for frame in per_frame for b in frame]


_MICRO = np.array(1e-6)  # us -> s (a 0-d array: numpy takes it faster than a float, same value)


@dataclass(frozen=True, slots=True)
class _Steady:
    """What the last run of SAMPLES proved about the frames that follow in a steady stream:
    the frame the framing may expect (every byte but seq and t0 as in the run's last frame:
    the same layout and period), and that frame's layout and row times.

    Nothing in such a frame can be malformed (its layout was checked) and the state it is
    read with is unchanged (any other message drops this), so the live path reads a read
    made only of such frames without the layout checks: see NodeStream._steady_items."""

    expect: Expected
    layout: Layout
    row_us: np.ndarray  # float64: period_us * row, as _samples computes it
    raw_at: int  # where the rows begin in a frame
    row_size: int
    comp: Compensator | None  # the compensator of the one channel, if there is one


def _steady_from(block: np.ndarray, layout: Layout, comp: Compensator | None) -> _Steady:
    """The _Steady of a run whose frames lie back to back: the last frame is the template.
    comp: the compensator of the one channel, or None (several channels)."""
    first = CHANNELS_AT + 2 * len(layout.channels)
    mask = np.full(first, 0xFF, np.uint8)
    mask[wire.OFF_SEQ : wire.OFF_SEQ + 2] = 0
    mask[T0_AT : T0_AT + 4] = 0
    last = block[-1]
    period_us = float(last[PERIOD_AT : PERIOD_AT + 4].view("<u4")[0])
    return _Steady(Expected(block.shape[1], last[:first] & mask, mask),
                   Layout(np.arange(0), layout.channels, layout.rows),
                   period_us * np.arange(layout.rows, dtype=np.float64), first, layout.row_size, comp)


@dataclass
class NodeStream:
    """Decodes and interprets everything a node sends."""

    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    stats: LinkStats = field(default_factory=LinkStats)
    hello: messages.Hello | None = None
    calibrations: dict[int, messages.Calibration] = field(default_factory=dict)
    refused: str | None = None  # why the last malformed message was refused
    _comp: dict[int, tuple[Compensator, int]] = field(default_factory=dict)  # channel -> (compensator, raw size)
    _banks: dict[Channels, Compensator | None] = field(default_factory=dict)  # channels -> one pass
    _unwrap: TickUnwrapper | None = None
    _next_seq: int | None = None
    _steady: _Steady | None = None  # what the next read likely holds (live path)
    # Called with the frames each feed() cut, before they are read: a steady read's (frames,
    # size) uint8 rows (every one a SAMPLES frame like the last), else the Batch. A gateway
    # keys and publishes the frames a node sent from these (fleet.edge.FrameKeys) instead of
    # cutting the same bytes a second time.
    cut_taps: list[Callable[[Batch | np.ndarray], None]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """HELLO and every channel's calibration have arrived."""
        return self.hello is not None and all(c.channel in self._comp for c in self.hello.channels)

    # -- the two forms -------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[Item]:
        """Items completed by data: SampleBlocks and messages, in stream order."""
        if self._steady is not None:
            frames = self.decoder.take_expected(data, self._steady.expect)
            if frames is not None:
                for tap in self.cut_taps:
                    tap(frames)
                return self._steady_items(frames)
        return self._items(self._cut(self.decoder.take(data)))

    def finish(self) -> list[Item]:
        """At the end of a recording: what the decoder recovers behind a torn frame."""
        return self._items(self._cut(self.decoder.take(b"", final=True)))

    def _cut(self, batch: Batch) -> Batch:
        for tap in self.cut_taps:
            tap(batch)
        return batch

    def feed_table(self, data: bytes | bytearray | memoryview) -> tuple[SampleTable, list[messages.Message]]:
        """The same samples as feed(), as one table, and the messages."""
        return self._table(self._cut(self.decoder.take(data)))

    def finish_table(self) -> tuple[SampleTable, list[messages.Message]]:
        return self._table(self._cut(self.decoder.take(b"", final=True)))

    def _items(self, batch: Batch) -> list[Item]:
        out: list[Item] = []
        for seg in self._segments(batch):
            if isinstance(seg, _Run):
                out += seg.blocks()
            else:
                out.append(seg)
        return out

    def _table(self, batch: Batch) -> tuple[SampleTable, list[messages.Message]]:
        tables: list[SampleTable] = []
        msgs: list[messages.Message] = []
        for seg in self._segments(batch):
            if isinstance(seg, _Run):
                tables.append(assemble(seg.groups, seg.seq))
            else:
                msgs.append(seg)
        return SampleTable.concat(tables), msgs

    # -- one batch -------------------------------------------------------------------
    def _segments(self, batch: Batch) -> Iterator[_Run | messages.Message]:
        """Runs of SAMPLES and the other messages, in order; lazily, since each message
        changes the state the next run is read with."""
        if not len(batch):
            return
        a, starts, plens = batch.a, batch.start, batch.plen
        if batch.uniform:  # one size and one type: fields are columns of the buffer
            size = int(plens[0]) + wire.OVERHEAD
            self._count_seq(column(a, "<u2", int(starts[0]) + wire.OFF_SEQ, size, len(starts)))
            control = [] if a[starts[0] + wire.OFF_TYPE] == wire.T_SAMPLES else list(range(len(starts)))
        else:
            self._count_seq(u16(a, starts + wire.OFF_SEQ))
            control = np.flatnonzero(a[starts + wire.OFF_TYPE] != wire.T_SAMPLES).tolist()
        lo = 0
        for c in control + [len(starts)]:
            for k in range(lo, c, RUN_FRAMES):  # long runs in slices: temporaries stay cache-sized
                run = self._samples(a, starts[k : min(c, k + RUN_FRAMES)], plens[k : min(c, k + RUN_FRAMES)],
                                    batch.uniform)
                if run is not None:
                    yield run
            if c < len(starts):
                msg = self._control(batch, c)
                if msg is not None:
                    yield msg
            lo = c + 1

    def _count_seq(self, seq: np.ndarray) -> None:
        self.stats.frames += len(seq)
        first, last = int(seq[0]), int(seq[-1])
        # Frames lost before each frame: (seq - the one expected) mod 2**16.
        lost = ((first - self._next_seq) & 0xFFFF) if self._next_seq is not None else 0
        if len(seq) > 1:
            seq = seq.astype(np.uint16, copy=False)
            step = seq[1:] - seq[:-1]  # mod 2**16, as the counter wraps
            step -= 1
            lost += int(step.sum())
        self.stats.lost_frames += lost
        self._next_seq = (last + 1) & 0xFFFF

    def _control(self, batch: Batch, k: int) -> messages.Message | None:
        self._steady = None  # the state may change: what the last run proved no longer holds
        try:
            msg = messages.parse(batch.frame(k))
            if isinstance(msg, messages.Calibration):
                comp = sensors.compensator(msg.chip, msg.block)
        except ProtocolError as e:
            self.stats.malformed += 1
            self.refused = str(e)
            return None
        if isinstance(msg, messages.Hello):
            if self.hello is None or self.hello.ticks_bits != msg.ticks_bits:
                self._unwrap = TickUnwrapper(msg.ticks_bits)
            if self.hello is not None and self.hello.channels != msg.channels:
                self._comp.clear()
                self._banks.clear()
            self.hello = msg
        elif isinstance(msg, messages.Calibration):
            self.calibrations[msg.channel] = msg
            self._comp[msg.channel] = (comp, sensors.raw_size(msg.chip) or 0)
            self._banks.clear()
        elif isinstance(msg, messages.Unknown):
            self.stats.unknown_types += 1
        return msg

    def _samples(self, a: np.ndarray, s: np.ndarray, plen: np.ndarray, contiguous: bool) -> _Run | None:
        """SAMPLES frames at s (no other message between them): the state is constant.
        contiguous: they lie back to back, of one size (the framing checked it)."""
        ok, groups = layouts(a, s, plen, contiguous)
        good = int(np.count_nonzero(ok))
        self.stats.malformed += len(s) - good
        if not self.ready or self._unwrap is None:
            self.stats.samples_before_handshake += sum(len(g.idx) * g.rows for g in groups)
            return None
        if not good:
            return None
        if good != len(s):  # index the well-formed frames only
            pos = np.cumsum(ok) - 1
            groups = [Layout(pos[g.idx], g.channels, g.rows) for g in groups]
            s = s[ok]
        if len(groups) == 1 and groups[0].block is not None:  # back to back: read fields as columns
            p0, size = int(s[0]), groups[0].block.shape[1]
            t0_raw = column(a, "<u4", p0 + T0_AT, size, len(s))
            period_us = column(a, "<u4", p0 + PERIOD_AT, size, len(s)).astype(np.float64)
            seq = column(a, "<u2", p0 + wire.OFF_SEQ, size, len(s)).copy()
        else:
            t0_raw, period_us = u32(a, s + T0_AT), u32(a, s + PERIOD_AT).astype(np.float64)
            seq = u16(a, s + wire.OFF_SEQ).astype(np.uint16)
        t0_us = self._unwrap.unwrap_f64(t0_raw)
        out = []
        for g in groups:
            every = len(g.idx) == len(s)  # (idx is then 0, 1, 2...: no gather needed)
            t0, period = (t0_us, period_us) if every else (t0_us[g.idx], period_us[g.idx])
            t_s = (t0[:, None] + period[:, None] * np.arange(g.rows, dtype=np.float64)) * 1e-6
            out.append(self._compensate(g, g.idx, g.raw(a, s), t_s))
        if len(out) == 1 and groups[0].block is not None and len(out[0].channels) == len(groups[0].channels):
            one = self._comp[groups[0].channels[0][0]][0] if len(groups[0].channels) == 1 else None
            self._steady = _steady_from(groups[0].block, groups[0], one)
        return _Run(seq, out)

    def _compensate(self, g: Layout, idx: np.ndarray, raw: np.ndarray, t_s: np.ndarray) -> Compensated:
        """Each channel of frames of one layout through its compensator; a channel with no
        CALIB, or whose size is not what its chip gives, is counted malformed and left out."""
        n = len(t_s)
        bank = self._bank(g.channels)
        if bank is not None:  # every channel in one pass (a node's frame carries them all)
            p_all, k_all = bank(raw)
            return Compensated(idx, g.rows, [(ch, p_all[:, j].reshape(n, g.rows), k_all[:, j].reshape(n, g.rows))
                                             for j, (ch, _) in enumerate(g.channels)], t_s)  # fmt: skip
        chans, off = [], 0
        for ch, size in g.channels:
            comp = self._comp.get(ch)
            if comp is None or comp[1] != size:
                self.stats.malformed += n
            else:
                p, t = comp[0](raw if size == raw.shape[1] else np.ascontiguousarray(raw[:, off : off + size]))
                chans.append((ch, p.reshape(n, g.rows), t.reshape(n, g.rows)))
            off += size
        return Compensated(idx, g.rows, chans, t_s)

    def _bank(self, channels: Channels) -> Compensator | None:
        """One compensator for all of a layout's channels, if their chips offer one and each
        has its calibration and the size its chip gives; None: one by one."""
        if channels not in self._banks:
            comps = [self._comp.get(ch) for ch, _ in channels]
            ok = all(c is not None and c[1] == size for c, (_, size) in zip(comps, channels))
            self._banks[channels] = sensors.bank([c[0] for c in comps if c is not None]) if ok else None
        return self._banks[channels]

    def _steady_items(self, frames: np.ndarray) -> list[Item]:
        """The items of a read that take_expected found to be only frames like the last run's:
        _samples without its layout checks (the frames repeat a checked layout byte for byte)
        and with the row times' products kept from the last run; same values, same order."""
        st = self._steady
        assert st is not None and self._unwrap is not None
        g, m = st.layout, len(frames)
        seq = frames[:, wire.OFF_SEQ : wire.OFF_SEQ + 2].view("<u2")[:, 0]
        self._count_seq(seq)
        t_s = self._unwrap.unwrap_f64(frames[:, T0_AT : T0_AT + 4].view("<u4")[:, 0])[:, None] + st.row_us
        t_s *= _MICRO
        raw = frames[:, st.raw_at : st.raw_at + g.rows * st.row_size].reshape(m * g.rows, st.row_size)
        if st.comp is not None:  # one channel: its compensator on every row, one block per frame
            p, k = st.comp(raw)
            return _blocks(g.channels[0][0], seq.tolist(), (t_s, p.reshape(m, g.rows), k.reshape(m, g.rows)))
        return _Run(seq, [self._compensate(g, np.arange(m), raw, t_s)]).blocks()
