"""Reading a POSIX serial port through poll(2) instead of pyserial's select(2).

pyserial's `Serial.read` on POSIX waits in `select.select`, which refuses any descriptor
from 1024 on ("filedescriptor out of range in select()"). Each open port holds five (the
tty and two abort pipes), so a gateway with about 200 ports failed on every read. It also
reads one byte, asks for `in_waiting` and reads the rest: three system calls and a wake-up
per read, and with the 50 ms port timeout twenty wake-ups a second per idle port (3 ms of
CPU per port-second in the gateway: bench/RESULTS.md). Its `write` selects too, after
every write, even when all was written.

`PortPoller` waits on the same two descriptors pyserial does (the tty and its abort pipe,
so `Serial.cancel_read()` still wakes it) with poll, which has no such limit, for as long
as its caller says, then takes what is there in one `os.read`; it writes with `os.write`,
polling for room only when the tty's buffer is full, for a bounded time. On Linux only;
a port without those descriptors (loop://, socket://, spy://) or on another system goes
through pyserial as before.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time

import serial

READ_CHUNK = 4096
WRITE_WAIT_S = 2.0  # a command is a few dozen bytes: a tty with no room for that long is stuck
# Linux only: macOS's poll(2) does not take devices (POLLNVAL on a tty) and the other
# systems are untested here; there pyserial reads and writes as before.
_LINUX = sys.platform.startswith("linux")
_RETRY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL if hasattr(select, "poll") else 0


class PortPoller:
    """poll(2) over one port's tty and abort pipe; rebuilt when the port is reopened."""

    def __init__(self) -> None:
        self._fds: tuple[int, int] | None = None
        self._poll: select.poll | None = None  # made at the first read (Windows has no poll)

    @staticmethod
    def fds_of(port: serial.SerialBase) -> tuple[int, int] | None:
        """(tty, abort pipe) of an open POSIX pyserial port, else None. Only pyserial's
        own POSIX class: a subclass (spy://, alt://) reads through its own methods."""
        if not _LINUX or type(port) is not serial.Serial:
            return None
        fd, abort = getattr(port, "fd", None), getattr(port, "pipe_abort_read_r", None)
        return (fd, abort) if isinstance(fd, int) and isinstance(abort, int) else None

    def read(self, fds: tuple[int, int], wait_s: float | None) -> bytes:
        """What the port holds, up to READ_CHUNK bytes, waiting up to wait_s (None: until
        bytes come or cancel_read) for the first; b"" on timeout or cancel. Raises
        SerialException when the device is gone, as pyserial does."""
        if fds != self._fds or self._poll is None:
            self._poll = select.poll()
            for fd in fds:
                self._poll.register(fd, select.POLLIN)
            self._fds = fds
        tty_fd, abort = fds
        events = self._poll.poll(None if wait_s is None else max(0, round(wait_s * 1000)))
        tty_ready = False
        for fd, _ in events:
            if fd == abort:
                try:
                    os.read(abort, 1000)
                except BlockingIOError:
                    pass
            elif fd == tty_fd:
                tty_ready = True
        if not tty_ready:
            return b""
        try:
            data = os.read(tty_fd, READ_CHUNK)
        except OSError as e:
            if e.errno in _RETRY:
                return b""
            raise serial.SerialException(f"read failed: {e}") from e
        if not data:  # a vanished device reads as ready with nothing in it (pyserial's words)
            raise serial.SerialException("device reports readiness to read but returned no data "
                                         "(device disconnected or multiple access on port?)")  # fmt: skip
        return data

    @staticmethod
    def write(fds: tuple[int, int], data: bytes, wait_s: float = WRITE_WAIT_S) -> None:
        """All of data to the tty, waiting at most wait_s in all for room; raises
        SerialException when it cannot (pyserial's words for the same failures)."""
        tty_fd = fds[0]
        view = memoryview(data)
        room: select.poll | None = None
        deadline = time.monotonic() + wait_s
        while view:
            try:
                view = view[os.write(tty_fd, view) :]
                continue
            except OSError as e:
                if e.errno not in _RETRY:
                    raise serial.SerialException(f"write failed: {e}") from e
            left_s = deadline - time.monotonic()
            if left_s <= 0.0:
                raise serial.SerialTimeoutException("Write timeout")
            if room is None:
                room = select.poll()
                room.register(tty_fd, select.POLLOUT)
            for _, ev in room.poll(max(1, round(left_s * 1000))):
                if ev & _GONE:  # no room will ever come
                    raise serial.SerialException("write failed: the device is gone")
