"""Helpers of the fleet tests: run `leakmon` processes, and count what was stored."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import servers


@dataclass
class Db:
    pg: servers.Postgres
    name: str

    def url(self, role: str = "leakmon_writer") -> str:
        return self.pg.dsn(role, self.name)

    def password(self, role: str = "leakmon_writer") -> str:
        return {"leakmon_writer": self.pg.writer_password, "leakmon_reader": self.pg.reader_password,  # type: ignore[attr-defined]
                "postgres": self.pg.password}[role]

    def query(self, q: str, role: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(role), password=self.password(role), autocommit=True) as c:
            return c.execute(q).fetchall()


def leakmon_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "leakmon", *args]


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    log_path: Path

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, text: str, timeout_s: float = 20.0) -> None:
        assert wait_until(lambda: text in self.log or self.popen.poll() is not None, timeout_s) and text in self.log, \
            self.log

    def published(self) -> dict[str, int]:
        """Frames per node, from the gateway's last lines."""
        return {m[0]: int(m[1]) for m in re.findall(r"node (\S+): (\d+) frames", self.log)}


def gateway_args(broker: servers.Broker, user: str, nodes: list[str], spool: Path, *extra: str,
                 port: int | None = None) -> tuple[list[str], dict[str, str]]:
    # Resent after 3 s without serve's confirmation, not 10: a fault run's outage costs the
    # resend's wait at most once, and the resends (duplicates serve must drop) happen.
    args = ["gateway", "--broker", f"mqtt://{user}@127.0.0.1:{port or broker.port}", "--sim", str(len(nodes)),
            "--spool", str(spool), *[a for n in nodes for a in ("--node-id", n)], "--store-confirm-timeout", "3", *extra]
    return args, {"LEAKMON_MQTT_PASSWORD": broker.users[user]}


def serve_args(broker: servers.Broker, db: Db, *extra: str) -> tuple[list[str], dict[str, str]]:
    args = ["serve", "--broker", f"mqtt://serve@127.0.0.1:{broker.port}", "--db", db.url(), *extra]
    return args, {"LEAKMON_MQTT_PASSWORD": broker.users["serve"], "PGPASSWORD": db.password()}


def wait_until(pred, timeout_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every_s)
    return pred()


def frames_by_node(db: Db) -> dict[str, tuple[int, int, int, int]]:
    """node -> (rows, distinct (boot, seq), min seq, max seq) over its one boot."""
    rows = db.query("SELECT node_id, count(*), count(DISTINCT (boot, seq)), min(seq), max(seq), count(DISTINCT boot) "
                    "FROM leakmon.frames GROUP BY node_id")
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def assert_complete(db: Db, published: dict[str, int]) -> None:
    """Frames sent = frames stored, by sequence numbers: per node every seq from the
    first to the last once, and as many as the gateway published."""
    stored = frames_by_node(db)
    assert set(stored) == set(published), (stored, published)
    for node, n in published.items():
        rows, distinct, lo, hi = stored[node]
        assert rows == distinct == n == hi - lo + 1, (node, stored[node], n)


class CuttableProxy:
    """A TCP relay on loopback between a client and a server, whose network can be cut
    (every connection dropped, new ones refused) and restored on the same port."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.port = servers.free_port()
        self._socket = socket
        self._threading = threading
        self._conns: list = []
        self._listener = None
        self._lock = threading.Lock()
        self.restore()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(self._socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(self._socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        s = self._socket.socket()
        s.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self._listener = s
        self._threading.Thread(target=self._accept, args=(s,), daemon=True).start()


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 (openssl, which PostgreSQL's
    ssl-cert package brings): (ca.crt, server.crt, server.key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], cwd=folder, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=leakmon test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"
