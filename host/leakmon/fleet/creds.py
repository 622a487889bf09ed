"""Where the broker and database are, and their passwords: from the environment or a
file, never from a command line (which `ps` shows to every user) and never logged.

    --broker mqtt://gw-site-a@broker.lan:1883      password: LEAKMON_MQTT_PASSWORD or --mqtt-password-file
    --broker mqtts://gw-site-a@broker.lan:8883     the same over TLS (--mqtt-ca for a private CA)
    --db postgresql://leakmon_writer@db.lan/leakmon password: PGPASSWORD, ~/.pgpass or --db-password-file
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from leakmon.fleet import FleetError

MQTT_PASSWORD_ENV = "LEAKMON_MQTT_PASSWORD"


def _refuse_inline_password(url: str, what: str) -> None:
    if urlsplit(url).password is not None:
        raise FleetError(f"{what}: a password in the URL would show in `ps` and in logs; "
                         f"give it through the environment or a password file instead")


def read_secret(path: str | None, env: str | None, what: str) -> str | None:
    """The first line of a password file (which must not be readable by others), else
    the environment variable env, else None."""
    if path:
        p = Path(path)
        try:
            mode = p.stat().st_mode
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise FleetError(f"{what} password file {path}: {e.strerror or e}") from e
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise FleetError(f"{what} password file {path} is readable by others: chmod 600 {path}")
        line = text.splitlines()[0] if text else ""
        if not line:
            raise FleetError(f"{what} password file {path} is empty")
        return line
    return os.environ.get(env) if env else None


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    tls: bool

    def __str__(self) -> str:  # what logs show: no password, ever
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker(url: str) -> BrokerAddress:
    _refuse_inline_password(url, "--broker")
    if "://" not in url:
        url = "mqtt://" + url
    u = urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts"):
        raise FleetError(f"--broker {url}: the scheme must be mqtt:// or mqtts://")
    tls = u.scheme == "mqtts"
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError as e:
        raise FleetError(f"--broker {url}: {e}") from e
    if not u.hostname:
        raise FleetError(f"--broker {url}: no host")
    return BrokerAddress(u.hostname, port, unquote(u.username) if u.username else None, tls)


def check_db_url(url: str) -> str:
    """A libpq URL or key=value string; its password must come from PGPASSWORD, ~/.pgpass or a file."""
    if url.startswith(("postgresql://", "postgres://")):
        _refuse_inline_password(url, "--db")
    elif "password=" in url.replace(" ", ""):
        raise FleetError("--db: a password in the connection string would show in `ps` and in logs; "
                         "use PGPASSWORD, ~/.pgpass or --db-password-file")
    return url


def redact_db_url(url: str) -> str:
    u = urlsplit(url)
    if u.scheme.startswith("postgres") and u.hostname:
        user = f"{u.username}@" if u.username else ""
        port = f":{u.port}" if u.port else ""
        return f"{u.scheme}://{user}{u.hostname}{port}{u.path}"
    return "the database"
