"""The orchestrator plans an environment again only when something it plans from changed (or every
FULL_PASS_SECONDS): a large idle environment costs the others nothing per pass (issue 14: one stack with 10,000
services at scale 0 starved the server). Driven pass by pass, with the background loop stopped."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from corral.orchestrator import environment_plan
from corral.server.control import orchestration


def compose(*names: str, scale: int = 0) -> str:
    return "services:\n" + "".join(
        f"  {n}:\n    image: corral/busybox\n    command: [sleep, '1000']\n    scale: {scale}\n" for n in names
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_changed_environments_are_planned_again(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert api.post("/v1/environments", json={"name": "busy"}).status_code == 201
    for env, text in (("default", compose("a", "b", "c")), ("busy", compose("web"))):
        assert api.put("/v1/stacks", json={"environment": env, "name": "app", "compose": text}).status_code == 201
    orchestrator = api.app.state.orchestrator  # type: ignore[attr-defined]
    api.portal.call(orchestrator.stop)  # type: ignore[union-attr]
    planned: list[str] = []
    real = environment_plan.reconcile

    def counting(spec, **kwargs):  # type: ignore[no-untyped-def]
        planned.append(f"{kwargs['environment_id']}:{spec.name}")
        return real(spec, **kwargs)

    monkeypatch.setattr(environment_plan, "reconcile", counting)

    reads: list[int] = []
    snapshot = orchestrator._snapshot
    monkeypatch.setattr(orchestrator, "_snapshot", lambda: reads.append(1) or snapshot())

    def one_pass() -> list[str]:
        planned.clear()
        orchestrator._decide_and_store()
        return sorted(name.split(":")[1] for name in planned)

    one_pass()
    assert one_pass() == []  # nothing changed anywhere: no environment is planned
    reads.clear()
    assert one_pass() == [] and reads == []  # nor the store read, while nothing is written to it
    web = api.get("/v1/services", params={"environment": "busy"}).json()["data"][0]
    assert api.post(f"/v1/services/{web['id']}/scale", json={"scale": 1}).status_code == 200
    assert one_pass() == ["web"] and reads == [1]  # only the changed environment; it gets a reason (no host)
    assert api.get(f"/v1/services/{web['id']}").json()["reason"] != ""
    assert one_pass() == ["web"]  # the reason it stored is a change of its inputs
    assert one_pass() == []
    monkeypatch.setattr(orchestration, "FULL_PASS_SECONDS", -1.0)
    assert one_pass() == ["a", "b", "c", "web"]  # every environment is planned again now and then all the same
