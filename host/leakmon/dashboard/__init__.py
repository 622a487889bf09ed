"""The web dashboard behind `leakmon dashboard`: a Starlette app that shows a live feed of
samples and leak updates (site overview, per-channel plots, alarms, notes, link health, a
public status page), with operators and viewers, run by uvicorn.

Layering: it sits beside leakmon.sim and leakmon.deploy, below the CLI. It takes its data
from a Feed (feed.py) that the command module builds: a node (--port, or the virtual board
of --sim opened by leakmon.cli.session), and later the fleet's database or broker.
"""
