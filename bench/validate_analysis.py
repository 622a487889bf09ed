"""Validation: the analysis against known truth (the simulator's Chamber physics plus noise).

Not a test: prints figures and tables, never fails. The tests assert the key ones quickly.

    .venv/bin/python bench/validate_analysis.py [--runs 1000] [--days 12] [--seed 1]

1. White noise: spread of the leak estimate over seeded runs against the Cramer-Rao bound,
   and the 95 % interval's coverage.
2. Temperature swings (chamber and cabin): bias of the P/T (compensated) and P
   (uncompensated) estimates, in % of the true leak.
3. CUSUM: false alarms over a long leak-free run and detection delay / onset error per leak
   size, against Siegmund's approximations.
4. Large leak: hole diameter and time to 520 mmHg against the truth.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test-only helpers

import argparse
import math

import numpy as np
from leakmon import units
from leakmon.analysis.cusum import cusum_scan, siegmund_arl
from leakmon.analysis.decay import choose_model, hole_from_tau, time_to_limit
from leakmon.analysis.fit import fit_slope
from leakmon.analysis.rates import leak_rates
from leakmon.sim.vboard.chamber import Chamber
from synthetic import chamber_truth, choked_record

T0_K = 293.15


def white_noise(runs: int, seed: int) -> None:
    """Spread vs Cramer-Rao and coverage: 50 L, 2.5 g/day, 10 Hz for 600 s, BMP390-like noise."""
    leak = 2.5e-3 / 86400
    ch = Chamber(0.05, 101325.0, T0_K, leak)
    t = np.arange(0.0, 600.0, 0.1)
    p, tk = chamber_truth(ch, t)
    noise_pa, noise_k = 0.3, 0.002
    rng = np.random.default_rng(seed)
    est, covered = np.empty(runs), 0
    for i in range(runs):
        y = (p + rng.normal(0, noise_pa, t.size)) / (tk + rng.normal(0, noise_k, t.size))
        r = leak_rates(fit_slope(t, y), 0.05, T0_K)
        est[i] = r.kg_per_s.value
        covered += r.kg_per_s.ci95_low <= leak <= r.kg_per_s.ci95_high
    # Noise of P/T per sample (linearized), then the bound for the slope, in kg/s.
    sigma_y = math.hypot(noise_pa / T0_K, 101325.0 * noise_k / T0_K**2)
    n, dt = t.size, 0.1
    crb = sigma_y * math.sqrt(12.0 / (n * (n * n - 1))) / dt * 0.05 * units.M / units.R
    print(f"\n1. White noise, {runs} runs (50 L, 2.5 g/day, 0.3 Pa + 2 mK, 10 Hz, 600 s)")
    print(f"   spread / Cramer-Rao bound   {est.std(ddof=1) / crb:8.3f}   (goal 0.9-1.1)")
    print(f"   95% interval coverage       {100 * covered / runs:7.1f} %  (goal 93-97 %)")
    print(f"   mean bias                   {100 * (est.mean() / leak - 1):+7.2f} % of the leak "
          f"(+- {100 * est.std() / math.sqrt(runs) / leak:.2f})")


def swings(runs: int, seed: int) -> None:
    """Compensated vs uncompensated bias through realistic temperature swings."""
    print("\n2. Temperature swings: bias in % of the true leak (mean of runs +- its std error)")
    print(f"   {'case':44} {'P/T (ours)':>16} {'P only':>14}")
    cases = [
        ("chamber 50 L, 2.5 g/day, 0.5 K / 10 min", 0.05, 2.5e-3, 0.5, 600.0, 600.0, 0.1, 0.3),
        ("chamber 50 L, 2.5 g/day, 0.5 K / 10 min, 7 min", 0.05, 2.5e-3, 0.5, 600.0, 420.0,
         0.1, 0.3),
        ("cabin 75 m3, 1 kg/day, 1 K / 90 min, 3 h", 75.0, 1.0, 1.0, 5400.0, 10800.0, 1.0, 1.0),
        ("station 916 m3, 0.3 kg/day, 2 K / 24 h, 2 d", 916.0, 0.3, 2.0, 86400.0, 172800.0,
         10.0, 1.0),
    ]  # fmt: skip
    rng = np.random.default_rng(seed)
    for name, vol, kg_day, amp, period, span, dt, noise in cases:
        ch = Chamber(vol, 101325.0, T0_K, kg_day / 86400, temp_amp_k=amp, temp_period_s=period)
        t = np.arange(0.0, span, dt)
        p, tk = chamber_truth(ch, t)
        true_pa_s = ch.leak_rate_pa_per_s(T0_K)
        comp, raw = np.empty(runs), np.empty(runs)
        for i in range(runs):
            pn, tn = p + rng.normal(0, noise, t.size), tk + rng.normal(0, 0.002, t.size)
            comp[i] = leak_rates(fit_slope(t, pn / tn), vol, T0_K).pa_per_s.value
            raw[i] = -fit_slope(t, pn).slope
        c, r = 100 * (comp / true_pa_s - 1), 100 * (raw / true_pa_s - 1)
        se = c.std() / math.sqrt(runs)
        print(f"   {name:44} {c.mean():+7.2f} +- {se:5.2f} {r.mean():+13.1f}")


def cusum_table(days: float, seed: int) -> None:
    """False alarms on a long leak-free record, delays for leaks of a few sizes."""
    rng = np.random.default_rng(seed)
    dt, block_n, noise = 0.1, 100, 0.3 / T0_K  # 10 Hz, 10 s blocks, P/T noise
    n = int(days * 86400 / dt) // block_n * block_n
    se = noise * math.sqrt(12.0 / (block_n * (block_n**2 - 1))) / dt  # block slope stderr
    print(f"\n3. CUSUM on 10 s block slopes (10 Hz, 0.3 Pa): {days:g} leak-free days")
    print(f"   {'k':>4} {'h':>4} {'ARL0 Siegmund':>14} {'= hours':>8} {'ARL0 simulated':>15} "
          f"{'false alarms/day':>17}")  # fmt: skip
    for k, h in ((0.5, 4.0), (0.5, 5.0), (0.25, 8.0)):
        alarms = 0
        for start in range(0, n, 5_000_000):  # in pieces: bounded memory
            m = min(5_000_000, n - start)
            t = (start + np.arange(m)) * dt
            r = cusum_scan(t, 345.0 + rng.normal(0, noise, m), block_n, k, h, noise_sigma=noise)
            alarms += len(r.alarms)
        blocks = n // block_n
        sim = blocks / alarms if alarms else math.inf
        hours = siegmund_arl(k, h) * block_n * dt / 3600
        print(f"   {k:4.2f} {h:4.1f} {siegmund_arl(k, h):14.0f} {hours:8.2f} {sim:15.0f} "
              f"{alarms / days:17.2f}")
    print("   delays (k 0.5, h 5; leak starting at 2 h; 40 runs each):")
    print(f"   {'shift':>6} {'leak Pa/s':>10} {'ARL1 Siegmund':>14} {'mean delay':>11} "
          f"{'median onset error':>19}")  # fmt: skip
    for shift in (0.5, 1.0, 2.0, 4.0):
        rate = shift * se * T0_K  # Pa/s at T0
        delays, errors = [], []
        for _ in range(40):
            t = np.arange(0.0, 6 * 3600.0, dt)
            drop = np.where(t > 7200.0, rate / T0_K * (t - 7200.0), 0.0)
            y = 345.0 - drop + rng.normal(0, noise, t.size)
            after = [a for a in cusum_scan(t, y, block_n, noise_sigma=noise).alarms
                     if a.t_alarm_s > 7200.0]  # fmt: skip
            if after:
                delays.append((after[0].t_alarm_s - 7200.0) / (block_n * dt))
                errors.append(after[0].t_onset_s - 7200.0)
        print(f"   {shift:6.1f} {rate:10.2e} {siegmund_arl(0.5, 5.0, shift):14.1f} "
              f"{np.mean(delays):11.1f} {np.median(errors):+17.0f} s")


def large_leak(runs: int, seed: int) -> None:
    """A 1 mm hole in 50 L: diameter and time to 520 mmHg from the first 200 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 200.0, 0.5)
    truth = choked_record(t, 0.05, 1e-3, 101325.0, T0_K)
    tau = 0.05 / (0.6 * math.pi * 0.25e-6 * units.choked_flow_speed_m_per_s(T0_K))
    t_true = tau * math.log(101325.0 / 69327.0)
    d, cover_d, cover_t, exp_models = [], 0, 0, 0
    for _ in range(runs):
        m = choose_model(t, (truth + rng.normal(0, 0.3, t.size)) / T0_K)
        exp_models += m.model == "exponential"
        if m.exponential is None:
            continue
        hole = hole_from_tau(m.exponential, 0.05, T0_K)
        d.append(hole.diameter_m)
        cover_d += hole.diameter_ci95_low_m <= 1e-3 <= hole.diameter_ci95_high_m
        ttl = time_to_limit(m, 69327.0 / T0_K)
        cover_t += ttl.t_limit_ci95_low_s <= t_true <= ttl.t_limit_ci95_high_s
    print(f"\n4. Large leak: 1 mm hole in 50 L, first 200 s, {runs} runs")
    print(f"   exponential model chosen   {exp_models}/{runs}")
    print(f"   diameter                   {1e3 * np.mean(d):.5f} mm (truth 1), "
          f"interval coverage {100 * cover_d / runs:.0f} %")
    print(f"   time to 520 mmHg coverage  {100 * cover_t / runs:.0f} % (truth {t_true:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--days", type=float, default=12.0, help="leak-free days for the CUSUM")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    white_noise(args.runs, args.seed)
    swings(max(args.runs // 5, 20), args.seed + 1)
    cusum_table(args.days, args.seed + 2)
    large_leak(max(args.runs // 5, 20), args.seed + 3)


if __name__ == "__main__":
    main()
