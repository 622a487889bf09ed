"""Leak-rate estimator core: least-squares slopes with an honest uncertainty.

The public face of the estimator: `fit_slope` fits one window (`fit`), `sliding_slopes`
every window of a record in O(N) (`sliding`), `IncrementalSlope` a live stream in O(batch)
per update (`incremental`); all three agree to rounding. `student_t_ppf` gives their 95 %
intervals (`student_t`).
"""

from leakmon.analysis.fit import CONFIDENCE, RHO_MAX, SlopeFit, fit_slope
from leakmon.analysis.incremental import IncrementalSlope
from leakmon.analysis.sliding import sliding_slopes
from leakmon.analysis.student_t import student_t_ppf

__all__ = [
    "CONFIDENCE", "RHO_MAX", "IncrementalSlope", "SlopeFit", "fit_slope", "sliding_slopes",
    "student_t_ppf",
]  # fmt: skip
