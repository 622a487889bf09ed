"""What every chip's compensation module must do alike, one case per chip."""

from __future__ import annotations

import importlib
import struct

import numpy as np
import pytest
from leakmon.sim.vboard import bmp3_model, bmp280_model, dps310_model, ms5611_model

# module, raw sample length, a valid calibration block (the models' defaults)
CHIPS = [
    ("bmp280", 6, bytes.fromhex(bmp280_model.DEFAULT_CALIB_HEX)),
    ("bmp3", 6, bytes.fromhex(bmp3_model.DEFAULT_CALIB_HEX)),
    ("dps310", 6, bytes.fromhex(dps310_model.DEFAULT_COEF_HEX) + b"\x45\xc1\x80"),
    ("lps22", 5, b"\xb1\x5e"),
    ("ms5611", 6, struct.pack(">6H", *ms5611_model.DEFAULT_COEFFICIENTS)),
]


@pytest.mark.parametrize("module,raw_len,block", CHIPS, ids=[c[0] for c in CHIPS])
def test_vectorized_million(module: str, raw_len: int, block: bytes) -> None:
    make_compensator = importlib.import_module(f"leakmon.sensors.{module}").make_compensator
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(1_000_000, raw_len), dtype=np.uint8)
    p, t = make_compensator(block)(raw)
    assert p.shape == (1_000_000,) and t.shape == (1_000_000,)
    assert p.dtype == np.float64 and t.dtype == np.float64
