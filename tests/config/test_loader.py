"""The loader's one-line errors, for each kind of mistake a model catches: the line
names the file, the table (with the entry number) and the key, and says what is allowed."""

from __future__ import annotations

import tomllib

import pytest
from leakmon.config.board import BoardFile
from leakmon.config.document import Document
from leakmon.config.loader import validate
from leakmon.errors import ConfigError


@pytest.mark.parametrize("text, line", [
    ("segments = 3", "f.toml (top level): 'segments' must be an array of tables ([[segments]])"),
    ("segments = [3]", "f.toml [[segments]] #1: this entry must be a table, got 3"),
    ("simulation = 3", "f.toml (top level): 'simulation' must be a table, got 3"),
    ('[[segments]]\nvolume_m3 = 1\n[[segments]]\nvolume_m3 = true',
     "f.toml [[segments]] #2: 'volume_m3' must be a finite number, got True"),
    ('[[segments]]\nvolume_m3 = 1\nwall = { period_s = -inf }', "f.toml [segments.wall] #1: 'period_s' must be a finite number"),
    ('[[hatches]]\nbetween = "a"', "f.toml [[hatches]] #1: 'between' must be an array"),
    ('[[hatches]]\nbetween = ["a", 2]', "f.toml [[hatches]] #1: 'between' entry #2 must be a string, got 2"),
    ('[[hatches]]\nbetween = ["a", "b"]\ninitially = true',
     "f.toml [[hatches]] #1: 'initially' must be a string or a number, got True"),
    ('[[sensors]]\nchip = "BMP390"\nbus = 1.0', "f.toml [[sensors]] #1: 'bus' must be an integer, got 1.0"),
    ('[[sensors]]\nchip = "BMP390"\nmux_channel = -1', "f.toml [[sensors]] #1: 'mux_channel' must be >= 0, got -1"),
    ('[[sensors]]\nchip = "bmp390"', "f.toml [[sensors]] #1: 'chip' = 'bmp390' is not one of BMP388, BMP390"),
    ("[[sensors]]\nbus = 0", "f.toml [[sensors]] #1: missing 'chip'"),
    ("[board]\nreset_at = 5", "f.toml [board]: unknown key 'reset_at' (allowed: reset_at_s, disconnect_at_s, disconnect_s)"),
])
def test_each_mistake_is_one_line(text, line):
    with pytest.raises(ConfigError) as e:
        validate(Document, tomllib.loads(text), "f.toml")
    assert str(e.value).startswith(line), str(e.value)
    assert "\n" not in str(e.value)


def test_a_typo_is_named_before_the_key_it_leaves_missing():
    with pytest.raises(ConfigError, match=r"\[\[segments\]\] #1: unknown key 'volum_m3'"):
        validate(Document, {"segments": [{"volum_m3": 1.0}]}, "f.toml")


def test_booleans_and_unions_in_a_board_file():
    base = {"name": "b", "platform": "rp2", "profile": "board_rp2", "led": 2, "watchdog_timeout_ms": 1,
            "i2c": [{"bus": 0, "sda": 4, "scl": 5, "freq_hz": 100000, "fixed_pins": "yes"}]}
    with pytest.raises(ConfigError, match=r"b.toml \[\[i2c\]\] #1: 'fixed_pins' must be true or false, got 'yes'"):
        validate(BoardFile, base, "b.toml")
