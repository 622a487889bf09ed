"""What the compensation tests share: the (pressure, temperature) grid the model is
inverted on, the half-a-count check of a quantized round trip, a stand-in board
for the register models, and the checks on raw sample bytes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

Pair = tuple[np.ndarray, np.ndarray]


def grid(p_min_pa: float, p_max_pa: float) -> Pair:
    """61 pressures across a chip's rated range times 51 temperatures over -40..85 C
    (3111 points): (pressure_pa, temperature_k), flat."""
    p = np.linspace(p_min_pa, p_max_pa, 61)
    t = np.linspace(-40.0, 85.0, 51) + 273.15
    pp, tt = np.meshgrid(p, t)
    return pp.ravel(), tt.ravel()


def assert_within_half_count(comp: Callable[[np.ndarray, np.ndarray], Pair], raw: np.ndarray,
                             p_true: np.ndarray, t_true: np.ndarray | None = None) -> Pair:
    """Each compensated pressure (and, given t_true, temperature) lies within half
    a count of the truth: half the step to the next count up or down. Returns (p, t)."""
    p, t = comp(raw[:, 0], raw[:, 1])
    p_up, _ = comp(raw[:, 0] + 1, raw[:, 1])
    p_dn, _ = comp(raw[:, 0] - 1, raw[:, 1])
    half_count = 0.5 * np.maximum(np.abs(p_up - p), np.abs(p - p_dn))
    assert np.all(np.abs(p - p_true) <= half_count * (1 + 1e-9) + 1e-9)
    if t_true is not None:
        _, t_up = comp(raw[:, 0], raw[:, 1] + 1)
        assert np.all(np.abs(t - t_true) <= 0.5 * np.abs(t_up - t) * (1 + 1e-6) + 1e-12)
    return p, t


def assert_model_is_host(model: Callable[[int, int], tuple[float, float]], raw_p: list[int],
                         raw_t: list[int], p: np.ndarray, t: np.ndarray) -> None:
    """The model's scalar maths, model(raw_p, raw_t) -> (pressure, temperature), gives
    the host's arrays p and t bit for bit."""
    m = np.array([model(u, v) for u, v in zip(raw_p, raw_t)])
    assert np.array_equal(p, m[:, 0]) and np.array_equal(t, m[:, 1])


class FakeGauss:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def next(self) -> float:
        return self._rng.gauss(0.0, 1.0)


class FakeHardware:
    """A model's hw: the gas state the test sets, and seeded noise."""

    def __init__(self, pressure_pa: float, temperature_k: float) -> None:
        self.state = (pressure_pa, temperature_k)
        self.gauss = FakeGauss(1)

    def env(self) -> tuple[float, float]:
        return self.state


def burst(model: Any, reg: int, raw_len: int, n: int = 2000) -> bytearray:
    """n samples read from a model's data registers, one bus read each, back to back."""
    buf = bytearray(raw_len * n)
    for i in range(n):
        model.read_into(reg, memoryview(buf)[raw_len * i:raw_len * i + raw_len])
    return buf


def assert_rejects_bad_raw(unpack_raw: Callable[[Any], Pair], raw_len: int,
                           dtype: Any = np.int32) -> None:
    """A flat buffer that is no whole number of samples, or bytes of another dtype."""
    with pytest.raises(ValueError, match=f"multiple of {raw_len}"):
        unpack_raw(np.zeros(7, dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        unpack_raw(np.zeros((2, raw_len), dtype=dtype))
