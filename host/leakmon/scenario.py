"""Scenario files (hardware/scenarios/*.toml): one testbed description that the
virtual board simulates and the analysis reads (volumes, the ground truth)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from leakmon.errors import ConfigError
from leakmon.vboard.chamber import Chamber

SECONDS_PER_DAY = 86400.0
SUPPORTED_CHIPS = ("BMP388", "BMP390", "BMP280", "BME280", "DPS310", "LPS22HB", "LPS22HH", "MS5611")


@dataclass(frozen=True)
class SensorSpec:
    chip: str
    bus: int
    addr: int
    noise_pa: float
    noise_k: float


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    volume_m3: float
    pressure_pa: float
    temperature_k: float
    leak_kg_per_s: float
    temperature_swing_k: float
    temperature_period_s: float
    temperature_drift_k_per_s: float
    sensors: tuple[SensorSpec, ...]

    def chamber(self) -> Chamber:
        """The physics the virtual board runs, for the ground truth."""
        return Chamber(**self.chamber_config())

    def chamber_config(self) -> dict[str, float]:
        return {
            "volume_m3": self.volume_m3,
            "p0_pa": self.pressure_pa,
            "t0_k": self.temperature_k,
            "leak_kg_per_s": self.leak_kg_per_s,
            "temp_amp_k": self.temperature_swing_k,
            "temp_period_s": self.temperature_period_s,
            "temp_drift_k_per_s": self.temperature_drift_k_per_s,
        }

    def sim_config(self, seed: int, speed: float) -> dict[str, Any]:
        """The sim.json the virtual board reads from its flash folder."""
        return {
            "seed": seed,
            "speed": speed,
            "chamber": self.chamber_config(),
            "sensors": [
                {"chip": s.chip, "bus": s.bus, "addr": s.addr, "noise_pa": s.noise_pa, "noise_k": s.noise_k}
                for s in self.sensors
            ],
        }


def scenarios_dir() -> Path:
    return Path(str(resources.files("leakmon.hardware") / "scenarios"))


def resolve(name_or_path: str) -> Path:
    """A path as given, or the name of a shipped scenario ("steady_leak")."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    shipped = scenarios_dir() / f"{name_or_path.replace('-', '_')}.toml"
    if shipped.exists():
        return shipped
    names = sorted(q.stem for q in scenarios_dir().glob("*.toml"))
    raise ConfigError(f"no scenario {name_or_path!r}: give a .toml path or one of {', '.join(names)}")


def _number(table: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    v = table.get(key, default)
    if v is None:
        raise ConfigError(f"{where}: missing '{key}'")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}: '{key}' must be a number, got {v!r}")
    return float(v)


def load(name_or_path: str) -> Scenario:
    path = resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read scenario {path}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"scenario {path} is not valid TOML: {e}") from e
    ch = data.get("chamber")
    if not isinstance(ch, dict):
        raise ConfigError(f"{path}: missing [chamber] table")
    where = f"{path} [chamber]"
    volume = _number(ch, "volume_m3", where)
    if volume <= 0:
        raise ConfigError(f"{where}: volume_m3 must be positive")
    sensors = []
    for k, s in enumerate(data.get("sensors", [])):
        w = f"{path} [[sensors]] #{k + 1}"
        chip = str(s.get("chip", ""))
        if chip not in SUPPORTED_CHIPS:
            raise ConfigError(f"{w}: chip {chip!r} is not one of {', '.join(SUPPORTED_CHIPS)}")
        sensors.append(
            SensorSpec(chip, int(_number(s, "bus", w, 0)), int(_number(s, "addr", w, 0x77)),
                       _number(s, "noise_pa", w, 0.3), _number(s, "noise_k", w, 0.002))
        )
    if not sensors:
        raise ConfigError(f"{path}: no [[sensors]]")
    return Scenario(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        volume_m3=volume,
        pressure_pa=_number(ch, "pressure_pa", where),
        temperature_k=_number(ch, "temperature_k", where),
        leak_kg_per_s=_number(ch, "leak_kg_per_day", where, 0.0) / SECONDS_PER_DAY,
        temperature_swing_k=_number(ch, "temperature_swing_k", where, 0.0),
        temperature_period_s=_number(ch, "temperature_period_s", where, 3600.0),
        temperature_drift_k_per_s=_number(ch, "temperature_drift_k_per_h", where, 0.0) / 3600.0,
        sensors=tuple(sensors),
    )
