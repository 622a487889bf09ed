"""Real Mosquitto and PostgreSQL servers for tests: private instances on free loopback
ports in temporary folders, started and stopped by fixtures (tests/fleet/conftest.py).

Nothing here is mocked: the broker is Debian's `mosquitto`, the database is the
`postgres` of /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so when the
tests run as root (CI does) the cluster is made and run as the `postgres` system user.
With CI=true a missing server is a failure (`require`), elsewhere a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = "apt-get install -y mosquitto postgresql"


def require(what: str) -> None:
    """Skip a test whose server is missing; on CI, fail it instead."""
    msg = f"{what} is not installed ({INSTALL_HINT}, or run scripts/setup.sh as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


def _service_user(name: str) -> pwd.struct_passwd | None:
    """The unprivileged system user a server runs as when the tests run as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _chown_tree(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    for p in [path, *path.rglob("*")]:
        os.chown(p, user.pw_uid, user.pw_gid)


# -- Mosquitto -------------------------------------------------------------------------

@dataclass
class Broker:
    """A private Mosquitto: password file, ACL and persistence in its own folder.

    users: name -> password; acl: lines of a Mosquitto acl_file. stop()/start() keep the
    port and the persistence file, as a real broker restart does.
    """

    folder: Path
    users: dict[str, str]
    acl: list[str]
    extra_conf: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    raw_conf: str | None = None  # a whole configuration of our own instead (paths in it already)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        pw = self.folder / "passwd"
        # Plain "user:password" lines hashed in place by mosquitto_passwd -U: no password on a command line.
        pw.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        pw.chmod(0o600)
        subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)
        (self.folder / "acl").write_text("\n".join(self.acl) + "\n")
        user = _service_user("mosquitto")
        run_as = user.pw_name if user else ("root" if os.geteuid() == 0 else None)
        conf = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {pw}",
            f"acl_file {self.folder / 'acl'}",
            "persistence true",
            f"persistence_location {self.folder}/",
            "autosave_interval 1",
            "max_queued_messages 100000",
            "max_inflight_messages 2000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            *([f"user {run_as}"] if run_as else []),
            *self.extra_conf,
        ]
        if self.raw_conf is not None:
            conf = [self.raw_conf, *([f"user {run_as}"] if run_as else [])]
        path = self.folder / "mosquitto.conf"
        path.write_text("\n".join(conf) + "\n")
        _chown_tree(self.folder, user)
        return path

    def start(self) -> None:
        conf = self._write_config()
        self.log = open(self.folder / "broker.log", "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=self.log, stderr=self.log)
        wait_port(self.port)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.log.close()

    def restart(self) -> None:
        self.stop()
        self.start()


def have_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None and shutil.which("mosquitto_passwd") is not None


# -- PostgreSQL ------------------------------------------------------------------------

def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    """A private PostgreSQL cluster on a loopback port with scram passwords.

    The superuser `postgres` has a random password (self.password); tests make their
    databases and roles through admin_dsn. stop()/start() restart the same cluster.
    """

    folder: Path
    bindir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def __post_init__(self) -> None:
        self.user = _service_user("postgres")
        if os.geteuid() == 0 and self.user is None:
            raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as")

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        prefix = ["runuser", "-u", self.user.pw_name, "--"] if self.user else []
        return subprocess.run([*prefix, *cmd], check=check, capture_output=True, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        data = self.folder / "data"
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        _chown_tree(self.folder, self.user)
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync", "--no-instructions")
        pwfile.unlink()
        with open(data / "postgresql.conf", "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.folder}'\n"
                    "fsync = off\nfull_page_writes = off\nshared_buffers = 64MB\n")

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "pg.log"),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        """A connection string without a password: pass the password through PGPASSWORD."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def admin_env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password}


def have_postgres() -> bool:
    return postgres_bin() is not None
