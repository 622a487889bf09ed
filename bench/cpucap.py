"""A CPU budget per process group (Linux cgroups, root only), for scale-out benchmarks.

On a machine with fewer free cores than the instances need, "does the second instance
double the rate?" is answered by the cores, not by the design: two writers and their two
PostgreSQL backends on two cores top out at 2 / (1 + client / backend CPU per row) of one.
Holding each instance (its client process and its backend) to the same share of a core,
small enough that all of them fit, asks the question the design is responsible for: with
the CPU each one gets fixed, do they still get in each other's way (locks, the WAL, one
partition)? A budget caps time, not speed: where busy vCPUs slow each other (shared caches,
memory, the host's own cores: ~20 % a row on the machine of bench/RESULTS.md), that stays in
the figure. cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us), whichever is mounted writable.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_V2 = Path("/sys/fs/cgroup")
_V1 = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


class CapError(RuntimeError):
    """No writable cgroup CPU controller here (not root, or a container without one)."""


class CpuCap:
    """One cgroup holding the processes added, at most `cores` cores of CPU between them."""

    def __init__(self, name: str, cores: float) -> None:
        quota_us = int(cores * PERIOD_US)
        try:
            if (_V2 / "cgroup.controllers").exists() and "cpu" in (_V2 / "cgroup.controllers").read_text().split():
                (_V2 / "cgroup.subtree_control").write_text("+cpu")
                root, limits = _V2, {"cpu.max": f"{quota_us} {PERIOD_US}"}
            elif (_V1 / "cpu.cfs_quota_us").exists():
                root, limits = _V1, {"cpu.cfs_period_us": str(PERIOD_US), "cpu.cfs_quota_us": str(quota_us)}
            else:
                raise CapError("no cgroup CPU controller is mounted at /sys/fs/cgroup")
            self.path = root / name
            self.path.mkdir(exist_ok=True)
            for file, value in limits.items():
                (self.path / file).write_text(value)
        except OSError as e:
            raise CapError(f"cannot make a cgroup CPU budget ({e.strerror}: {e.filename}); run as root") from e
        self._procs = self.path / "cgroup.procs"
        self._parent = root / "cgroup.procs"

    def add(self, pid: int) -> None:
        """Move a process (all its threads) into the budget."""
        self._procs.write_text(str(pid))

    def close(self) -> None:
        """Move what is left back to the root group and remove the group."""
        for pid in self._procs.read_text().split():
            try:
                self._parent.write_text(pid)
            except OSError:
                pass  # it has exited meanwhile
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
