"""Vectorized decoding: many frames at once, for recordings, exports and benchmarks.

``FastStream`` gives exactly what ``NodeStream`` gives on the same bytes (the same
frames, samples bit for bit, counters) but works on whole buffers with numpy:
leakmon.wire.scan finds the frames, every SAMPLES header is gathered at once, and
all rows of one layout are compensated in one call; only the few other messages
(HELLO, CALIB, EVENT...) are parsed one by one. tests/host/test_fastdecode.py holds
it to the streaming decoder on clean bytes, garbage and bit flips.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from leakmon import wire
from leakmon.errors import HandshakeError, ProtocolError
from leakmon.sensors import Compensator, bmp3, compensator
from leakmon.wire import messages
from leakmon.wire.framing import DecoderStats, Frame
from leakmon.wire.scan import find_frames, u16, u32, unaligned
from leakmon.wire.stream import LinkStats, SampleBlock
from leakmon.wire.timebase import TickUnwrapper

_SAMPLES_DATA = wire.HEADER_SIZE + wire.SAMPLES_HEADER_SIZE  # frame offset of the channel list


@dataclass(frozen=True, slots=True)
class SampleTable:
    """Compensated samples, one entry per sample per channel, in the order the node sent them."""

    t_s: np.ndarray
    channel: np.ndarray  # uint8
    pressure_pa: np.ndarray
    temperature_k: np.ndarray
    seq: np.ndarray  # uint16, of the SAMPLES frame

    def __len__(self) -> int:
        return len(self.t_s)

    @classmethod
    def empty(cls) -> "SampleTable":
        f = np.empty(0, np.float64)
        return cls(f, np.empty(0, np.uint8), f, f, np.empty(0, np.uint16))

    @classmethod
    def concat(cls, tables: list["SampleTable"]) -> "SampleTable":
        tables = [t for t in tables if len(t)]
        if len(tables) == 1:
            return tables[0]
        if not tables:
            return cls.empty()
        return cls(*(np.concatenate([getattr(t, k) for t in tables]) for k in cls.__slots__))

    @classmethod
    def from_blocks(cls, blocks: list[SampleBlock]) -> "SampleTable":
        """The table of NodeStream's blocks (what the tests compare against)."""
        if not blocks:
            return cls.empty()
        n = [len(b.t_s) for b in blocks]
        return cls(np.concatenate([b.t_s for b in blocks]),
                   np.repeat(np.array([b.channel for b in blocks], np.uint8), n),
                   np.concatenate([b.pressure_pa for b in blocks]),
                   np.concatenate([b.temperature_k for b in blocks]),
                   np.repeat(np.array([b.seq for b in blocks], np.uint16), n))


