"""The package keeps its layers (the import-linter contracts in pyproject.toml) and has
no import cycles between its modules."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("leakmon", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} <-> {imported}")
    assert not cycles, cycles


def test_a_command_imports_no_other_command() -> None:
    """`leakmon info ...` reads only info's module: each command module imports what its
    command needs, and the others' (numpy, the analysis, the servers' clients) cost start-up."""
    code = ("import sys\nfrom leakmon.cli.main import main\n"
            "try:\n    main(['info', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('leakmon.cli.commands.')), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "usage: leakmon info" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == "['leakmon.cli.commands.info']", r.stderr[-2000:]


def test_the_top_level_help_lists_every_command_with_its_help() -> None:
    for argv in (["--help"], ["-h", "analyze"]):  # help before a command is still the whole list
        r = subprocess.run([sys.executable, "-m", "leakmon", *argv], capture_output=True, text=True, timeout=60)
        _assert_lists_every_command(r)


def _assert_lists_every_command(r: subprocess.CompletedProcess[str]) -> None:
    from leakmon.cli.main import COMMANDS

    assert r.returncode == 0
    listed = {line.split()[0]: len(line.split()) > 1 for line in r.stdout.splitlines() if line.startswith("    ")
              and not line.startswith("     ")}  # "    name  help...", or the name alone when it is long
    assert set(listed) == set(COMMANDS)
    text = " ".join(r.stdout.split())
    for module in COMMANDS.values():
        help_text = importlib.import_module(f"leakmon.cli.commands.{module}").HELP
        assert " ".join(help_text.split()) in text, module
