"""Fixtures of the fleet tests: a real Mosquitto per test (it starts in ~30 ms), one
real PostgreSQL cluster per session with a fresh database per test, and helpers that
run `leakmon gateway` and `leakmon serve` as the processes a user runs."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from fleet.fleetkit import Db, Proc, leakmon_cmd

from leakmon.fleet.brokerconf import acl_lines

GATEWAYS = {"gw-a": ["a1", "a2"], "gw-b": ["b1"]}


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """A folder the servers' own users (mosquitto, postgres) can reach when we are root."""
    root = Path(tempfile.mkdtemp(prefix="leakmon-servers-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def broker(server_root: Path) -> Iterator[servers.Broker]:
    if not servers.have_mosquitto():
        servers.require("Mosquitto")
    users = {u: secrets.token_urlsafe(12) for u in [*GATEWAYS, "serve", "reader"]}
    b = servers.Broker(Path(tempfile.mkdtemp(dir=server_root)), users,
                       acl_lines(GATEWAYS, consumers=["serve"], readers=["reader"], home_assistant=True))
    b.folder.chmod(0o755)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def pg_cluster(server_root: Path) -> Iterator[servers.Postgres]:
    bindir = servers.postgres_bin()
    if bindir is None:
        servers.require("PostgreSQL")
    pg = servers.Postgres(server_root / "pg", bindir)
    pg.init()
    pg.start()
    import psycopg

    pg.writer_password = secrets.token_urlsafe(12)  # type: ignore[attr-defined]
    pg.reader_password = secrets.token_urlsafe(12)  # type: ignore[attr-defined]
    with psycopg.connect(pg.dsn(), password=pg.password, autocommit=True) as c:
        c.execute(f"CREATE ROLE leakmon_writer LOGIN PASSWORD '{pg.writer_password}'")  # type: ignore[attr-defined]
        c.execute(f"CREATE ROLE leakmon_reader LOGIN PASSWORD '{pg.reader_password}'")  # type: ignore[attr-defined]
    yield pg
    pg.stop("immediate")


@pytest.fixture
def db(pg_cluster: servers.Postgres) -> Iterator[Db]:
    import psycopg

    from leakmon.fleet.pgstore import init_db

    name = f"t_{secrets.token_hex(4)}"
    with psycopg.connect(pg_cluster.dsn(), password=pg_cluster.password, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    init_db(pg_cluster.dsn("postgres", name), pg_cluster.password, "leakmon_writer", "leakmon_reader")
    yield Db(pg_cluster, name)
    with psycopg.connect(pg_cluster.dsn(), password=pg_cluster.password, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- processes -------------------------------------------------------------------------

@pytest.fixture
def procs(tmp_path: Path) -> Iterator[callable]:
    started: list[subprocess.Popen[str]] = []

    def start(name: str, args: list[str], env: dict[str, str], stdin_text: str = "") -> Proc:
        log_path = tmp_path / f"{name}-{len(started)}.log"
        f = open(log_path, "w")
        stdin_path = tmp_path / f"{name}-{len(started)}.stdin"
        stdin_path.write_text(stdin_text)
        p = subprocess.Popen(leakmon_cmd(*args), stdout=f, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **env}, cwd=tmp_path, stdin=open(stdin_path))
        started.append(p)
        return Proc(p, log_path)

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


