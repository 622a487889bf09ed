"""The embedded default: the same tables as PostgreSQL in one SQLite file (standard
library), for one PC and no server. Times are t_us, integer microseconds since 1970.
INSERT OR IGNORE on the same keys keeps writes idempotent; WAL lets readers in while
`serve` writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leakmon.fleet import FleetError
from leakmon.fleet.ingest import Batch

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, gateway TEXT NOT NULL, info TEXT NOT NULL,
    updated_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS frames (node_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    t_us INTEGER NOT NULL, msg_type INTEGER NOT NULL, wire_seq INTEGER NOT NULL, historical INTEGER NOT NULL,
    frame BLOB NOT NULL, PRIMARY KEY (node_id, boot, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS estimates (node_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    channel INTEGER NOT NULL, t_us INTEGER NOT NULL, t_device_s REAL, pressure_pa REAL, temperature_k REAL,
    leak_rate_pa_per_s REAL, leak_rate_ci95_low_pa_per_s REAL, leak_rate_ci95_high_pa_per_s REAL,
    leak_rate_stderr_pa_per_s REAL, n_samples INTEGER, n_eff REAL, historical INTEGER NOT NULL,
    PRIMARY KEY (node_id, boot, seq, channel)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (node_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    channel INTEGER NOT NULL, t_us INTEGER NOT NULL, alarm_t_s REAL, onset_t_s REAL, leak_rate_pa_per_s REAL,
    false_alarm_spacing_s REAL, PRIMARY KEY (node_id, boot, seq, channel)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notes (node_id TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    t_us INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (node_id, boot, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS frames_t ON frames (t_us);
CREATE INDEX IF NOT EXISTS estimates_t ON estimates (t_us);
"""

_INSERT = {
    "frames": "INSERT OR IGNORE INTO frames VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "estimates": "INSERT OR IGNORE INTO estimates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "alarms": "INSERT OR IGNORE INTO alarms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "notes": "INSERT OR IGNORE INTO notes VALUES (?, ?, ?, ?, ?, ?, ?)",
}


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise FleetError(f"{self.path}: {e}") from e
        self.rows = 0

    def write(self, batch: Batch) -> None:
        try:
            with self._db:
                for table, rows in (("frames", batch.frames), ("estimates", batch.estimates),
                                    ("alarms", batch.alarms), ("notes", batch.notes)):
                    if rows:
                        self._db.executemany(_INSERT[table], rows)
                if batch.nodes:
                    self._db.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, strftime('%s','now') * 1000000)",
                                         [(n, g, i) for n, g, i, _ in batch.nodes.values()])
        except sqlite3.Error as e:
            raise FleetError(f"{self.path}: {e}") from e
        self.rows += len(batch)

    def close(self) -> None:
        self._db.close()
