"""A handshake that cannot complete says why: the stream core never raises on what a node
sends, so Node.handshake turns what it counted into the one-line error."""

from __future__ import annotations

import pytest
import serial
from leakmon import wire
from leakmon.errors import HandshakeError
from leakmon.link.node import Node


def node_that_sent(data: bytes) -> Node:
    port = serial.serial_for_url("loop://", timeout=0.01)
    port.write(data)  # what the node sent; the host's own INFO commands loop back too (unknown types)
    return Node(port)


def test_a_hello_of_another_major_version_in_a_v1_frame_is_refused_with_its_reason():
    chans = [(0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x77, 6)]
    hello = bytearray(wire.hello_payload("9.0", "future", 30, 100000, 10, chans))
    hello[0] = 2  # protocol major 2
    with pytest.raises(HandshakeError, match="HELLO of protocol v2"):
        node_that_sent(wire.frame(wire.T_HELLO, 0, bytes(hello))).handshake(timeout_s=0.3)


def test_frames_of_another_version_are_named_as_such():
    f = bytearray(wire.frame(wire.T_HELLO, 0, b"x" * 20))
    f[wire.OFF_VERSION] = 2
    c = wire.crc16(f, 2, len(f) - 2)
    f[-2:] = bytes((c & 0xFF, c >> 8))
    node = Node(serial.serial_for_url("loop://", timeout=0.01))
    node.port.write(bytes(f) * 3)
    node._write = lambda data: None  # a silent host: only the node's frames arrive
    with pytest.raises(HandshakeError, match="another protocol version"):
        node.handshake(timeout_s=0.3)


def test_a_calibration_the_host_cannot_use_is_named():
    chans = [(0, wire.CHIP_BMP390, 0, wire.NO_MUX, 0x77, 6)]
    data = (wire.frame(wire.T_HELLO, 0, wire.hello_payload("0.1", "b", 30, 100000, 10, chans))
            + wire.frame(wire.T_CALIB, 1, wire.calib_payload(0, wire.CHIP_BMP390, bytes(5))))
    with pytest.raises(HandshakeError, match="calibration of chip code 2"):
        node_that_sent(data).handshake(timeout_s=0.3)
