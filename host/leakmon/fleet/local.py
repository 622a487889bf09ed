"""The embedded default's Outbox: the gateway's messages go straight into a store (SQLite),
through the same checks as a consumer's, with no broker in between."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from leakmon.fleet import ingest
from leakmon.fleet.consumer import RejectLog, Store


class LocalOutbox:
    def __init__(self, store: Store, flush_every_s: float = 0.5, batch_max: int = 5000,
                 log: Callable[[str], None] = print) -> None:
        self.store = store
        self.flush_every_s = flush_every_s
        self.batch_max = batch_max
        self.rejects = RejectLog(log)
        self._lock = threading.Lock()
        self._batch = ingest.Batch()
        self._n = 0
        self._last = time.monotonic()

    def put(self, topic: str, payload: bytes) -> None:
        with self._lock:
            ingest.add(self._batch, topic, payload)
            self._n += 1
            if self._n >= self.batch_max or time.monotonic() - self._last >= self.flush_every_s:
                self._flush()

    def put_retained(self, topic: str, payload: bytes) -> None:
        self.put(topic, payload)

    def _flush(self) -> None:
        b, self._batch, self._n = self._batch, ingest.Batch(), 0
        self._last = time.monotonic()
        self.store.write(b)
        self.rejects.add(b.rejected)

    def flush(self) -> None:
        with self._lock:
            self._flush()
