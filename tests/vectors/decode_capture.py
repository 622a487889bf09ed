"""A node capture with every kind of damage, and what the decoder made of it.

Run `python tests/vectors/decode_capture.py` to write decode_v1.json. The committed
file was written by the decoder before the one stream core (two state machines,
``NodeStream`` per frame and ``FastStream`` vectorized, commit 05fa646), so
tests/host/test_stream_golden.py holds today's core to what they gave: the same
sample blocks, values bit for bit, messages and counters, on the live path (fed
in reads of several sizes, with the reconnects of the capture) and on the whole
recording. Regenerate only when the decoder's output changes on purpose.

The capture: two handshakes (two channels, then three with another tick width),
SAMPLES through a tick wrap and a sequence wrap, EVENT/STATUS/ACK/TIME and
unknown types, garbage with false syncs and forged headers, torn frames, bit
flips at 1e-3, and link drops at which the receiver forgets a partial frame.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: wiregen

import wiregen  # noqa: E402
from leakmon import wire  # noqa: E402

OUT = HERE / "decode_v1.json"
READ_SIZES = (4096, 61, 1)


def capture() -> tuple[bytes, list[int]]:
    """The bytes, and the offsets at which the link dropped (the receiver forgets a
    partial frame there, as Node.reopen() and replay at a "reconnected" note do)."""
    rng = random.Random(2026)
    parts: list[bytes] = []
    drops: list[int] = []
    size = 0

    def add(b: bytes) -> None:
        nonlocal size
        parts.append(b)
        size += len(b)

    seq = 65500  # the sequence number wraps inside the capture
    add(wiregen.handshake(channels=2, seq=seq, ticks_bits=24))
    seq += 3
    t0 = (1 << 24) - 4_000_000  # the 24-bit ticks wrap after 4 s
    junk = [b"\xa5\x4c", b"\xa5" * 5, b"\xa5\x4c\x01\x03\x00\x00\xff\x00", b"\xa5\x4c\x01\x03\x00\x00\x00\x04",
            b"\xa5\x4c\x01\x03\x00\x00\xff\xff", b"\x00garbage\xa5"]
    for k in range(160):
        n = rng.randrange(1, 6)
        add(wiregen.samples(n, channels=2, seq=seq, t0_us=t0, ticks_bits=24, seed=k))
        seq += n
        t0 = (t0 + n * 10 * 100_000) & ((1 << 24) - 1)
        r = rng.random()
        if r < 0.15:
            add(rng.choice(junk) + rng.randbytes(rng.randrange(0, 20)))
        elif r < 0.25:  # a torn frame: its first bytes, then the next frame
            f = wiregen.samples(1, channels=2, seq=seq, t0_us=t0, ticks_bits=24, seed=1000 + k)
            add(f[: rng.randrange(1, len(f) - 1)])
            seq += 1
        elif r < 0.32:
            add(wire.frame(wire.T_EVENT, seq, wire.event_payload(t0, wire.EV_SENSOR_ERROR, 1, -5, "NACK")))
            seq += 1
        elif r < 0.37:
            add(wire.frame(wire.T_STATUS, seq, wire.status_payload(k, 20 * k, k, 0, 1, 150000) + bytes(8)))
            seq += 1
        elif r < 0.40:
            add(wire.frame(wire.T_ACK, seq, wire.ack_payload(k, wire.C_PING, wire.ACK_OK)))
            add(wire.frame(wire.T_TIME, seq + 1, wire.time_payload(t0, 1764000000000000 + k)))
            add(wire.frame(0x30, seq + 2, rng.randbytes(9)))  # a type from a later minor version
            seq += 3
        elif r < 0.45:
            seq += rng.randrange(1, 4)  # frames the node sent and the link lost
        elif r < 0.50:  # the link drops in the middle of a frame
            f = wiregen.samples(1, channels=2, seq=seq, t0_us=t0, ticks_bits=24, seed=2000 + k)
            add(f[: rng.randrange(1, len(f) - 1)])
            drops.append(size)
            seq += 1
        if k == 100:  # the node reboots with a third sensor and 30-bit ticks
            add(wiregen.handshake(channels=3, seq=seq, ticks_bits=30))
            seq += 4
            t0 = 5_000
    data = bytearray(b"".join(parts))
    for i in range(len(data)):
        if rng.random() < 1e-3:
            data[i] ^= 1 << rng.randrange(8)
    return bytes(data), drops


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def counters(stream) -> dict[str, int]:  # noqa: ANN001
    from dataclasses import asdict

    st = stream.decoder.stats
    return {**{f"decoder.{k}": v for k, v in asdict(st).items()},
            **{f"link.{k}": v for k, v in asdict(stream.stats).items()}}


def live_result(data: bytes, drops: list[int], read_size: int) -> dict:
    """NodeStream fed in reads of read_size bytes, forgetting a partial frame at each drop."""
    from leakmon.wire.stream import NodeStream, SampleBlock

    s = NodeStream()
    items = []
    cuts = sorted(set(list(range(0, len(data), read_size)) + drops + [len(data)]))
    for a, b in zip(cuts, cuts[1:]):
        if a in drops:
            s.decoder.drop_pending()
        items += s.feed(data[a:b])
    items += s.finish()
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    return {
        "blocks": len(blocks),
        "block_heads": digest(np.array([(b.channel, b.seq, len(b.t_s)) for b in blocks], np.int64)),
        "samples": digest(*[np.concatenate([getattr(b, k) for b in blocks])
                            for k in ("t_s", "pressure_pa", "temperature_k")]),
        "messages": [repr(i) for i in items if not isinstance(i, SampleBlock)],
        "counters": counters(s),
    }


def recording_result(data: bytes, drops: list[int], tmp: Path) -> dict:
    """The whole-recording table (export, analyze) of the capture recorded with its drops."""
    from leakmon.link.recording import RecordingWriter, decode_recording, open_recording
    from leakmon.wire.stream import NodeStream, SampleTable

    path = tmp / "capture.lkr"
    with RecordingWriter(path) as w:
        cuts = sorted(set(list(range(0, len(data), 5000)) + drops + [len(data)]))
        for a, b in zip(cuts, cuts[1:]):
            if a in drops:
                w.note("link-lost", error="gone")
                w.note("reconnected")
            w.write(data[a:b])
    fs = NodeStream()
    with open_recording(path) as r:
        t = SampleTable.concat(list(decode_recording(r, 20_000, fs)))
    return {"rows": len(t), "table": {k: digest(getattr(t, k)) for k in ("t_s", "channel", "pressure_pa",
                                                                         "temperature_k", "seq")},
            "counters": counters(fs)}


def main() -> None:
    import tempfile

    data, drops = capture()
    out = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "drops": drops,
           "live": {str(n): live_result(data, drops, n) for n in READ_SIZES}}
    with tempfile.TemporaryDirectory() as tmp:
        out["recording"] = recording_result(data, drops, Path(tmp))
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}: {len(data)} bytes, {out['live']['4096']['blocks']} blocks, {len(drops)} drops")


if __name__ == "__main__":
    main()
