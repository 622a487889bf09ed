"""Records with a known truth, for tests and validation: the simulator's physics plus noise.

`chamber_record` samples leakmon.sim.vboard.chamber.Chamber (the same model the virtual board
runs) and adds white sensor noise; `choked_record` is a hole leaking into vacuum;
`segments_record` is several volumes joined and parted by hatches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from leakmon import units
from leakmon.sim.vboard.chamber import Chamber

FloatArray = npt.NDArray[np.float64]


def chamber_truth(chamber: Chamber, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Noise-free (pressure_pa, temperature_k) of the chamber at each time."""
    states = [chamber.state(float(x)) for x in t_s]  # the model is scalar MicroPython code
    return np.array([s[0] for s in states]), np.array([s[1] for s in states])


def add_noise(truth: tuple[FloatArray, FloatArray], noise_pa: float, noise_k: float,
              rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:  # fmt: skip
    """White sensor noise on pressure and temperature."""
    p, tk = truth
    return p + rng.normal(0.0, noise_pa, p.shape), tk + rng.normal(0.0, noise_k, tk.shape)


def choked_record(t_s: FloatArray, volume_m3: float, diameter_m: float, p0_pa: float,
                  temperature_k: float = 293.15, cd: float = 0.6) -> FloatArray:  # fmt: skip
    """Noise-free pressure of a volume leaking into vacuum through a round hole."""
    area = math.pi * diameter_m**2 / 4.0
    tau = volume_m3 / (cd * area * units.choked_flow_speed_m_per_s(temperature_k))
    return p0_pa * np.exp(-t_s / tau)


def segments_record(
    t_s: FloatArray, volumes_m3: Sequence[float], leaks_kg_per_s: Sequence[float],
    schedule: Sequence[tuple[float, Sequence[Sequence[int]]]], p0_pa: float = 101325.0,
    temperature_k: float = 293.15,
) -> FloatArray:  # fmt: skip
    """Noise-free pressures (segments x samples): connected segments share one pressure and
    their leaks; a hatch opening equalizes instantly."""
    vol, leak = np.asarray(volumes_m3, float), np.asarray(leaks_kg_per_s, float)
    mol = p0_pa * vol / (units.R * temperature_k)
    out = np.empty((vol.size, t_s.size))
    bounds = [float(s) for s, _ in schedule] + [math.inf]
    for k, (start, groups) in enumerate(schedule):
        listed = {i for g in groups for i in g}
        parts = [list(g) for g in groups] + [[i] for i in range(vol.size) if i not in listed]
        sel = (t_s >= start) & (t_s < bounds[k + 1])
        span = min(bounds[k + 1], float(t_s[-1])) - start
        for g in parts:
            total, v_g, rate = mol[g].sum(), vol[g].sum(), leak[g].sum() / units.M
            out[np.ix_(np.array(g), np.flatnonzero(sel))] = (total - rate * (t_s[sel] - start)) \
                * units.R * temperature_k / v_g  # fmt: skip
            mol[g] = (total - rate * span) * vol[g] / v_g
    return out


# ---------------------------------------------------------------- the noise battery
def chamber_arrays(chamber: Chamber, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """`chamber_truth` vectorized: the same closed form as Chamber.state, for long records."""
    temp_k = (chamber.t0_k + chamber.temp_drift_k_per_s * t_s
              + chamber.temp_amp_k * np.sin(2 * math.pi * t_s / chamber.temp_period_s))  # fmt: skip
    n_mol = np.maximum(chamber.n0_mol - chamber.leak_kg_per_s / units.M * t_s, 0.0)
    return n_mol * units.R * temp_k / chamber.volume_m3, temp_k


def ar1(n: int, rho: float, rng: np.random.Generator) -> FloatArray:
    """Stationary AR(1) with unit variance, in blocks of exact matrix recursions (no loop
    per sample)."""
    e = rng.normal(size=n) * math.sqrt(1.0 - rho * rho)
    out, prev, size = np.empty(n), rng.normal(), 256
    k = np.arange(size)
    lag = k[:, None] - k[None, :]
    mix = np.where(lag >= 0, rho ** np.maximum(lag, 0).astype(float), 0.0)
    carry = rho ** (k + 1.0)
    for s in range(0, n, size):
        m = min(size, n - s)
        out[s : s + m] = mix[:m, :m] @ e[s : s + m] + carry[:m] * prev
        prev = out[s + m - 1]
    return out


FLICKER_SPAN = 8  # flicker is drawn over 8 record lengths: power well below 1/T exists


def flicker_spectrum(n: int) -> FloatArray:
    """Amplitude (sqrt of the 1/f power) on the rfft grid of FLICKER_SPAN * n samples."""
    f = np.fft.rfftfreq(FLICKER_SPAN * n)
    amp = np.zeros_like(f)
    amp[1:] = 1.0 / np.sqrt(f[1:])
    return amp


def flicker(n: int, rng: np.random.Generator) -> FloatArray:
    """1/f noise of unit variance over n samples, cut from a FLICKER_SPAN times longer draw."""
    amp = flicker_spectrum(n)
    x = np.fft.irfft(amp * (rng.normal(size=amp.size) + 1j * rng.normal(size=amp.size)),
                     FLICKER_SPAN * n)[:n]  # fmt: skip
    return x / flicker_scale(n)


def flicker_scale(n: int) -> float:
    """The standard deviation of `flicker` before scaling (from its spectrum, exactly)."""
    return math.sqrt(float(_flicker_acov(n)[0]))


def _flicker_acov(n: int) -> FloatArray:
    """irfft of (a + ib) amp with unit normals a, b: autocovariance irfft(2 amp^2) / m."""
    m = FLICKER_SPAN * n
    return np.fft.irfft(2.0 * flicker_spectrum(n) ** 2, m)[:n] / m


def flicker_covariance(n: int) -> FloatArray:
    """Autocovariance of `flicker` at lags 0..n-1 (for the GLS bound)."""
    acov = _flicker_acov(n)
    return acov / acov[0]


FAMILIES: tuple[str, ...] = (
    "white", "AR(1)", "white + AR(1) 0.3x", "white + AR(1) 1x", "white + AR(1) 3x", "flicker",
    "random walk", "quantization", "temperature measured", "gas temperature unmeasured",
)  # fmt: skip
UNIDENTIFIABLE: frozenset[str] = frozenset({"gas temperature unmeasured"})
RATES_HZ: tuple[float, ...] = (1.0, 10.0, 100.0)
LENGTHS: dict[str, tuple[int, int]] = {"short": (128, 1024), "long": (4096, 32768)}
T0_K = 293.15


@dataclass
class Draw:
    """One record of the battery: samples, the leak the physics put in (as a slope of P/T),
    and the noise covariance of y = P/T where it is known (for the GLS bound)."""

    family: str
    rate_hz: float
    t_s: FloatArray
    y: FloatArray  # P / T as measured
    true_slope: float  # d(P/T)/dt of the gas amount alone
    covariance: FloatArray | None  # of the noise of y, n x n (None: not computed)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _toeplitz(acov: FloatArray) -> FloatArray:
    k = np.arange(acov.size)
    return acov[np.abs(k[:, None] - k[None, :])]


def draw(family: str, rng: np.random.Generator, length: str, bound_max_n: int = 0) -> Draw:
    """A record of one family, every parameter drawn (never chosen): rate, length, noise
    levels and times, leak size. The covariance is built when n <= bound_max_n."""
    rate = float(rng.choice(RATES_HZ))
    n = int(round(_loguniform(rng, *LENGTHS[length])))
    t = np.arange(n) / rate + rng.uniform(0.0, 1e5)
    span = n / rate
    sigma = _loguniform(rng, 0.1, 3.0)  # white pressure noise, Pa
    leak_pa = sigma * _loguniform(rng, 0.1, 30.0)  # drop over the record
    volume = _loguniform(rng, 0.01, 100.0)
    ch = Chamber(volume, 101325.0, T0_K, leak_pa / span * volume * units.M / (units.R * T0_K))
    true_slope = -ch.leak_kg_per_s / units.M * units.R / volume
    p, tk = chamber_arrays(ch, t - t[0])
    white = rng.normal(0.0, sigma, n)
    acov = np.zeros(n)  # of the pressure noise, Pa^2
    acov[0] = sigma**2
    full: FloatArray | None = None
    tk_meas = tk + rng.normal(0.0, 0.002, n)
    acov_t = (101325.0 / T0_K**2 * 0.002) ** 2  # the temperature noise in P/T, white
    if family == "white":
        e = white
    elif family.startswith("AR(1)") or family.startswith("white + AR(1)"):
        ratio = 1.0 if family == "AR(1)" else float(family.split()[-1].rstrip("x"))
        tau_n = _loguniform(rng, 1.0 if family == "AR(1)" else 2.0, max(n / 20.0, 2.5))
        rho = math.exp(-1.0 / tau_n)
        s_ar = sigma * ratio
        e = s_ar * ar1(n, rho, rng)
        acov = s_ar**2 * rho ** np.arange(n)
        if family != "AR(1)":
            e = e + white
            acov[0] += sigma**2
    elif family == "flicker":
        s_f = sigma * _loguniform(rng, 0.3, 3.0)
        e = white + s_f * flicker(n, rng)
        acov = s_f**2 * flicker_covariance(n)
        acov[0] += sigma**2
    elif family == "random walk":
        q = (sigma * _loguniform(rng, 0.3, 3.0)) ** 2 / n  # walk std over the record
        e = white + np.cumsum(rng.normal(0.0, math.sqrt(q), n))
        if n <= bound_max_n:
            k = np.arange(1, n + 1.0)
            full = q * np.minimum(k[:, None], k[None, :]) + sigma**2 * np.eye(n)
    elif family == "quantization":
        step = sigma * rng.uniform(0.5, 3.0)
        offset = rng.uniform(0.0, step)
        e = step * np.round((p + white + offset) / step) - offset - p
        acov[0] = sigma**2 + step**2 / 12.0
    elif family == "temperature measured":
        amp, period = rng.uniform(0.1, 1.0), span * _loguniform(rng, 0.25, 2.0)
        ch = Chamber(volume, 101325.0, T0_K, ch.leak_kg_per_s, temp_amp_k=amp, temp_period_s=period,
                     temp_drift_k_per_s=rng.uniform(-1.0, 1.0) / span)  # fmt: skip
        p, tk = chamber_arrays(ch, t - t[0])
        tk_meas = tk + rng.normal(0.0, 0.002, n)
        e = white
    elif family == "gas temperature unmeasured":
        # The gas wanders (slow AR(1), a quarter to one record long) by as much as the leak
        # moves the pressure; the sensor reads the wall, which stays at T0.
        rho = math.exp(-1.0 / (n * rng.uniform(0.25, 1.0)))
        amp_k = leak_pa / 101325.0 * T0_K * _loguniform(rng, 0.5, 2.0)
        tk = tk + amp_k * ar1(n, rho, rng)
        p = p * tk / T0_K
        tk_meas = T0_K + rng.normal(0.0, 0.002, n)
        e = white
    else:
        raise ValueError(f"unknown family {family!r}")
    cov = None
    if n <= bound_max_n and family not in UNIDENTIFIABLE:
        cov = (full if full is not None else _toeplitz(acov)) / T0_K**2 + acov_t * np.eye(n)
    return Draw(family, rate, t, (p + e) / tk_meas, true_slope, cov)


def gls_bound(d: Draw) -> tuple[float, float]:
    """(variance of the OLS slope, GLS variance bound) under the draw's true covariance."""
    assert d.covariance is not None
    x = d.t_s - d.t_s.mean()
    design = np.column_stack([np.ones_like(x), x])
    chol = np.linalg.cholesky(d.covariance)
    white = np.linalg.solve(chol, design)
    gls = float(np.linalg.inv(white.T @ white)[1, 1])
    c = x / float(x @ x)
    return float(c @ d.covariance @ c), gls


@dataclass
class FamilyResult:
    family: str
    length: str
    runs: int
    coverage: float  # share of 95 % intervals that hold the true leak
    flagged: float  # share where the output says it cannot trust the line alone
    spread_vs_gls: float  # RMS of (estimate - truth) / GLS sd, over the draws with a bound
    ols_vs_gls: float  # the same from the covariance: sqrt(mean var_OLS / var_GLS)
    bound_runs: int
    median_width_vs_sd: float  # interval half-width over the OLS slope's true sd (bound draws)


def run_family(family: str, runs: int, length: str, master_seed: int,
               bound_max_n: int = 1024, bound_runs: int = 100) -> FamilyResult:  # fmt: skip
    """The estimator (fit_slope, which sliding and live fits equal) on `runs` drawn records."""
    from leakmon.analysis.fit import fit_slope

    seeds = np.random.SeedSequence([master_seed, FAMILIES.index(family), len(length)])
    covered = flagged = 0
    z_gls, ratio, width = [], [], []
    for child in seeds.spawn(runs):
        rng = np.random.default_rng(child)
        d = draw(family, rng, length, bound_max_n if len(z_gls) < bound_runs else 0)
        f = fit_slope(d.t_s, d.y)
        covered += f.ci95_low <= d.true_slope <= f.ci95_high
        flagged += bool(f.noise_exponent >= 1.0)
        if d.covariance is not None:
            ols, gls = gls_bound(d)
            z_gls.append((f.slope - d.true_slope) / math.sqrt(gls))
            ratio.append(ols / gls)
            width.append((f.ci95_high - f.slope) / math.sqrt(ols))
    nan = math.nan
    return FamilyResult(family, length, runs, covered / runs, flagged / runs,
                        float(np.sqrt(np.mean(np.square(z_gls)))) if z_gls else nan,
                        float(np.sqrt(np.mean(ratio))) if ratio else nan, len(z_gls),
                        float(np.median(width)) if width else nan)  # fmt: skip
