"""Run it: the state folder (SQLite file and signing key), the feed thread, uvicorn."""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from leakmon.dashboard.app import UPLOT_JS, build_app
from leakmon.dashboard.auth import Sessions, ensure_first_operator, load_secret
from leakmon.dashboard.feed import Feed
from leakmon.dashboard.history import History
from leakmon.dashboard.hub import Hub
from leakmon.dashboard.site import Site
from leakmon.dashboard.store import Store
from leakmon.errors import ConfigError, LeakmonError


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 8050
    state_dir: Path = Path("leakmon-dashboard")
    history_h: float = 24.0
    rate_hz: float = 10.0
    live_interval_s: float = 1.0
    secure_cookies: bool = False


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen wants HOST:PORT (e.g. 127.0.0.1:8050), not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def open_state(state_dir: Path) -> tuple[Store, Sessions, str | None]:
    """The store and sessions in state_dir (made owner-only); a first password if it made one."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot make the state folder {state_dir}: {e}") from e
    store = Store(state_dir / "dashboard.sqlite")
    return store, Sessions(store, load_secret(state_dir)), ensure_first_operator(store)


def check_assets() -> None:
    if not UPLOT_JS.exists():
        raise ConfigError(f"the plotting library is missing ({UPLOT_JS.parent}): run scripts/setup.sh, "
                          "which installs uPlot from npm")


def serve(site: Site, feed: Feed, opts: Options, source_text: str) -> int:
    import uvicorn

    check_assets()
    store, sessions, first_password = open_state(opts.state_dir)
    if first_password is not None:
        # Shown once, on the terminal only: it is in no log file and on no command line.
        print(f"leakmon: first run: made user 'operator' with password {first_password} "
              f"(change it with --add-user operator)", file=sys.stderr, flush=True)
    raw_capacity = int(opts.history_h * 3600 * opts.rate_hz) + 1
    hub = Hub(site, store, History(raw_capacity, int(opts.history_h * 3600) + 1))
    hub.source_text = source_text
    app = build_app(hub, sessions, secure_cookies=opts.secure_cookies, live_interval_s=opts.live_interval_s)
    if opts.host not in ("127.0.0.1", "localhost", "::1") and not opts.secure_cookies:
        print(f"leakmon: warning: listening on {opts.host} over plain HTTP: passwords and sessions cross the "
              "network in clear; serve it behind a TLS proxy with --secure-cookies", file=sys.stderr)
    stop = threading.Event()
    failure: list[BaseException] = []
    stopping = app.app.state.stopping

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:  # Ctrl-C: end the event streams too
            stopping.set()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    # Event streams end by themselves once `stopping` is set; the timeout is only a backstop.
    server = Server(uvicorn.Config(app, host=opts.host, port=opts.port, log_level="warning",
                                   access_log=False, lifespan="off", timeout_graceful_shutdown=5))

    def feed_main() -> None:
        try:
            feed.run(hub, stop)
        except LeakmonError as e:
            failure.append(e)
            stopping.set()
            server.should_exit = True
        except Exception as e:  # a bug: say it, and stop the server rather than serve stale data
            traceback.print_exc()
            failure.append(e)
            stopping.set()
            server.should_exit = True

    thread = threading.Thread(target=feed_main, name="leakmon-feed", daemon=True)
    thread.start()
    print(f"leakmon: dashboard on http://{opts.host}:{opts.port}/ ({source_text}); public page /public",
          file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C back once it has shut down: the normal stop
        print("leakmon: dashboard stopped", file=sys.stderr)
    finally:
        stop.set()
        thread.join(timeout=5.0)
        store.close()
    if failure and isinstance(failure[0], LeakmonError):
        raise failure[0]
    return 1 if failure else 0
