"""The data files shipped in leakmon.hardware (hardware/ in the source tree)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from leakmon.errors import ConfigError


def hardware_dir(kind: str) -> Path:
    """hardware/<kind>: "scenarios", "boards" or "recipes"."""
    return Path(str(resources.files("leakmon.hardware") / kind))


def scenarios_dir() -> Path:
    return hardware_dir("scenarios")


def shipped() -> list[str]:
    """The names of the shipped scenarios (each is also a site file)."""
    return sorted(q.stem for q in scenarios_dir().glob("*.toml"))


def resolve(name_or_path: str | Path, what: str = "scenario") -> Path:
    """A path as given, or the name of a shipped scenario ("steady_leak"); what names
    the kind of file in the error."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    found = scenarios_dir() / f"{str(name_or_path).replace('-', '_')}.toml"
    if found.exists():
        return found
    raise ConfigError(f"no {what} {str(name_or_path)!r}: give a .toml path or a shipped scenario, "
                      f"one of {', '.join(shipped())}")
