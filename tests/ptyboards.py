"""Boards on pseudo-terminals for tests and benchmarks of many ports: the board's side of
each pty (the master), which answers the host's first command with a handshake, as the
firmware answers INFO."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import time
import tty
from collections.abc import Iterator


class PtyBoards:
    """n pseudo-terminals: `names` for the host to open, `masters` to write frames to."""

    def __init__(self, n: int) -> None:
        self.masters: list[int] = []
        self.slaves: list[int] = []  # held open: a master with no slave open reads EIO
        self.names: list[str] = []
        for _ in range(n):
            m, s = os.openpty()
            tty.setraw(s)
            self.masters.append(m)
            self.slaves.append(s)
            self.names.append(os.ttyname(s))

    def answer_handshakes(self, handshakes: list[bytes], timeout_s: float) -> int:
        """Board k writes handshakes[k] when the host's first command reaches it; returns
        how many never heard from the host within timeout_s."""
        poller = select.poll()
        for m in self.masters:
            poller.register(m, select.POLLIN)
        waiting = dict(zip(self.masters, range(len(self.masters))))
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            for fd, _ in poller.poll(200):
                os.read(fd, 4096)
                k = waiting.pop(fd, None)
                if k is not None:
                    os.write(fd, handshakes[k])
        return len(waiting)

    def close(self, k: int) -> None:
        """Board k vanishes (as an unplugged one): its pty is gone."""
        for fds in (self.masters, self.slaves):
            if fds[k] >= 0:
                os.close(fds[k])
                fds[k] = -1

    def close_all(self) -> None:
        for k in range(len(self.masters)):
            self.close(k)


@contextlib.contextmanager
def descriptors_past(first_free: int) -> Iterator[None]:
    """Take every descriptor below first_free (raising the open-files limit as needed;
    root may raise the hard one too), so that what opens next lands past it, as in a
    gateway with hundreds of ports open; let them go after."""
    need = first_free + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard < need and os.geteuid() == 0:
            hard = need
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, 4096)), hard))
    taken: list[int] = []
    try:
        while not taken or taken[-1] < first_free - 1:
            taken.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in taken:
            os.close(fd)
