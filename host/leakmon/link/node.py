"""A node on a serial link: open by URL, handshake, commands, sample blocks.

Any pyserial URL works: /dev/ttyACM0, a pty path, loop://, socket://host:port.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator

import serial

from leakmon import wire
from leakmon.errors import (
    CommandError,
    CommandTimeoutError,
    HandshakeError,
    HandshakeTimeoutError,
    TransportError,
)
from leakmon.link.portpoll import READ_CHUNK, WRITE_WAIT_S, PortPoller
from leakmon.wire import messages
from leakmon.wire.stream import Item, NodeStream


class Node:
    def __init__(self, port: serial.SerialBase, opener: Callable[[], serial.SerialBase] | None = None) -> None:
        self.port = port
        self._opener = opener  # opens the same port again, for reopen()
        self.stream = NodeStream()
        self._seq = 0
        self._backlog: deque[Item] = deque()
        # Raw byte taps (a recorder): called with every chunk read or written, before decoding.
        self.rx_taps: list[Callable[[bytes], None]] = []
        self.tx_taps: list[Callable[[bytes], None]] = []
        # How long read() waits for bytes on a POSIX tty when none have come; None: the
        # port's own timeout. The gateway's port loop reads with 0 (it waited already).
        self.wait_s: float | None = None
        self._poller = PortPoller()

    @classmethod
    def open(cls, url: str, baudrate: int = 115200) -> "Node":
        def opener() -> serial.SerialBase:
            try:
                return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, exclusive=True)
            except (serial.SerialException, OSError, ValueError) as e:
                raise TransportError(f"cannot open {url}: {e}") from e

        return cls(opener(), opener)

    def reopen(self) -> None:
        """Open the port again after it vanished (same URL), keeping the stream's time
        base and sequence numbers, so the frames lost meanwhile are counted."""
        if self._opener is None:
            raise TransportError("this link cannot be reopened (no URL)")
        try:
            self.port.close()
        except (serial.SerialException, OSError):
            pass
        self.port = self._opener()
        self.stream.decoder.drop_pending()

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw I/O ---------------------------------------------------------------
    def _read_items(self, wait_s: float | None = None) -> list[Item]:
        try:
            fds = PortPoller.fds_of(self.port)
            if fds is not None:  # a POSIX tty: poll(2), any descriptor number (link/portpoll.py)
                data = self._poller.read(fds, self.port.timeout if wait_s is None else wait_s)
            else:
                data = self.port.read(max(1, min(READ_CHUNK, self.port.in_waiting or 1)))
                if self.port.in_waiting:
                    data += self.port.read(min(READ_CHUNK, self.port.in_waiting))
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"link lost: {e}") from e
        for tap in self.rx_taps:
            tap(data)
        return self.stream.feed(data) if data else []

    def _write(self, data: bytes) -> None:
        for tap in self.tx_taps:
            tap(data)
        try:
            fds = PortPoller.fds_of(self.port)
            if fds is not None:  # the port's own write timeout if it has one; never unbounded
                wt = self.port.write_timeout
                PortPoller.write(fds, data, WRITE_WAIT_S if wt is None else wt)
            else:
                self.port.write(data)
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"link lost: {e}") from e

    def _next_seq(self) -> int:
        s = self._seq
        self._seq = (s + 1) & 0xFFFF
        return s

    # -- protocol ----------------------------------------------------------------
    def command(self, cmd: int, payload: bytes = b"", timeout_s: float = 2.0) -> messages.Ack:
        """Send a command and wait for its ACK; other messages are kept for read()."""
        seq = self._next_seq()
        self._write(wire.command_frame(cmd, seq, payload))  # stuffed: never a Ctrl-C (PROTOCOL.md)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ack = None
            for item in self._read_items():  # whatever came with the ACK is kept, in order
                if ack is None and isinstance(item, messages.Ack) and item.cmd_seq == seq and item.cmd_type == cmd:
                    ack = item
                else:
                    self._backlog.append(item)
            if ack is not None:
                if not ack.ok:
                    raise CommandError(f"node refused command 0x{cmd:02x}: {ack.status_name} {ack.text}".rstrip())
                return ack
        raise CommandTimeoutError(f"no acknowledgement of command 0x{cmd:02x} within {timeout_s:g} s")

    def handshake(self, timeout_s: float = 5.0) -> messages.Hello:
        """Ask the node to identify itself; wait for HELLO and every calibration."""
        deadline = time.monotonic() + timeout_s
        next_ask = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_ask:
                self._write(wire.command_frame(wire.C_INFO, self._next_seq(), b""))
                next_ask = time.monotonic() + 1.0
            self._backlog.extend(self._read_items())
            if self.stream.ready and self.stream.hello is not None:
                return self.stream.hello
        st = self.stream.decoder.stats
        if st.bytes_in == 0:
            raise HandshakeTimeoutError(f"no answer from the node within {timeout_s:g} s (is the leakmon firmware running?)")
        if st.unknown_version and not st.frames:
            raise HandshakeError(f"the node sends frames of another protocol version ({st.unknown_version} seen); "
                                 f"this host speaks v{wire.VERSION}")
        if self.stream.refused:  # the node answered, but with something the host cannot use
            raise HandshakeError(f"no usable HELLO and calibration within {timeout_s:g} s: {self.stream.refused}")
        raise HandshakeTimeoutError(
            f"no leakmon HELLO within {timeout_s:g} s ({st.bytes_in} bytes received, {st.frames} frames): "
            "is this a leakmon node?"
        )

    def read(self, timeout_s: float | None = None) -> list[Item]:
        """What arrived since the last call. Without timeout_s it waits at most wait_s on a
        POSIX tty, else the port's own read timeout (50 ms), and may return nothing; with
        it, it waits until at least one item has come or timeout_s has passed (then it
        returns an empty list)."""
        if self._backlog:
            items = list(self._backlog)
            self._backlog.clear()
            return items
        if timeout_s is None:
            return self._read_items(self.wait_s)
        deadline = time.monotonic() + timeout_s
        while True:
            items = self._read_items()
            if items or time.monotonic() >= deadline:
                return items

    def __iter__(self) -> Iterator[Item]:
        while True:
            yield from self.read()


def open_node(url: str, baudrate: int = 115200) -> Node:
    """A node on a serial port or any pyserial URL (/dev/ttyACM0, a pty, socket://...)."""
    return Node.open(url, baudrate)
