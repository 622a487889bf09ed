"""Validate the isolation planner over random simulated stations, side by side with the
crews' habit of closing one hatch an hour from the far end.

Each station: 2-8 modules joined as a random tree (mostly a chain), volumes 20-150 m3,
wall temperatures with their own swings (0-0.6 K over 30-120 min) and thermal lags, one
hole to space in a random module (0.2-2 kg/day), a sensor per module with one of three
noise families (white Gaussian, Student-t with 3 degrees of freedom, AR(1) with rho 0.8),
0.5-3x a BMP390's noise. The gas is the virtual board's own physics
(leakmon.sim.vboard.physics), driven live: the hatches move when the procedure says.

Planner procedure: all hatches open until the station total is known to 25 % (the leak's
size), then `planner.plan` picks the next configuration and its hold; the sequential test
(`planner.round_done`) ends a hold early; repeat until every segment is decided. Success:
the verdict names the leaking module, and only it, within the time stated up front (the
survey plus the planner's worst case). Hourly procedure: hatches closed one per hour from
the module farthest from the crew's (module 0); the same verdict, at 20, 40 and 60 min of each hour.

Stations without a leak measure the verdict's false-accusation rate against its stated
confidence: with one look (all hatches closed, one verdict after 20 min: an offline analysis)
the share of runs accusing a module should be near 1 - confidence; with the sequential test
(hatches closed one per 20 min, 3 verdicts each) it should stay below it (error spent per
look, verdict.look_alpha).

    python bench/validate_planner.py --stations 100 --seed 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from leakmon.analysis import planner
from leakmon.analysis.massbalance import GroupMeasurement, Hatch, HatchTimeline, Station, measure
from leakmon.analysis.verdict import Verdict, judge
from leakmon.sim.vboard import physics

DAY = 86400.0
PERIOD_S = 2.0  # sample period of the simulated sensors
NOISE_FAMILIES = ("gauss", "student-t", "ar1")
BMP390_NOISE_PA, BMP390_NOISE_K = 0.3, 0.002


@dataclass
class Sim:
    """A random station running live: physics plant, sensors, and the record so far."""

    station: Station
    plant: physics.Plant
    leak_segment: int | None
    leak_kg_per_s: float
    family: str
    noise_pa: np.ndarray
    noise_k: np.ndarray
    rng: np.random.Generator
    open_: list[bool]
    t: list[float] = field(default_factory=list)
    p: list[np.ndarray] = field(default_factory=list)
    temp: list[np.ndarray] = field(default_factory=list)
    _ar_p: np.ndarray | None = None
    _ar_t: np.ndarray | None = None
    # The hole's physical flow at each sample (kg/s): choked flow through its Cd*A at the
    # leaking module's true (noiseless) pressure and gas temperature.
    flow_kg_per_s: list[float] = field(default_factory=list)
    hole_cda_m2: float = 0.0

    def run_until(self, t_end_s: float) -> None:
        n = self.station.n
        t_next = self.t[-1] + PERIOD_S if self.t else 0.0
        times = np.arange(t_next, t_end_s + 1e-9, PERIOD_S)
        if not times.size:
            return
        p = np.empty((n, times.size))
        tk = np.empty((n, times.size))
        for k, tt in enumerate(times):
            for i in range(n):
                p[i, k], tk[i, k] = self.plant.state(i, float(tt))
        e_p, e_t = self._noise(times.size)
        if self.leak_segment is not None:
            i = self.leak_segment
            mol = p[i] * physics.PSI_CHOKED * self.hole_cda_m2 / np.sqrt(physics.M_AIR * physics.R * tk[i])
            self.flow_kg_per_s.extend((mol * physics.M_AIR).tolist())
        self.t.extend(times.tolist())
        self.p.append(p + e_p * self.noise_pa[:, None])
        self.temp.append(tk + e_t * self.noise_k[:, None])

    def _noise(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        n = self.station.n
        if self.family == "gauss":
            return self.rng.normal(size=(n, m)), self.rng.normal(size=(n, m))
        if self.family == "student-t":  # unit variance: t(3) has variance 3
            return self.rng.standard_t(3, (n, m)) / math.sqrt(3), self.rng.standard_t(3, (n, m)) / math.sqrt(3)
        rho = 0.8
        out = []
        for attr in ("_ar_p", "_ar_t"):
            prev = getattr(self, attr)
            if prev is None:
                prev = self.rng.normal(size=n)
            w = self.rng.normal(size=(n, m)) * math.sqrt(1 - rho * rho)
            x = np.empty((n, m))
            for k in range(m):
                prev = rho * prev + w[:, k]
                x[:, k] = prev
            setattr(self, attr, prev)
            out.append(x)
        return out[0], out[1]

    def set_hatches(self, is_open: list[bool]) -> None:
        """Move hatches now: the plant's next step (from the last sample's time) uses the new state."""
        t_now = self.t[-1] if self.t else 0.0
        for h, op in enumerate(is_open):
            if op != self.open_[h]:
                self.plant.sched[h].append([t_now, 1.0 if op else 0.0])
        self.open_ = list(is_open)

    def arrays(self, since_s: float = -math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.asarray(self.t)
        p, tk = np.concatenate(self.p, axis=1), np.concatenate(self.temp, axis=1)
        sel = t >= since_s
        return t[sel], p[:, sel], tk[:, sel]


def random_sim(rng: np.random.Generator, n: int | None = None, leak: bool = True,
               leak_kg_per_day: tuple[float, float] = (0.2, 2.0)) -> Sim:  # fmt: skip
    """A random station (see the module docstring)."""
    n = int(rng.integers(2, 9)) if n is None else n
    vols = rng.uniform(20.0, 150.0, n)
    parents = [0] + [max(0, i - 1) if rng.random() < 0.8 else int(rng.integers(0, i)) for i in range(1, n)]
    segs = []
    for i in range(n):
        t_wall = float(rng.uniform(292.0, 297.0))
        segs.append({"name": f"m{i}", "volume_m3": float(vols[i]), "p0_pa": 101325.0, "t0_k": t_wall,
                     "tau_s": float(rng.uniform(600.0, 3600.0)),
                     "wall": {"t_k": t_wall, "swing_k": float(rng.uniform(0.0, 0.6)),
                              "period_s": float(rng.uniform(1800.0, 7200.0)), "drift_k_per_s": 0.0,
                              "schedule": []}})  # fmt: skip
    links = [{"name": f"m{parents[i]}-m{i}", "a": parents[i], "b": i, "cda_m2": 0.8 * 0.64, "schedule": [[0.0, 1.0]]}
             for i in range(1, n)]
    hatches = tuple(Hatch(ln["name"], ln["a"], ln["b"], ln["cda_m2"]) for ln in links)  # type: ignore[arg-type]
    where, kg_per_s, cda = None, 0.0, 0.0
    if leak:
        where = int(rng.integers(0, n))
        kg_per_s = float(rng.uniform(*leak_kg_per_day)) / DAY
        t_gas = segs[where]["t0_k"]
        mol_per_s_per_cda = 101325.0 * physics.PSI_CHOKED / math.sqrt(physics.M_AIR * physics.R * t_gas)
        cda = kg_per_s / physics.M_AIR / mol_per_s_per_cda
        links.append({"name": "hole", "a": where, "b": -1, "leak": True, "cda_m2": cda, "schedule": [[0.0, 1.0]]})
    cfg = {"step_s": PERIOD_S, "segments": segs, "boundaries": [{"name": "vacuum", "p_pa": 0.0, "t_k": 293.15}],
           "links": links}
    family = NOISE_FAMILIES[int(rng.integers(0, len(NOISE_FAMILIES)))]
    scale = rng.uniform(0.5, 3.0, n)
    station = Station(tuple(s["name"] for s in segs), tuple(float(v) for v in vols), hatches)
    return Sim(station, physics.Plant(cfg), where, kg_per_s, family, BMP390_NOISE_PA * scale,
               BMP390_NOISE_K * scale, rng, [True] * (n - 1), hole_cda_m2=cda)


@dataclass
class Record:
    """Measurements of finished configurations, and the configuration being held."""

    sim: Sim
    done: list[GroupMeasurement] = field(default_factory=list)
    start_s: float = 0.0
    prev_open: list[bool] | None = None
    index: int = 0

    def current(self) -> list[GroupMeasurement]:
        """Measurements of the configuration held since start_s (settling derived)."""
        t, p, tk = self.sim.arrays(self.start_s - 20 * PERIOD_S)
        rows = [self.prev_open if self.prev_open is not None else self.sim.open_, self.sim.open_]
        tl = HatchTimeline(np.array([-math.inf, self.start_s]), np.array(rows, dtype=bool))
        _, ms = measure(self.sim.station, tl, t, p, tk)
        last = max((m.config for m in ms), default=-1)
        return [replace(m, config=self.index) for m in ms if m.config == last and m.t_start_s >= self.start_s]

    looks: int = 0

    def verdict(self, confidence: float) -> Verdict:
        """The next look of the sequential test."""
        self.looks += 1
        return judge(self.done + self.current(), self.sim.station.n, confidence,
                     volume_m3=float(sum(self.sim.station.volumes_m3)), look=self.looks, with_confidence=False)

    def switch(self, is_open: list[bool]) -> None:
        self.done += self.current()
        self.prev_open = list(self.sim.open_)
        self.sim.set_hatches(is_open)
        self.start_s = self.sim.t[-1] if self.sim.t else 0.0
        self.index += 1


@dataclass(frozen=True)
class Outcome:
    correct: bool
    time_s: float
    stated_s: float  # planner: survey + the worst case stated after it; hourly: nan
    named: tuple[int, ...]
    false_accusations: int
    configurations: int
    # Where the final verdict separated the leaking module: did its 95 % interval, and its
    # bounds at the stated confidence, hold the hole's physical flow (the range it took)?
    covered95: bool | None = None
    in_bounds: bool | None = None
    z: float = math.nan  # (estimate - mean physical flow) / its standard error


def follow_planner(sim: Sim, confidence: float = 0.99, max_closed: int | None = None,
                   limit_s: float = 24 * 3600.0) -> Outcome:  # fmt: skip
    """Survey with everything open, then follow the plan with the sequential test."""
    rec = Record(sim)
    t = 300.0
    while True:  # survey: the leak's size to 25 % (at the verdict's z)
        sim.run_until(t)
        v = rec.verdict(confidence)
        if (v.total_kg_per_s > 0 and v.z * v.total_stderr_kg_per_s < 0.25 * v.total_kg_per_s) or t >= limit_s:
            break
        t *= 1.5
    noise = planner.Noise(sim.noise_pa.tolist(), sim.noise_k.tolist(), PERIOD_S)
    noise = planner.calibrate(noise, sim.station, rec.current())
    leak = v.total_kg_per_s
    stated = t + planner.worst_case_total_s(sim.station, noise, leak, sim.open_, max_closed=max_closed,
                                            confidence=confidence, min_leak_kg_per_s=v.min_leak_kg_per_s,
                                            looks_so_far=rec.looks)  # fmt: skip
    configs = 1
    while not v.decided and t < limit_s:
        p = planner.plan(sim.station, v, noise, leak, sim.open_, max_closed=max_closed, confidence=confidence,
                         min_leak_kg_per_s=v.min_leak_kg_per_s, look=rec.looks + planner.LOOK_OF_HOLD)  # fmt: skip
        if p.done:
            break
        rec.switch([h not in p.closed for h in range(len(sim.station.hatches))])
        configs += 1
        t_cfg = t
        for frac in planner.LOOK_FRACTIONS:
            t = t_cfg + frac * p.hold_s
            sim.run_until(t)
            v = rec.verdict(confidence)
            if v.decided or planner.round_done(p, v, rec.current()):
                break
    return _outcome(sim, v, t, stated, configs)


HOURLY_LOOKS = (1200.0, 2400.0, 3600.0)  # verdicts within each hour of the hourly procedure


def follow_hourly(sim: Sim, confidence: float = 0.99, hold_s: float = 3600.0) -> Outcome:
    """Close one hatch an hour from the far end (deepest from module 0 first); a verdict at
    20, 40 and 60 min of each hour."""
    rec = Record(sim)
    depth = {0: 0}
    for h in sim.station.hatches:  # parents come first in random_sim
        depth[h.b] = depth[h.a] + 1
    order = sorted(range(len(sim.station.hatches)), key=lambda h: -depth[sim.station.hatches[h].b])
    t = 0.0
    for k in range(len(order) + 1):
        for dt in HOURLY_LOOKS:
            t = k * hold_s + dt
            sim.run_until(t)
            v = rec.verdict(confidence)
            if v.decided and sim.leak_segment is not None:
                return _outcome(sim, v, t, math.nan, k + 1)
        if k < len(order):
            is_open = list(sim.open_)
            is_open[order[k]] = False
            rec.switch(is_open)
    return _outcome(sim, v, t, math.nan, len(order) + 1)


def single_look_null(sim: Sim, confidences: tuple[float, ...], hold_s: float = 1200.0) -> list[bool]:
    """Every hatch closed, one verdict (an offline analysis) after hold_s: at each
    confidence, was a module accused? The share of such runs should be near 1 - confidence."""
    rec = Record(sim)
    sim.run_until(4 * PERIOD_S)
    rec.switch([False] * len(sim.station.hatches))
    sim.run_until(hold_s)
    ms = rec.current()
    return [bool(judge(ms, sim.station.n, c, volume_m3=float(sum(sim.station.volumes_m3)),
                       with_confidence=False).leaking)
            for c in confidences]


def null_run(sim: Sim, confidences: tuple[float, ...], hold_s: float = 1200.0) -> list[bool]:
    """Hatches closed one per hold from the far end on a station without a leak, 3 verdicts
    per hold: did any look, at each confidence, accuse a module? Every look counts."""
    rec = Record(sim)
    order = list(range(len(sim.station.hatches)))[::-1]
    accused = [False] * len(confidences)
    for k in range(len(order) + 1):
        for dt in (hold_s / 3, 2 * hold_s / 3, hold_s):
            sim.run_until(k * hold_s + dt)
            rec.looks += 1
            ms = rec.done + rec.current()
            for j, c in enumerate(confidences):
                v = judge(ms, sim.station.n, c, volume_m3=float(sum(sim.station.volumes_m3)), look=rec.looks,
                          with_confidence=False)
                accused[j] = accused[j] or bool(v.leaking)
        if k < len(order):
            is_open = list(sim.open_)
            is_open[order[k]] = False
            rec.switch(is_open)
    return accused


def _outcome(sim: Sim, v: Verdict, t: float, stated: float, configs: int) -> Outcome:
    named = tuple(v.leaking)
    truth = () if sim.leak_segment is None else (sim.leak_segment,)
    false = sum(1 for i in named if i not in truth)
    covered = bounds = None
    z = math.nan
    if sim.leak_segment is not None and sim.flow_kg_per_s:
        sv = v.segments[sim.leak_segment]
        lo, hi = min(sim.flow_kg_per_s), max(sim.flow_kg_per_s)
        if math.isfinite(sv.leak_kg_per_s):
            covered = sv.ci95_low_kg_per_s <= hi and lo <= sv.ci95_high_kg_per_s
            z = (sv.leak_kg_per_s - float(np.mean(sim.flow_kg_per_s))) / sv.stderr_kg_per_s
        bounds = sv.lower_kg_per_s <= hi and lo <= sv.upper_kg_per_s
    return Outcome(named == truth and v.decided, t, stated, named, false, configs, covered, bounds, z)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--null", type=int, default=100, help="stations without a leak, for the false-accusation rate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--confidence", type=float, default=0.99)
    args = ap.parse_args(argv)
    t0 = time.process_time()
    rows = {"planner": [], "planner, one hatch at a time": [], "hourly from the far end": []}
    for k in range(args.stations):
        for name, fn in (("planner", lambda s: follow_planner(s, args.confidence)),
                         ("planner, one hatch at a time", lambda s: follow_planner(s, args.confidence, max_closed=1)),
                         ("hourly from the far end", lambda s: follow_hourly(s, args.confidence))):
            sim = random_sim(np.random.default_rng([args.seed, k]))
            rows[name].append(fn(sim))
    if not args.stations:
        rows = {}
    print(f"{args.stations} random stations (2-8 modules, 0.2-2 kg/day), confidence {args.confidence:g}, "
          f"seed {args.seed}")
    print(f"{'procedure':<30} {'right':>7} {'in stated':>10} {'median h':>9} {'p95 h':>7} {'configs':>8} "
          f"{'false acc.':>10}")
    for name, outs in rows.items():
        right = np.mean([o.correct for o in outs])
        within = np.mean([o.correct and o.time_s <= o.stated_s for o in outs]) if name != "hourly from the far end" else math.nan
        times = np.array([o.time_s for o in outs]) / 3600
        print(f"{name:<30} {right:7.1%} {within:10.1%} {np.median(times):9.2f} {np.percentile(times, 95):7.2f} "
              f"{np.mean([o.configurations for o in outs]):8.1f} {sum(o.false_accusations for o in outs):10d}")
    print("the leaking module's leak in the final verdict against the hole's physical flow:")
    print(f"{'procedure':<30} {'separated':>9} {'95% covers':>10} {'bounds hold':>11} {'z mean':>7} {'z sd':>6}")
    for name, outs in rows.items():
        sep = [o for o in outs if o.covered95 is not None]
        zs = np.array([o.z for o in sep])
        print(f"{name:<30} {len(sep):9d} {np.mean([o.covered95 for o in sep]) if sep else math.nan:10.1%} "
              f"{np.mean([bool(o.in_bounds) for o in outs if o.in_bounds is not None]):11.1%} "
              f"{np.mean(zs) if sep else math.nan:7.2f} {np.std(zs) if sep else math.nan:6.2f}")
    if not args.null:
        print(f"({time.process_time() - t0:.0f} s CPU)")
        return 0
    confs = (0.5, 0.8, 0.9, 0.99)
    single = [single_look_null(random_sim(np.random.default_rng([args.seed, 20_000 + k]), leak=False), confs)
              for k in range(args.null)]
    seq = [null_run(random_sim(np.random.default_rng([args.seed, 10_000 + k]), leak=False), confs)
           for k in range(args.null // 2)]
    print(f"false accusations, {args.null} stations without a leak (share of runs accusing any module):")
    print(f"{'stated confidence':>18} {'bound':>6} {'one look':>9} {'sequential':>11}")
    for j, c in enumerate(confs):
        one = np.mean([o[j] for o in single])
        many = np.mean([o[j] for o in seq])
        print(f"{c:18.2f} {1 - c:6.0%} {one:9.1%} {many:11.1%}")
    print(f"({time.process_time() - t0:.0f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
