"""The public face: `leakmon.__all__` names what a program needs, each name loads, and
the README's program runs as printed against the virtual board."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import leakmon
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_loads_and_nothing_else_is_offered() -> None:
    for name in leakmon.__all__:
        assert getattr(leakmon, name) is not None, name
    with pytest.raises(AttributeError):
        leakmon.no_such_thing  # noqa: B018


def readme_program() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Use it from Python\n.*?```python\n(.*?)```", text, re.S)
    assert m, "README has a '## Use it from Python' section with a python block"
    return m.group(1)


@pytest.mark.hil
def test_the_readme_program_runs_on_the_virtual_board(micropython, tmp_path: Path) -> None:
    from leakmon.sim import scenario
    from leakmon.sim.board import VirtualBoard

    code = readme_program()
    assert len(code.strip().splitlines()) <= 12
    with VirtualBoard(scenario.load("steady_leak"), seed=3, speed=0) as board:
        program = code.replace('"/dev/ttyACM0"', repr(board.port)).replace('"run.lkr"', repr(str(tmp_path / "run.lkr")))
        r = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) >= 1 and "Pa/s" in lines[-1], r.stdout
    assert (tmp_path / "run.lkr").stat().st_size > 1000
