"""Hardware-in-the-loop harness: which board, the `board_port` fixture, and a
one-page summary for the technician at the end of a `pytest -m hil` session.

    pytest -m hil                                       # the virtual board (steady_leak)
    pytest -m hil --port /dev/ttyACM0 --board pico      # a real board running the firmware
    pytest -m hil --port P1 --port P2 ... --board pico  # several boards in parallel (tests/testbed/fanout.py)
    pytest -m hil --all-boards --junitxml=out/hil.xml   # every board found by USB id; out/hil-board{i}.xml
    pytest -m hil --board sim --port DIR/board0 ...     # boards served by `leakmon sim --boards N --speed 20`

--port and --board are registered here, which pytest sees only when this file is
an initial conftest (`pytest tests/hil ...`); from the repository root the same
options come from tests/conftest.py, or from LEAKMON_HIL_PORT / LEAKMON_HIL_BOARD.

Tests report figures with `hil_report.figure(...)`; the summary pairs them with
each test's outcome.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from leakmon.sim import scenario
from leakmon.sim.board import VirtualBoard

# Test modules import these from "conftest"; without __init__.py files every
# conftest.py is the module "conftest", and the last one loaded wins.
ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
VBOARD = ROOT / "host" / "leakmon" / "sim" / "vboard"
VECTORS = ROOT / "tests" / "vectors" / "wire_v1.json"

BOARDS = ("pico", "esp32", "pyboard", "sim")  # sim: a virtual board served by `leakmon sim --speed 20`
SCENARIO = "steady_leak"
SEED = 1
SPEED = 20.0  # device time runs 20x wall time on the virtual board
FANOUT_ENV = "LEAKMON_HIL_BOARD_NAME"  # set by tests/testbed/fanout.py in each board's session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware in the loop")
    for args, kw in ((("--port",), dict(action="append", default=[],
                                        help="serial port (pyserial URL) of a real board running the firmware; "
                                        "without it the HIL tests use the virtual board; repeatable")),
                     (("--all-boards",), dict(action="store_true", help="every board found by USB id")),
                     (("--hil-jobs",), dict(type=int, help="with several boards: at most N at a time")),
                     (("--board",), dict(choices=BOARDS, help="the real board on --port"))):
        try:
            group.addoption(*args, **kw)
        except ValueError:  # already registered by tests/conftest.py
            pass


def _option(config: pytest.Config, name: str, env: str) -> str | None:
    value = config.getoption(name, default=None)
    if isinstance(value, list):  # --port: several boards are fanned out before we get here
        value = value[0] if value else None
    return value or os.environ.get(env) or None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a board's own session of a testbed run, only the checks of that board run."""
    if not os.environ.get(FANOUT_ENV):
        return
    keep = [i for i in items if "hil_target" in getattr(i, "fixturenames", ())]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@dataclass
class Target:
    """The board under test."""

    port: str
    board: str  # "sim" for the virtual board
    virtual: bool
    vboard: VirtualBoard | None = None

    def power_cycle(self) -> str:
        """Start a new virtual board in place of the current one; its port."""
        if self.vboard is not None:
            self.vboard.close()
        self.vboard = VirtualBoard(scenario.load(SCENARIO), seed=SEED, speed=SPEED)
        self.port = self.vboard.start()
        return self.port

    def describe(self) -> str:
        name = os.environ.get(FANOUT_ENV)
        where = f"{name} on {self.port}" if name else self.port
        if self.vboard is not None:
            return f"virtual board on {where} (scenario {SCENARIO}, seed {SEED}, speed {SPEED:g}x)"
        if self.virtual:
            return f"virtual board served on {where} (scenario {SCENARIO} at {SPEED:g}x expected)"
        return f"{self.board} on {where}"


@dataclass
class Check:
    name: str
    outcome: str = "not run"
    figures: list[str] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


@dataclass
class HilReport:
    target: str = ""
    node: str = ""
    checks: dict[str, Check] = field(default_factory=dict)
    current: str | None = None

    def _check(self, nodeid: str, name: str) -> Check:
        c = self.checks.get(nodeid)
        if c is None:
            c = self.checks[nodeid] = Check(name)
        return c

    def figure(self, text: str) -> None:
        """Add a figure (a short 'name value unit' text) to the running check."""
        if self.current is not None:
            self.checks[self.current].figures.append(text)


REPORT_KEY = pytest.StashKey[HilReport]()


def _report(config: pytest.Config) -> HilReport:
    if REPORT_KEY not in config.stash:
        config.stash[REPORT_KEY] = HilReport()
    return config.stash[REPORT_KEY]


