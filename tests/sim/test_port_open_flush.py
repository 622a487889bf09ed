"""Opening the virtual board's port loses only what the board sent before the open, as
a real serial port does: never a piece from the middle of the stream.

pyserial flushes its input when it opens a port; the supervisor sees the flush (packet
mode) and drops what it still held for the client. The client's open can fall between
the supervisor's select() and its write: the write then reaches the client, and what the
board sent after it must follow. The tests place the open exactly there (or before) and
read what the client gets. The board is a pty the test writes to, in place of the
MicroPython process; the supervisor's relay and the kernel's ptys are real.
"""

from __future__ import annotations

import os
import select
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from leakmon.sim.supervisor import Supervisor
from leakmon.sim.vpty import Outer, set_raw


class _Relay(Supervisor):
    """The supervisor with the client's open placed right before its first write to the client."""

    open_before_first_write = False
    client: serial.SerialBase | None = None

    def _write(self, fd: int, buf: bytearray) -> None:  # type: ignore[override]
        if self.open_before_first_write and self.client is None and self.outer is not None and fd == self.outer.master:
            self.client = serial.serial_for_url(self.outer.path, timeout=0.2)  # its flush lands after select()
        Supervisor._write(fd, buf)


Relay = tuple["_Relay", Callable[[bytes], None], Callable[[int], None]]


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Relay]:
    ctl_r, ctl_w = os.pipe()  # the control channel (stdin) stays quiet
    monkeypatch.setattr(sys, "stdin", os.fdopen(ctl_r, "rb", buffering=0))
    status_r, status_w = os.pipe()
    board_master, board_slave = os.openpty()
    set_raw(board_slave)
    os.set_blocking(board_master, False)
    sup = _Relay("micropython", tmp_path, "", tmp_path / "status")
    sup.outer = Outer(None)
    sup.interp = types.SimpleNamespace(master=board_master)  # type: ignore[assignment]

    def board_writes(data: bytes) -> None:
        os.write(board_slave, data)
        assert select.select([board_master], [], [], 2.0)[0]  # through the pty: waiting at the next select()

    def steps(n: int) -> None:
        for _ in range(n):
            sup.step(status_r)

    yield sup, board_writes, steps
    if sup.client is not None:
        sup.client.close()
    sup.outer.close()
    for fd in (ctl_w, status_r, status_w, board_master, board_slave):
        os.close(fd)


def _read_all(client: serial.SerialBase) -> bytes:
    out = b""
    while chunk := client.read(4096):
        out += chunk
    return out


def test_an_open_between_select_and_write_cuts_no_hole(relay: Relay) -> None:
    sup, board_writes, steps = relay
    sup.open_before_first_write = True
    board_writes(b"boot|")
    steps(1)  # read: to be written to the client
    board_writes(b"hello|calib|")  # there when the next select() returns
    steps(1)  # the client opens (its flush) between that select() and the write of "boot|"
    assert sup.client is not None
    board_writes(b"samples|")
    steps(4)
    got = _read_all(sup.client)
    # "boot|" was written after the flush and reached the client: all after it must follow.
    assert got == b"boot|hello|calib|samples|", got


def test_what_the_board_sent_before_the_open_is_dropped(relay: Relay) -> None:
    sup, board_writes, steps = relay
    board_writes(b"old|")
    steps(2)  # read, then written to the port nobody has open: in the kernel's queue
    board_writes(b"older|")
    steps(1)  # read: held for the client, not written yet
    assert sup.outer is not None
    sup.client = serial.serial_for_url(sup.outer.path, timeout=0.2)  # its flush drops "old|"
    board_writes(b"new|")
    steps(4)
    got = _read_all(sup.client)
    assert got == b"new|", got
