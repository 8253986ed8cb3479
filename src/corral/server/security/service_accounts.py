"""Service accounts: containers labelled `io.rancher.container.create_agent: true` get credentials for their own
environment as environment variables, as Rancher's did (`CATTLE_URL`, `CATTLE_ACCESS_KEY`, `CATTLE_SECRET_KEY`,
and the same under `CORRAL_*` with the server's CA in `CORRAL_CA_FILE`, so the CLI works inside the container).

Why here and sent with the desired set: only the container's own host receives its secret, inside the container's
spec; it is never part of the service (the API, `corral inspect`) nor of the metadata service, which serves labels
and never environment variables. One key per container slot, created when the slot is first sent; its secret is
random (CSPRNG) and kept sealed (store/sealing.py) so that the same value is sent again; the key stops working the
moment its slot is gone (store/keys.py) and its row is removed by the next sweep. The role comes from the
`io.rancher.container.agent.role` label, restricted by default and never above it (model/access.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from corral.model import ids
from corral.model.access import service_account_role
from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec
from corral.store.access import AccessStore
from corral.store.sealing import Sealer

log = logging.getLogger("corral.server.service_accounts")
SWEEP_SECONDS = 30.0


class ServiceAccounts:
    def __init__(self, access: AccessStore, sealer: Sealer, url: Callable[[], str], ca_pem: str = "") -> None:
        self.access = access
        self.sealer = sealer
        self.url = url  # where containers reach the server (the agents' URL)
        self.ca_pem = ca_pem
        self._last_sweep = 0.0

    def inject(self, desired: dict[str, list[dict[str, Any]]]) -> None:
        """Add each labelled container's credentials to its launch environment: its entry in `desired` is replaced
        by a copy that has them (entries are shared between pushes and never changed)."""
        entries = [(host, i, e) for host in desired.values() for i, e in enumerate(host) if _labels(e)]
        wanted = []
        for host, index, entry in entries:
            try:
                role = service_account_role(_labels(entry))
            except InvalidInput as exc:
                log.warning("container %s: %s", entry["slot"].get("id"), exc.message)
                continue
            if role is not None:
                wanted.append((host, index, entry, role))
        if wanted:
            keys = self.access.service_keys()
            for host, index, entry, role in wanted:
                slot = entry["slot"]
                known = keys.get(slot["id"])
                if known is None:
                    secret = ids.new_secret()
                    access_key = self.access.create_service_key(
                        slot["id"], slot["environment_id"], role, secret, self.sealer.seal(secret)
                    )
                else:
                    access_key, secret = known[0], self.sealer.unseal(known[1])
                host[index] = {
                    **entry,
                    "launch": {**entry["launch"], "environment": self._environment(entry, access_key, secret)},
                }
        self.sweep()

    def sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            removed = self.access.delete_orphan_service_keys()
            if removed:
                log.info("removed %d service account keys of containers that are gone", removed)

    def _environment(self, entry: dict[str, Any], access_key: str, secret: str) -> list[list[str]]:
        url = self.url()
        injected = {
            "CATTLE_URL": f"{url}/v1",
            "CATTLE_ACCESS_KEY": access_key,
            "CATTLE_SECRET_KEY": secret,
            "CORRAL_URL": url,
            "CORRAL_ACCESS_KEY": access_key,
            "CORRAL_SECRET_KEY": secret,
            "CORRAL_ENVIRONMENT": str(entry["slot"]["environment_id"]),
        }
        if self.ca_pem:
            injected["CORRAL_CA_FILE"] = self.ca_pem
        own = {str(k): str(v) for k, v in entry["launch"].get("environment", []) if k not in injected}
        return [[k, v] for k, v in sorted({**own, **injected}.items())]


def check_service_accounts(spec: StackSpec) -> None:
    """Refuse, before anything is stored, a service asking for credentials with a role no container may hold."""
    for service in spec.services:
        try:
            service_account_role(dict(service.launch.labels))
        except InvalidInput as exc:
            raise InvalidInput(
                f"service {service.name}: {exc.message}", field=f"services.{service.name}.labels"
            ) from exc


def _labels(entry: dict[str, Any]) -> dict[str, str]:
    labels = entry.get("launch", {}).get("labels", ())
    pairs = labels.items() if isinstance(labels, dict) else labels
    return {str(k): str(v) for k, v in pairs}
