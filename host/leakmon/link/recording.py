"""Recordings: every byte a node sent, as received, with the host's receive times.

A recording is lossless: the raw byte stream is kept, not decoded frames, so
frames that fail their CRC, garbage between frames and half frames at a reconnect
are all in it and replay through the very decoder a live run uses (and are counted
again on replay). It is crash-safe: data is handed to the OS at least every
``FLUSH_INTERVAL_S`` and fsynced on close, and a reader takes what is whole and
reports a torn final chunk instead of failing.

File format, version 1 (all integers little-endian)::

    header
      0   8  magic       b"\\x89LKMREC\\n"  (a high-bit byte and a newline: text-mode
                                          transfers and foreign files fail here)
      8   2  version     u16, 1
      10  2  flags       u16, 0 (reserved)
      12  8  start_wall  f64, Unix time (s) when the recording started
      20  4  meta_len    u32, at most 65536
      24  n  meta        UTF-8 JSON object: source, leakmon version, and the view's
                         window_s/duration_s (replay's defaults)
      24+n 4 crc32       of bytes 0 .. 24+n (zlib.crc32, CRC-32/ISO-HDLC)
    then chunks until the end of the file
      0   4  length      u32, bytes of data (at most 16 MiB)
      4   1  kind        0 bytes received from the node, 1 bytes sent to it,
                         2 a note: a UTF-8 JSON object whose "event" is link-lost,
                         reconnected, gap or stopped (replay drops a partial frame
                         at "reconnected", as the live run did when it reopened)
      5   8  t_s         f64, host time of receipt: monotonic clock, s since the
                         recording started (wall time = start_wall + t_s)
      13  n  data        the bytes exactly as read from the port
      13+n 4 crc32       of bytes 0 .. 13+n of the chunk

A chunk's CRC protects the file, not the link: a chunk whose CRC fails holds bytes
that changed on disk (or garbage appended to the file). Reading ends there and the
reader sets ``damage`` naming its offset, so every chunk before it is still used;
``report_tail`` then makes it one RecordingError, after the caller has written its
output. A chunk cut short by the end of the file (a crash mid-write), or a tail of
zeros (what some filesystems leave after a power cut), ends the recording too; the
reader sets ``truncated`` and ``tail_bytes``, which is a warning, not an error.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from leakmon.errors import RecordingError
from leakmon.wire.stream import Item, NodeStream, SampleTable

MAGIC = b"\x89LKMREC\n"
FORMAT_VERSION = 1
HEADER_FMT = "<8sHHdI"
HEADER_SIZE = struct.calcsize(HEADER_FMT)
CHUNK_FMT = "<IBd"
CHUNK_HEAD = struct.calcsize(CHUNK_FMT)
CRC_FMT = "<I"
CRC_SIZE = 4
MAX_META = 65536
MAX_CHUNK = 16 * 1024 * 1024

KIND_RX = 0
KIND_TX = 1
KIND_NOTE = 2
KIND_NAMES = {KIND_RX: "rx", KIND_TX: "tx", KIND_NOTE: "note"}

FLUSH_INTERVAL_S = 0.5
FSYNC_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class Chunk:
    kind: int
    t_s: float
    data: bytes
    offset: int  # of the chunk in the file

    @property
    def note(self) -> dict[str, Any]:
        """The JSON object of a KIND_NOTE chunk."""
        return dict(json.loads(self.data.decode("utf-8")))


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    start_wall_s: float
    meta: dict[str, Any]
    size: int  # bytes of the header in the file


class RecordingWriter:
    """Appends chunks; hands data to the OS every FLUSH_INTERVAL_S and fsyncs on close.

    ``clock`` (monotonic seconds) is injectable so tests can drive the flush policy.
    """

    def __init__(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.monotonic, flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.path = Path(path)
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._broken = False
        try:
            self._f: IO[bytes] = open(self.path, "wb")
        except OSError as e:
            raise RecordingError(f"cannot write {self.path}: {e.strerror or e}") from e
        self._t0 = clock()
        self._last_flush = self._last_fsync = self._t0
        self.start_wall_s = time.time()
        self.bytes_rx = 0
        self.chunks = 0
        meta_b = json.dumps(meta or {}, sort_keys=True).encode()
        if len(meta_b) > MAX_META:
            raise RecordingError(f"recording metadata is {len(meta_b)} bytes, at most {MAX_META}")
        head = struct.pack(HEADER_FMT, MAGIC, FORMAT_VERSION, 0, self.start_wall_s, len(meta_b)) + meta_b
        self._write(head + struct.pack(CRC_FMT, zlib.crc32(head)))
        self.flush(fsync=True)

    def elapsed_s(self) -> float:
        return self._clock() - self._t0

    def write(self, data: bytes, kind: int = KIND_RX) -> None:
        """One chunk, stamped now; empty data writes nothing."""
        if not data:
            self.poll()
            return
        if len(data) > MAX_CHUNK:
            for k in range(0, len(data), MAX_CHUNK):
                self.write(data[k : k + MAX_CHUNK], kind)
            return
        head = struct.pack(CHUNK_FMT, len(data), kind, self.elapsed_s())
        crc = zlib.crc32(data, zlib.crc32(head))
        self._write(head + bytes(data) + struct.pack(CRC_FMT, crc))
        self.chunks += 1
        if kind == KIND_RX:
            self.bytes_rx += len(data)
        self.poll()

    def note(self, event: str, **fields: Any) -> None:
        """A KIND_NOTE chunk: what happened to the link (link-lost, reconnected, stopped).

        The JSON object starts with its "event" key, so readers can match notes cheaply.
        """
        self.write(json.dumps({"event": event, **fields}).encode(), KIND_NOTE)

    def poll(self) -> None:
        """Flush if the last flush is FLUSH_INTERVAL_S old; call it even when no data came."""
        now = self._clock()
        if now - self._last_flush >= self._flush_interval_s:
            self.flush(fsync=now - self._last_fsync >= FSYNC_INTERVAL_S)

    def flush(self, fsync: bool = False) -> None:
        if self._broken:
            return
        try:
            self._f.flush()
            if fsync:
                os.fsync(self._f.fileno())
                self._last_fsync = self._clock()
        except OSError as e:
            self._broken = True
            raise RecordingError(f"cannot write {self.path}: {e.strerror or e}") from e
        self._last_flush = self._clock()

    def _write(self, b: bytes) -> None:
        if self._broken:  # a write was interrupted mid-chunk: appending more would bury it
            return
        try:
            self._f.write(b)
        except OSError as e:
            self._broken = True
            raise RecordingError(f"cannot write {self.path}: {e.strerror or e}") from e
        except BaseException:
            self._broken = True
            raise

    def close(self) -> None:
        """Flush, fsync and close. After a failed write (a full disk) the file is closed
        without flushing again: what was flushed before is intact, and the first
        RecordingError, already raised, is the one the user sees."""
        if self._f.closed:
            return
        try:
            if not self._broken:
                self.flush(fsync=True)
        except RecordingError:
            self._broken = True
            raise
        finally:
            try:
                self._f.close()
            except OSError:
                pass  # its buffer could not be written either: the error is reported once, above

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RecordingReader:
    """Reads a recording chunk by chunk; ``position`` and ``size`` give progress."""

    path: Path
    header: Header = field(init=False)
    truncated: bool = field(default=False, init=False)
    tail_bytes: int = field(default=0, init=False)  # bytes after the last whole chunk
    damage: str | None = field(default=None, init=False)  # why reading stopped before the end
    position: int = field(default=0, init=False)
    size: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        try:
            self._f: IO[bytes] = open(self.path, "rb")
            self.size = os.fstat(self._f.fileno()).st_size
        except OSError as e:
            raise RecordingError(f"cannot read {self.path}: {e.strerror or e}") from e
        try:
            self.header = self._read_header()
        except BaseException:
            self._f.close()
            raise
        self.position = self.header.size

    def _fail(self, why: str) -> RecordingError:
        return RecordingError(f"{self.path}: {why}")

    def _read_header(self) -> Header:
        head = self._f.read(HEADER_SIZE)
        if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
            raise self._fail("not a leakmon recording (no recording header)")
        if len(head) < HEADER_SIZE:
            raise self._fail("recording header cut short")
        _, version, _flags, start_wall, meta_len = struct.unpack(HEADER_FMT, head)
        if version != FORMAT_VERSION:
            raise self._fail(f"recording format v{version}; this leakmon reads v{FORMAT_VERSION}")
        if meta_len > MAX_META:
            raise self._fail(f"corrupt recording header (metadata length {meta_len})")
        rest = self._f.read(meta_len + CRC_SIZE)
        if len(rest) < meta_len + CRC_SIZE:
            raise self._fail("recording header cut short")
        meta_b = rest[:meta_len]
        (crc,) = struct.unpack(CRC_FMT, rest[meta_len:])
        if crc != zlib.crc32(head + meta_b):
            raise self._fail("corrupt recording header (CRC mismatch)")
        try:
            meta = json.loads(meta_b.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise self._fail(f"corrupt recording metadata: {e}") from e
        return Header(version, start_wall, meta if isinstance(meta, dict) else {}, HEADER_SIZE + meta_len + CRC_SIZE)

    def chunks(self) -> Iterator[Chunk]:
        """Every whole chunk in order; stops at a torn or zero-filled tail."""
        f = self._f
        f.seek(self.header.size)
        self.position = self.header.size
        while True:
            off = self.position
            head = f.read(CHUNK_HEAD)
            if not head:
                return
            if len(head) < CHUNK_HEAD:
                return self._truncated(off)
            n, kind, t_s = struct.unpack(CHUNK_FMT, head)
            if n > MAX_CHUNK:
                if self._zero_tail(off):
                    return self._truncated(off)
                return self._damaged(off, f"length {n}")
            body = f.read(n + CRC_SIZE)
            if len(body) < n + CRC_SIZE:
                return self._truncated(off)
            data = body[:n]
            (crc,) = struct.unpack(CRC_FMT, body[n:])
            if crc != zlib.crc32(data, zlib.crc32(head)):
                if self._zero_tail(off):
                    return self._truncated(off)
                return self._damaged(off, "CRC mismatch")
            self.position = off + CHUNK_HEAD + n + CRC_SIZE
            yield Chunk(kind, t_s, data, off)

    def _zero_tail(self, off: int) -> bool:
        self._f.seek(off)
        while block := self._f.read(1 << 20):
            if block.count(0) != len(block):
                return False
        return True

    def _damaged(self, off: int, why: str) -> None:
        self.tail_bytes = self.size - off
        self.damage = f"corrupt chunk at byte {off} ({why}); the {self.tail_bytes} bytes from there on were not read"
        self.position = self.size

    def _truncated(self, off: int) -> None:
        self.truncated = True
        self.tail_bytes = self.size - off
        self.position = self.size

    def rx_chunks(self) -> Iterator[Chunk]:
        """Only the bytes received from the node."""
        return (c for c in self.chunks() if c.kind == KIND_RX)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "RecordingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_recording(path: str | os.PathLike[str]) -> RecordingReader:
    return RecordingReader(Path(path))


def truncation_message(r: RecordingReader) -> str:
    return f"{r.path}: recording ends in a cut-short chunk ({r.tail_bytes} bytes ignored)"


def report_tail(r: RecordingReader, warn: Callable[[str], None]) -> None:
    """Once everything readable was used: a cut-short tail is a warning (a crash or an
    unplug mid-write), a damaged chunk a RecordingError, so the exit status says so."""
    if r.damage is not None:
        raise RecordingError(f"{r.path}: {r.damage}")
    if r.truncated:
        warn(truncation_message(r))


def play(reader: RecordingReader, stream: NodeStream, speed: float | None = None,
         sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> Iterator[list[Item]]:
    """Stream items, one batch per received chunk, then what the decoder recovers at the end.

    With ``speed`` the chunks come at ``speed`` times the pace they were received;
    None replays as fast as possible.
    """
    start = clock()
    for c in reader.chunks():
        if note_event(c) == "reconnected":
            stream.decoder.drop_pending()  # as the live run did when it reopened the port
        if c.kind != KIND_RX:
            continue
        if speed:
            wait = start + c.t_s / speed - clock()
            if wait > 0:
                sleep(wait)
        yield stream.feed(c.data)
    yield stream.finish()


def note_event(c: Chunk) -> str | None:
    """The "event" of a KIND_NOTE chunk (None if it is not a readable note)."""
    if c.kind != KIND_NOTE:
        return None
    try:
        return str(c.note.get("event"))
    except (UnicodeDecodeError, ValueError, TypeError):
        return None


def decode_recording(reader: RecordingReader, chunk_bytes: int = 8 << 20,
                     stream: NodeStream | None = None) -> Iterator[SampleTable]:
    """The samples of a recording, a table per ~chunk_bytes of received data, through the
    same stream core as play() (stream: to keep it, for its HELLO and counters)."""
    stream = stream if stream is not None else NodeStream()
    buf: list[bytes] = []
    size = 0
    for c in reader.chunks():
        if note_event(c) == "reconnected":
            yield stream.feed_table(b"".join(buf))[0]
            buf, size = [], 0
            stream.decoder.drop_pending()  # as replay and the live run do when the port came back
        if c.kind != KIND_RX:
            continue
        buf.append(c.data)
        size += len(c.data)
        if size >= chunk_bytes:
            yield stream.feed_table(b"".join(buf))[0]
            buf, size = [], 0
    yield stream.feed_table(b"".join(buf))[0]
    yield stream.finish_table()[0]


def read_samples(path: str | os.PathLike[str]) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every compensated sample of a recording, by channel: (t_s, pressure_pa, temperature_k).
    A damaged chunk ends it with a RecordingError, a cut-short tail does not."""
    with open_recording(path) as rec:
        table = SampleTable.concat(list(decode_recording(rec)))
        report_tail(rec, lambda message: None)
    return table.by_channel()
