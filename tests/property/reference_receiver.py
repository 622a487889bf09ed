"""PROTOCOL.md's receiver, written from the document and nothing else: at each offset of
a whole recording, a frame or one byte skipped. The property tests and the fuzz harness
(fuzz/fuzz_decoder.py) hold the decoder to it.

A frame of another version is given up one byte past its sync, like a bad CRC
(PROTOCOL.md, "What a receiver does"): every byte is then skipped or in a frame."""

from __future__ import annotations

from dataclasses import dataclass, field

from leakmon import wire
from leakmon.wire.framing import DecoderStats, Frame


@dataclass
class Found:
    frames: list[tuple[int, Frame]] = field(default_factory=list)  # (offset, frame)
    stats: DecoderStats = field(default_factory=DecoderStats)


def reference_decode(data: bytes, max_payload: int = wire.MAX_PAYLOAD) -> Found:
    """PROTOCOL.md's receiver over a whole recording: at each offset, a frame or one byte skipped."""
    out = Found()
    st_ = out.stats
    st_.bytes_in = len(data)
    p, n = 0, len(data)
    while p < n:
        if data[p : p + 2] != wire.SYNC or n - p < wire.HEADER_SIZE:
            st_.bytes_skipped += 1
            p += 1
            continue
        plen = data[p + 6] | data[p + 7] << 8
        end = p + wire.HEADER_SIZE + plen
        if plen > max_payload:
            st_.oversize += 1
        elif end + wire.CRC_SIZE > n:
            pass  # incomplete at the end: given up, the bytes behind it rescanned
        elif data[end] | data[end + 1] << 8 != wire.crc16(data, p + 2, end):
            st_.crc_errors += 1
        elif data[p + 2] != wire.VERSION:
            st_.unknown_version += 1  # its length cannot be trusted: resynchronize as after a bad CRC
        else:
            out.frames.append((p, Frame(data[p + 3], data[p + 4] | data[p + 5] << 8, data[p + 8 : end])))
            st_.frames += 1
            p = end + wire.CRC_SIZE
            continue
        st_.bytes_skipped += 1
        p += 1
    return out
