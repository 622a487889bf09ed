"""The leakmon command line: a table of commands, each a module in leakmon.cli.commands
with add_args(parser) and run(args).

Errors a user can meet become one line `leakmon: message` and exit status 1;
bad arguments exit 2 (argparse); Ctrl-C stops cleanly.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from leakmon import __version__
from leakmon.errors import LeakmonError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

# command name -> module in leakmon.cli.commands
COMMANDS = {
    "monitor": "monitor",
    "ports": "ports",
    "sim": "sim",
    "flash": "flash",
    "record": "record",
    "replay": "replay",
    "export": "export",
    "info": "info",
    "analyze": "analyze",
    "test": "test",
    "dashboard": "dashboard",
    "gateway": "gateway",
    "serve": "serve",
    "plan": "plan",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only` (a command name) just that command's arguments:
    a command module imports what its command needs (numpy, the analysis, the servers'
    clients), about 0.1-0.2 s of start-up for each one not run."""
    parser = argparse.ArgumentParser(prog="leakmon", description="Leak monitoring for pressurized volumes.")
    parser.add_argument("--version", action="version", version=f"leakmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name)  # named, so that argparse still knows every command
            continue
        mod = importlib.import_module(f"leakmon.cli.commands.{module}")
        mod.add_args(sub.add_parser(name, help=mod.HELP, description=mod.HELP))
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The command argv names (the top level takes no option with a value), if it is one;
    None for help asked before it (`leakmon -h monitor`: the whole list, with its help)."""
    for a in argv:
        if a in ("-h", "--help"):
            return None
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    mod = importlib.import_module(f"leakmon.cli.commands.{COMMANDS[args.command]}")
    try:
        status: int = mod.run(args)
        return status
    except LeakmonError as e:
        print(f"leakmon: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("leakmon: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
