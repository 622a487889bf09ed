"""Validation: the analysis against known truth (the simulator's Chamber physics plus noise).

Not a test: prints figures and tables, never fails. tests/analysis/test_battery.py and the
other tests assert the key ones on smaller runs.

    .venv/bin/python bench/validate_analysis.py [--runs 500] [--days 7] [--seed 1]

1. The noise battery: coverage of the 95 % interval and spread against the GLS bound, per
   noise family, short and long records, 1 to 100 Hz (all drawn: tests/synthetic.py).
2. Temperature swings (chamber and cabin): bias of the P/T (compensated) and P
   (uncompensated) estimates, in % of the true leak.
3. Alarms designed in time: measured false-alarm spacing against the stated one, a sealed
   chamber over days of device time, and detection delay by leak size.
4. Large leak: hole diameter and time to 520 mmHg against the truth.
5. A leak that changes (a crack sealing over weeks): model, current rate, time to limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test-only helpers

import argparse
import math
import time

import numpy as np
from leakmon import units
from leakmon.analysis.cusum import cusum_scan
from leakmon.analysis.decay import choose_model, hole_from_tau, time_to_limit
from leakmon.analysis.estimate import estimate_leak
from leakmon.analysis.fit import fit_slope
from leakmon.analysis.rates import leak_rates
from leakmon.sim.vboard.chamber import Chamber
from synthetic import (FAMILIES, UNIDENTIFIABLE, ar1, chamber_arrays, choked_record, draw,
                       run_family)  # fmt: skip

T0_K = 293.15


def battery(runs: int, seed: int) -> None:
    """Coverage and efficiency per noise family (tests/synthetic.py draws every parameter)."""
    print(f"\n1. Noise battery: {runs} drawn records per family and length (seed {seed})")
    print(f"   {'family':28} {'length':6} {'coverage':>9} {'flagged':>8} {'spread/GLS':>11} "
          f"{'OLS/GLS':>8} {'halfwidth/sd':>13} {'CPU s':>6}")
    for length in ("short", "long"):
        for family in FAMILIES:
            c = time.process_time()
            r = run_family(family, runs, length, seed, bound_runs=60 if length == "short" else 0)
            note = "  (not identifiable)" if family in UNIDENTIFIABLE else ""
            print(f"   {family:28} {length:6} {100 * r.coverage:8.1f}% {100 * r.flagged:7.1f}% "
                  f"{r.spread_vs_gls:11.2f} {r.ols_vs_gls:8.2f} {r.median_width_vs_sd:13.2f} "
                  f"{time.process_time() - c:6.1f}{note}", flush=True)
    print("   coverage: share of 95 % intervals holding the true leak (goal 93-97 %); flagged: "
          "noise exponent >= 1;\n   spread/GLS: RMS error over the GLS bound's sd (60 draws "
          "with n <= 1024; goal <= 1.25); halfwidth/sd: median interval half-width over the "
          "OLS slope's true sd")
    print("   coverage by what the window shows (the same short draws; noise exponent fitted):")
    print(f"   {'family':28} {'looks white':>22} {'exponent (0, 1)':>22} {'exponent >= 1':>22}"
          "   (share of records: coverage)")
    for family in ("white", "flicker", "random walk"):
        cells = by_exponent(family, runs, seed)
        print(f"   {family:28} " + " ".join(f"{100 * share:9.1f}%: {100 * c:5.1f}%    "
                                          for share, c in cells))  # fmt: skip
    print("   a walk or flicker that hides under the white floor at modes 2..15 still dominates "
          "at the slope's scale:\n   where the window looks white, no interval that keeps white "
          "noise <= 97 % covers it (bench/RESULTS.md)")


def by_exponent(family: str, runs: int, seed: int) -> list[tuple[float, float]]:
    """(share of records, coverage) where the fitted noise exponent is 0, in (0, 1), >= 1:
    the same draws as run_family's short records."""
    seeds = np.random.SeedSequence([seed, FAMILIES.index(family), len("short")])
    beta, covered = np.empty(runs), np.empty(runs, bool)
    for i, child in enumerate(seeds.spawn(runs)):
        d = draw(family, np.random.default_rng(child), "short")
        f = fit_slope(d.t_s, d.y)
        beta[i], covered[i] = f.noise_exponent, f.ci95_low <= d.true_slope <= f.ci95_high
    cells = (beta == 0.0, (beta > 0.0) & (beta < 1.0), beta >= 1.0)
    return [(float(c.mean()), float(covered[c].mean()) if c.any() else math.nan) for c in cells]


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
        p, tk = chamber_arrays(ch, t)
        true_pa_s = ch.leak_rate_pa_per_s(T0_K)
        comp, raw = np.empty(runs), np.empty(runs)
        for i in range(runs):
            pn, tn = p + rng.normal(0, noise, t.size), tk + rng.normal(0, 0.002, t.size)
            comp[i] = leak_rates(fit_slope(t, pn / tn), vol, T0_K).pa_per_s.value
            raw[i] = -fit_slope(t, pn).slope
        c, r = 100 * (comp / true_pa_s - 1), 100 * (raw / true_pa_s - 1)
        se = c.std() / math.sqrt(runs)
        print(f"   {name:44} {c.mean():+7.2f} +- {se:5.2f} {r.mean():+13.1f}")


