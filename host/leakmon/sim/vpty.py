"""The two pseudo-terminals of the virtual board and the interpreter between
them (used by leakmon.sim.supervisor): the outer pty users open, and one run of the
MicroPython unix port on a fresh inner pty."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
import tty
from pathlib import Path

STOP_WAIT_S = 1.0


def set_raw(fd: int) -> None:
    tty.setraw(fd)


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The inner pty becomes the interpreter's controlling terminal: if the
    supervisor dies, the master closes and the kernel hangs the interpreter up.
    SIGINT starts ignored, so the CPython that hosts the unix port installs no
    handler of its own: a caught SIGINT then always means MicroPython's."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sigint_caught(pid: int) -> bool:
    """True while the interpreter has its SIGINT handler installed: the unix port
    does so only while code runs with kbd_intr(3), so a signal then is a Ctrl-C."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError):
        pass
    return False


class Outer:
    """The device users open: a pty master in packet mode (to see flushes), whose
    slave this process keeps open so that its settings stay and reads never hang up."""

    def __init__(self, link: Path | None) -> None:
        self.master, self.slave = os.openpty()
        set_raw(self.slave)
        fcntl.ioctl(self.master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.link = link
        if link is not None:
            tmp = link.with_name(link.name + ".tmp")
            try:
                tmp.unlink(missing_ok=True)
                os.symlink(self.path, tmp)
                os.replace(tmp, link)
            except OSError as e:
                self.close()
                raise OSError(e.errno, f"cannot make the link {link}: {e.strerror}") from e

    def close(self) -> None:
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.path:
            self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            os.close(fd)


class Interpreter:
    """One run of the unix port on a fresh inner pty (one boot of the board)."""

    def __init__(self, argv: list[str], flash: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        set_raw(slave)
        self.slave_path = os.ttyname(slave)
        try:
            self.proc = subprocess.Popen(argv, cwd=flash, stdin=slave, stdout=slave, stderr=slave, env=env,
                                         start_new_session=True, preexec_fn=_child_setup)
        finally:
            os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        self.started = time.monotonic()

    def flush_input(self) -> None:
        """Drop what was sent to the interpreter and not read yet, as a Ctrl-C does on a
        terminal (ISIG) and on a board's USB-CDC: the interrupted program's unread input
        must not be typed into the REPL that follows."""
        try:
            fd = os.open(self.slave_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return  # the interpreter is gone, and its input with it
        try:
            termios.tcflush(fd, termios.TCIFLUSH)
        finally:
            os.close(fd)

    def stop(self, grace_s: float = 0.0) -> int:
        """End this run (after grace_s for it to end by itself); its exit code."""
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            for sig, wait_s in ((signal.SIGTERM, STOP_WAIT_S), (signal.SIGKILL, STOP_WAIT_S)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        os.close(self.master)
        return self.proc.wait(timeout=STOP_WAIT_S)
