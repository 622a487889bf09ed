"""Synthetic node byte streams for tests and benchmarks: what the firmware sends,
built with the firmware's own wire module and a real BMP3xx calibration block."""

from __future__ import annotations

import numpy as np
from leakmon import wire

# Bosch BMP388 calibration block from a worked example (tests/compensation/test_bmp3.py).
BMP3_CALIB = bytes.fromhex("236B5849F65CFFCEF42300EA636E79F3F6AA4312C4")


def handshake(channels: int = 1, period_us: int = 100_000, rows: int = 10, seq: int = 0,
              ticks_bits: int = 30) -> bytes:
    """HELLO and one CALIB per channel (BMP390s at 0x77/0x76 behind an 8-channel mux;
    past 16 channels on further buses: a HELLO naming mux channel 8 is refused)."""
    chans = [(ch, wire.CHIP_BMP390, ch // 16, ch % 8 if channels > 1 else wire.NO_MUX, 0x77 - (ch // 8) % 2, 6)
             for ch in range(channels)]
    out: bytes = wire.frame(wire.T_HELLO, seq, wire.hello_payload("0.1.0", "synthetic", ticks_bits, period_us, rows, chans))
    for ch in range(channels):
        out += wire.frame(wire.T_CALIB, seq + 1 + ch, wire.calib_payload(ch, wire.CHIP_BMP390, BMP3_CALIB))
    return out


def samples(n_frames: int, channels: int = 1, rows: int = 10, period_us: int = 100_000, seq: int = 0,
            t0_us: int = 0, ticks_bits: int = 30, seed: int = 0, ramp_from_row: int | None = None,
            ramp_counts_per_row: float = 0.0) -> bytes:
    """n_frames SAMPLES frames of plausible raw counts (pressure ~ 1 atm, temperature ~ 20 C, noisy);
    from row ramp_from_row on, the raw pressure count moves by ramp_counts_per_row per row."""
    rng = np.random.default_rng(seed)
    n = n_frames * rows * channels
    ramp = np.zeros(n)
    if ramp_from_row is not None:
        row = np.arange(n) // channels
        ramp = np.maximum(row - ramp_from_row, 0) * ramp_counts_per_row
    p = (6_700_000 + rng.integers(-4000, 4000, n) + np.round(ramp).astype(np.int64)).astype("<u4").view(np.uint8).reshape(n, 4)[:, :3]
    t = (8_400_000 + rng.integers(-4000, 4000, n)).astype("<u4").view(np.uint8).reshape(n, 4)[:, :3]
    raw = np.concatenate([p, t], axis=1).reshape(n_frames, rows * channels * 6)
    chans = [(ch, 6) for ch in range(channels)]
    mask = (1 << ticks_bits) - 1
    out = []
    for f in range(n_frames):
        head = bytearray(wire.HEADER_SIZE + wire.SAMPLES_HEADER_SIZE + 2 * channels)
        wire.samples_begin(head, (t0_us + f * rows * period_us) & mask, period_us, rows, chans)
        payload = bytes(head[wire.HEADER_SIZE :]) + raw[f].tobytes()
        out.append(wire.frame(wire.T_SAMPLES, (seq + f) & 0xFFFF, payload))
    return b"".join(out)


def capture(n_frames: int, channels: int = 1, rows: int = 10, seed: int = 0) -> bytes:
    """A handshake then n_frames SAMPLES frames, sequence numbers continuing."""
    return handshake(channels, rows=rows) + samples(n_frames, channels, rows, seq=1 + channels, seed=seed)
