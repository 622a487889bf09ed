"""A MicroPython raw-REPL client over any open pyserial port: enter the raw REPL,
run code (raw-paste mode with its flow control when the board has it, plain raw
mode otherwise), leave, soft-reset. Every wait has a deadline.

The protocol, as the board speaks it: Ctrl-A -> "raw REPL; CTRL-B to exit\\r\\n>";
code, Ctrl-D -> "OK", output, 0x04, error text, 0x04, ">". Raw paste: 05 41 01 ->
"R\\x01" + u16 window; the board sends 0x01 for each further window it accepts.
"""

from __future__ import annotations

import ast
import struct
import time
from typing import Any

import serial

from leakmon.errors import (
    BoardError,
    NotAtReplError,
    TransportError,
    TransportTimeoutError,
)

try:  # pyserial's flush() on POSIX is termios.tcdrain, whose error is no OSError
    from termios import error as _TermiosError

    LINK_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, _TermiosError)
except ImportError:  # pragma: no cover - not POSIX
    LINK_ERRORS = (serial.SerialException, OSError)

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
SOFT_REBOOT = b"soft reboot\r\n"


class RawRepl:
    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port
        self.use_paste = True

    # -- bytes -----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except LINK_ERRORS as e:  # the device went away (unplugged, powered off)
            raise TransportError(f"link lost: {e}") from e

    def _read(self, n: int) -> bytes:
        try:
            return bytes(self.port.read(n))
        except (serial.SerialException, OSError) as e:
            raise TransportError(f"link lost: {e}") from e

    def _waiting(self) -> int:
        """Bytes waiting to be read; a port unplugged meanwhile is a lost link like a read's."""
        try:
            return int(self.port.in_waiting)
        except LINK_ERRORS as e:
            raise TransportError(f"link lost: {e}") from e

    def read_until(self, ending: bytes, timeout_s: float, abort: bytes | None = None) -> bytes:
        """Bytes up to and including ending; whatever came if the deadline passes
        or the abort marker shows up first."""
        data = bytearray()
        deadline = time.monotonic() + timeout_s
        while not data.endswith(ending) and time.monotonic() < deadline:
            data += self._read(1)  # one at a time: nothing past the ending is consumed
            if abort is not None and data.endswith(abort):
                break
        return bytes(data)

    def read_exact(self, n: int, timeout_s: float) -> bytes:
        data = bytearray()
        deadline = time.monotonic() + timeout_s
        while len(data) < n and time.monotonic() < deadline:
            data += self._read(n - len(data))
        return bytes(data)

    def drain(self, quiet_s: float = 0.15, max_s: float = 1.0) -> bytes:
        """Read until the board has been quiet for quiet_s (at most max_s); the last 4 kB read."""
        seen = bytearray()
        end = time.monotonic() + max_s
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet_s:
            got = self._read(4096 if self._waiting() else 1)
            if got:
                last = time.monotonic()
                seen = (seen + got)[-4096:]
        return bytes(seen)

    # -- REPL ------------------------------------------------------------------
    def interrupt(self) -> bytes:
        """Ctrl-C twice (stops a program that allows it); what the board sent meanwhile."""
        self.write(b"\r\x03\x03")
        return self.drain()

    def enter(self, timeout_s: float = 2.0, abort: bytes | None = None) -> None:
        """Enter the raw REPL (after interrupt()); give up early if abort shows up
        (the sync bytes of a program's binary stream: nobody is at the prompt)."""
        self.write(b"\r\x01")
        if not self.read_until(RAW_BANNER, timeout_s, abort).endswith(RAW_BANNER):
            raise NotAtReplError(f"{self.port.port}: no raw REPL prompt after Ctrl-C, Ctrl-A")

    def leave(self) -> None:
        self.write(b"\x02")

    def soft_reset(self) -> None:
        """Leave the raw REPL and soft-reset from the normal REPL, so main.py runs."""
        self.write(b"\x02")
        self.drain(0.1, 1.0)
        self.write(b"\x04")

    def exec(self, code: str, timeout_s: float = 10.0) -> bytes:
        """Run code in the raw REPL; its output, or BoardError with the traceback."""
        src = code.encode()
        if self.use_paste:
            self.write(b"\x05A\x01")
            answer = self.read_exact(2, 2.0)
            if answer == b"R\x01":
                self._paste(src, timeout_s)
            else:
                self.use_paste = False
                if answer != b"R\x00":  # an old board echoes the bytes and reprints its prompt
                    self.read_until(b"w REPL; CTRL-B to exit\r\n>", 2.0)
        if not self.use_paste:
            for i in range(0, len(src), 256):
                self.write(src[i:i + 256])
                time.sleep(0.01)
            self.write(b"\x04")
            if self.read_exact(2, 2.0) != b"OK":
                raise TransportError(f"{self.port.port}: the raw REPL did not accept the code")
        out = self.read_until(b"\x04", timeout_s)
        err = self.read_until(b"\x04", 2.0)
        prompt = self.read_exact(1, 2.0)
        if not out.endswith(b"\x04") or not err.endswith(b"\x04") or prompt != b">":
            raise TransportTimeoutError(f"{self.port.port}: no answer from the board within {timeout_s:g} s")
        if err[:-1].strip():
            raise BoardError(err[:-1].decode(errors="replace"))
        return out[:-1]

    def _paste(self, src: bytes, timeout_s: float) -> None:
        window = struct.unpack("<H", self.read_exact(2, 2.0).rjust(2, b"\0"))[0] or 128
        room = window
        i = 0
        deadline = time.monotonic() + timeout_s
        while i < len(src):
            while room == 0 or self._waiting():
                if time.monotonic() > deadline:
                    raise TransportError(f"{self.port.port}: raw paste stalled")
                b = self._read(1)
                if b == b"\x01":
                    room += window
                elif b == b"\x04":  # the board ended the paste early
                    self.write(b"\x04")
                    return
                elif b:
                    raise TransportError(f"{self.port.port}: unexpected {b!r} during raw paste")
            chunk = src[i:i + room]
            self.write(chunk)
            room -= len(chunk)
            i += len(chunk)
        self.write(b"\x04")
        if not self.read_until(b"\x04", timeout_s).endswith(b"\x04"):
            raise TransportError(f"{self.port.port}: the board did not acknowledge the raw paste")

    def eval(self, expr: str, timeout_s: float = 10.0) -> Any:
        """A Python literal the board prints (repr) for expr."""
        out = self.exec(f"print(repr({expr}))", timeout_s)
        try:
            return ast.literal_eval(out.decode().strip())
        except (ValueError, SyntaxError, UnicodeDecodeError) as e:
            raise TransportError(f"{self.port.port}: unreadable answer {out[:80]!r}") from e