def alarms(days: float, seed: int) -> None:
    """False-alarm spacing against the stated one; a sealed chamber; delay by leak size."""
    rng = np.random.default_rng(seed)
    dt, block_n, noise = 0.1, 100, 0.3 / T0_K  # 10 Hz, 10 s blocks, P/T noise
    print(f"\n3. Alarms designed in time (10 Hz, 10 s blocks, 0.3 Pa white noise)")
    print(f"   {'stated spacing':>15} {'simulated':>10} {'alarms':>7} {'measured spacing':>17} {'ratio':>6}")
    for spacing_h, hours in ((0.5, 200.0), (2.0, 600.0), (8.0, 2000.0)):
        n, count = int(hours * 36000), 0
        for start in range(0, n, 6_000_000):  # in pieces: bounded memory
            m = min(6_000_000, n - start)
            t = (start + np.arange(m)) * dt
            count += len(cusum_scan(t, 345.0 + rng.normal(0, noise, m), block_n,
                                    false_alarm_spacing_s=spacing_h * 3600).alarms)  # fmt: skip
        measured = hours / count if count else math.inf
        print(f"   {spacing_h:13.1f} h {hours:8.0f} h {count:7d} {measured:15.2f} h "
              f"{measured / spacing_h:6.2f}")
    # The same design on white noise plus an AR(1) three blocks slow, 3x the white level.
    hours, count = 300.0, 0
    for start in range(0, int(hours * 36000), 3_600_000):
        m = min(3_600_000, int(hours * 36000) - start)
        t = (start + np.arange(m)) * dt
        e = noise * (rng.normal(0, 1, m) + 3.0 * ar1(m, math.exp(-dt / 30.0), rng))
        count += len(cusum_scan(t, 345.0 + e, block_n, false_alarm_spacing_s=2 * 3600).alarms)
    measured = hours / count if count else math.inf
    print(f"   {2.0:13.1f} h {hours:8.0f} h {count:7d} {measured:15.2f} h {measured / 2.0:6.2f}"
          "  (white + AR(1) 30 s, 3x: slow noise, fewer alarms than stated)")
    # A sealed chamber with a 0.5 K daily swing, 1 Hz, `days` of device time, default design.
    ch = Chamber(0.05, 101325.0, T0_K, 0.0, temp_amp_k=0.5, temp_period_s=86400.0)
    t = np.arange(0.0, days * 86400.0, 1.0)
    p, tk = chamber_arrays(ch, t)
    y = (p + rng.normal(0, 0.3, t.size)) / (tk + rng.normal(0, 0.002, t.size))
    r = cusum_scan(t, y, 10)
    print(f"   sealed chamber, {days:g} days at 1 Hz, default design (a false alarm per 30 days): "
          f"{len(r.alarms)} alarms")
    print("   detection delay by leak size (design: 30 days between false alarms; the leak "
          "to catch = the leak; onset at 2 h; 40 runs):")
    print(f"   {'leak Pa/s':>10} {'mmHg/day':>9} {'sigmas/block':>13} {'expected s':>11} "
          f"{'mean delay s':>13} {'median onset error s':>21} {'missed':>7}")
    se = noise * math.sqrt(12.0 / (block_n * (block_n**2 - 1))) / dt
    for shift in (0.5, 1.0, 2.0, 4.0, 8.0):
        rate = shift * se  # P/T units per s
        delays, errors, missed, expected = [], [], 0, math.nan
        for _ in range(40):
            t = np.arange(0.0, 8 * 3600.0, dt)
            drop = np.where(t > 7200.0, rate * (t - 7200.0), 0.0)
            res = cusum_scan(t, 345.0 - drop + rng.normal(0, noise, t.size), block_n,
                             catch_loss_rate=rate)  # fmt: skip
            expected = res.plan.expected_delay_s if res.plan else math.nan
            after = [a for a in res.alarms if a.t_alarm_s > 7200.0]
            if after:
                delays.append(after[0].t_alarm_s - 7200.0)
                errors.append(after[0].t_onset_s - 7200.0)
            else:
                missed += 1
        pa = rate * T0_K
        print(f"   {pa:10.2e} {units.pa_per_s_to_mmhg_per_day(pa):9.2f} {shift:13.1f} "
              f"{expected:11.0f} {np.mean(delays) if delays else math.nan:13.0f} "
              f"{np.median(errors) if errors else math.nan:+21.0f} {missed:7d}")


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


