"""What serve accepts and refuses, message by message (no servers needed)."""

from __future__ import annotations

import json
import math

import wiregen
from fleet.gatewaymsgs import Box, alarm_box, edge_messages, every_kind, fuzzed

from leakmon import wire
from leakmon.fleet import envelope, ingest
from leakmon.fleet.edge import EdgeNode


def test_gateway_messages_are_all_accepted_with_contiguous_keys() -> None:
    box, sent = edge_messages()
    batch = ingest.Batch()
    for t, p in box.msgs:
        ingest.add(batch, t, p)
    assert not batch.rejected
    seqs = [r[2] for r in batch.frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) == 1 + 2 + 40
    assert {r[1] for r in batch.frames} == {batch.frames[0][1]}  # one boot
    # frames are the node's bytes, each whole and in order, however the reads cut them
    assert b"".join(r[7] for r in batch.frames) == sent
    chans = {r[3] for r in batch.estimates}
    assert chans == {0, 1} and len(batch.estimates) >= 2 * 30
    conf = ingest.confirmations(batch)
    frame_conf = [json.loads(p) for t, p in conf if json.loads(p)["kind"] == "frame"]
    assert frame_conf[0]["seqs"] == [[seqs[0], seqs[-1]]]


def _keyed(chunks: list[bytes], follow: bool, reopen_after: int) -> Box:
    """A node's reads through an edge that cuts the bytes itself (on_bytes) or keys the
    frames its NodeStream cut (follow); the port is reopened after read reopen_after, as
    Node.reopen and the runner do it (both decoders forget a torn frame)."""
    from leakmon.wire.stream import NodeStream

    box, ticks = Box(), iter(range(1, 10**9))
    edge = EdgeNode("a1", box, window_s=60.0, estimate_every_s=1.0, clock_us=lambda: 10**15 + next(ticks))
    stream = NodeStream()
    if follow:
        edge.follow(stream)
    for k, chunk in enumerate(chunks):
        if not follow:
            edge.on_bytes(chunk)
        edge.on_items(stream.feed(chunk))
        if k == reopen_after:
            stream.decoder.drop_pending()
            edge.keys.reopened()
    return box