@pytest.fixture(scope="session")
def hil_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The real board given by --port, or a virtual board started on the steady_leak scenario."""
    port = _option(request.config, "--port", "LEAKMON_HIL_PORT")
    board = _option(request.config, "--board", "LEAKMON_HIL_BOARD")
    if port:
        if board is not None and board not in BOARDS:
            raise pytest.UsageError(f"--board must be one of {', '.join(BOARDS)}, not {board!r}")
        target = Target(port, board or "unknown", virtual=board == "sim")
        _report(request.config).target = target.describe()
        record = request.getfixturevalue("record_testsuite_property")
        record("board", target.board)
        record("port", port)
        record("board_name", os.environ.get(FANOUT_ENV, ""))
        yield target
        return
    request.getfixturevalue("micropython")  # skips without the MicroPython unix port
    target = Target("", "sim", virtual=True)
    target.power_cycle()
    _report(request.config).target = target.describe()
    try:
        yield target
    finally:
        if target.vboard is not None:
            target.vboard.close()


@pytest.fixture(scope="session")
def board_port(hil_target: Target) -> str:
    """A port to open: the real board's when --port is given, else the virtual board's."""
    return hil_target.port


@pytest.fixture
def hil_report(request: pytest.FixtureRequest) -> HilReport:
    return _report(request.config)


def needs_real_hardware(target: Target, why: str) -> None:
    if target.virtual:
        pytest.skip(f"needs real hardware: {why}")


def needs_virtual_board(target: Target, why: str) -> None:
    if not target.virtual:
        pytest.skip(f"virtual board only: {why}")


# -- the summary ------------------------------------------------------------------------------
def _title(item: pytest.Item) -> str:
    """The test's docstring's first line (or its name), with its parameters."""
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    name = doc.strip().splitlines()[0].rstrip(".") if doc else item.name.removeprefix("test_").replace("_", " ")
    name = name.split("[")[0]
    params = getattr(item, "callspec", None)
    return f"{name} [{params.id}]" if params is not None else name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    if item.get_closest_marker("hil") is None:
        return (yield)
    rep = _report(item.config)
    rep._check(item.nodeid, _title(item))
    rep.current = item.nodeid
    t0 = time.monotonic()
    try:
        return (yield)
    finally:
        rep.checks[item.nodeid].seconds = time.monotonic() - t0
        rep.current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if item.get_closest_marker("hil") is None:
        return report
    c = _report(item.config)._check(item.nodeid, _title(item))
    if hasattr(report, "wasxfail"):
        c.outcome = "XFAIL" if report.skipped else "XPASS"
        c.reason = str(report.wasxfail).removeprefix("reason: ")
    elif report.skipped and c.outcome in ("not run", "PASS"):
        c.outcome = "SKIP"
        longrepr = report.longrepr
        c.reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        c.reason = c.reason.removeprefix("Skipped: ")
    elif report.failed:
        c.outcome = "FAIL" if report.when == "call" else "ERROR"
        crash = getattr(report.longrepr, "reprcrash", None)
        c.reason = (crash.message if crash is not None else str(report.longrepr)).splitlines()[0][:100]
    elif report.when == "call" and report.passed:
        c.outcome = "PASS"
    return report


def _wanted(config: pytest.Config) -> bool:
    markexpr = config.getoption("markexpr", default="") or ""
    return "hil" in markexpr or bool(_option(config, "--port", "LEAKMON_HIL_PORT"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    rep = _report(config)
    if not _wanted(config) or not rep.checks:
        return
    tr = terminalreporter
    tr.section("leakmon HIL summary", sep="=", bold=True)
    tr.write_line(f"board under test: {rep.target or '-'}")
    if rep.node:
        tr.write_line(f"node:             {rep.node}")
    tr.write_line(f"date:             {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    tr.write_line("")
    width = min(max(len(c.name) for c in rep.checks.values()), 56)
    for c in rep.checks.values():
        tr.write_line(f"{c.outcome:6} {c.name[:width]:{width}}  {c.seconds:5.1f} s")
        for fig in c.figures:
            tr.write_line(f"{'':6} {'':{width}}  {fig}")
        if c.reason and c.outcome != "PASS":
            tr.write_line(f"{'':6} {'':{width}}  -> {c.reason}")
    counts = {k: sum(c.outcome == k for c in rep.checks.values())
              for k in ("PASS", "FAIL", "ERROR", "SKIP", "XFAIL", "XPASS")}
    verdict = "PASS" if counts["FAIL"] == counts["ERROR"] == 0 else "FAIL"
    tr.write_line("")
    tr.write_line(f"overall: {verdict}  ({counts['PASS']} passed, {counts['FAIL'] + counts['ERROR']} failed, "
                  f"{counts['SKIP']} skipped, {counts['XFAIL']} known gaps)", bold=True, red=verdict == "FAIL", green=verdict == "PASS")