def changing_leak(runs: int, seed: int) -> None:
    """A crack sealing over 14 days (loss rate e-folds every 6 days), 1 sample/min."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 14 * 86400.0, 60.0)
    r0, t_seal = 0.01, 6 * 86400.0
    truth = 101325.0 - r0 * t_seal * (1.0 - np.exp(-t / t_seal))
    now = r0 * math.exp(-t[-1] / t_seal)
    neither = covered = 0
    whole = []
    for _ in range(runs):
        p = truth + rng.normal(0.0, 0.3, t.size) + np.cumsum(rng.normal(0.0, 0.02, t.size))
        e = estimate_leak(t, p, np.full(t.size, T0_K))
        neither += e.model == "neither"
        covered += e.leak_rate_ci95_low_pa_per_s <= now <= e.leak_rate_ci95_high_pa_per_s
        whole.append(e.window_leak_rate_pa_per_s / now)
    print(f"\n5. A leak that changes: crack sealing over 14 days, {runs} runs")
    print(f"   model 'neither'              {neither}/{runs}")
    print(f"   current rate covered         {100 * covered / runs:.0f} % (truth {now:.2e} Pa/s)")
    print(f"   whole-record line / truth    {np.mean(whole):.2f} (what a single line would report)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=500, help="records per noise family and length")
    ap.add_argument("--days", type=float, default=7.0, help="days of the sealed chamber")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", type=int, choices=range(1, 6), help="run one numbered section")
    args = ap.parse_args()
    sections = [lambda: battery(args.runs, args.seed),
                lambda: swings(max(args.runs // 25, 20), args.seed + 1),
                lambda: alarms(args.days, args.seed + 2),
                lambda: large_leak(max(args.runs // 25, 20), args.seed + 3),
                lambda: changing_leak(max(args.runs // 50, 10), args.seed + 4)]
    for i, section in enumerate(sections, 1):
        if args.only in (None, i):
            section()


if __name__ == "__main__":
    main()
