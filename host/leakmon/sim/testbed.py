"""A virtual testbed: N virtual boards on one host, as a rack of boards on a USB hub.

Each board has its own pseudo-terminal, flash folder, scenario and seed, and a
stable link DIR/board0 .. DIR/board{N-1}. Two faults a real testbed has are on
offer: a board that never answers (a dead board, or a port that is not a board),
and a board whose power is cut while it is being flashed (the first time a file
is half-written in its flash folder), to prove that a flash can be repeated.
"""

from __future__ import annotations

import os
import tempfile
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from leakmon.errors import SimulatorError
from leakmon.sim.board import VirtualBoard
from leakmon.sim.scenario import Scenario

PART = ".part"  # how leakmon.deploy names a file it is writing
CUT_OFF_S = 1.0  # how long a cut board stays off


class SilentPort:
    """A pseudo-terminal that nobody answers: what it was sent is counted, never answered."""

    def __init__(self, link: Path | None = None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.link = link
        self.received = 0
        if link is not None:
            _relink(link, self.port)

    def drain(self) -> int:
        """Read and drop what was written to the port (so writers never block); bytes read."""
        n = 0
        while True:
            try:
                got = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                break
            if not got:
                break
            n += len(got)
        self.received += n
        return n

    def close(self) -> None:
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self.port:
            self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            os.close(fd)


def _relink(link: Path, target: str) -> None:
    tmp = link.with_name(link.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as e:
        raise SimulatorError(f"cannot make the link {link}: {e.strerror or e}") from e


@dataclass
class Slot:
    """One place on the testbed: a virtual board or a silent port."""

    index: int
    name: str
    scenario: str
    seed: int
    board: VirtualBoard | None = None
    silent: SilentPort | None = None
    cut_pending: bool = False
    cuts: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def port(self) -> str:
        if self.board is not None:
            return self.board.port
        assert self.silent is not None
        return self.silent.port


class Testbed:
    """N virtual boards: start() (or a with block), then poll() now and then."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, n: int, scenarios: list[tuple[str, Scenario]], seed: int = 1, speed: float = 1.0, *,
                 empty: bool = False, link_dir: Path | None = None, flash_root: Path | None = None,
                 silent: frozenset[int] = frozenset(), cut_mid_flash: frozenset[int] = frozenset()) -> None:
        if n < 1:
            raise SimulatorError(f"a testbed needs at least one board, not {n}")
        bad = sorted(i for i in silent | cut_mid_flash if not 0 <= i < n)
        if bad:
            raise SimulatorError(f"no board {bad[0]} on a testbed of {n} (boards are 0..{n - 1})")
        if not scenarios:
            raise SimulatorError("a testbed needs a scenario")
        self.n = n
        self.scenarios = scenarios
        self.seed = seed
        self.speed = speed
        self.empty = empty
        self.link_dir = link_dir
        self.flash_root = flash_root
        self.silent = silent
        self.cut_mid_flash = cut_mid_flash
        self.slots: list[Slot] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def link(self, i: int) -> Path | None:
        return None if self.link_dir is None else self.link_dir / f"board{i}"

    def start(self) -> list[Slot]:
        if self.link_dir is not None:
            try:
                self.link_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise SimulatorError(f"cannot make the link folder {self.link_dir}: {e.strerror or e}") from e
        if self.flash_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="leakmon-testbed-")
        root = self.flash_root if self.flash_root is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        try:
            for i in range(self.n):
                name, sc = self.scenarios[i % len(self.scenarios)]
                slot = Slot(i, f"board{i}", name, self.seed + i, cut_pending=i in self.cut_mid_flash)
                self.slots.append(slot)
                if i in self.silent:
                    slot.silent = SilentPort(self.link(i))
                    continue
                flash = root / f"board{i}"
                install = not self.empty and self.flash_root is None  # a kept folder stays as it is
                slot.board = VirtualBoard(sc, slot.seed, self.speed, flash_dir=flash, install_firmware=install,
                                          link=self.link(i))
                slot.board.start()
        except BaseException:
            self.close()
            raise
        return self.slots

    def poll(self) -> list[str]:
        """Keep the silent ports drained and the cut boards armed; what happened, one line each."""
        out: list[str] = []
        for s in self.slots:
            if s.silent is not None:
                s.silent.drain()
                continue
            assert s.board is not None
            for event in s.board.events():
                word, _, arg = event.partition(" ")
                if word == "main":
                    how = {"0": "returned", "2": "interrupted"}.get(arg, "raised")
                    out.append(f"{s.name}: main.py ended ({how}): the board is at its REPL")
            if not s.board.running():
                raise SimulatorError(f"{s.name} stopped (exit {s.board.poll()}): {s.board.log_tail(1)}")
            if s.cut_pending and any(p.name.endswith(PART) for p in s.board.flash_dir.iterdir()):
                s.cut_pending = False
                s.cuts += 1
                s.board.power_cut(CUT_OFF_S)
                out.append(f"{s.name}: power cut in the middle of a flash, back in {CUT_OFF_S:g} s")
        return out

    @contextmanager
    def served(self, tick_s: float = 0.02) -> Iterator[list[str]]:
        """poll() in a thread while the block runs (a test flashing the bed in-process);
        yields the list the lines go to."""
        lines: list[str] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    lines.extend(self.poll())
                except SimulatorError as e:
                    lines.append(f"stopped serving: {e}")
                    return
                stop.wait(tick_s)

        t = threading.Thread(target=loop, name="testbed", daemon=True)
        t.start()
        try:
            yield lines
        finally:
            stop.set()
            t.join(5.0)

    def close(self) -> None:
        for s in self.slots:
            if s.board is not None:
                s.board.close()
            if s.silent is not None:
                s.silent.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "Testbed":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
