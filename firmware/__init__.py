# Marks this folder as the host package leakmon.firmware, so the host imports the
# very wire.py the node runs. Not deployed to boards.
"""The node firmware as a host package: its files, for flash and the virtual board."""

from pathlib import Path


def firmware_files() -> list[Path]:
    """Every file a board needs: the firmware's .py modules and config.json (not this one)."""
    root = Path(__file__).resolve().parent
    return sorted(p for p in root.iterdir() if p.name.endswith((".py", ".json")) and p.name != "__init__.py")
