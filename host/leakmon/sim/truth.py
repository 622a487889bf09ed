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

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from leakmon.errors import ConfigError
from leakmon.sim.scenario import Scenario
from leakmon.sim.vboard.physics import M_AIR, R

QUANTITIES = ("pressure_pa", "temperature_k", "mass_kg", "leak_kg_per_s", "leak_pa_per_s", "net_loss_kg_per_s")


def truth_table(scenario: Scenario, t_s: np.ndarray | list[float]) -> dict[str, np.ndarray]:
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


def write_truth(path: str | Path, scenario: Scenario, t_s: np.ndarray | list[float]) -> Path:
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


def main(argv: list[str] | None = None) -> int:
    """python -m leakmon.sim.truth SCENARIO OUT.csv|OUT.npz [--every S] [--duration S]"""
    from leakmon.sim import scenario as scenario_mod

    ap = argparse.ArgumentParser(prog="python -m leakmon.sim.truth", description="write a scenario's ground truth")
    ap.add_argument("scenario", help="a shipped name or a .toml path")
    ap.add_argument("out", help="output file, .csv or .npz")
    ap.add_argument("--every", type=float, default=1.0, help="seconds between rows (1)")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default: the scenario's duration_s)")
    args = ap.parse_args(argv)
    try:
        sc = scenario_mod.load(args.scenario)
        if not args.every > 0:
            raise ConfigError("--every must be positive")
        duration = sc.duration_s if args.duration is None else args.duration
        n = int(duration / args.every + 1e-9) + 1
        write_truth(args.out, sc, [k * args.every for k in range(n)])
    except ConfigError as e:
        print(f"leakmon: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
