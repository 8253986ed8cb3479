"""One orchestrator pass stores an environment's plan in ONE transaction (orchestrator/environment_plan.py, then
`StackStore.apply_environment_plan`): the in-memory state (state/), which applies each commit as one change, never
holds the pass's placements without the service reasons decided with them; a commit that fails stores nothing, in the
database or in memory, and the next pass stores it all. Driven pass by pass, with the background loop stopped and the
address and port passes (still writes of their own) left out."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.config import Settings
from corral.state.cluster import Change
from corral.store import plan_writes
from corral.store import stacks as stack_store
from tests.api.test_plan_api import _hosts

COMPOSE = (
    "services:\n"
    "  web:\n    image: corral/busybox\n    ports: ['8080:80']\n"
    "  worker:\n    image: corral/busybox\n"
    "  idle:\n    image: corral/busybox\n"
)
RANCHER = "services:\n  web:\n    scale: 3\n  worker:\n    scale: 2\n  idle:\n    scale: 0\n"


class Boom(Exception):
    pass


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Agents that speak only when spoken to: a long heartbeat deadline keeps their hosts active meanwhile."""
    return Settings(data_dir=tmp_path, database_url=database_url, heartbeat_seconds=5.0, host_grace_seconds=60.0)


def _by_name(items: list[Any]) -> dict[str, Any]:
    return {s.name: s for s in items}