def test_frames_keyed_from_the_streams_cut_are_those_the_edge_cuts_itself() -> None:
    """follow() (the runner's way) against on_bytes(): the same frames under the same keys,
    through steady reads, reads cut anywhere, garbage, a torn frame and a reopen."""
    hs, data = wiregen.handshake(3), wiregen.samples(120, 3, seq=4)
    size = len(data) // 120
    cuts = [0, size, 3 * size, 3 * size + 7, 4 * size - 1] + list(range(6 * size, 60 * size, size))
    cuts += list(range(60 * size, len(data), size // 2 + 5)) + [len(data)]
    chunks = [hs] + [data[a:b] for a, b in zip(cuts, cuts[1:])]
    torn = 20
    chunks[torn] = chunks[torn][: size // 2]  # the link broke inside a frame
    chunks.insert(30, b"\x00garbage\xff" * 3)
    got = {follow: _keyed(chunks, follow, reopen_after=torn) for follow in (False, True)}
    frames = {f: [envelope.unpack(p) for t, p in box.msgs if t.endswith("/frame")] for f, box in got.items()}
    assert len(frames[True]) > 100 and [(e.boot, e.seq, e.t_us, e.body) for e in frames[True]] == [
        (e.boot, e.seq, e.t_us, e.body) for e in frames[False]]
    assert got[True].retained == got[False].retained
    est = {f: [json.loads(envelope.unpack(p).body) for t, p in box.msgs if t.endswith("/estimate")] for f, box in got.items()}
    assert len(est[True]) > 10 and est[True] == est[False]


def _alarm_run(every_s: float) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    box = alarm_box(every_s)
    bodies = {k: [r for t, p in box.msgs if t.endswith(k) for r in json.loads(envelope.unpack(p).body)]
              for k in ("/estimate", "/alarm")}  # fmt: skip
    return bodies["/estimate"], bodies["/alarm"]


def test_estimates_at_their_cadence_and_alarms_on_the_block_that_raises_them() -> None:
    every_block, every_block_alarms = _alarm_run(1.0)
    sparse, sparse_alarms = _alarm_run(10.0)
    assert every_block_alarms, "the ramp must raise the onset alarm (else this test shows nothing)"
    # the alarm goes out on the same block, with the same figures, whatever the estimate cadence
    assert sparse_alarms == every_block_alarms
    for ch in (0, 1):
        t_dense = [r["t_s"] for r in every_block if r["channel"] == ch]
        t_sparse = [r["t_s"] for r in sparse if r["channel"] == ch]
        assert len(t_dense) >= 390 and 0.09 * len(t_dense) <= len(t_sparse) <= 0.11 * len(t_dense) + 1
        gaps = [b - a for a, b in zip(t_sparse, t_sparse[1:])]
        assert 0 < gaps[0] <= 10.5  # the first as soon as there is a window, then onto the channel's grid
        assert min(gaps[1:]) > 9.5 and max(gaps[1:]) < 10.5  # one per 10 s of device time, never a burst
        # a sparse estimate is the same estimate the dense run made on that block (to
        # rounding: each run's running sums restarted at other samples)
        dense = {r["t_s"]: r for r in every_block if r["channel"] == ch}
        for r in (r for r in sparse if r["channel"] == ch):
            _same_to_rounding(dense[r["t_s"]], r)
    # a node's channels fall due on the same block (estimated in one pass); another node's
    # phase differs, so nodes do not all pay for their estimates on the same second
    second = {ch: sorted(r["t_s"] for r in sparse if r["channel"] == ch)[1] for ch in (0, 1)}
    assert second[0] == second[1]
    phases = {EdgeNode(n, Box(), estimate_every_s=10.0)._due_after(0.0) for n in ("a1", "a2", "b7", "line-3")}
    assert len(phases) == 4


def _same_to_rounding(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for k, x in a.items():
        y = b[k]
        if isinstance(x, float) and isinstance(y, float):
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-5 if k.startswith("lack_of_fit") else 1e-15), (k, x, y)
        elif isinstance(x, list) and isinstance(y, list):
            assert all(math.isclose(p, q, rel_tol=1e-9) for p, q in zip(x, y)), (k, x, y)
        else:
            assert x == y, (k, x, y)


def test_refusals() -> None:
    good = wire.frame(wire.T_EVENT, 7, wire.event_payload(1, wire.EV_SENSOR_ERROR, 0, 5, ""))
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    cases = {
        "forged node id": ("leakmon/a1/frame", envelope.pack("b1", 1, 7, 0, good)),
        "CRC": ("leakmon/a1/frame", envelope.pack("a1", 1, 7, 0, bad_crc)),
        "whole": ("leakmon/a1/frame", envelope.pack("a1", 1, 7, 0, good + b"\x00")),
        "envelope": ("leakmon/a1/frame", b"\x00" * 40),
        "note": ("leakmon/a1/note", envelope.pack_json("a1", 1, 1, 0, {"kind": "rm -rf", "text": "x"})),
        "estimate": ("leakmon/a1/estimate", envelope.pack_json("a1", 1, 1, 0, [{"channel": "x"}])),
        "info": ("leakmon/a1/info", json.dumps({"node_id": "b1"}).encode()),
        "scheme": ("leakmon/a/b/c", b""),
        "time before 1970": ("leakmon/a1/frame", envelope.pack("a1", 1, 7, -1, good)),
        "time from 2200": ("leakmon/a1/frame", envelope.pack("a1", 1, 7, ingest.T_US_END, good)),
        "NUL in a note": ("leakmon/a1/note", envelope.pack_json("a1", 1, 2, 0, {"kind": "note", "text": "a\x00"})),
        "NUL in a note's key": ("leakmon/a1/note",
                                envelope.pack_json("a1", 1, 2, 0, {"kind": "note", "text": "a", "\x00": 1})),
        "NUL in info": ("leakmon/a1/info", json.dumps({"node_id": "a1", "gateway": "g", "fw": ["\x00"]}).encode()),
        "a number of 400 digits": ("leakmon/a1/estimate",
                                   envelope.pack_json("a1", 1, 1, 0, [{"channel": 0, "t_s": 10**400}])),
        "a count past 4 bytes": ("leakmon/a1/estimate",
                                 envelope.pack_json("a1", 1, 1, 0, [{"channel": 0, "n_samples": 2**31}])),
        "lone surrogate in a note": ("leakmon/a1/note", envelope.pack(
            "a1", 1, 2, 0, b'{"kind": "note", "text": "\\ud800"}')),
        "lone surrogate in info": ("leakmon/a1/info", b'{"node_id": "a1", "gateway": "\\udfff"}'),
        "NaN in a note": ("leakmon/a1/note", envelope.pack("a1", 1, 2, 0, b'{"kind": "note", "text": "x", "v": NaN}')),
        "infinity in info": ("leakmon/a1/info", b'{"node_id": "a1", "gateway": "g", "v": -Infinity}'),
        "JSON nested too deep": ("leakmon/a1/note", envelope.pack("a1", 1, 2, 0, b"[" * 100_000 + b"]" * 100_000)),
        "info nested too deep": ("leakmon/a1/info", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        "time far off": ("leakmon/a1/note", envelope.pack_json("a1", 1, 2, 2**62, {"kind": "hatch", "text": "x"})),
    }
    for what, (topic, payload) in cases.items():
        batch = ingest.Batch()
        ingest.add(batch, topic, payload)
        assert len(batch) == 0, what
        assert sum(batch.rejected.values()) == 1, what
    ok = ingest.Batch()
    ingest.add(ok, "leakmon/a1/frame", envelope.pack("a1", 1, 7, 0, good))
    ingest.add(ok, "leakmon/a1/note", envelope.pack_json("a1", 1, 2, ingest.T_US_END - 1,
                                                         {"kind": "hatch", "text": "hatch 3 closed"}))
    assert len(ok.frames) == 1 and len(ok.notes) == 1 and not ok.rejected


def test_boot_event_starts_a_new_boot_and_seq_unwraps() -> None:
    from leakmon.fleet.edge import FrameKeys

    k = FrameKeys(clock_us=iter(range(1000, 10**6, 10)).__next__)
    ev = wire.event_payload(0, wire.EV_BOOT, wire.NO_CHANNEL, 1, "")
    k.feed(b"".join(wire.frame(wire.T_STATUS, s & 0xFFFF, b"") for s in range(65530, 65540)))
    first = k.take()
    assert [s for s, *_ in first] == list(range(65530, 65540))  # unwrapped past 65535
    boot0 = k.boot
    k.feed(wire.frame(wire.T_EVENT, 0, ev) + wire.frame(wire.T_STATUS, 1, b""))
    after = k.take()
    assert k.boot != boot0 and [s for s, *_ in after] == [0, 1]


def test_no_message_stops_ingest_and_what_it_accepts_fits_the_database() -> None:
    """Bounded fuzz: the gateway's own messages with one JSON value replaced by a nasty one,
    or with bytes flipped. ingest.add never raises, and every row it accepts is one the
    database columns hold (PostgreSQL: int2 channel, int4 count, int8 keys, text without NUL,
    a time in 1970-2200)."""
    batch = ingest.Batch()
    for topic, payload in fuzzed(every_kind(), 4000, 20261202):
        ingest.add(batch, topic, payload)
    assert sum(batch.rejected.values()) > 500 and len(batch.frames) + len(batch.estimates) > 500

    def fits(v: object) -> bool:
        if isinstance(v, str):
            return "\x00" not in v and v.encode("utf-8", "surrogatepass") == v.encode("utf-8", "replace")
        if isinstance(v, int) and not isinstance(v, bool):
            return -(2**63) <= v < 2**63
        return True

    for rows in (batch.frames, batch.estimates, batch.alarms, batch.notes, list(batch.nodes.values())):
        for r in rows:
            assert all(fits(v) for v in r), r
    assert all(0 <= r[3] < ingest.T_US_END for r in batch.frames)
    assert all(0 <= r[3] < 256 and 0 <= r[4] < ingest.T_US_END and 0 <= r[12] < 2**31 for r in batch.estimates)
    assert all(0 <= r[3] < 256 and 0 <= r[4] < ingest.T_US_END for r in batch.alarms)

    def no_constant(name: str) -> object:
        raise AssertionError(f"{name} in JSON the database is given")

    for text in [r[6] for r in batch.notes] + [r[2] for r in batch.nodes.values()]:
        json.loads(text, parse_constant=no_constant)  # jsonb takes it: no NaN, no infinity


def test_a_node_id_with_a_trailing_newline_is_not_an_id() -> None:
    """A regular expression's "$" matches before a final newline: the id must match whole."""
    assert envelope.parse_topic("leakmon/a1/frame") == ("a1", "frame")
    assert envelope.parse_topic("leakmon/a1\n/frame") is None
    for bad in ("a1\n", "a1\r\n", "\na1"):
        try:
            envelope.check_id(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted as an id")


def test_a_flood_of_different_refusals_is_logged_bounded_and_counted_whole() -> None:
    """Reasons can carry what a sender chose; a flood of distinct ones must neither fill the
    log nor grow memory without bound, and every refusal is still counted."""
    from collections import Counter

    from leakmon.fleet.consumer import RejectLog

    lines: list[str] = []
    log = RejectLog(lines.append)
    log.add(Counter({"node0: control \x1b[2J\n characters": 1, "node0: " + "\0" * 400: 1}))
    for i in range(5000):
        log.add(Counter({f"node{i}: malformed note: x" + "y" * (i % 700): 2}))
    assert log.total == 10_002
    assert len(log.counts) <= RejectLog.MAX_REASONS + 1
    assert len(lines) <= RejectLog.MAX_REASONS + 1
    assert "refused: node0: control \\x1b[2J\\n characters" in lines  # logged, escaped
    assert all(len(line) <= RejectLog.REASON_CHARS + 20 and "\n" not in line and "\x1b" not in line
               and "\0" not in line for line in lines)
    again = len(lines)
    log.add(Counter({"node1: malformed note: x" + "y": 3}))  # a reason already logged: counted, not logged
    assert len(lines) == again and log.total == 10_005
