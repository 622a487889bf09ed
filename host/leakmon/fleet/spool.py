"""A bounded disk spool between a gateway and its broker.

Every message is appended here first and leaves only when the broker has acknowledged
it (PUBACK), so a broker restart, a network cut or a gateway crash loses nothing: what
was not acknowledged is sent again, in order (the consumer stores each key once).

Layout: segment files `<first index>.seg` of records
    u32 payload length, u16 topic length, u32 crc32(topic + payload), i64 spooled at (us), topic, payload
and `acked`, the index of the first record not yet acknowledged. A torn record at the
end (power cut mid-write) fails its CRC and is cut off at start-up. The spool is bounded:
past max_bytes the oldest segment is dropped and the loss counted (`dropped`), since a
node cannot be paused.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from leakmon.fleet import FleetError

REC = struct.Struct("<IHIq")


@dataclass(frozen=True, slots=True)
class Record:
    index: int
    topic: str
    payload: bytes
    spooled_us: int


@dataclass(slots=True)
class SpoolStats:
    appended: int = 0
    acked: int = 0
    dropped: int = 0  # records given up because the spool was full


def _seg_name(first: int) -> str:
    return f"{first:020d}.seg"


class Spool:
    """append() from any thread; read()/ack()/rewind() from the one sender thread."""

    def __init__(self, folder: Path, max_bytes: int = 1 << 30, segment_bytes: int = 4 << 20) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # One process per spool: two gateways appending to one spool would interleave records.
        self._lockfile = open(self.folder / "lock", "a")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            self._lockfile.close()
            raise FleetError(f"the spool {self.folder} is in use by another gateway") from e
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(max_bytes // 4, 4096))
        self.stats = SpoolStats()
        self._lock = threading.Lock()
        self._segments: list[int] = sorted(int(p.stem) for p in self.folder.glob("*.seg"))
        self._sizes: dict[int, int] = {}
        self._acked_path = self.folder / "acked"
        self.watermark = int(self._acked_path.read_text()) if self._acked_path.exists() else 0
        self._acked: set[int] = set()
        self._next = self._recover()
        if not self._segments or self._sizes[self._segments[-1]] >= self.segment_bytes:
            self._roll()
        self._writer = open(self.folder / _seg_name(self._segments[-1]), "ab")
        self.watermark = max(self.watermark, self._segments[0])
        self._reader: BinaryIO | None = None
        self._reader_seg = -1
        self._read_index = 0
        self._last_saved = 0.0
        self.rewind()

    # -- start-up ----------------------------------------------------------------------
    def _scan(self, first: int) -> tuple[int, int]:
        """(records, good bytes) of a segment; cuts a torn tail."""
        path = self.folder / _seg_name(first)
        data = path.read_bytes()
        pos = n = 0
        while pos + REC.size <= len(data):
            plen, tlen, crc, _t = REC.unpack_from(data, pos)
            end = pos + REC.size + tlen + plen
            if end > len(data) or zlib.crc32(data[pos + REC.size:end]) != crc:
                break
            pos, n = end, n + 1
        if pos != len(data):
            with open(path, "r+b") as f:
                f.truncate(pos)
        return n, pos

    def _recover(self) -> int:
        nxt = 0
        for first in self._segments:
            n, size = self._scan(first)
            self._sizes[first] = size
            nxt = first + n
        return max(nxt, self.watermark)

    def _roll(self) -> None:
        if self._segments and self._sizes.get(self._segments[-1], 0) == 0 and self._segments[-1] == self._next:
            return
        self._segments.append(self._next)
        self._sizes[self._next] = 0
        (self.folder / _seg_name(self._next)).touch()
        if hasattr(self, "_writer"):
            self._writer.close()
            self._writer = open(self.folder / _seg_name(self._next), "ab")

    # -- writer side ------------------------------------------------------------------
    def append(self, topic: str, payload: bytes, spooled_us: int | None = None) -> int:
        t = topic.encode()
        body = t + payload
        rec = REC.pack(len(payload), len(t), zlib.crc32(body), spooled_us or time.time_ns() // 1000) + body
        with self._lock:
            if self._sizes[self._segments[-1]] >= self.segment_bytes:
                self._roll()
            self._writer.write(rec)
            self._writer.flush()
            self._sizes[self._segments[-1]] += len(rec)
            index = self._next
            self._next += 1
            self.stats.appended += 1
            while sum(self._sizes.values()) > self.max_bytes and len(self._segments) > 1:
                self._drop_oldest()
        return index

    def _drop_oldest(self) -> None:
        first = self._segments.pop(0)
        nxt = self._segments[0]
        lost = max(0, nxt - max(self.watermark, first))
        self.stats.dropped += lost
        del self._sizes[first]
        (self.folder / _seg_name(first)).unlink(missing_ok=True)
        self.watermark = max(self.watermark, nxt)
        self._acked = {i for i in self._acked if i >= self.watermark}
        if self._read_index < nxt:
            self._reader_seg = -1  # reopened at the new oldest segment on the next read
            self._read_index = nxt

    @property
    def backlog(self) -> int:
        """Records not yet acknowledged by the broker."""
        return self._next - self.watermark

    # -- sender side ------------------------------------------------------------------
    def rewind(self) -> None:
        """Send again from the first record not acknowledged (after a reconnect)."""
        with self._lock:
            self._read_index = self.watermark
            self._reader_seg = -1

    def _open_reader(self) -> None:
        seg = max(s for s in self._segments if s <= self._read_index)
        if self._reader is not None:
            self._reader.close()
        self._reader = open(self.folder / _seg_name(seg), "rb")
        self._reader_seg = seg
        idx = seg
        while idx < self._read_index:  # skip to the record wanted
            hdr = self._reader.read(REC.size)
            plen, tlen, _crc, _t = REC.unpack(hdr)
            self._reader.seek(tlen + plen, os.SEEK_CUR)
            idx += 1

    def read(self, max_n: int) -> list[Record]:
        """Up to max_n records after the last one read."""
        out: list[Record] = []
        with self._lock:
            while len(out) < max_n and self._read_index < self._next:
                if self._reader_seg < 0:
                    self._open_reader()
                seg_i = self._segments.index(self._reader_seg)
                if seg_i + 1 < len(self._segments) and self._read_index >= self._segments[seg_i + 1]:
                    self._reader_seg = -1
                    continue
                assert self._reader is not None
                hdr = self._reader.read(REC.size)
                plen, tlen, _crc, t_us = REC.unpack(hdr)
                body = self._reader.read(tlen + plen)
                out.append(Record(self._read_index, body[:tlen].decode(), body[tlen:], t_us))
                self._read_index += 1
        return out

    def ack(self, index: int) -> None:
        with self._lock:
            if index < self.watermark:
                return
            self._acked.add(index)
            self.stats.acked += 1
            while self.watermark in self._acked:
                self._acked.discard(self.watermark)
                self.watermark += 1
            while len(self._segments) > 1 and self._segments[1] <= self.watermark:
                first = self._segments.pop(0)
                del self._sizes[first]
                if self._reader_seg == first and self._reader is not None:
                    self._reader.close()
                    self._reader, self._reader_seg = None, -1
                (self.folder / _seg_name(first)).unlink(missing_ok=True)
                self._save()
            if time.monotonic() - self._last_saved > 1.0:
                self._save()

    def _save(self) -> None:
        tmp = self._acked_path.with_suffix(".tmp")
        tmp.write_text(str(self.watermark))
        os.replace(tmp, self._acked_path)
        self._last_saved = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._save()
            self._writer.close()
            if self._reader is not None:
                self._reader.close()
            self._lockfile.close()
