"""The exception tree: every error leakmon raises on purpose is a LeakmonError.

Each also inherits the builtin a caller who never heard of leakmon would catch, as
python-can's CanTimeoutError(CanError, TimeoutError) and pyserial's
SerialException(IOError) do: a broken link is a ConnectionError, a deadline that
passed a TimeoutError, a bad file a ValueError. The CLI prints any of them on one line.
RecordingError has no builtin parent: it means both "cannot write" (an OSError) and
"not a recording" (a ValueError), and either parent would make a caller's handler for
the other take it.
"""

from __future__ import annotations

import re


class LeakmonError(Exception):
    """Base of all leakmon errors; the CLI prints its message on one line."""


class TransportError(LeakmonError, ConnectionError):
    """The link to the node could not be opened, or broke."""


class TransportTimeoutError(TransportError, TimeoutError):
    """The link is open but the other end did not answer within its deadline."""


class ProtocolError(LeakmonError):
    """The node sent something that does not follow the wire format."""


class HandshakeError(ProtocolError):
    """The node did not identify itself in time, or speaks another version."""


class HandshakeTimeoutError(HandshakeError, TimeoutError):
    """No HELLO from the node within the deadline."""


class CommandError(LeakmonError):
    """The node refused a command or did not acknowledge it in time."""


class CommandTimeoutError(CommandError, TimeoutError):
    """The node did not acknowledge a command within the deadline."""


class ConfigError(LeakmonError, ValueError):
    """A scenario, site, recipe, board or configuration file is missing or malformed."""


class SimulatorError(LeakmonError):
    """The virtual board could not be started or died."""


class RecordingError(LeakmonError):
    """A recording cannot be written, or a file is not a readable leakmon recording."""


class FlashError(LeakmonError):
    """Deploying the firmware failed (flash full, verification, versions)."""


class NotAtReplError(TransportError):
    """The board did not answer Ctrl-C / Ctrl-A like a MicroPython REPL."""


class BoardError(TransportError):
    """Code run on the board raised; .text is the board's traceback, .errno the errno
    of an OSError raised there ("OSError: [Errno 28] ..." or "OSError: 28"), else None."""

    def __init__(self, text: str) -> None:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        super().__init__(lines[-1] if lines else "error on the board")
        self.text = text
        m = re.search(r"\d+", lines[-1]) if lines and lines[-1].startswith("OSError") else None
        self.errno = int(m.group(0)) if m else None
