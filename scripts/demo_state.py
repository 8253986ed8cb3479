"""What `make demo` undoes on Ctrl-C: everything made through its server after it started, the README tour's
stacks, hosts, environments and tokens included, then (when the demo started the server) the local bridge.

Why a snapshot: the demo may reuse a server that was already running, with hosts and stacks of its own; only
what appeared after the snapshot is this run's to remove. Used by scripts/demo.sh:

    demo_state.py snapshot FILE   # ids of the environments, stacks, hosts and tokens there are now
    demo_state.py cleanup FILE    # remove what is not in FILE; say what is left and how to remove it
    demo_state.py bridge          # after the server stopped: remove the bridge and its rule if no host is left

It talks to the server with CORRAL_URL, CORRAL_ACCESS_KEY, CORRAL_SECRET_KEY and CORRAL_CA_FILE (admin.env).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from corral.client import CorralClient
from corral.config import load_settings
from corral.model.errors import CorralError
from corral.provision.local import LocalHostDriver


def _client() -> CorralClient:
    return CorralClient(
        os.environ["CORRAL_URL"],
        os.environ["CORRAL_ACCESS_KEY"],
        os.environ["CORRAL_SECRET_KEY"],
        ca=os.environ.get("CORRAL_CA_FILE") or None,
        timeout=120,
    )


def _state(client: CorralClient) -> dict[str, Any]:
    environments = client.list_environments()
    tokens = [
        t["id"] for env in environments for t in client.list_registration_tokens(env["id"]) if t["state"] == "active"
    ]
    return {
        "environments": {e["id"]: e["name"] for e in environments},
        "stacks": {s["id"]: s["name"] for s in client.stacks.list_all()},
        "hosts": {h["id"]: h["name"] for h in client.list_hosts()},
        "tokens": tokens,
    }


def snapshot(path: Path) -> None:
    with _client() as client:
        path.write_text(json.dumps(_state(client)))


def cleanup(path: Path) -> int:
    before = json.loads(path.read_text())
    failed: list[str] = []
    with _client() as client:
        now = _state(client)
        stacks = [(i, n) for i, n in now["stacks"].items() if i not in before["stacks"]]
        hosts = [(i, n) for i, n in now["hosts"].items() if i not in before["hosts"]]
        environments = [(i, n) for i, n in now["environments"].items() if i not in before["environments"]]
        tokens = [t for t in now["tokens"] if t not in before["tokens"]]
        if stacks:
            print(f"demo: removing the stacks this run created: {' '.join(n for _, n in stacks)}", flush=True)
        for stack_id, name in stacks:
            try:
                client.stacks.delete(stack_id)
            except CorralError as exc:
                failed.append(f"stack {name}: {exc.message} (remove it with: corral rm {name})")
        if hosts:
            print(f"demo: removing the hosts this run created: {' '.join(n for _, n in hosts)}", flush=True)
        with ThreadPoolExecutor(max_workers=4) as pool:  # each stops a dockerd and an agent: seconds apiece
            failed += [line for line in pool.map(lambda host: _remove_host(client, *host), hosts) if line]
        for token_id in tokens:
            with contextlib.suppress(CorralError):  # revoked or gone meanwhile
                client.delete_registration_token(token_id)
        if environments:
            print(f"demo: removing the environments this run created: {' '.join(n for _, n in environments)}")
        for env_id, name in environments:
            failed += _remove_environment(client, env_id, name)
        if tokens:
            print(f"demo: revoked the registration tokens this run created ({len(tokens)})", flush=True)
    for line in failed:
        print(f"demo: left {line}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def _remove_host(client: CorralClient, host_id: str, name: str) -> str:
    try:
        client.delete_host(host_id)
    except CorralError as exc:
        return f"host {name}: {exc.message} (remove it with: corral hosts rm {name})"
    return ""


def _remove_environment(client: CorralClient, env_id: str, name: str) -> list[str]:
    """An environment goes once its stacks are gone (their removal finishes in the background)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            client.delete_environment(env_id)
            return []
        except CorralError as exc:
            if time.monotonic() > deadline:
                return [f"environment {name}: {exc.message} (remove it with: corral env rm {name})"]
            time.sleep(1)


def bridge() -> int:
    """The local driver's bridge and FORWARD rule, when no local host is left (the server has stopped)."""
    settings = load_settings()
    driver = LocalHostDriver(
        root_dir=settings.local_hosts_dir,
        bridge=settings.local_bridge,
        subnet=settings.local_subnet,
        prefix=settings.local_prefix,
        image_patterns=[],
        source_docker_host=settings.docker_host,
    )
    left = [record.name for record in driver.records()]
    if left:
        print(
            f"demo: left the bridge {settings.local_bridge}: local hosts {' '.join(left)} are still there "
            f"(the next `make demo` brings them back; `corral hosts rm NAME` with the server running removes one)",
            flush=True,
        )
        return 0
    driver.cleanup_leftovers(remove_dead=True)
    driver.remove_bridge()
    print(f"demo: removed the bridge {settings.local_bridge} and its firewall rule", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["snapshot"] and len(argv) == 2:
        snapshot(Path(argv[1]))
        return 0
    if argv[:1] == ["cleanup"] and len(argv) == 2:
        return cleanup(Path(argv[1]))
    if argv == ["bridge"]:
        return bridge()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
