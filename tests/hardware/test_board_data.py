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


def test_the_loader_reads_every_board_file():
    from leakmon.config.board import load_boards
    from leakmon.deploy.flash import board_profiles

    boards = load_boards()
    assert sorted(boards) == sorted(tomllib.loads(p.read_text())["name"] for p in BOARDS)
    assert {n: p.platform for n, p in board_profiles().items() if n != "sim"} == {n: b.platform for n, b in boards.items()}
    assert board_profiles()["pico"].usb[0] == (0x2E8A, 0x0005)


@pytest.mark.parametrize("edit, where, message", [
    (('profile = "board_rp2"', 'profile = "board_zx81"'), "(top level)", "'profile' = 'board_zx81' names no firmware module"),
    (("pid = 0x0005", "pid = 0x10005"), "[[usb]] #1", "'pid' must be < 65536, got 65541"),
    (("freq_hz = 400000", "freq_hz = 0"), "[[i2c]] #1", "'freq_hz' must be positive, got 0"),
    (("bus = 1", "bus = 0"), "[[i2c]] #2", "'bus' 0 is described twice"),
    (("led = \"LED\"", "led = 2.5"), "(top level)", "'led' must be an integer or a string, got 2.5"),
    (("watchdog_timeout_ms = 8000", "watchdog_timout_ms = 8000"), "(top level)", "unknown key 'watchdog_timout_ms'"),
    (("[[i2c]]\nbus = 0", "[[i2c]]\nbus = 0\nsdl = 4"), "[[i2c]] #1", "unknown key 'sdl' (allowed: bus, sda, scl"),
])
def test_a_broken_board_file_names_the_file_table_and_key(tmp_path, edit, where, message):
    from leakmon.config.board import load_boards
    from leakmon.errors import ConfigError

    text = (ROOT / "hardware" / "boards" / "pico.toml").read_text()
    assert edit[0] in text
    (tmp_path / "pico.toml").write_text(text.replace(*edit, 1))
    with pytest.raises(ConfigError) as e:
        load_boards(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "pico.toml") in msg and where in msg and message in msg, msg
