"""Every leakmon error is a LeakmonError (the CLI's one-line handler catches it) and
also the builtin a caller who never heard of leakmon would catch."""

from __future__ import annotations

import pytest
from leakmon import errors
from leakmon.errors import (
    BoardError,
    CommandTimeoutError,
    ConfigError,
    HandshakeTimeoutError,
    LeakmonError,
    NotAtReplError,
    TransportError,
    TransportTimeoutError,
)

CAUGHT_BY = [
    (TransportError, ConnectionError),
    (TransportTimeoutError, TimeoutError),
    (TransportTimeoutError, ConnectionError),
    (HandshakeTimeoutError, TimeoutError),
    (CommandTimeoutError, TimeoutError),
    (ConfigError, ValueError),
    (NotAtReplError, ConnectionError),
    (BoardError, ConnectionError),
]


@pytest.mark.parametrize("cls, builtin", CAUGHT_BY, ids=[f"{c.__name__}-{b.__name__}" for c, b in CAUGHT_BY])
def test_caught_by_its_builtin_and_by_leakmon(cls, builtin):
    with pytest.raises(builtin) as e:
        raise cls("what happened")
    assert isinstance(e.value, LeakmonError) and str(e.value) == "what happened"


def test_every_error_is_a_leakmon_error_and_lives_in_errors():
    found = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException)]
    assert len(found) >= 14 and all(issubclass(c, LeakmonError) for c in found)


def test_errors_stay_importable_where_callers_import_them():
    from leakmon.deploy import flash, rawrepl
    from leakmon.link import recording

    assert rawrepl.BoardError is BoardError and rawrepl.NotAtReplError is NotAtReplError
    assert flash.FlashError is errors.FlashError and recording.RecordingError is errors.RecordingError


@pytest.mark.parametrize("text, errno", [
    ("Traceback (most recent call last):\n  File \"<stdin>\", line 2\nOSError: [Errno 28] ENOSPC\n", 28),
    ("OSError: 28\n", 28),
    ("Traceback:\nValueError: 28 is not a thing\n", None),
    ("", None),
])
def test_a_board_error_carries_the_boards_errno(text, errno):
    e = BoardError(text)
    assert e.errno == errno and e.text == text and "\n" not in str(e)
    assert isinstance(e, OSError)


def test_a_silent_node_is_a_timeout_and_a_port_that_will_not_open_a_connection_error(tmp_path):
    """What a program using leakmon sees, with only the builtins in its except clauses:
    a pyserial loopback echoes our commands and never answers them."""
    from leakmon import wire
    from leakmon.link.node import Node

    with Node.open("loop://") as node, pytest.raises(TimeoutError, match="within 0.2 s"):
        node.handshake(timeout_s=0.2)
    with Node.open("loop://") as node, pytest.raises(TimeoutError, match="no acknowledgement"):
        node.command(wire.C_INFO, timeout_s=0.2)
    with pytest.raises(ConnectionError, match="cannot open"):
        Node.open(str(tmp_path / "no-such-port"))


def test_a_port_hung_up_while_the_raw_repl_waits_is_a_lost_link():
    """A board unplugged between two reads of the raw REPL: pyserial's in_waiting raises
    EIO on the hung-up tty, which must reach the user as "link lost" (flash then repairs
    the copy next time), not as an OSError traceback (seen in CI, mid-paste)."""
    import os
    import pty
    import sys

    import serial
    from leakmon.deploy.rawrepl import RawRepl

    if not sys.platform.startswith("linux"):
        pytest.skip("a pty hang-up reads as EIO on Linux")
    master, slave = pty.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=0.05)
    try:
        os.close(master)  # the device goes away
        with pytest.raises(TransportError, match="link lost"):
            RawRepl(port).drain(0.1, 0.5)
    finally:
        port.close()
        os.close(slave)
