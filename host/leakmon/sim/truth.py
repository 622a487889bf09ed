"""Ground truth of a scenario: what the virtual board's physics says each segment's
gas did, evaluated on the host by the very code the board runs (vboard/physics.py).

Columns: t_s, then per segment "<name>.pressure_pa", ".temperature_k", ".mass_kg",
".leak_kg_per_s" (out through the segment's own leaks; positive = losing gas),
".leak_pa_per_s" (that flow as the pressure loss rate it gives the segment alone, at
the present temperature: leakmon's sign) and ".net_loss_kg_per_s" (out through
everything, hatches and valves included, averaged over the integration step; with
hatches open the leak is shared: this is what each segment's gas really does).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from leakmon.errors import ConfigError
from leakmon.sim.vboard.physics import M_AIR, Plant, R


class _Segment(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def volume_m3(self) -> float: ...


class Simulated(Protocol):
    """What the truth needs of a scenario (leakmon.sim.spec.Scenario): its segments and
    a fresh plant. A protocol, so that this module and the scenario's need not import
    each other."""

    @property
    def segments(self) -> Sequence[_Segment]: ...

    def plant(self) -> Plant: ...


QUANTITIES = ("pressure_pa", "temperature_k", "mass_kg", "leak_kg_per_s", "leak_pa_per_s", "net_loss_kg_per_s")


def truth_table(scenario: Simulated, t_s: np.ndarray | list[float]) -> dict[str, np.ndarray]:
    """Truth columns at times t_s (any order; evaluated in increasing time)."""
    t = np.asarray(t_s, dtype=np.float64).ravel()
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
        raise ConfigError("truth times must be finite and >= 0")
    order = np.argsort(t, kind="stable")
    plant = scenario.plant()
    segs = scenario.segments
    cols = {f"{s.name}.{q}": np.empty(t.size) for s in segs for q in QUANTITIES}
    for j in order:
        tj = float(t[j])
        for i, s in enumerate(segs):
            p, temp = plant.state(i, tj)
            leak = plant.leak_kg_per_s(i, tj)
            cols[f"{s.name}.pressure_pa"][j] = p
            cols[f"{s.name}.temperature_k"][j] = temp
            cols[f"{s.name}.mass_kg"][j] = p * s.volume_m3 * M_AIR / (R * temp)
            cols[f"{s.name}.leak_kg_per_s"][j] = leak
            cols[f"{s.name}.leak_pa_per_s"][j] = leak * R * temp / (M_AIR * s.volume_m3)
            cols[f"{s.name}.net_loss_kg_per_s"][j] = plant.net_loss_kg_per_s(i, tj)
    return {"t_s": t, **cols}


def write_truth(path: str | Path, scenario: Simulated, t_s: np.ndarray | list[float]) -> Path:
    """Write truth_table() to a .csv (header row, one row per time) or .npz file."""
    path = Path(path)
    table = truth_table(scenario, t_s)
    try:
        if path.suffix == ".npz":
            np.savez(path, **table)  # type: ignore[arg-type]
        elif path.suffix == ".csv":
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(list(table))
                w.writerows(zip(*(col.tolist() for col in table.values())))
        else:
            raise ConfigError(f"truth file {path}: the name must end in .csv or .npz")
    except OSError as e:
        raise ConfigError(f"cannot write truth file {path}: {e.strerror or e}") from e
    return path