@dataclass
class FastStream:
    """NodeStream's results for whole buffers at a time: feed(bytes) -> (samples, other messages)."""

    decoder_stats: DecoderStats = field(default_factory=DecoderStats)
    stats: LinkStats = field(default_factory=LinkStats)
    hello: messages.Hello | None = None
    calibrations: dict[int, messages.Calibration] = field(default_factory=dict)
    _comp: dict[int, Compensator] = field(default_factory=dict)
    _unwrap: TickUnwrapper | None = None
    _next_seq: int | None = None
    _pending: bytes = b""
    _bmp3_cal: dict[int, tuple[tuple[int, bytes], bmp3.Bmp3Calibration]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.hello is not None and all(c.channel in self._comp for c in self.hello.channels)

    def feed(self, data: bytes) -> tuple[SampleTable, list[messages.Message]]:
        self.decoder_stats.bytes_in += len(data)
        return self._decode(self._pending + bytes(data), final=False)

    def drop_pending(self) -> None:
        """Forget a partial frame (the link broke inside it), as FrameDecoder.drop_pending."""
        self.decoder_stats.bytes_skipped += len(self._pending)
        self._pending = b""

    def finish(self) -> tuple[SampleTable, list[messages.Message]]:
        return self._decode(self._pending, final=True)

    def _decode(self, buf: bytes, final: bool) -> tuple[SampleTable, list[messages.Message]]:
        a = np.frombuffer(buf, np.uint8)
        fr = find_frames(a, self.decoder_stats, final)
        self._pending = buf[fr.consumed :]
        ver = a[fr.start + 2]
        self.decoder_stats.unknown_version += int(np.count_nonzero(ver != wire.VERSION))
        starts, plens = fr.start[ver == wire.VERSION], fr.plen[ver == wire.VERSION]
        self.decoder_stats.frames += len(starts)
        self._count_seq(u16(a, starts + 4))
        types = a[starts + 3]
        control = np.flatnonzero(types != wire.T_SAMPLES).tolist()
        tables: list[SampleTable] = []
        msgs: list[messages.Message] = []
        lo = 0
        for c in control + [len(starts)]:
            if c > lo:
                tables.append(self._samples(a, starts[lo:c], plens[lo:c]))
            if c < len(starts):
                s, p = int(starts[c]), int(plens[c])
                frame = Frame(int(types[c]), int(a[s + 4]) | int(a[s + 5]) << 8, buf[s + 8 : s + 8 + p])
                msg = self._control(frame)
                if msg is not None:
                    msgs.append(msg)
            lo = c + 1
        return SampleTable.concat(tables), msgs

    def _count_seq(self, seq: np.ndarray) -> None:
        self.stats.frames += len(seq)
        if not len(seq):
            return
        prev = np.concatenate([[seq[0] if self._next_seq is None else self._next_seq], (seq[:-1] + 1) & 0xFFFF])
        self.stats.lost_frames += int(np.sum((seq - prev) & 0xFFFF))
        self._next_seq = int(seq[-1] + 1) & 0xFFFF

    def _control(self, frame: Frame) -> messages.Message | None:
        try:
            msg = messages.parse(frame)
        except ProtocolError:
            self.stats.malformed += 1
            return None
        if isinstance(msg, messages.Hello):
            if msg.proto_major != wire.VERSION:
                raise HandshakeError(
                    f"node speaks protocol v{msg.proto_major}.{msg.proto_minor}, this host speaks v{wire.VERSION}")
            if self.hello is None or self.hello.ticks_bits != msg.ticks_bits:
                self._unwrap = TickUnwrapper(msg.ticks_bits)
            if self.hello is not None and self.hello.channels != msg.channels:
                self._comp.clear()
            self.hello = msg
        elif isinstance(msg, messages.Calibration):
            self.calibrations[msg.channel] = msg
            self._comp[msg.channel] = compensator(msg.chip, msg.block)
        elif isinstance(msg, messages.Unknown):
            self.stats.unknown_types += 1
        return msg

    def _samples(self, a: np.ndarray, s: np.ndarray, plen: np.ndarray) -> SampleTable:
        """SAMPLES frames at s (no control frame between them): state is constant."""
        lay = _layouts(a, s, plen)
        self.stats.malformed += int(np.count_nonzero(~lay.ok))
        s, lay = s[lay.ok], lay.select(lay.ok)
        if not self.ready or self._unwrap is None:
            self.stats.samples_before_handshake += int(np.sum(lay.n_rows))
            return SampleTable.empty()
        t0_us = unwrap_many(self._unwrap, u32(a, s + 8))
        period = u32(a, s + 12).astype(np.float64)
        return _assemble(list(self._groups(a, s, lay, t0_us, period)), u16(a, s + 4).astype(np.uint16))

    def _groups(self, a: np.ndarray, s: np.ndarray, lay: "Layouts", t0_us: np.ndarray,
                period: np.ndarray) -> Iterator[tuple[np.ndarray, int, list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]]:
        """Per layout: frame indices, rows per frame, [(channel, p, T)] as (frames, rows), t_s (frames, rows)."""
        for idx, chans, rows in lay.groups(a, s):
            row_size = sum(size for _, size in chans)
            if rows and row_size:
                raw = sliding_window_view(a, rows * row_size)[s[idx] + _SAMPLES_DATA + 2 * len(chans)]
                raw = raw.reshape(len(idx) * rows, row_size)
            else:
                raw = np.zeros((len(idx) * rows, row_size), np.uint8)
            t_s = (t0_us[idx].astype(np.float64)[:, None] + period[idx][:, None] * np.arange(rows, dtype=np.float64)) * 1e-6
            out, off = [], 0
            for ch, size in chans:
                if ch not in self._comp:
                    self.stats.malformed += len(idx)
                else:
                    p, t = self._compensate(ch, raw[:, off : off + size])
                    out.append((ch, p.reshape(len(idx), rows), t.reshape(len(idx), rows)))
                off += size
            yield idx, rows, out, t_s


    def _compensate(self, ch: int, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The channel's compensation; for BMP3xx the same maths with a leaner unpacking."""
        cal = self.calibrations.get(ch)
        if cal is not None and cal.chip in _BMP3_CHIPS and raw.shape[1] == bmp3.RAW_LEN:
            key = (ch, cal.block)
            if self._bmp3_cal.get(ch, (None,))[0] != key:
                self._bmp3_cal[ch] = (key, bmp3.parse_calibration(cal.block))
            # The same integers as bmp3.unpack_raw, read as 32-bit words straight from the rows:
            # pressure is bytes 0..2 of a row (word at 0, top byte masked), temperature
            # bytes 3..5 (word at 2, shifted), so no word reaches past the last row.
            m = raw.shape[0]
            u32 = unaligned(np.ascontiguousarray(raw).reshape(-1), "<u4")
            up = u32[0::6][:m] & 0xFFFFFF
            ut = u32[2::6][:m] >> 8
            return bmp3.compensate(up, ut, self._bmp3_cal[ch][1])
        return self._comp[ch](np.ascontiguousarray(raw))


_BMP3_CHIPS = (wire.CHIP_BMP388, wire.CHIP_BMP390)


@dataclass(slots=True)
class Layouts:
    """Per SAMPLES frame: payload well formed, channel count, rows."""

    ok: np.ndarray
    n_ch: np.ndarray
    n_rows: np.ndarray

    def select(self, m: np.ndarray) -> "Layouts":
        return Layouts(self.ok[m], self.n_ch[m], self.n_rows[m])

    def groups(self, a: np.ndarray, s: np.ndarray) -> Iterator[tuple[np.ndarray, tuple[tuple[int, int], ...], int]]:
        """(frame indices, channel list, rows) for each distinct layout."""
        for c in np.flatnonzero(np.bincount(self.n_ch, minlength=1)).tolist():
            fi = np.flatnonzero(self.n_ch == c)
            key = np.concatenate([sliding_window_view(a, 2 * c)[s[fi] + _SAMPLES_DATA] if c else
                                  np.empty((len(fi), 0), np.uint8),
                                  self.n_rows[fi].astype("<u2").view(np.uint8).reshape(-1, 2)], axis=1)
            if (key == key[0]).all():
                uniq, inv = key[:1], np.zeros(len(fi), np.int64)
            else:
                uniq, inv = np.unique(key, axis=0, return_inverse=True)
                inv = inv.reshape(-1)
            for g, k in enumerate(uniq):
                chans = tuple((int(k[2 * i]), int(k[2 * i + 1])) for i in range(c))
                yield fi[inv == g], chans, int(k[-2]) | int(k[-1]) << 8


def _layouts(a: np.ndarray, s: np.ndarray, plen: np.ndarray) -> Layouts:
    """What parse_samples accepts: a whole header and rows that exactly fill the payload."""
    ok = plen >= wire.SAMPLES_HEADER_SIZE
    n_ch = np.zeros(len(s), np.int64)
    n_rows = np.zeros(len(s), np.int64)
    n_ch[ok] = a[s[ok] + 18]
    n_rows[ok] = u16(a, s[ok] + 16)
    ok &= plen >= wire.SAMPLES_HEADER_SIZE + 2 * n_ch
    row_size = np.zeros(len(s), np.int64)
    for c in np.flatnonzero(np.bincount(n_ch[ok], minlength=1)).tolist():
        fi = np.flatnonzero(ok & (n_ch == c))
        for k in range(c):
            row_size[fi] += a[s[fi] + _SAMPLES_DATA + 2 * k + 1]
    ok &= plen - wire.SAMPLES_HEADER_SIZE - 2 * n_ch == n_rows * row_size
    return Layouts(ok, n_ch, n_rows)


def _assemble(groups: list[tuple[np.ndarray, int, list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]],
              seq: np.ndarray) -> SampleTable:
    """One table in stream order (frame, then channel, then row) from per-layout results."""
    per_frame = np.zeros(len(seq), np.int64)
    for idx, rows, chans, _ in groups:
        per_frame[idx] = rows * len(chans)
    total = int(per_frame.sum())
    if len(groups) == 1 and len(groups[0][0]) == len(seq):  # one layout: already in order
        idx, rows, chans, t_s = groups[0]
        n_ch = len(chans)
        if not n_ch or not rows:
            return SampleTable.empty()
        return SampleTable(np.broadcast_to(t_s[:, None, :], (len(idx), n_ch, rows)).reshape(-1),
                           np.tile(np.repeat(np.array([c for c, _, _ in chans], np.uint8), rows), len(idx)),
                           np.stack([p for _, p, _ in chans], axis=1).reshape(-1),
                           np.stack([t for _, _, t in chans], axis=1).reshape(-1),
                           np.repeat(seq, rows * n_ch))
    offset = np.concatenate([[0], np.cumsum(per_frame)[:-1]])
    out = SampleTable(np.empty(total), np.empty(total, np.uint8), np.empty(total), np.empty(total),
                      np.empty(total, np.uint16))
    for idx, rows, chans, t_s in groups:
        if not chans or not rows:
            continue
        pos = (offset[idx][:, None, None] + np.arange(len(chans))[None, :, None] * rows
               + np.arange(rows)[None, None, :]).reshape(-1)
        out.t_s[pos] = np.broadcast_to(t_s[:, None, :], (len(idx), len(chans), rows)).reshape(-1)
        out.channel[pos] = np.repeat(np.array([c for c, _, _ in chans], np.uint8), rows)[None, :].repeat(len(idx), 0).reshape(-1)
        out.pressure_pa[pos] = np.stack([p for _, p, _ in chans], axis=1).reshape(-1)
        out.temperature_k[pos] = np.stack([t for _, _, t in chans], axis=1).reshape(-1)
        out.seq[pos] = np.repeat(seq[idx], rows * len(chans))
    return out


def unwrap_many(u: TickUnwrapper, ticks: np.ndarray) -> np.ndarray:
    """TickUnwrapper.unwrap over an array, in order, leaving u as the loop would.

    Reaches into TickUnwrapper's state: the same arithmetic, vectorized.
    """
    if not len(ticks):
        return np.empty(0, np.int64)
    period = u.period
    first = u._last_raw is None
    prev = np.concatenate([[ticks[0] if first else u._last_raw], ticks[:-1]])
    step = (ticks - prev) % period
    step = np.where(step > period // 2, step - period, step)
    base = int(ticks[0]) if first else u._last_us
    us = base + np.cumsum(step)
    u._last_raw = int(ticks[-1])
    u._last_us = int(us[-1])
    return us
