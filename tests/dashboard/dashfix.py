"""Helpers and fixtures of the dashboard tests (the test modules import them): a real
`leakmon dashboard` on a free loopback port (the virtual board as its source, users made with --add-user), an HTTP client with cookies, and
Debian's headless Chromium driven by its own chromedriver (nothing downloaded).

With CI=true a missing browser or driver fails the test; elsewhere it skips."""

from __future__ import annotations

import contextlib
import http.cookiejar
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "leak_onset.toml"
SCREENSHOTS = HERE / "screenshots"  # git-ignored; docs/dashboard.png is the one kept
WINDOW = (1280, 1000)
OPERATOR = ("olga", "operator-pass-1")
VIEWER = ("victor", "viewer-pass-1")
LEAKMON = [sys.executable, "-m", "leakmon"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_user(state: Path, name: str, password: str, role: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LEAKMON, "dashboard", "--state", str(state), "--add-user", name, "--role", role],
                          input=password + "\n", capture_output=True, text=True, timeout=60)


def set_user(state: Path, name: str, password: str, role: str) -> None:
    """`leakmon dashboard --add-user` for a test's setup, run in this process: the same
    code and the same files, without a fresh interpreter's ~0.7 s each time (test_security
    runs the command itself, where its output is what is checked)."""
    from leakmon.cli import main as cli

    stdin, err = sys.stdin, io.StringIO()
    sys.stdin = io.StringIO(password + "\n")
    try:
        with contextlib.redirect_stderr(err):
            code = cli.main(["dashboard", "--state", str(state), "--add-user", name, "--role", role])
    finally:
        sys.stdin = stdin
    assert code == 0, err.getvalue()


@dataclass
class Dashboard:
    url: str
    proc: subprocess.Popen[str]
    state: Path
    stderr: list[str] = field(default_factory=list)

    def client(self) -> "Client":
        return Client(self.url)


class Client:
    """urllib with a cookie jar: logs in through the real login form."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None,
                method: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {}, method=method)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def login(self, name: str, password: str, origin: str | None = "self") -> int:
        _, html, _ = self.request("/login")
        token = re.search(rb'name="token" value="([^"]+)"', html)
        assert token
        body = urllib.parse.urlencode({"token": token.group(1).decode(), "name": name, "password": password})
        hdr = {"Content-Type": "application/x-www-form-urlencoded"}
        if origin:
            hdr["Origin"] = self.url if origin == "self" else origin
        status, _, _ = self.request("/login", body.encode(), hdr)
        return status

    def csrf(self) -> str:
        status, body, _ = self.request("/api/me")
        assert status == 200, body
        return str(json.loads(body)["csrf"])

    def post_json(self, path: str, obj: dict[str, Any], csrf: str | None = None,
                  origin: str | None = "self") -> tuple[int, Any]:
        hdr = {"Content-Type": "application/json"}
        if csrf:
            hdr["X-CSRF-Token"] = csrf
        if origin:
            hdr["Origin"] = self.url if origin == "self" else origin
        status, body, _ = self.request(path, json.dumps(obj).encode(), hdr, "POST")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def get_json(self, path: str) -> Any:
        status, body, _ = self.request(path)
        assert status == 200, (path, status, body[:200])
        return json.loads(body)


def wait_state(proc: subprocess.Popen[str], url: str, ready: Any, timeout_s: float = 120.0,
               user: tuple[str, str] = VIEWER) -> dict[str, Any]:
    """/api/state, polled (logged in as user) until ready(state) is true; the dashboard's
    own words if it exits meanwhile."""
    c = Client(url)
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read() if proc.stderr else "")
        try:
            if c.request("/api/me")[0] == 401:
                c.login(*user)
            state = c.get_json("/api/state")
        except (OSError, AssertionError):
            time.sleep(0.5)
            continue
        if ready(state):
            return state
        time.sleep(0.5)
    raise AssertionError(f"not ready within {timeout_s:g} s: {state}")


def start_dashboard(tmp: Path, scenario: str, speed: float, extra: list[str] | None = None) -> Dashboard:
    state = tmp / "state"
    for name, pw, role in ((*OPERATOR, "operator"), (*VIEWER, "viewer")):
        set_user(state, name, pw, role)
    port = free_port()
    proc = subprocess.Popen([*LEAKMON, "dashboard", "--sim", "--scenario", scenario, "--speed", str(speed),
                             "--state", str(state), "--listen", f"127.0.0.1:{port}", *(extra or [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    d = Dashboard(f"http://127.0.0.1:{port}", proc, state)

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            d.stderr.append(line)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited {proc.returncode}: {''.join(d.stderr)}")
        try:
            urllib.request.urlopen(d.url + "/api/public", timeout=2).read()
            return d
        except OSError:
            time.sleep(0.3)
    stop_dashboard(d)
    raise AssertionError("dashboard did not answer within 90 s: " + "".join(d.stderr))


def stop_dashboard(d: Dashboard) -> None:
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGINT)
        try:
            d.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    # 60x: test_browser's first look must come before the simulated crew closes the hatch
    # (1200 s of device time: 20 s of wall time here). At 120x (10 s) a loaded CI run's
    # Chromium start and login took longer and the page showed it closed.
    d = start_dashboard(tmp_path_factory.mktemp("dash"), str(SCENARIO), 60)
    yield d
    stop_dashboard(d)


def browser_paths() -> tuple[str, str]:
    """Debian's chromium and chromium-driver (they always match); CI=true fails without them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                               else None)
    if not (chromium and driver):
        msg = "Debian's chromium and chromium-driver are needed (scripts/setup.sh installs them as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return chromium, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    drv.set_window_size(*WINDOW)
    SCREENSHOTS.mkdir(exist_ok=True)
    yield drv
    drv.quit()


def serve_in_thread(app: Any) -> tuple[str, Any]:
    """uvicorn on a free loopback port in a thread: (url, stop())."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        t.join(timeout=10)

    return url, stop
