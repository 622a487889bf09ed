"""The topic scheme and the envelope every stored MQTT message carries.

Topics (docs/fleet.md):
    leakmon/<node_id>/frame       a wire frame as the node sent it          QoS 1
    leakmon/<node_id>/estimate    the live leak estimates of one frame      QoS 1
    leakmon/<node_id>/alarm       a leak onset alarm                        QoS 1
    leakmon/<node_id>/note        a hatch event or an operator note         QoS 1
    leakmon/<node_id>/info        node info, JSON                           retained
    leakmon/<node_id>/state       "online" / "offline", JSON                retained
    leakmon/<node_id>/handshake   its latest HELLO + CALIB frames, enveloped retained
                                  (what a live subscriber needs to decode frames)
    leakmon/gateway/<gw>/state    the gateway's birth/death (last will)     retained

The envelope says who sent a message and its key: (node_id, boot, seq) is unique per
frame, so a consumer stores each message once however often it arrives. The node id
inside is checked against the topic: a gateway may publish only under topics the broker's
ACL gives it, and the consumer refuses an envelope that names another node.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from leakmon.errors import ProtocolError

ROOT = "leakmon"
STORED_KINDS = ("frame", "estimate", "alarm", "note")
RETAINED_KINDS = ("info", "state", "handshake")
GATEWAY_LEVEL = "gateway"  # leakmon/gateway/<gw>/state: never a node id

# magic "LM", envelope version, flags, boot, seq, t_us (wall clock at the gateway), node id length
HEADER = struct.Struct("<2sBBqqqB")
MAGIC = b"LM"
VERSION = 1
FLAG_HISTORICAL = 0x01  # sent from the spool after an outage, not live
FLAGS_OFFSET = 3

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" would let a trailing newline in


def check_id(node_id: str, what: str = "node id") -> str:
    """A node or gateway id is one topic level: letters, digits, '_', '.', '-' (<= 64)."""
    if not _ID.fullmatch(node_id) or node_id == GATEWAY_LEVEL:
        raise ValueError(f"{what} {node_id!r}: use 1-64 letters, digits, '_', '.', '-' (and not {GATEWAY_LEVEL!r})")
    return node_id


def topic(node_id: str, kind: str) -> str:
    return f"{ROOT}/{node_id}/{kind}"


def gateway_state_topic(gateway_id: str) -> str:
    return f"{ROOT}/{GATEWAY_LEVEL}/{gateway_id}/state"


def parse_topic(t: str) -> tuple[str, str] | None:
    """(node_id, kind) of a leakmon/<node_id>/<kind> topic, or None for anything else."""
    parts = t.split("/")
    if len(parts) != 3 or parts[0] != ROOT or parts[1] == GATEWAY_LEVEL:
        return None
    if not _ID.fullmatch(parts[1]):
        return None
    return parts[1], parts[2]


@dataclass(frozen=True, slots=True)
class Envelope:
    node_id: str
    boot: int  # one continuous stream of a node as a gateway saw it (gateway clock, us)
    seq: int  # the node's frame sequence number, unwrapped within the boot
    t_us: int  # gateway wall clock when the frame arrived, us since 1970
    historical: bool
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProtocolError(f"node {self.node_id}: body is not JSON: {e}") from e


def pack(node_id: str, boot: int, seq: int, t_us: int, body: bytes, historical: bool = False) -> bytes:
    nid = node_id.encode()
    return HEADER.pack(MAGIC, VERSION, FLAG_HISTORICAL if historical else 0, boot, seq, t_us, len(nid)) + nid + body


def pack_json(node_id: str, boot: int, seq: int, t_us: int, obj: Any) -> bytes:
    return pack(node_id, boot, seq, t_us, json.dumps(obj, separators=(",", ":")).encode())


def unpack(payload: bytes) -> Envelope:
    if len(payload) < HEADER.size:
        raise ProtocolError(f"envelope of {len(payload)} bytes is shorter than its header")
    magic, version, flags, boot, seq, t_us, n = HEADER.unpack_from(payload, 0)
    if magic != MAGIC or version != VERSION:
        raise ProtocolError(f"not a leakmon v{VERSION} envelope (magic {magic!r}, version {version})")
    end = HEADER.size + n
    if len(payload) < end:
        raise ProtocolError("envelope node id runs past the end of the message")
    try:
        node_id = payload[HEADER.size:end].decode()
    except UnicodeDecodeError as e:
        raise ProtocolError("envelope node id is not UTF-8") from e
    return Envelope(node_id, boot, seq, t_us, bool(flags & FLAG_HISTORICAL), bytes(payload[end:]))


def mark_historical(payload: bytes) -> bytes:
    """The same envelope flagged as sent after an outage (the flag is not part of the key)."""
    b = bytearray(payload)
    b[FLAGS_OFFSET] |= FLAG_HISTORICAL
    return bytes(b)
