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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leakmon", description="Leak monitoring for pressurized volumes.")
    parser.add_argument("--version", action="version", version=f"leakmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"leakmon.cli.commands.{module}")
        mod.add_args(sub.add_parser(name, help=mod.HELP, description=mod.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
