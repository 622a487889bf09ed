"""Streaming frame decoder: bytes in, frames out, no I/O.

Resynchronizes after garbage: a frame whose CRC fails is abandoned one byte past
its sync, so an intact frame starting inside the bad bytes is still found.
"""

from __future__ import annotations

from dataclasses import dataclass

from leakmon import wire


@dataclass(frozen=True, slots=True)
class Frame:
    msg_type: int
    seq: int
    payload: bytes


@dataclass(slots=True)
class DecoderStats:
    bytes_in: int = 0
    bytes_skipped: int = 0
    frames: int = 0
    crc_errors: int = 0
    oversize: int = 0
    unknown_version: int = 0


class FrameDecoder:
    """feed(bytes) -> frames with good CRCs; counters in .stats."""

    def __init__(self, max_payload: int = wire.MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.stats = DecoderStats()
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self.stats.bytes_in += len(data)
        buf = self._buf
        buf += data
        out: list[Frame] = []
        pos = 0
        n = len(buf)
        while True:
            i = buf.find(wire.SYNC, pos)
            if i < 0:
                # Keep a trailing first sync byte: its partner may be in the next chunk.
                keep = 1 if n and buf[-1] == wire.SYNC0 else 0
                self.stats.bytes_skipped += n - keep - pos if n - keep > pos else 0
                pos = max(pos, n - keep)
                break
            self.stats.bytes_skipped += i - pos
            pos = i
            if n - i < wire.HEADER_SIZE:
                break
            plen = buf[i + 6] | (buf[i + 7] << 8)
            if plen > self.max_payload:
                self.stats.oversize += 1
                self.stats.bytes_skipped += 1
                pos = i + 1
                continue
            end = i + wire.HEADER_SIZE + plen
            if n < end + wire.CRC_SIZE:
                break
            crc = buf[end] | (buf[end + 1] << 8)
            if crc != wire.crc16(buf, i + 2, end):
                self.stats.crc_errors += 1
                self.stats.bytes_skipped += 1  # the false sync byte itself
                pos = i + 1
                continue
            pos = end + wire.CRC_SIZE
            if buf[i + 2] != wire.VERSION:
                self.stats.unknown_version += 1
                continue
            self.stats.frames += 1
            out.append(Frame(buf[i + 3], buf[i + 4] | (buf[i + 5] << 8), bytes(buf[i + wire.HEADER_SIZE : end])))
        del buf[:pos]
        return out

    def drop_pending(self) -> None:
        """Forget a partial frame (the link broke inside it): its bytes count as skipped."""
        self.stats.bytes_skipped += len(self._buf)
        self._buf.clear()

    def finish(self) -> list[Frame]:
        """At end of input: give up on an incomplete frame and rescan what is behind it.

        A corrupted length field makes the decoder wait for bytes that belong to the
        next frames; live, the CRC then fails and they are found, but at the end of a
        recording nothing more comes, so they are recovered here.
        """
        out: list[Frame] = []
        while self._buf:
            del self._buf[0]
            self.stats.bytes_skipped += 1
            out += self.feed(b"")
        return out
