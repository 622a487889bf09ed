"""The exception tree: every error leakmon raises on purpose is a LeakmonError."""


class LeakmonError(Exception):
    """Base of all leakmon errors; the CLI prints its message on one line."""


class TransportError(LeakmonError):
    """The link to the node could not be opened, or broke."""


class ProtocolError(LeakmonError):
    """The node sent something that does not follow the wire format."""


class HandshakeError(ProtocolError):
    """The node did not identify itself in time, or speaks another version."""


class CommandError(LeakmonError):
    """The node refused a command or did not acknowledge it in time."""


class ConfigError(LeakmonError):
    """A scenario, testbed or configuration file is missing or malformed."""


class SimulatorError(LeakmonError):
    """The virtual board could not be started or died."""
