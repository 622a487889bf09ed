"""The host's side of the golden vectors: encoder, decoder and parser."""

import json
import struct

import numpy as np
import pytest
from conftest import VECTORS
from leakmon import wire
from leakmon.wire import messages as protocol
from leakmon.wire.framing import FrameDecoder

VEC = json.loads(VECTORS.read_text())["vectors"]


def _args(a):
    if isinstance(a, dict):
        return bytes.fromhex(a["hex"])
    if isinstance(a, list):
        return [_args(x) for x in a]
    return a


def _payload(v):
    return _args(v["args"]) if v["builder"] is None else getattr(wire, v["builder"])(*_args(v["args"]))


def test_crc_check_value():
    assert wire.crc16(b"123456789", 0, 9) == 0x29B1


@pytest.mark.parametrize("v", VEC, ids=[v["name"] for v in VEC])
def test_host_rebuilds_vector(v):
    assert wire.frame(v["type"], v["seq"], _payload(v)).hex() == v["frame"]


@pytest.mark.parametrize("v", VEC, ids=[v["name"] for v in VEC])
def test_vector_header_layout(v):
    f = bytes.fromhex(v["frame"])
    assert f[:2] == b"\xa5\x4c"
    ver, t, seq, n = struct.unpack_from("<BBHH", f, 2)
    assert (ver, t, seq, n) == (1, v["type"], v["seq"], len(f) - 10)
    assert struct.unpack_from("<H", f, len(f) - 2)[0] == wire.crc16(f, 2, len(f) - 2)


def test_decoder_and_parser_read_every_vector():
    stream = b"".join(bytes.fromhex(v["frame"]) for v in VEC)
    frames = FrameDecoder().feed(stream)
    assert [(f.msg_type, f.seq) for f in frames] == [(v["type"], v["seq"]) for v in VEC]
    msgs = {v["name"]: protocol.parse(f) for v, f in zip(VEC, frames)}
    h = msgs["hello-two-sensors"]
    assert isinstance(h, protocol.Hello)
    assert (h.board, h.fw_version, h.ticks_bits, h.period_us, h.rows_per_frame) == ("sim", "0.1.0", 30, 5000, 32)
    assert h.channels[1] == protocol.ChannelInfo(1, wire.CHIP_BMP390, 1, 3, 0x77, 6)
    s = msgs["samples-near-wrap"]
    assert isinstance(s, protocol.Samples)
    assert s.t0_ticks_us == (1 << 30) - 150000 and s.period_us == 100000
    assert s.raw.shape == (3, 6) and s.raw[2].tobytes() == bytes.fromhex("ffffff000000")
    s2 = msgs["samples-two-channels"]
    assert isinstance(s2, protocol.Samples)
    np.testing.assert_array_equal(s2.channel_raw(1)[0], np.frombuffer(bytes.fromhex("0708090a0b0c"), np.uint8))
    e = msgs["event"]
    assert isinstance(e, protocol.Event) and (e.detail, e.text, e.name) == (-5, "NACK", "sensor-error")
    a = msgs["ack-refused"]
    assert isinstance(a, protocol.Ack) and not a.ok and a.cmd_seq == 7 and a.text.startswith("period_us")
    tr = msgs["time"]
    assert isinstance(tr, protocol.TimeRef) and (tr.ticks_us, tr.host_time_us) == ((1 << 30) - 1, 1764000000123456)
    st = msgs["status"]
    assert isinstance(st, protocol.Status) and st.free_heap == 150000
