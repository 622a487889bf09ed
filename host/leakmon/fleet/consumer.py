"""`serve`'s side of the broker: a member of a shared subscription that stores what it
is handed and acknowledges each message only after the database committed it.

At-least-once, end to end: a persistent session (clean_session false, a fixed client
id) keeps on the broker what was handed to this member and not acknowledged. If the
member dies (kill -9), Mosquitto does NOT give those messages to the other members of
the group; they wait in the dead member's session and are delivered again when a member
with the same client id connects. So each instance has a fixed id (--client-id) and
is restarted by its supervisor. Redeliveries and replays are harmless: rows are keyed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from leakmon.fleet import AuthError, FleetError, envelope, ingest
from leakmon.fleet.creds import BrokerAddress
from leakmon.fleet.mqttclient import connect, make_client, pump

RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0


class Store(Protocol):
    rows: int

    def write(self, batch: ingest.Batch) -> None: ...

    def close(self) -> None: ...


def _printable(text: str) -> str:
    """One log line whatever a sender put in: control characters escaped."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class RejectLog:
    """Refusals logged once per reason (with counts later), so a flood cannot fill a disk.

    A reason may carry text a sender chose (a forged node id, a position in bad JSON), so
    a flood of different ones is bounded too: at most MAX_REASONS are kept and logged, each
    cut to REASON_CHARS; any further reason is counted under OTHER."""

    MAX_REASONS = 256
    REASON_CHARS = 200
    OTHER = "(further reasons, not logged one by one)"

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.counts: Counter[str] = Counter()

    def add(self, rejected: Counter[str]) -> None:
        for reason, n in rejected.items():
            reason = _printable(reason)  # escaped first, so that the cut bounds what is logged
            reason = reason if len(reason) <= self.REASON_CHARS else reason[:self.REASON_CHARS - 3] + "..."
            if reason not in self.counts:
                if len(self.counts) >= self.MAX_REASONS:
                    if self.OTHER not in self.counts:
                        self.log(f"refused: more than {self.MAX_REASONS} different reasons; "
                                 "further ones are only counted")
                    reason = self.OTHER
                else:
                    self.log(f"refused: {reason}")
            self.counts[reason] += n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def write_retrying(store: Store, batch: ingest.Batch, stop: threading.Event, log: Callable[[str], None],
                   idle: Callable[[float], None] = time.sleep) -> bool:
    """Write a batch until it is stored (True) or stop is set (False); idle(s) keeps other
    things alive meanwhile (the MQTT session's keepalive)."""
    delay = RETRY_MIN_S
    warned = False
    while True:
        try:
            store.write(batch)
            if warned:
                log("database back")
            return True
        except AuthError:
            raise
        except FleetError as e:
            if not warned:
                log(f"{e}; retrying")
                warned = True
        if stop.is_set():
            return False
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            idle(min(0.05, delay))
        delay = min(delay * 2, RETRY_MAX_S)


class Consumer:
    def __init__(self, addr: BrokerAddress, password: str | None, client_id: str, group: str, store: Store, *,
                 ca_file: str | None = None, batch_max: int = 2000, batch_age_s: float = 0.1,
                 log: Callable[[str], None] = print) -> None:
        self.addr = addr
        self._password = password
        self.client_id = client_id
        self.group = envelope.check_id(group, "group")
        self.store = store
        self.ca_file = ca_file
        self.batch_max = batch_max
        self.batch_age_s = batch_age_s
        self.log = log
        self.rejects = RejectLog(log)
        self.messages = 0

    def subscriptions(self) -> list[tuple[str, int]]:
        shared = [(f"$share/{self.group}/{envelope.topic('+', k)}", 1) for k in envelope.STORED_KINDS]
        return [*shared, (envelope.topic("+", "info"), 1)]  # retained info: every member upserts it

    def run(self, stop: threading.Event) -> None:
        delay = RETRY_MIN_S
        while not stop.is_set():
            c = make_client(self.addr, self._password, self.client_id, clean_session=False, manual_ack=True,
                            ca_file=self.ca_file, inflight=self.batch_max)
            try:
                connect(c, self.addr)
            except AuthError:
                raise
            except FleetError as e:
                self.log(f"{e}; retrying")
                stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_MIN_S
            self._session(c, stop)

    def _session(self, c: mqtt.Client, stop: threading.Event) -> None:
        batch = ingest.Batch()
        acks: list[tuple[int, int]] = []
        first_at = 0.0
        lost = False

        def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            nonlocal first_at
            if not acks:
                first_at = time.monotonic()
            ingest.add(batch, msg.topic, bytes(msg.payload))
            acks.append((msg.mid, msg.qos))

        def idle(s: float) -> None:
            nonlocal lost
            # pump() reads about one packet per call; loop_read() then takes whatever else is
            # already in the socket (up to a batch), 3x the throughput of loop() alone.
            if not lost and (pump(c, s) != mqtt.MQTT_ERR_SUCCESS
                             or c.loop_read(max_packets=self.batch_max) != mqtt.MQTT_ERR_SUCCESS):
                lost = True

        def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any = None) -> None:
            if any(getattr(rc, "is_failure", False) for rc in rcs):
                self.log(f"the broker refused a subscription: {[str(rc) for rc in rcs]}")
            else:
                self.log(f"subscribed to {self.addr} as {self.client_id}")

        c.on_message = on_message
        c.on_subscribe = on_subscribe
        c.subscribe(self.subscriptions())
        while not stop.is_set() and not lost:
            before = len(acks)
            idle(0.01)
            # Write when the batch is full, old, or nothing more came: the broker sends at most
            # max_inflight_messages before our acks, so waiting longer only idles both.
            quiet = len(acks) == before
            if acks and (quiet or len(acks) >= self.batch_max or time.monotonic() - first_at >= self.batch_age_s):
                b, a = batch, acks
                batch, acks = ingest.Batch(), []
                if not write_retrying(self.store, b, stop, self.log, idle):
                    break
                self.rejects.add(b.rejected)
                self.messages += len(a)
                if lost:  # the broker redelivers to this session; they are stored already
                    break
                for mid, qos in a:
                    if qos:
                        c.ack(mid, qos)
                # QoS 0: a lost confirmation costs one resend from the gateway's spool, and
                # QoS 1 would cost a PUBACK per node per batch (paho scans its queue on each).
                for topic, payload in ingest.confirmations(b):
                    c.publish(topic, payload, qos=0)
        if lost:
            self.log(f"lost the broker {self.addr}; reconnecting")
        else:
            pump(c, 0.05)
            c.disconnect()
