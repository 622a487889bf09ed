"""`--site FILE` with a broken site: one line naming the file, the table and the key,
exit 1, from every command that takes a site (through the one site loader)."""

from __future__ import annotations

from pathlib import Path

import pytest
import wiregen
from leakmon.cli import main as cli
from leakmon.link.recording import KIND_RX, RecordingWriter

GOOD = """
name = "two"
[[segments]]
name = "a"
volume_m3 = 1.0
[[segments]]
name = "b"
volume_m3 = 2.0
[[hatches]]
name = "h1"
between = ["a", "b"]
[[sensors]]
chip = "BMP390"
bus = 0
addr = 0x77
segment = "a"
"""

BROKEN = {
    "unknown segment": (GOOD.replace('segment = "a"', 'segment = "zvezda"'), ["[[sensors]]", "segment", "zvezda"]),
    "inconsistent volume": (GOOD.replace("volume_m3 = 2.0", "volume_m3 = -2.0"), ["[[segments]]", "volume_m3"]),
    "sensor in no segment": (GOOD.replace('segment = "a"\n', ""), ["[[sensors]]", "segment"]),
    "unknown hatch side": (GOOD.replace('between = ["a", "b"]', 'between = ["a", "c"]'), ["[[hatches]]", "between"]),
}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "r.lkr"
    with RecordingWriter(path, {}) as w:
        w.write(wiregen.capture(60), KIND_RX)
    return path


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_site_is_one_line_naming_file_table_and_key(tmp_path, capsys, recording, case):
    text, needles = BROKEN[case]
    site = tmp_path / "site.toml"
    site.write_text(text)
    for argv in (["analyze", str(recording), "--site", str(site)],
                 ["plan", "--site", str(site), "--leak", "1"]):
        assert cli.main(argv) == 1, (case, argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) >= 1 and err[-1].startswith("leakmon: ") and str(site) in err[-1], err
        assert all(n in err[-1] for n in needles), (case, err[-1])
        assert not any("Traceback" in line for line in err)


def test_a_good_site_analyses(tmp_path, capsys, recording):
    site = tmp_path / "site.toml"
    site.write_text(GOOD)
    assert cli.main(["analyze", str(recording), "--site", str(site), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"segment": "a"' in out and '"segment": "b"' in out
