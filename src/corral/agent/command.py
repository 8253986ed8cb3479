"""`python -m corral agent ...`: the agent's own small command line, without the CLI.

Why not the `corral` CLI (`corral.entry`): the agent runs on every host for good, and importing the CLI, typer and
the HTTP client it never uses cost it about 11 MB of its resident memory (bench/agent_rss.py, P4). The options and
their defaults are those of `corral agent` in `corral.entry`, which stays the documented command (and `--help`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corral.agent.run import run_agent
from corral.config import load_settings
from corral.model.errors import CorralError
from corral.model.names import parse_label_pairs

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corral agent", description="Run the agent on this host.")
    p.add_argument("--url", required=True, help="Server URL, e.g. https://10.0.0.5:8080.")
    p.add_argument("--token", default=None, help="Join token CORRAL1-<digest>-<secret> (needed the first time only).")
    p.add_argument("--ca-digest", default=None, help="Trust the server whose CA has this digest (sha256:<hex>).")
    p.add_argument("--ca", type=Path, default=None, help="Trust the server whose certificate this CA file issued.")
    p.add_argument("--insecure", action="store_true", help="Allow an http:// server URL (no TLS).")
    p.add_argument("--state-dir", type=Path, default=None, help="Where the agent keeps its credentials.")
    p.add_argument("--docker-host", default=DEFAULT_DOCKER_HOST, help="Docker engine to drive.")
    p.add_argument("--label", action="append", default=[], help="Host label KEY=VALUE (repeatable).")
    p.add_argument("--name", default=None, help="Host name (default: this machine's hostname).")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = load_settings()
    try:
        labels = parse_label_pairs(args.label)
    except CorralError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return run_agent(
        url=args.url.rstrip("/"),
        token=args.token,
        state_dir=args.state_dir or settings.data_dir / "agent",
        docker_host=args.docker_host,
        labels=labels,
        name=args.name,
        settings=settings,
        ca_digest=args.ca_digest,
        ca_file=args.ca,
        insecure=args.insecure,
    )
