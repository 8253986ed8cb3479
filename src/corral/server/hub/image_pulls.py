"""`POST /v1/stacks/{id}/pull` (issue 18, `docker compose pull` / `rancher-compose pull`): ask the agents of the
hosts a stack's services may run on to pull their images now, and wait for every answer.

Why through the agents' `pull` request (agent/image_pulls.py) and not a second pull path: the agent pulls with the
same per-image table and timeouts as a container would, and with the credentials a container of the image gets
(only those of the registries the request's images come from, as `desired` sends them: model/registries.py).
The hosts are chosen by the pure `orchestrator/pull_targets.py`. Nothing is created or restarted, nothing stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from corral.model import protocol
from corral.model.entities import Host
from corral.model.errors import Unavailable
from corral.model.registries import RegistryCredential, credentials_needed
from corral.orchestrator.pull_targets import PullTarget, pull_targets
from corral.server.hub.hub import AgentHub
from corral.store.registries import RegistryStore
from corral.store.repository import Store
from corral.store.stacks import StackStore

WAIT_SECONDS = 600.0  # the longest a `corral pull` waits for a host's answer (the agent's own pull timeout)
NOT_CONNECTED = "host not connected"


class StackPulls:
    def __init__(
        self,
        store: Store,
        stacks: StackStore,
        hub: AgentHub,
        registries: RegistryStore,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self.store = store
        self.stacks = stacks
        self.hub = hub
        self.registries = registries
        self.wait_seconds = wait_seconds

    async def pull(self, stack_id: str, services: Sequence[str] | None) -> dict[str, Any]:
        stack = await run_in_threadpool(self.stacks.get_stack, stack_id)
        stack_services = await run_in_threadpool(lambda: self.stacks.list_services(stack_id=stack.id))
        slots = await run_in_threadpool(lambda: self.stacks.list_slots(environment_id=stack.environment_id))
        hosts = await run_in_threadpool(self.store.list_hosts, stack.environment_id, container_counts=False)
        targets, notes = pull_targets(stack_services, [s for s in slots if s.stack_id == stack.id], hosts, services)
        by_id = {h.id: h for h in hosts}
        credentials = await run_in_threadpool(self.registries.credentials, stack.environment_id) if targets else []
        per_host: dict[str, list[PullTarget]] = {}
        for target in targets:
            for host_id in target.host_ids:
                per_host.setdefault(host_id, []).append(target)
        answers = await asyncio.gather(
            *(self._ask(by_id[h], [t.image for t in ts], credentials) for h, ts in per_host.items() if h in by_id)
        )
        found = {host_id: answer for host_id, answer in zip([h for h in per_host if h in by_id], answers, strict=True)}
        results = []
        for target in targets:
            for host_id in target.host_ids:
                host = by_id.get(host_id)
                answer = found.get(host_id, {}).get(target.image) or {"status": "skipped", "reason": "host removed"}
                results.append(
                    {
                        "service": target.service,
                        "image": target.image,
                        "host_id": host_id,
                        "host": host.name if host is not None else host_id,
                        "status": answer.get("status", "failed"),
                        "id": answer.get("id", ""),
                        "reason": answer.get("reason", ""),
                    }
                )
        return {
            "stack_id": stack.id,
            "stack": stack.name,
            "results": results,
            "notes": [{"service": n.service, "note": n.note} for n in notes],
            "failed": sum(1 for r in results if r["status"] == "failed"),
        }

    async def _ask(
        self, host: Host, images: list[str], credentials: list[RegistryCredential]
    ) -> dict[str, dict[str, str]]:
        """One `pull` request to a host's agent: image -> {status, id, reason}."""
        images = list(dict.fromkeys(images))
        registries = [c.to_wire() for c in credentials_needed(images, credentials)]

        def every(status: str, reason: str) -> dict[str, dict[str, str]]:
            return {image: {"status": status, "id": "", "reason": reason} for image in images}

        if not self.hub.is_connected(host.id):
            return every("skipped", NOT_CONNECTED)
        try:
            stream = await self.hub.relay.open_stream(
                host.id, protocol.PULL, {"images": images, "registries": registries}
            )
        except Unavailable:
            return every("skipped", NOT_CONNECTED)
        try:
            async with asyncio.timeout(self.wait_seconds):
                while True:
                    message = await self.hub.relay.next_message(stream)
                    if message.type == protocol.END:
                        break
        except TimeoutError:
            return every("failed", f"the agent did not answer within {self.wait_seconds:.0f} s")
        finally:
            await self.hub.relay.close_stream(stream)
        return _read_answer(images, message.data)


def _read_answer(images: list[str], data: dict[str, Any]) -> dict[str, dict[str, str]]:
    error = data.get("error")
    raw = data.get("results")
    answered: dict[str, dict[str, str]] = {}
    if isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, dict) and isinstance(entry.get("image"), str):
                status = entry.get("status")
                answered[entry["image"]] = {
                    "status": status if status in ("pulled", "present", "failed") else "failed",
                    "id": str(entry.get("id") or "")[:300],
                    "reason": str(entry.get("reason") or "")[:2000],
                }
    status, reason = "failed", str(error) if error else "the agent did not answer for this image (an old agent?)"
    if raw is None and data.get("exit_code") is None and not data.get("refused"):  # the agent went meanwhile
        status, reason = "skipped", f"{NOT_CONNECTED} ({error})" if error else NOT_CONNECTED
    return {image: answered.get(image) or {"status": status, "id": "", "reason": reason} for image in images}
