"""Sensor compensation: raw counts and calibration blocks in, SI units out.

One module per chip family; each turns the calibration block the node sends once
into coefficients and compensates whole arrays of raw counts in float64. What the
modules share lives here: the checks on raw sample bytes, and the compensator
that the registry (leakmon.sensors) asks each module's make_compensator() for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
Compensator = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def raw_rows(raw: npt.ArrayLike, raw_len: int, chip: str) -> npt.NDArray[np.int64]:
    """Raw sample bytes as an (N, raw_len) int64 array.

    ``raw`` is an (N, raw_len) uint8 array or a flat buffer of N*raw_len bytes;
    anything else raises ValueError naming the chip and the shapes allowed.
    """
    if isinstance(raw, (bytes, bytearray, memoryview)):
        a = np.frombuffer(raw, dtype=np.uint8)
    else:
        a = np.asarray(raw)
    if a.dtype != np.uint8:
        raise ValueError(f"raw {chip} data must be uint8 bytes, got dtype {a.dtype}")
    if a.ndim == 1 and a.size % raw_len == 0:
        a = a.reshape(-1, raw_len)
    if a.ndim != 2 or a.shape[1] != raw_len:
        raise ValueError(
            f"raw {chip} data must be (N, {raw_len}) or a flat multiple of {raw_len} bytes, "
            f"got shape {a.shape}"
        )
    return a.astype(np.int64)


def bind_compensator(
    unpack_raw: Callable[[np.ndarray], Arrays],
    compensate: Callable[..., tuple[np.ndarray, np.ndarray]],
    *cal: Any,
) -> Compensator:
    """raw (n, raw_len) uint8 -> compensate(*unpack_raw(raw), *cal): (pressure_pa, temperature_k)."""

    def run(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return compensate(*unpack_raw(raw), *cal)

    return run
