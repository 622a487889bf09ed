"""The node's side of the golden vectors: firmware/wire.py under real MicroPython."""

import json
from pathlib import Path

from conftest import VECTORS

HERE = Path(__file__).parent


def test_micropython_rebuilds_every_vector(run_mp):
    res = run_mp(HERE / "mp_wire_vectors.py", str(VECTORS))
    assert res.returncode == 0, res.stderr.decode() + res.stdout.decode()
    got = {d["name"]: d for d in map(json.loads, res.stdout.decode().splitlines())}
    vectors = json.loads(VECTORS.read_text())["vectors"]
    assert set(got) == {v["name"] for v in vectors}
    for v in vectors:
        g = got[v["name"]]
        assert g["frame"] == v["frame"], v["name"]
        assert g["sealed"] == v["frame"], v["name"]
        frame = bytes.fromhex(v["frame"])
        assert g["read"] == [v["type"], v["seq"], frame[8:-2].hex()], v["name"]
        if v["name"].startswith("cmd-"):  # v1.1: stuffed on the wire, unstuffed by the node
            assert g["sent"] == v["sent"], v["name"]
            assert g["read_wire"] == [v["type"], v["seq"], frame[8:-2].hex()], v["name"]


def test_micropython_crc_check_value(run_mp, tmp_path):
    # CRC-16/CCITT-FALSE check value over "123456789" is 0x29B1 (viper code path).
    script = tmp_path / "crc.py"
    script.write_text("import wire\nb = b'123456789'\nprint(hex(wire.crc16(b, 0, len(b))))\n")
    res = run_mp(script)
    assert res.stdout.decode().strip() == "0x29b1", res.stderr.decode()
