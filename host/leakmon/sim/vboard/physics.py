# Gas in connected segments: the physics the virtual board samples and the host
# evaluates for the ground truth (leakmon.sim.truth). Plain Python that MicroPython
# runs too: math only, no numpy, typing or dataclasses; floats are doubles.
#
# State per segment: amount of gas n (mol) and gas temperature T (K); P = n R T / V.
# A segment either follows its wall temperature exactly (tau_s == 0, isothermal)
# or relaxes toward it with time constant tau_s, while flows in heat it (enthalpy
# of the incoming gas) and flows out cool it (isentropic expansion of what stays).
#
# Links move gas between two nodes: segments, or boundaries (vacuum, ambient, a
# supply) whose pressure and temperature are fixed. An orifice link (hatch, valve,
# hole) carries the compressible orifice flow, choked when P_up/P_down exceeds
# ((gamma+1)/2)^(gamma/(gamma-1)) = 1.893 for air; a mass link carries a fixed
# mass rate out of a segment. Schedules give each link an open fraction over time.
#
# Integration: fixed steps on a grid that depends only on the config (multiples
# of step_s plus every schedule change), so every reader sees one trajectory.
# Each step: the thermal relaxation (exact exponential toward the wall temperature
# at mid-step), then every link in turn by backward Euler (one scalar root per
# link, bracketed in [0, h F0]: never overshoots an equilibrium, stable for any
# hatch size; flows last, so segments joined by an open hatch end a step at one
# pressure). First order: a choked decay's tau comes out h / (2 tau) too long.
# Between grid points n and T are interpolated linearly; an isothermal segment's
# T is its wall temperature at that instant.
import math

R = 8.314462  # J/(mol K)
M_AIR = 0.028965  # kg/mol
GAMMA = 1.4

_G = GAMMA
# Pressure ratio P_down/P_up below which the flow is choked (0.528 for air).
R_CRIT = (2.0 / (_G + 1.0)) ** (_G / (_G - 1.0))
# Flow function psi of a choked orifice: sqrt(gamma) (2/(gamma+1))^((gamma+1)/(2(gamma-1))).
PSI_CHOKED = math.sqrt(_G) * (2.0 / (_G + 1.0)) ** ((_G + 1.0) / (2.0 * (_G - 1.0)))
_SUB = 2.0 * _G / (_G - 1.0)
_E1 = 2.0 / _G
_E2 = (_G + 1.0) / _G


def orifice_mol_per_s(cda_m2, p_up, t_up, p_down):
    """Molar flow through an orifice of effective area Cd*A, from p_up (at t_up) to p_down."""
    if p_up <= 0.0 or cda_m2 <= 0.0 or p_down >= p_up:
        return 0.0
    r = p_down / p_up
    if r <= R_CRIT:
        psi = PSI_CHOKED
    else:
        psi = math.sqrt(_SUB * (r ** _E1 - r ** _E2))
    return cda_m2 * p_up * psi / math.sqrt(M_AIR * R * t_up)


def choked_tau_s(volume_m3, cda_m2, temperature_k):
    """Time constant of an isothermal choked leak into vacuum (REFERENCE section 2)."""
    return volume_m3 / (cda_m2 * math.sqrt(_G * R * temperature_k / M_AIR)
                        * (2.0 / (_G + 1.0)) ** ((_G + 1.0) / (2.0 * (_G - 1.0))))


def schedule_value(points, t_s, before=0.0):
    """Piecewise-constant schedule [[t, value], ...] (sorted) at t_s."""
    v = before
    for p in points:
        if p[0] <= t_s:
            v = p[1]
        else:
            break
    return v


class Wall:
    """Wall (or ambient) temperature: a base (constant or piecewise linear in
    time), a linear drift and a sinusoid."""

    def __init__(self, cfg):
        self.t_k = cfg.get("t_k", 293.15)
        self.drift = cfg.get("drift_k_per_s", 0.0)
        self.amp = cfg.get("swing_k", 0.0)
        self.period = cfg.get("period_s", 3600.0)
        self.sched = cfg.get("schedule", [])

    def at(self, t_s):
        base = self.t_k
        s = self.sched
        if s:
            if t_s <= s[0][0]:
                base = s[0][1]
            elif t_s >= s[len(s) - 1][0]:
                base = s[len(s) - 1][1]
            else:
                for i in range(1, len(s)):
                    if t_s < s[i][0]:
                        a = s[i - 1]
                        b = s[i]
                        base = a[1] + (b[1] - a[1]) * (t_s - a[0]) / (b[0] - a[0])
                        break
        return base + self.drift * t_s + self.amp * math.sin(2 * math.pi * t_s / self.period)


