# A sealed chamber with a steady leak and a drifting gas temperature, in closed
# form. Written in the subset MicroPython and CPython share. Scenario files go
# through physics.py (segments, hatches, orifice leaks); this stays as the closed
# form of the one-chamber, fixed-rate case (Scenario.chamber(), checked against
# physics.py in tests/sim) and for sim.json files that give a "chamber".
import math

R = 8.314462  # J/(mol K)
M_AIR = 0.028965  # kg/mol


class Chamber:
    def __init__(self, volume_m3, p0_pa, t0_k, leak_kg_per_s=0.0, temp_amp_k=0.0,
                 temp_period_s=3600.0, temp_drift_k_per_s=0.0):
        self.volume_m3 = volume_m3
        self.p0_pa = p0_pa
        self.t0_k = t0_k
        self.leak_kg_per_s = leak_kg_per_s
        self.temp_amp_k = temp_amp_k
        self.temp_period_s = temp_period_s
        self.temp_drift_k_per_s = temp_drift_k_per_s
        self.n0_mol = p0_pa * volume_m3 / (R * t0_k)

    def temperature_k(self, t_s):
        return (self.t0_k + self.temp_drift_k_per_s * t_s
                + self.temp_amp_k * math.sin(2 * math.pi * t_s / self.temp_period_s))

    def state(self, t_s):
        """(pressure_pa, temperature_k) of the gas at device time t_s."""
        temp_k = self.temperature_k(t_s)
        n_mol = self.n0_mol - self.leak_kg_per_s / M_AIR * t_s
        if n_mol < 0:
            n_mol = 0.0
        return n_mol * R * temp_k / self.volume_m3, temp_k

    def leak_rate_pa_per_s(self, temperature_k):
        """True pressure loss rate at a fixed gas temperature (positive = losing gas)."""
        return self.leak_kg_per_s / M_AIR * R * temperature_k / self.volume_m3


def from_config(cfg):
    return Chamber(cfg["volume_m3"], cfg["p0_pa"], cfg["t0_k"], cfg.get("leak_kg_per_s", 0.0),
                   cfg.get("temp_amp_k", 0.0), cfg.get("temp_period_s", 3600.0),
                   cfg.get("temp_drift_k_per_s", 0.0))
