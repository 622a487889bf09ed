"""Leak analysis on recorded or live samples: pure numpy functions, no I/O.

- `slope` (with `fit`, `sliding`, `incremental`, `student_t`): least-squares slopes with
  honest 95 % intervals over one window, every window of a record, or a live stream, all
  from one long-run variance (`lrv`) that survives slow, flicker and random-walk noise.
- `rates`: a slope of P/T as a leak in kg/day, lb/day, Pa.m3/s, mbar.L/s, sccm, psi/day, ...
  (the one slope-to-loss conversion).
- `decay`: which model holds (linear, exponential, or neither: lack-of-fit tests), the
  current rate, hole size, time to a pressure limit.
- `estimate`: one channel's estimate, the same for `monitor` (live) and `analyze` (offline).
- `cusum`: leak onset detection designed from a false-alarm spacing in time.
- `massbalance`, `verdict`, `planner`, `hatchdetect`: which hatch-isolated segment leaks
  (mass balance per connected group, a verdict per segment, the next hatch to close).
- `recipe`: industrial pressure-decay test recipes and verdicts.
"""

from leakmon.analysis.slope import (
    IncrementalSlope,
    SlopeFit,
    fit_slope,
    sliding_slopes,
    student_t_ppf,
)

__all__ = ["IncrementalSlope", "SlopeFit", "fit_slope", "sliding_slopes", "student_t_ppf"]
