"""The HIL suite on many boards at once: `pytest -m hil --port P1 --port P2 ...` (or
`--all-boards`) runs one pytest per board, all in parallel, and ends with a
summary per board and an overall PASS/FAIL.

Why a pytest per board and not pytest-xdist: a board's checks are one sequential
session on one connection (handshake, rates, RESET, REPL, in file order), so the
unit of parallel work is a board's whole session, not a test; and each child is a
plain pytest run, so its JUnit XML is pytest's own `--junitxml`, one file per board
(`--junitxml=out/hil.xml` gives out/hil-board0.xml ...), its HIL summary page is
the usual one, and a board that hangs or crashes its session takes no other down.

Only the checks of the board under test (the tests that use `board_port` or
`hil_target`) run per board; the tests that start their own virtual board do not
depend on the board and run in a plain `pytest -m hil`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHILD_ENV = "LEAKMON_HIL_BOARD_NAME"  # set in a child: its board's name; only board checks run
MAX_BOARDS = 32
DROP_WITH_VALUE = ("--port", "--junitxml", "--junit-xml", "--hil-jobs", "-n", "--numprocesses")
DROP_FLAGS = ("--all-boards",)


def board_ports(config: pytest.Config) -> list[str]:
    """The ports given (each device once) plus, with --all-boards, every board found by USB id."""
    from leakmon.deploy import fleetflash
    from leakmon.errors import LeakmonError

    given = list(config.getoption("port", default=None) or [])
    env = os.environ.get("LEAKMON_HIL_PORT")
    if not given and env:
        given = [env]
    try:
        ports, notes = fleetflash.select_ports(given, bool(config.getoption("all_boards", default=False)))
    except LeakmonError as e:
        raise pytest.UsageError(str(e)) from e
    for n in notes:
        print(f"leakmon HIL: {n}", file=sys.stderr)
    return [p.device for p in ports]


def child_args(args: list[str], port: str, junit: Path) -> list[str]:
    """The parent's arguments for one board: its --port and its own --junitxml."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in DROP_FLAGS:
            continue
        if name in DROP_WITH_VALUE:
            skip = "=" not in a
            continue
        out.append(a)
    return out + ["--port", port, f"--junitxml={junit}", "-p", "no:cacheprovider"]


@dataclass
class BoardRun:
    index: int
    port: str
    junit: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    seconds: float = 0.0
    code: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    first_failure: str = ""

    @property
    def name(self) -> str:
        return f"board{self.index}"

    @property
    def verdict(self) -> str:
        return "PASS" if self.code == 0 else "FAIL"


def read_junit(run: BoardRun) -> None:
    """Counts and the first failure's message, from the board's JUnit XML."""
    try:
        root = ET.parse(run.junit).getroot()
    except (OSError, ET.ParseError):
        run.first_failure = run.first_failure or "no JUnit XML written (the session did not finish)"
        return
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return
    run.counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    for case in suite.iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            msg = (bad.get("message") or "").strip().splitlines()
            run.first_failure = f"{case.get('name')}: {msg[0] if msg else 'failed'}"[:160]
            return


def summary_page(log: Path) -> list[str]:
    """The child's own HIL summary (from its header to the end of its output)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    starts = [i for i, line in enumerate(lines) if "leakmon HIL summary" in line]
    return lines[starts[-1]:] if starts else lines[-5:]


def fan_out(config: pytest.Config) -> int | None:
    """Run one pytest per board when there are several; None (go on as usual) otherwise."""
    if os.environ.get(CHILD_ENV) or hasattr(config, "workerinput"):
        return None
    ports = board_ports(config)
    if len(ports) <= 1:
        if ports:
            config.option.port = ports
        return None
    if len(ports) > MAX_BOARDS:
        raise pytest.UsageError(f"{len(ports)} boards: at most {MAX_BOARDS} at once")
    jobs = config.getoption("hil_jobs", default=None) or len(ports)
    xml = config.getoption("xmlpath", default=None)
    out_dir = Path(xml).parent if xml else Path(tempfile.mkdtemp(prefix="leakmon-hil-"))
    stem = Path(xml).stem if xml else "hil"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = list(config.invocation_params.args)
    runs = [BoardRun(i, p, out_dir / f"{stem}-board{i}.xml", out_dir / f"{stem}-board{i}.log")
            for i, p in enumerate(ports)]
    tw = Out()
    tw.line(f"leakmon HIL: {len(runs)} boards, {min(jobs, len(runs))} at a time; logs and JUnit XML in {out_dir}")
    pending = list(runs)
    running: list[BoardRun] = []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                r = pending.pop(0)
                env = dict(os.environ, **{CHILD_ENV: r.name})
                with open(r.log, "wb") as log:
                    r.proc = subprocess.Popen([sys.executable, "-m", "pytest", *child_args(args, r.port, r.junit)],
                                              stdout=log, stderr=subprocess.STDOUT, env=env,
                                              cwd=config.invocation_params.dir)
                r.started = time.monotonic()
                running.append(r)
            time.sleep(0.1)
            for r in list(running):
                assert r.proc is not None
                if r.proc.poll() is None:
                    continue
                running.remove(r)
                r.code, r.seconds = r.proc.returncode, time.monotonic() - r.started
                read_junit(r)
                tw.line(f"leakmon HIL: {r.name} {r.port}: {r.verdict} in {r.seconds:.1f} s", bold=True,
                        red=r.verdict == "FAIL", green=r.verdict == "PASS")
    finally:
        for r in running:  # interrupted: our children go too
            if r.proc is not None and r.proc.poll() is None:
                r.proc.terminate()
                r.proc.wait(10)
    report(tw, runs)
    return 0 if all(r.code == 0 for r in runs) else 1


class Out:
    """Lines on stdout, coloured on a terminal (the session, and its terminal writer,
    does not exist yet in pytest_cmdline_main)."""

    def __init__(self) -> None:
        self.color = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    def line(self, text: str, bold: bool = False, red: bool = False, green: bool = False) -> None:
        code = ";".join(c for c, on in (("1", bold), ("31", red), ("32", green)) if on)
        print(f"\x1b[{code}m{text}\x1b[0m" if self.color and code else text, flush=True)

    def sep(self, char: str, title: str, bold: bool = False) -> None:
        side = max(3, (78 - len(title)) // 2)
        self.line(f"{char * side} {title} {char * side}", bold=bold)


def report(tw: Out, runs: list[BoardRun]) -> None:
    """Each board's summary page, then a line per board and the overall verdict."""
    line, sep = tw.line, tw.sep
    for r in runs:
        sep("=", f"{r.name} {r.port}: {r.verdict}")
        for text in summary_page(r.log):
            line(text)
    sep("=", "leakmon HIL testbed summary", bold=True)
    for r in runs:
        c = r.counts
        passed = c.get("tests", 0) - c.get("failures", 0) - c.get("errors", 0) - c.get("skipped", 0)
        counts = (f"{passed} passed, {c.get('failures', 0) + c.get('errors', 0)} failed, {c.get('skipped', 0)} skipped"
                  if c else "no results")
        why = f"  -> {r.first_failure}" if r.verdict == "FAIL" and r.first_failure else ""
        line(f"{r.verdict:4}  {r.name:8} {r.port:24} {counts:40} {r.seconds:6.1f} s  {r.junit}{why}")
    ok = sum(r.verdict == "PASS" for r in runs)
    verdict = "PASS" if ok == len(runs) else "FAIL"
    line(f"overall: {verdict}  ({ok} of {len(runs)} boards passed)", bold=True,
         red=verdict == "FAIL", green=verdict == "PASS")
