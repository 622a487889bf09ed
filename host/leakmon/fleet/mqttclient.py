"""One place that makes paho-mqtt clients and connects them, so the gateway and the
consumer agree on protocol, TLS, credentials and what a refusal means."""

from __future__ import annotations

import select
import socket
import ssl
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from leakmon.fleet import AuthError, FleetError
from leakmon.fleet.creds import BrokerAddress

KEEPALIVE_S = 15
# CONNACK codes (paho maps 3.1.1's 4 and 5 to MQTT 5's 134 and 135) that no retry cures.
_AUTH_CODES = {4: "bad user name or password", 5: "not authorized", 134: "bad user name or password",
               135: "not authorized"}


def make_client(addr: BrokerAddress, password: str | None, client_id: str, *, clean_session: bool,
                manual_ack: bool = False, ca_file: str | None = None, inflight: int = 1000) -> mqtt.Client:
    """MQTT 3.1.1 (every broker speaks it; $share works on Mosquitto, EMQX, VerneMQ, HiveMQ).
    clean_session=False keeps the session, and the messages queued for it, across a restart."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                    protocol=mqtt.MQTTv311, manual_ack=manual_ack)
    if addr.username is not None:
        c.username_pw_set(addr.username, password)
    if addr.tls:
        c.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    return c


def pump(c: mqtt.Client, timeout_s: float) -> mqtt.MQTTErrorCode:
    """Client.loop(timeout_s) as paho documents an external loop does it (socket(),
    want_write(), loop_read/loop_write/loop_misc): the same, less the socket pair that
    loop() opens to wake its select from other threads, which then costs two more system
    calls for every message published (a gateway publishes every frame of every node,
    always from the thread that pumps)."""
    sock = c.socket()
    if sock is None:
        return mqtt.MQTT_ERR_NO_CONN
    pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS bytes select cannot see
    # poll(2), not select(2): a gateway of many ports holds descriptors past 1024, where
    # select refuses the broker's socket (fleet/portloop.py).
    waiter = select.poll()
    try:
        waiter.register(sock, select.POLLIN | (select.POLLOUT if c.want_write() else 0))
        events = waiter.poll(0 if pending else round(timeout_s * 1000))
    except (OSError, ValueError, TypeError):  # closed under us: the connection is gone
        return mqtt.MQTT_ERR_CONN_LOST
    flags = 0
    for _, ev in events:
        flags |= ev
    readable = flags & (select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLNVAL)
    writable = flags & select.POLLOUT
    if readable or pending:
        rc = c.loop_read()
        if rc or c.socket() is None:
            return rc if rc else mqtt.MQTT_ERR_CONN_LOST
    if writable:
        rc = c.loop_write()
        if rc or c.socket() is None:
            return rc if rc else mqtt.MQTT_ERR_CONN_LOST
    return c.loop_misc()


def connect(c: mqtt.Client, addr: BrokerAddress, timeout_s: float = 5.0) -> None:
    """Connect and wait for the broker's answer, driving the client's loop in this thread.
    AuthError for a refusal of our credentials (retrying cannot help); FleetError when
    the broker cannot be reached (the caller retries)."""
    result: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        result["rc"] = rc

    c.on_connect = on_connect
    try:
        c.connect(addr.host, addr.port, keepalive=KEEPALIVE_S)
    except ssl.SSLCertVerificationError as e:  # the broker is not who it claims: retrying cannot help
        raise AuthError(f"the broker {addr} is not trusted: {e.verify_message or e} (--mqtt-ca names its CA)") from e
    except (OSError, socket.timeout, ssl.SSLError) as e:
        raise FleetError(f"cannot reach the broker {addr}: {e}") from e
    deadline = time.monotonic() + timeout_s
    while "rc" not in result and time.monotonic() < deadline:
        if pump(c, 0.05) != mqtt.MQTT_ERR_SUCCESS and "rc" not in result:
            raise FleetError(f"the broker {addr} closed the connection before answering")
    rc = result.get("rc")
    if rc is None:
        c.disconnect()
        raise FleetError(f"no answer from the broker {addr} within {timeout_s:g} s")
    code = rc.value if hasattr(rc, "value") else int(rc)
    if code == 0:
        return
    c.disconnect()
    if code in _AUTH_CODES:
        raise AuthError(f"the broker {addr} refused the connection: {_AUTH_CODES[code]} (check the user and password)")
    raise FleetError(f"the broker {addr} refused the connection: {rc}")
