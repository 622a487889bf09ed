"""The gateway's own messages (frames, estimates, alarms, notes, node info), and a bounded
fuzz of them: what serve is handed, good and bad. No servers needed."""

from __future__ import annotations

import json
import random

import wiregen

from leakmon.fleet import envelope
from leakmon.fleet.edge import EdgeNode

# JSON values that have broken a store: out of every column's range, NUL, lone surrogates,
# NaN and infinity, deep nesting, long text, and the kinds a note may have.
NASTY = [None, True, -1, 2**31, 2**63, 10**400, -(10**400), 1e308, float("inf"), float("nan"), "", "\x00", "é" * 5000,
         [], {}, [[[[]]]], {"\x00": 1}, "\ud800", {"\udfff": -float("inf")}, "hatch", "note", 0, 255, 256]


class Box:
    def __init__(self) -> None:
        self.msgs: list[tuple[str, bytes]] = []
        self.retained: dict[str, bytes] = {}

    def put(self, topic: str, payload: bytes) -> None:
        self.msgs.append((topic, payload))

    def put_retained(self, topic: str, payload: bytes) -> None:
        self.retained[topic] = payload


def edge_messages(frames: int = 40, channels: int = 2, node_id: str = "a1") -> tuple[Box, bytes]:
    """The messages of a node's bytes read in pieces of every size (a whole frame, several,
    a frame cut anywhere), and those bytes."""
    from leakmon.wire.stream import NodeStream

    box = Box()
    edge = EdgeNode(node_id, box, window_s=60.0, estimate_every_s=1.0)
    stream = NodeStream()
    hs, data = wiregen.handshake(channels), wiregen.samples(frames, channels, seq=1 + channels)
    size = len(data) // frames
    cuts = [0, size, 3 * size, 3 * size + 7, 4 * size - 1, 6 * size]
    cuts += list(range(cuts[-1], len(data), size // 2 + 3)) + [len(data)]
    for chunk in [hs] + [data[a:b] for a, b in zip(cuts, cuts[1:])]:
        edge.on_bytes(chunk)
        edge.on_items(stream.feed(chunk))
    return box, hs + data


def alarm_box(every_s: float, node_id: str = "a1") -> Box:
    """400 s of two channels whose raw pressure count ramps from 200 s on (a leak's onset):
    estimates, and alarms on the block that raises them."""
    from leakmon.wire.stream import NodeStream

    box, stream = Box(), NodeStream()
    edge = EdgeNode(node_id, box, window_s=120.0, estimate_every_s=every_s)
    data = wiregen.samples(400, 2, seq=3, ramp_from_row=2000, ramp_counts_per_row=20.0)
    for chunk in (wiregen.handshake(2), data):
        edge.on_bytes(chunk)
        edge.on_items(stream.feed(chunk))
    return box


def every_kind(node_id: str = "a1") -> list[tuple[str, bytes]]:
    """One node's messages of every kind serve stores: frames, estimates, alarms, a note, info."""
    box, _ = edge_messages(frames=20, node_id=node_id)
    msgs = box.msgs + [m for m in alarm_box(10.0, node_id).msgs if m[0].endswith("/alarm")]
    msgs.append((envelope.topic(node_id, "note"),
                 envelope.pack_json(node_id, 1, 99, 10**15, {"kind": "hatch", "text": "hatch 1"})))
    msgs.append((envelope.topic(node_id, "info"),
                 json.dumps({"node_id": node_id, "gateway": "g1", "fw": "1.1"}).encode()))
    return msgs


def fuzzed(msgs: list[tuple[str, bytes]], n: int, seed: int) -> list[tuple[str, bytes]]:
    """n messages drawn from msgs, about half with one JSON value replaced by a NASTY one
    (or a key added), the rest with 1-4 bytes overwritten."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        topic, payload = rnd.choice(msgs)
        if rnd.random() < 0.5 and not topic.endswith("/frame"):
            if topic.endswith("/info"):
                obj, env = json.loads(payload), None
            else:
                env = envelope.unpack(payload)
                obj = env.json()
            target = obj[rnd.randrange(len(obj))] if isinstance(obj, list) and obj else obj
            if isinstance(target, dict) and target:
                target[rnd.choice([*target, "extra"])] = rnd.choice(NASTY)
            body = json.dumps(obj).encode()
            payload = body if env is None else envelope.pack(env.node_id, env.boot, env.seq, env.t_us, body)
        else:
            b = bytearray(payload)
            for _ in range(rnd.randint(1, 4)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            payload = bytes(b)
        out.append((topic, payload))
    return out
