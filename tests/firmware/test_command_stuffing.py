"""Command frames on the wire (protocol v1.1): wire.command_frame stuffs 0x03, 0x04
and 0x7D (PPP's rule), the node's wire.CommandReader undoes it. Checked here under
CPython (the host's side of the golden vectors, and the reader's edge cases);
test_wire_vectors_mp.py does the same under MicroPython."""

from __future__ import annotations

import json
import random
import re

import pytest
from conftest import VECTORS
from leakmon.firmware import wire

VEC = [v for v in json.loads(VECTORS.read_text())["vectors"] if v["name"].startswith("cmd-")]
FORBIDDEN = (0x03, 0x04)


def unstuff(data: bytes) -> bytes:
    """PROTOCOL.md's rule, written from its text: 7D xx -> xx ^ 0x20 for xx in 23, 24, 5D;
    a 7D before anything else is dropped."""
    return re.sub(rb"\x7d([\x23\x24\x5d])?", lambda m: bytes((m[1][0] ^ 0x20,)) if m[1] else b"", data)


def read_all(reader: wire.CommandReader, data: bytes) -> list[tuple[int, int, bytes]]:
    """What the node's poll loop does: wire bytes to feed_wire, spilled bytes to feed."""
    got = []
    it = iter(data)
    while True:
        if reader.pending():
            ok = reader.feed(reader.next_spilled())
        else:
            b = next(it, None)
            if b is None:
                return got
            ok = reader.feed_wire(b)
        if ok:
            p = bytes(reader.buf[wire.HEADER_SIZE:wire.HEADER_SIZE + reader.payload_len])
            got.append((reader.msg_type, reader.seq, p))


def test_the_vectors_cover_every_stuffed_byte() -> None:
    sent = b"".join(bytes.fromhex(v["sent"]) for v in VEC)
    for pair in (b"\x7d\x23", b"\x7d\x24", b"\x7d\x5d"):
        assert pair in sent


@pytest.mark.parametrize("v", VEC, ids=[v["name"] for v in VEC])
def test_host_rebuilds_the_stuffed_vector(v: dict) -> None:
    payload = bytes.fromhex(v["args"]["hex"])
    sent = wire.command_frame(v["type"], v["seq"], payload)
    assert sent.hex() == v["sent"]
    assert not any(b in FORBIDDEN for b in sent)
    assert unstuff(sent).hex() == v["frame"]
    assert read_all(wire.CommandReader(), sent) == [(v["type"], v["seq"], payload)]


def test_random_commands_never_carry_ctrl_c_or_ctrl_d_and_read_back() -> None:
    rng = random.Random(13)
    frames = []
    stream = b""
    for _ in range(2000):
        cmd, seq = rng.randrange(256), rng.randrange(65536)
        payload = bytes(rng.choice((3, 4, 0x7D, rng.randrange(256))) for _ in range(rng.randrange(65)))
        sent = wire.command_frame(cmd, seq, payload)
        assert not any(b in FORBIDDEN for b in sent)
        assert unstuff(sent) == wire.frame(cmd, seq, payload)
        frames.append((cmd, seq, payload))
        stream += sent
    assert read_all(wire.CommandReader(64), stream) == frames


def test_a_torn_command_ending_in_an_escape_does_not_eat_the_next() -> None:
    stuffed = wire.command_frame(wire.C_CALIB, 0x7D03, b"\x04")
    torn = stuffed[: stuffed.index(b"\x7d") + 1]  # cut right after an escape byte
    ping = wire.command_frame(wire.C_PING, 9, b"")
    reader = wire.CommandReader()
    assert read_all(reader, torn + ping) == [(wire.C_PING, 9, b"")]
    assert reader.bad_escapes == 1


def test_an_unstuffed_frame_with_an_escape_byte_is_refused_not_misread() -> None:
    """A v1.0 host's frame holding 0x7D: the node drops the escape, the CRC fails,
    and the command behind it is still read."""
    plain = wire.frame(wire.C_SET_PERIOD, 0x7D00, b"\x10\x27\x00\x00")
    ping = wire.command_frame(wire.C_PING, 1, b"")
    reader = wire.CommandReader()
    assert read_all(reader, plain + ping) == [(wire.C_PING, 1, b"")]
    assert reader.bad_escapes == 1 and reader.crc_errors + reader.oversize >= 1


def test_the_repl_command_needs_no_stuffing() -> None:
    """leakmon flash sends it with seq 0 to a node that ignores Ctrl-C (v1.0):
    the bytes must be those of the plain frame."""
    assert wire.command_frame(wire.C_REPL, 0, b"") == wire.frame(wire.C_REPL, 0, b"")


MP_LOCKED_READ = """
import micropython, wire
data = bytes.fromhex({hexdata!r})
r = wire.CommandReader(64)

def read_all():
    n = 0
    i = 0
    while True:
        if r.pending():
            ok = r.feed(r.next_spilled())
        elif i < len(data):
            ok = r.feed_wire(data[i])
            i += 1
        else:
            return n
        if ok:
            n += 1

read_all()  # warm-up: first calls of some built-ins allocate once
micropython.heap_lock()
try:
    n = read_all()
    micropython.heap_unlock()
    print("LOCKED_OK", n, r.bad_escapes)
except MemoryError:
    micropython.heap_unlock()
    print("ALLOCATED")
micropython.heap_lock()  # control: the same lock does catch an allocation
try:
    bytearray(8)
    micropython.heap_unlock()
except MemoryError:
    micropython.heap_unlock()
    print("CONTROL_OK")
"""


def test_the_node_unstuffs_without_allocating(run_mp, tmp_path) -> None:
    frames = [wire.command_frame(wire.C_CALIB, 0x7D03, b"\x04"), wire.command_frame(wire.C_PING, 0x0304, b""),
              b"\x7d", wire.command_frame(wire.C_SET_PERIOD, 0x7D7D, bytes((3, 4, 0x7D, 3)))]
    (tmp_path / "t.py").write_text(MP_LOCKED_READ.format(hexdata=b"".join(frames).hex()))
    r = run_mp(tmp_path / "t.py")
    assert r.stdout.decode().split() == ["LOCKED_OK", "3", "2", "CONTROL_OK"], r.stderr.decode()  # one lone escape per pass
