"""Every command of protocol v1 against the firmware on the virtual board."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from leakmon import protocol, scenario, wire
from leakmon.errors import CommandError
from leakmon.node import Node
from leakmon.simboard import VirtualBoard
from leakmon.stream import SampleBlock

pytestmark = pytest.mark.hil


@pytest.fixture
def node(micropython):
    with VirtualBoard(scenario.load("steady_leak"), seed=2, speed=20) as board:
        with Node.open(board.port) as n:
            n.handshake()
            n.board = board  # type: ignore[attr-defined]
            yield n


def blocks(node: Node, n: int, timeout_s: float = 10.0) -> list[SampleBlock]:
    out: list[SampleBlock] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        out += [i for i in node.read() if isinstance(i, SampleBlock)]
    return out


def test_ping_and_info(node):
    assert node.command(wire.C_PING).ok
    hello = node.stream.hello
    assert node.command(wire.C_INFO).ok
    assert node.stream.hello == hello


def test_set_period_changes_the_sample_grid(node):
    node.command(wire.C_SET_PERIOD, struct.pack("<I", 50000))
    b = blocks(node, 3)[-1]
    np.testing.assert_allclose(np.diff(b.t_s), 0.05)


@pytest.mark.parametrize("cmd, payload, reason", [
    (wire.C_SET_PERIOD, struct.pack("<I", 10), "bad value"),
    (wire.C_SET_PERIOD, b"\x01\x02", "bad length"),
    (wire.C_PING, b"x", "bad length"),
    (0x7F, b"", "unknown command"),
])
def test_bad_commands_are_refused_with_a_reason_and_the_node_goes_on(node, cmd, payload, reason):
    with pytest.raises(CommandError, match=reason):
        node.command(cmd, payload)
    assert node.command(wire.C_PING).ok
    assert blocks(node, 2)


def test_stop_and_start(node):
    node.command(wire.C_STOP)
    node.read()
    assert blocks(node, 1, timeout_s=1.0) == []
    node.command(wire.C_START)
    assert blocks(node, 2)


def test_repl_command_ends_the_firmware(node):
    assert node.command(wire.C_REPL).ok
    deadline = time.monotonic() + 5
    while node.board.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.board.poll() == 0


def test_garbage_on_the_command_link_is_ignored(node):
    node.port.write(bytes(range(256)) + b"\xa5\x4c\x01\x41\x00\x00\x00\x00\x00\x00")  # junk, then a bad-CRC PING
    assert node.command(wire.C_PING).ok
    assert isinstance(node.stream.hello, protocol.Hello)
