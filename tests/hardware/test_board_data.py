"""The pin maps in hardware/boards/ and the firmware's board profiles must agree."""

import ast
import tomllib
from pathlib import Path

import pytest
from conftest import FIRMWARE, ROOT

BOARDS = sorted((ROOT / "hardware" / "boards").glob("*.toml"))


def module_constants(path: Path) -> dict:
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def test_every_profile_has_a_pin_map_and_back():
    profiles = module_constants(FIRMWARE / "board.py")["PROFILES"]
    data = {tomllib.loads(p.read_text())["platform"]: tomllib.loads(p.read_text())["profile"] for p in BOARDS}
    hardware = {k: v for k, v in profiles.items() if k != "linux"}
    assert data == hardware


@pytest.mark.parametrize("path", BOARDS, ids=[p.stem for p in BOARDS])
def test_profile_pins_match_the_data(path):
    d = tomllib.loads(path.read_text())
    fw = module_constants(FIRMWARE / f"{d['profile']}.py")
    expected = tuple(
        (b["bus"], None if b.get("fixed_pins") else b["sda"], None if b.get("fixed_pins") else b["scl"], b["freq_hz"])
        for b in d["i2c"]
    )
    assert fw["BUSES"] == expected
    assert fw["LED"] == d["led"]
    assert all(0 < u["vid"] < 0x10000 and 0 < u["pid"] < 0x10000 for u in d["usb"])


def test_bom_lists_every_part_with_a_purpose():
    import csv

    rows = list(csv.DictReader((ROOT / "hardware" / "bom.csv").open()))
    assert rows and set(rows[0]) == {"part", "supplier", "supplier_part_number", "quantity", "purpose"}
    assert all(r["purpose"] and r["quantity"].isdigit() for r in rows)
