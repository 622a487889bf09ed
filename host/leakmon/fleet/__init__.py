"""leakmon as a fleet: gateways publish what their nodes send to an MQTT broker, and
`serve` stores it in PostgreSQL (or, with no server at all, in SQLite).

The design, the topic scheme and the database schema are in docs/fleet.md.
This package never imports the simulator or the CLI: a gateway is handed open nodes.
"""

from leakmon.errors import LeakmonError


class FleetError(LeakmonError):
    """A broker or database could not be reached, refused us, or was misconfigured."""


class AuthError(FleetError, PermissionError):
    """The broker or the database refused our credentials or a topic."""


def first_line(e: BaseException) -> str:
    """An error's first line, for a one-line message (a database error carries detail,
    context and positions after it); its type's name if it has no text."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


__all__ = ["AuthError", "FleetError", "first_line"]
