"""A node capture with every kind of damage, and what the decoder made of it.

Run `python tests/vectors/decode_capture.py --before` to write decode_v1.json with the
decoders before the one stream core (two state machines, ``NodeStream`` per frame and
``FastStream`` vectorized, read from git at commit 05fa646 as bench/bench_decoder.py
does), so that tests/host/test_stream_golden.py holds today's core to what they gave:
the same sample blocks, values bit for bit, messages and counters, on the live path
(fed in reads of several sizes, with the reconnects of the capture), on the whole
recording, and on the golden wire vectors (tests/vectors/wire_v1.json) sent as one
stream. Without --before it writes what today's core gives: do that only when the
output changes on purpose.

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

    st = stream.decoder.stats if hasattr(stream, "decoder") else stream.decoder_stats  # FastStream's name
    return {**{f"decoder.{k}": v for k, v in asdict(st).items()},
            **{f"link.{k}": v for k, v in asdict(stream.stats).items()}}


def live_result(data: bytes, drops: list[int], read_size: int, make=None) -> dict:  # noqa: ANN001
    """NodeStream fed in reads of read_size bytes, forgetting a partial frame at each drop."""
    from leakmon.wire.stream import NodeStream

    s = (make or NodeStream)()
    items = []
    cuts = sorted(set(list(range(0, len(data), read_size)) + drops + [len(data)]))
    for a, b in zip(cuts, cuts[1:]):
        if a in drops:
            s.decoder.drop_pending()
        items += s.feed(data[a:b])
    items += s.finish()
    blocks = [i for i in items if hasattr(i, "pressure_pa")]
    return {
        "blocks": len(blocks),
        "block_heads": digest(np.array([(b.channel, b.seq, len(b.t_s)) for b in blocks], np.int64)),
        "samples": digest(*[np.concatenate([getattr(b, k) for b in blocks] or [np.empty(0)])
                            for k in ("t_s", "pressure_pa", "temperature_k")]),
        "messages": [repr(i) for i in items if not hasattr(i, "pressure_pa")],
        "counters": counters(s),
    }


def recording_result(data: bytes, drops: list[int], tmp: Path, before: dict | None = None) -> dict:
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
    with open_recording(path) as r:
        if before is None:
            fs = NodeStream()
            t = SampleTable.concat(list(decode_recording(r, 20_000, fs)))
        else:  # the decoder before the core: FastStream, fed as its decode_recording fed it
            fs = before["fastdecode"].FastStream()
            t = SampleTable.concat([fs.feed(b)[0] for b in _chunks_as_decode_recording_fed(r, fs, 20_000)]
                                   + [fs.finish()[0]])
    return {"rows": len(t), "table": {k: digest(getattr(t, k)) for k in ("t_s", "channel", "pressure_pa",
                                                                         "temperature_k", "seq")},
            "counters": counters(fs)}


def _chunks_as_decode_recording_fed(r, fs, chunk_bytes: int):  # noqa: ANN001, ANN202
    """The batches decode_recording feeds (a reconnect note flushes and forgets a partial frame)."""
    from leakmon.link.recording import KIND_RX, note_event

    buf: list[bytes] = []
    for c in r.chunks():
        if note_event(c) == "reconnected":
            yield b"".join(buf)
            buf = []
            fs.drop_pending()
        if c.kind != KIND_RX:
            continue
        buf.append(c.data)
        if sum(map(len, buf)) >= chunk_bytes:
            yield b"".join(buf)
            buf = []
    yield b"".join(buf)


def vectors_stream() -> bytes:
    """Every golden wire vector's frame, in order, as one stream from a node; then the
    calibration its second HELLO still lacks, and its SAMPLES vectors again, now decoded."""
    vec = json.loads((HERE / "wire_v1.json").read_text())["vectors"]
    frames = {v["name"]: bytes.fromhex(v["frame"]) for v in vec}
    calib1 = wire.frame(wire.T_CALIB, 20, wire.calib_payload(1, wire.CHIP_BMP390, wiregen.BMP3_CALIB))
    return b"".join(frames.values()) + calib1 + frames["samples-near-wrap"] + frames["samples-two-channels"]


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", action="store_true", help="use the decoders of commit 05fa646 (needs git)")
    args = ap.parse_args()
    before = None
    make = None
    if args.before:
        sys.path.insert(0, str(HERE.parents[1] / "bench"))
        from bench_decoder import before_modules

        before = before_modules()
        if before is None:
            raise SystemExit("decode_capture: cannot read the decoders of 05fa646 from git")
        make = before["stream"].NodeStream
    data, drops = capture()
    out = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "drops": drops,
           "live": {str(n): live_result(data, drops, n, make) for n in READ_SIZES},
           "vectors": live_result(vectors_stream(), [], 4096, make)}
    with tempfile.TemporaryDirectory() as tmp:
        out["recording"] = recording_result(data, drops, Path(tmp), before)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}: {len(data)} bytes, {out['live']['4096']['blocks']} blocks, {len(drops)} drops")


if __name__ == "__main__":
    main()
