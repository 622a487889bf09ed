"""host/leakmon/wire/__init__.pyi types the shared wire module: it must name exactly what the
module defines (a constant added to firmware/wire.py must be added there too)."""

import ast
import inspect
from pathlib import Path

from leakmon.firmware import wire

STUB = Path(__file__).resolve().parents[2] / "host" / "leakmon" / "wire" / "__init__.pyi"


def test_stub_names_match_the_module():
    tree = ast.parse(STUB.read_text())
    stub = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stub.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub.add(node.target.id)
    stub -= {"Buffer"}
    module = {
        n for n in dir(wire)
        if not n.startswith("_") and not inspect.ismodule(v := getattr(wire, n))
        and not (callable(v) and getattr(v, "__module__", wire.__name__) != wire.__name__)  # imported helpers
    }
    assert stub == module, f"only in stub: {sorted(stub - module)}, only in module: {sorted(module - stub)}"