def test_one_pass_stores_placements_and_reasons_in_one_transaction(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    orchestrator = api.app.state.orchestrator  # type: ignore[attr-defined]
    api.portal.call(orchestrator.stop)  # type: ignore[union-attr]
    monkeypatch.setattr(orchestrator.network, "assign", lambda *args, **kwargs: None)
    monkeypatch.setattr(orchestrator.ports, "assign", lambda *args, **kwargs: None)
    cluster = orchestrator.reads.state
    with _hosts(api, ["h1", "h2"]):
        body = {"name": "shop", "compose": COMPOSE, "rancher_compose": RANCHER}
        assert api.put("/v1/stacks", json=body).status_code == 201
        seen: list[tuple[Change, Any]] = []
        cluster.listeners.append(lambda change: seen.append((change, cluster.snapshot())))

        # a commit that fails: nothing of the pass is stored, in the database or in memory
        real = stack_store.write_environment_plan

        def failing(*args: Any) -> None:
            real(*args)
            raise Boom

        monkeypatch.setattr(stack_store, "write_environment_plan", failing)
        with pytest.raises(Boom):
            orchestrator._decide_and_store()
        assert orchestrator.stacks.list_slots() == [] and cluster.snapshot().slots() == []
        assert all(s.reason == "" for s in orchestrator.stacks.list_services())
        assert not [change for change, _ in seen if {"slots", "services"} & set(change.keys)]
        monkeypatch.setattr(stack_store, "write_environment_plan", real)

        changed = orchestrator._decide_and_store()
        planned = [(change, snapshot) for change, snapshot in seen if {"slots", "services"} & set(change.keys)]
        assert len(planned) == 1  # one transaction: the slots of both services and the web's reason
        change, snapshot = planned[0]
        services = _by_name(snapshot.services())
        by_service = {name: [r for r in snapshot.slots() if r.service_id == s.id] for name, s in services.items()}
        assert len(by_service["web"]) == 2 and len(by_service["worker"]) == 2 and by_service["idle"] == []
        assert "8080/tcp" in services["web"].reason and services["worker"].reason == ""
        assert set(change.keys["slots"]) >= {r.slot.id for r in by_service["web"] + by_service["worker"]}
        assert sorted(s.name for s in changed) == ["web", "worker"]  # their events; `idle` did not change

        # the in-memory state learnt it as the database holds it
        assert sorted(r.slot.id for r in cluster.snapshot().slots()) == sorted(
            r.slot.id for r in orchestrator.stacks.list_slots()
        )
        stored = _by_name(orchestrator.stacks.list_services())
        assert {n: s.reason for n, s in stored.items()} == {n: s.reason for n, s in services.items()}

        seen.clear()  # nothing changed since: the next pass stores nothing
        assert orchestrator._decide_and_store() == []
        assert not [change for change, _ in seen if {"slots", "services"} & set(change.keys)]


def test_a_service_changed_during_the_pass_gets_none_of_its_stale_plan(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's command that lands between the pass's snapshot and its commit (a scale here; a rollback in the way an
    upgrade's step would overwrite) wins: that service's part of the plan is dropped, the others are stored, and the
    next pass plans it from what is stored."""
    orchestrator = api.app.state.orchestrator  # type: ignore[attr-defined]
    api.portal.call(orchestrator.stop)  # type: ignore[union-attr]
    with _hosts(api, ["h1", "h2"]):
        body = {"name": "shop", "compose": COMPOSE, "rancher_compose": RANCHER}
        assert api.put("/v1/stacks", json=body).status_code == 201
        web = next(s for s in api.get("/v1/services").json()["data"] if s["name"] == "web")
        real = orchestrator.stacks.apply_environment_plan

        def after_a_scale(plan: Any) -> None:
            assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": 1}).status_code == 200
            real(plan)

        monkeypatch.setattr(orchestrator.stacks, "apply_environment_plan", after_a_scale)
        orchestrator._decide_and_store()
        monkeypatch.setattr(orchestrator.stacks, "apply_environment_plan", real)
        services = _by_name(orchestrator.stacks.list_services())
        slots = orchestrator.stacks.list_slots()
        assert [r for r in slots if r.service_id == web["id"]] == [] and services["web"].reason == ""
        assert len([r for r in slots if r.service_id == services["worker"].id]) == 2

        orchestrator._decide_and_store()
        assert len(orchestrator.stacks.list_slots(service_id=web["id"])) == 1
        assert orchestrator.stacks.get_service(web["id"]).reason == ""


def test_a_rollback_landing_inside_the_pass_transaction_is_not_overwritten(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass checks that a service is stored as it planned from, then writes: a rollback committed between the
    two would be overwritten by the upgrade's next step (an acknowledged rollback lost). The check locks the rows,
    so the rollback waits for the pass's commit and lands after it."""
    orchestrator = api.app.state.orchestrator  # type: ignore[attr-defined]
    api.portal.call(orchestrator.stop)  # type: ignore[union-attr]
    compose = "services:\n  web:\n    image: corral/busybox\n    environment:\n      V: '1'\n"
    assert api.put("/v1/stacks", json={"name": "shop", "compose": compose}).status_code == 201
    body = {"name": "shop", "compose": compose.replace("'1'", "'2'"), "upgrade": {"start_first": True}}
    assert api.put("/v1/stacks", json=body).status_code == 200
    web = orchestrator.stacks.list_services()[0]
    assert web.state == "upgrading"
    real = plan_writes._as_planned
    landed: list[BaseException | None] = []

    def rollback() -> None:
        try:
            orchestrator.stacks.rollback_upgrade(web.id, 60.0)
            landed.append(None)
        except BaseException as exc:  # handed to the test's thread
            landed.append(exc)

    def with_a_rollback_meanwhile(*args: Any) -> set[str]:
        current = real(*args)
        racer.start()
        racer.join(timeout=0.5)  # it commits now unless the check holds the rows
        return current

    racer = threading.Thread(target=rollback)
    monkeypatch.setattr(plan_writes, "_as_planned", with_a_rollback_meanwhile)
    orchestrator._decide_and_store()
    racer.join(timeout=30)
    assert landed == [None]
    assert orchestrator.stacks.get_service(web.id).state == "rolling-back"
    assert orchestrator.reads.state.snapshot().get("services", web.id).state == "rolling-back"


def test_a_pass_plans_only_the_services_whose_inputs_changed(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Incremental passes: a service a pass planned nothing for is left out of the next ones until its row, slots,
    their reports or the hosts change (the views' marks); a scale plans that service, not the quiet ones. The web
    has an index it cannot place (one host port, two hosts): never quiet, planned every pass."""
    orchestrator = api.app.state.orchestrator  # type: ignore[attr-defined]
    api.portal.call(orchestrator.stop)  # type: ignore[union-attr]
    monkeypatch.setattr(orchestrator.network, "assign", lambda *args, **kwargs: None)
    monkeypatch.setattr(orchestrator.ports, "assign", lambda *args, **kwargs: None)
    real = orchestrator.stacks.apply_environment_plan
    planned: list[set[str]] = []

    def recording(plan: Any) -> None:
        planned.append({part.service.name for part in plan.services})
        real(plan)

    monkeypatch.setattr(orchestrator.stacks, "apply_environment_plan", recording)
    with _hosts(api, ["h1", "h2"]):
        body = {"name": "shop", "compose": COMPOSE, "rancher_compose": RANCHER}
        assert api.put("/v1/stacks", json=body).status_code == 201
        orchestrator._decide_and_store()  # places web and worker; idle (scale 0) gets nothing: quiet
        orchestrator._decide_and_store()  # plans nothing for the worker: quiet too
        assert planned == [{"web", "worker", "idle"}, {"web", "worker"}]
        idle = _by_name(orchestrator.stacks.list_services())["idle"]
        assert api.post(f"/v1/services/{idle.id}/scale", json={"scale": 1}).status_code == 200
        planned.clear()
        orchestrator._decide_and_store()
        assert planned == [{"web", "idle"}]
        assert len(orchestrator.stacks.list_slots(service_id=idle.id)) == 1

        host = api.get("/v1/hosts").json()["data"][0]  # a host's change: every service is planned again
        assert api.post(f"/v1/hosts/{host['id']}/deactivate").status_code == 200
        planned.clear()
        orchestrator._decide_and_store()
        assert planned == [{"web", "worker", "idle"}]
