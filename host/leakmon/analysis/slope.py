"""Leak-rate estimator core: least-squares slopes with an honest uncertainty.

The public face of the estimator: `fit_slope` fits one window (`fit`), `sliding_slopes`
every window of a record in O(N) (`sliding`), `IncrementalSlope` a live stream (`incremental`);
all three agree to rounding and share one long-run variance (`lrv`). `student_t_ppf` gives
quantiles (`student_t`).
"""

from leakmon.analysis.fit import CONFIDENCE, SlopeFit, fit_slope
from leakmon.analysis.incremental import IncrementalSlope
from leakmon.analysis.sliding import sliding_slopes
from leakmon.analysis.student_t import student_t_ppf

__all__ = [
    "CONFIDENCE", "IncrementalSlope", "SlopeFit", "fit_slope", "sliding_slopes", "student_t_ppf",
]  # fmt: skip
