"""Every command of protocol v1 against the firmware on the virtual board."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from leakmon import wire
from leakmon.errors import CommandError
from leakmon.link.node import Node
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard
from leakmon.wire import messages as protocol
from leakmon.wire.stream import SampleBlock

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
    junk = bytes(b for b in range(256) if b != 0x03)  # a 0x03 is Ctrl-C: it stops the firmware (below)
    node.port.write(junk + b"\xa5\x4c\x01\x41\x00\x00\x00\x00\x00\x00")  # junk, then a bad-CRC PING
    assert node.command(wire.C_PING).ok
    assert isinstance(node.stream.hello, protocol.Hello)


def test_calib_resends_one_or_all(node):
    node.command(wire.C_PING)  # the node answers in order: the handshake's INFO reply is in
    node.read()  # drop what the handshake left behind
    node.command(wire.C_CALIB)
    node.command(wire.C_CALIB, b"\x00")
    cals = [i for i in node.read() if isinstance(i, protocol.Calibration)]
    assert len(cals) == 2 and all(c.block == node.stream.calibrations[0].block for c in cals)
    with pytest.raises(CommandError, match="no channel 5"):
        node.command(wire.C_CALIB, b"\x05")


def test_set_time_pairs_device_ticks_with_host_time(node):
    host_us = 1_764_000_000_123_456
    node.command(wire.C_SET_TIME, struct.pack("<Q", host_us))
    deadline = time.monotonic() + 5
    refs = []
    while not refs and time.monotonic() < deadline:
        refs = [i for i in node.read() if isinstance(i, protocol.TimeRef)]
    assert refs and refs[0].host_time_us == host_us
    assert 0 <= refs[0].ticks_us < 1 << 30


def test_set_oversampling_reconfigures_the_sensor_or_says_why_not(node):
    assert node.command(wire.C_SET_OVERSAMPLING, bytes([0, 4, 1])).ok
    assert blocks(node, 2)
    with pytest.raises(CommandError, match="osr_p must be 0..5"):
        node.command(wire.C_SET_OVERSAMPLING, bytes([0, 9, 1]))
    with pytest.raises(CommandError, match="bad length"):
        node.command(wire.C_SET_OVERSAMPLING, bytes([0, 4]))
    assert blocks(node, 2)


def test_reset_acknowledges_then_restarts_the_board(node):
    assert node.command(wire.C_RESET).ok
    deadline = time.monotonic() + 5
    booted = False
    while time.monotonic() < deadline and not booted and node.board.poll() is None:
        try:
            booted = any(isinstance(i, protocol.Event) and i.name == "boot" for i in node.read())
        except Exception:
            break
    assert booted or node.board.poll() == 0


def test_set_rate_per_channel(micropython, tmp_path):
    import dataclasses

    from leakmon.sim.scenario import SensorSpec
    sc = scenario.load("steady_leak")
    sc = dataclasses.replace(sc, sensors=(SensorSpec("BMP390", 0, 0x77, 0.3, 0.002), SensorSpec("BMP390", 0, 0x76, 0.3, 0.002)))
    with VirtualBoard(sc, seed=4, speed=20) as board, Node.open(board.port) as n:
        n.handshake()
        slow = next(c.channel for c in n.stream.hello.channels if c.addr == 0x76)
        n.command(wire.C_SET_RATE, bytes([slow]) + struct.pack("<I", 400000))
        with pytest.raises(CommandError, match="multiple"):
            n.command(wire.C_SET_RATE, bytes([slow]) + struct.pack("<I", 150000))
        n.read()
        got = blocks(n, 12)
        fast = np.concatenate([b.t_s for b in got if b.channel != slow])
        slow_t = np.concatenate([b.t_s for b in got if b.channel == slow])
        np.testing.assert_allclose(np.diff(fast), 0.1, atol=1e-9)
        assert len(slow_t) >= 3
        np.testing.assert_allclose(np.diff(slow_t), 0.4, atol=1e-9)


def test_commands_whose_bytes_are_ctrl_c_or_ctrl_d_go_through_stuffed(node):
    """Protocol v1.1: seq, payload and CRC bytes 0x03/0x04/0x7D are stuffed, so the node
    (Ctrl-C on) reads them as data and goes on streaming."""
    period = struct.pack("<I", 200_000)
    assert 3 in period
    node._seq = 0x7D03  # the next seqs hold 0x03 and 0x7D
    assert node.command(wire.C_CALIB, b"\x00").ok
    assert node.command(wire.C_SET_PERIOD, period).ok
    node._seq = 0x0304
    assert node.command(wire.C_PING).ok
    deadline = time.monotonic() + 10  # blocks sampled before SET_PERIOD may still be on their way
    periods: list[float] = []
    while 0.2 not in periods and time.monotonic() < deadline:
        periods += [round(float(np.diff(b.t_s).mean()), 6) for b in blocks(node, 1, timeout_s=1.0) if len(b.t_s) > 1]
    assert 0.2 in periods, periods
    assert node.board.poll() is None


def test_ctrl_c_stops_the_streaming_firmware(node):
    node.port.write(b"\x03")
    deadline = time.monotonic() + 5
    while node.board.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.board.poll() == 2  # main.py interrupted: the board is at its REPL
