"""Leak analysis on recorded or live samples: slopes with honest uncertainty.

`slope` holds the estimator core (one window, every window of a record, a live stream).
"""

from leakmon.analysis.slope import (
    IncrementalSlope,
    SlopeFit,
    fit_slope,
    sliding_slopes,
    student_t_ppf,
)

__all__ = ["IncrementalSlope", "SlopeFit", "fit_slope", "sliding_slopes", "student_t_ppf"]
