"""Helpers for the testbed tests: `leakmon sim --boards N` as a process, and the
fake USB enumeration that stands where a hub full of boards would be."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

LEAKMON = [sys.executable, "-m", "leakmon"]


def leakmon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(LEAKMON + list(args), capture_output=True, text=True, timeout=timeout)


@contextmanager
def sim_boards(n: int, link_dir: Path, *extra: str, timeout_s: float = 60.0) -> Iterator[list[Path]]:
    """`leakmon sim --boards n --link link_dir ...` until the block ends; the links."""
    proc = subprocess.Popen(LEAKMON + ["sim", "--boards", str(n), "--link", str(link_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    links: list[Path] = []
    deadline = time.monotonic() + timeout_s
    buf = b""
    try:
        while len(links) < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"leakmon sim --boards {n} did not start: {err[-500:]}")
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                buf += os.read(proc.stdout.fileno(), 4096)
                *lines, buf = buf.split(b"\n")
                links += [Path(line.decode()) for line in lines if line]
        yield links
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def wait_for_link(link: Path, timeout_s: float = 20.0) -> None:
    """A board that was cut comes back on a new device: wait for its link."""
    deadline = time.monotonic() + timeout_s
    while not link.exists():
        assert time.monotonic() < deadline, f"{link} did not come back"
        time.sleep(0.1)


def usb(device: str | Path, vid: int | None = 0x2E8A, pid: int | None = 0x0005, serial: str | None = None,
        description: str = "Board in FS mode") -> SimpleNamespace:
    """A port as serial.tools.list_ports lists it (what a hub full of boards shows)."""
    return SimpleNamespace(device=str(device), vid=vid, pid=pid, serial_number=serial, description=description)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flash_state(folder: Path) -> dict[str, str]:
    """name -> SHA-256 of every file in a virtual board's flash folder."""
    return {p.name: sha(p.read_bytes()) for p in folder.iterdir() if p.is_file()}
