"""A gateway of many ports raises its open-files limit to what they need, or refuses in one
line before it opens anything (each port holds about five descriptors; the usual soft
limit, 1024, holds ~130 ports). Run in child processes: a limit is the process's own."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

LEAKMON = str(Path(sys.executable).with_name("leakmon"))


def limited(soft: int, hard: int):  # type: ignore[no-untyped-def]
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_to_what_the_ports_need():
    code = ("import argparse, resource\n"
            "from leakmon.cli.fleetsources import make_room_for_nodes\n"
            "make_room_for_nodes(argparse.Namespace(port=['p'] * 300, usb=[], sim=0))\n"
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2700:
        assert os.geteuid() == 0, "this account's hard limit is too low for the test"
        hard = 4096  # root may raise it
    out = subprocess.run([sys.executable, "-c", code], preexec_fn=limited(1024, hard), capture_output=True,
                         text=True, timeout=60, check=True)
    assert int(out.stdout) >= 300 * 8


def test_a_hard_limit_too_low_is_refused_in_one_line_before_anything_opens(tmp_path):
    ports = []
    for k in range(200):  # real ports that exist: a refusal must come first, not a failure to open them
        ports += ["--port", f"loop://#{k}"]
    env = dict(os.environ, LEAKMON_MQTT_PASSWORD="x" * 16)
    cmd = [LEAKMON, "gateway", "--broker", "mqtt://gw@127.0.0.1:9", "--spool", str(tmp_path / "sp"), *ports]
    out = subprocess.run(cmd, preexec_fn=limited(512, 512), env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "200 nodes need about 1856 open files" in lines[0] and "512" in lines[0]
    assert "Traceback" not in out.stderr