class Plant:
    """Segments, boundaries and links from a config dict (Scenario.physics_config())."""

    def __init__(self, cfg):
        self.step_s = cfg.get("step_s", 1.0)
        segs = cfg["segments"]
        self.names = [s["name"] for s in segs]
        self.vol = [s["volume_m3"] for s in segs]
        self.tau = [s.get("tau_s", 0.0) for s in segs]
        self.walls = [Wall(s.get("wall", {})) for s in segs]
        bounds = cfg.get("boundaries", [])
        self.bp = [b["p_pa"] for b in bounds]
        self.bt = [b["t_k"] for b in bounds]
        self.links = cfg.get("links", [])
        # [[t_s, open fraction], ...] per link; a link without one is always open.
        self.sched = [ln.get("schedule") or [[0.0, 1.0]] for ln in self.links]
        self.t = 0.0
        self.T = []
        self.n = []
        for i in range(len(segs)):
            t0 = segs[i].get("t0_k")
            if t0 is None or self.tau[i] == 0.0:
                t0 = self.walls[i].at(0.0)
            self.T.append(t0)
            self.n.append(segs[i]["p0_pa"] * self.vol[i] / (R * t0))
        self.t_prev = 0.0
        self.n_prev = list(self.n)
        self.T_prev = list(self.T)
        ev = []
        for sched in self.sched:
            for p in sched:
                if p[0] > 0.0 and p[0] not in ev:
                    ev.append(p[0])
        ev.sort()
        self.events = ev
        self._ev = 0  # index of the next event after self.t
        self.steps = 0

    # -- reading --

    def state(self, seg, t_s):
        """(pressure_pa, temperature_k) of segment seg at time t_s (advances lazily;
        a time before the last grid step reads the state at that step)."""
        self.advance(t_s)
        n, temp = self._interp(seg, t_s)
        return n * R * temp / self.vol[seg], temp

    def _interp(self, seg, t_s):
        t0 = self.t_prev
        t1 = self.t
        if t_s >= t1 or t1 <= t0:
            n = self.n[seg]
            temp = self.T[seg]
        else:
            if t_s < t0:
                t_s = t0
            f = (t_s - t0) / (t1 - t0)
            n = self.n_prev[seg] + (self.n[seg] - self.n_prev[seg]) * f
            temp = self.T_prev[seg] + (self.T[seg] - self.T_prev[seg]) * f
        if self.tau[seg] == 0.0:
            temp = self.walls[seg].at(t_s)
        return n, temp

    def leak_kg_per_s(self, seg, t_s):
        """Mass flow out of segment seg through its leaks (links flagged "leak") at t_s."""
        self.advance(t_s)
        total = 0.0
        for k in range(len(self.links)):
            ln = self.links[k]
            if not ln.get("leak") or ln["a"] != seg:
                continue
            frac = schedule_value(self.sched[k], t_s)
            if frac <= 0.0:
                continue
            if "kg_per_s" in ln:
                total += ln["kg_per_s"] * frac
                continue
            n, temp = self._interp(seg, t_s)
            p = n * R * temp / self.vol[seg]
            pb, tb = self._node_pt(ln["b"], t_s)
            cda = ln["cda_m2"] * frac
            total += (orifice_mol_per_s(cda, p, temp, pb) - orifice_mol_per_s(cda, pb, tb, p)) * M_AIR
        return total

    def net_loss_kg_per_s(self, seg, t_s):
        """Mass flow out of segment seg through everything (leaks, hatches, valves;
        negative when gaining), as the mean over the integration step holding t_s."""
        self.advance(t_s)
        if self.t <= self.t_prev:  # no step taken yet
            self.advance(self.t + 0.5 * self.step_s)
        return (self.n_prev[seg] - self.n[seg]) / (self.t - self.t_prev) * M_AIR

    def _node_pt(self, node, t_s):
        if node < 0:
            return self.bp[-1 - node], self.bt[-1 - node]
        n, temp = self._interp(node, t_s)
        return n * R * temp / self.vol[node], temp

    # -- integration --

    def advance(self, t_s):
        while self.t < t_s:
            t0 = self.t
            k = math.floor(t0 / self.step_s + 1e-9) + 1
            t1 = k * self.step_s
            if t1 <= t0:  # rounding, far out in time
                t1 = t0 + self.step_s
            ev = self.events
            while self._ev < len(ev) and ev[self._ev] <= t0:
                self._ev += 1
            if self._ev < len(ev) and ev[self._ev] < t1:
                t1 = ev[self._ev]
            self._step(t0, t1)

    def _step(self, t0, t1):
        h = t1 - t0
        self.t_prev = t0
        self.n_prev = list(self.n)
        self.T_prev = list(self.T)
        n = self.n
        temp = self.T
        self._relax(0.5 * (t0 + t1), h)
        for i in range(len(n)):
            if self.tau[i] == 0.0:
                temp[i] = self.walls[i].at(t1)
        for k in range(len(self.links)):
            ln = self.links[k]
            frac = schedule_value(self.sched[k], t0)
            if frac > 0.0:
                if "kg_per_s" in ln:
                    self._mass_out(ln["a"], ln["kg_per_s"] * frac * h / M_AIR)
                else:
                    self._orifice(ln["a"], ln["b"], ln["cda_m2"] * frac, h)
        self.t = t1
        self.steps += 1

    def _relax(self, t_s, h):
        for i in range(len(self.n)):
            tau = self.tau[i]
            if tau > 0.0:
                tw = self.walls[i].at(t_s)
                self.T[i] = tw + (self.T[i] - tw) * math.exp(-h / tau)

    def _after(self, node, dn, t_in):
        """(pressure, temperature) of node after gaining dn mol (losing if < 0) of gas at t_in."""
        if node < 0:
            return self.bp[-1 - node], self.bt[-1 - node]
        n0 = self.n[node]
        t0 = self.T[node]
        n1 = n0 + dn
        if n1 <= 0.0:
            return 0.0, t0
        if self.tau[node] != 0.0:
            if dn < 0.0:
                t0 = t0 * (n1 / n0) ** (_G - 1.0)  # isentropic expansion of what stays
            else:
                t0 = (n0 * t0 + _G * dn * t_in) / n1  # enthalpy of the incoming gas
        return n1 * R * t0 / self.vol[node], t0

    def _apply(self, node, dn, t_in):
        if node >= 0:
            p, t = self._after(node, dn, t_in)
            self.n[node] = self.n[node] + dn
            self.T[node] = t

    def _mass_out(self, seg, dn):
        if dn > self.n[seg]:
            dn = self.n[seg]
        self._apply(seg, -dn, 0.0)

    def _orifice(self, a, b, cda, h):
        """Backward Euler for one orifice: move m mol from the higher pressure side
        with m = h F(m), F the net flow once m has moved (negative past the
        equilibrium). Solved as the root of G(m) = m^2 - hF|hF|: increasing,
        bracketed by [0, h F(0)], and nearly linear through an equilibrium (F^2 goes
        as the pressure difference), so a few Illinois (regula falsi) steps converge
        even for a hatch between modules."""
        pa, ta = self._after(a, 0.0, 0.0)
        pb, tb = self._after(b, 0.0, 0.0)
        if pa < pb:
            a, b, pa, ta, pb, tb = b, a, pb, tb, pa, ta
        hf0 = h * orifice_mol_per_s(cda, pa, ta, pb)
        hi = hf0
        if a >= 0 and hi > self.n[a]:
            hi = self.n[a]
        if not hi > 0.0:
            return
        lo = 0.0
        g_lo = -hf0 * hf0
        # A stiff link (a hatch) equalizes within the step: start the bracket at the
        # amount that would equalize the pressures, when that is the smaller.
        eq = 1.25 * (pa - pb) / (self._dp_dn(a, ta) + self._dp_dn(b, ta))
        if eq < hi:
            f = h * self._flow_after(a, b, eq, ta, cda)
            if eq * eq - f * abs(f) > 0.0:
                hi = eq
        f = h * self._flow_after(a, b, hi, ta, cda)
        g_hi = hi * hi - f * abs(f)
        m = hi
        side = 0
        if g_hi > 0.0:
            for _ in range(100):
                m_prev = m
                m = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
                if not lo < m < hi:
                    m = 0.5 * (lo + hi)
                # Converged, or down to the rounding of the pressures (F jumps by
                # one ulp of P near an equilibrium).
                if abs(m - m_prev) <= 1e-11 * m:
                    break
                f = h * self._flow_after(a, b, m, ta, cda)
                if abs(m - f) <= 1e-11 * m or hi - lo <= 1e-13 * hi:
                    break
                g = m * m - f * abs(f)
                if g < 0.0:
                    lo, g_lo = m, g
                    if side == -1:
                        g_hi *= 0.5
                    side = -1
                else:
                    hi, g_hi = m, g
                    if side == 1:
                        g_lo *= 0.5
                    side = 1
        self._apply(a, -m, ta)
        self._apply(b, m, ta)

    def _dp_dn(self, node, t_in):
        """About how much a node's pressure moves per mol moved in or out."""
        if node < 0:
            return 0.0
        k = R * t_in / self.vol[node]
        return k if self.tau[node] == 0.0 else _G * k

    def _flow_after(self, a, b, m, t_in, cda):
        """Net flow a -> b (negative if reversed) once m mol have moved."""
        pa, ta = self._after(a, -m, t_in)
        pb, tb = self._after(b, m, t_in)
        if pa >= pb:
            return orifice_mol_per_s(cda, pa, ta, pb)
        return -orifice_mol_per_s(cda, pb, tb, pa)


def from_config(cfg):
    return Plant(cfg)
