"""The in-memory cluster state equals the database after any sequence of writes, and after a restart.

A Hypothesis state machine drives the store's real write methods (the ones the server calls: environments, hosts,
agent reports, stacks, scale, slot plans, leftovers, IPs, reasons) plus writes that fail, on SQLite and on a real
PostgreSQL; after every step each table in memory is compared with a fresh read of the database, and the indexes
with indexes rebuilt from scratch. A "restart" loads a second state from the database and compares the two. The
views' environment state, derived at each step from the last one and what changed, equals one built from scratch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine

from corral.model import ids
from corral.model.entities import HostState, ObservedContainer, Orchestration
from corral.model.errors import Conflict, NotFound
from corral.model.stack import ContainerSlot, LaunchConfig, ServiceSpec, StackSpec
from corral.runtime.labels import CONTAINER as CONTAINER_LABEL
from corral.server.views.environment_state import Built, EnvironmentState
from corral.server.views.paging import dumps
from corral.server.views.stack_views import all_containers_json, service_view, slot_container_json
from corral.state import cluster
from corral.state.cluster import ClusterState
from corral.state.snapshot import EntityTable
from corral.store import journal, repository
from corral.store.database import migrate, open_engine
from corral.store.journal import TABLES
from corral.store.keyed import read_all, read_scope
from corral.store.repository import Store
from corral.store.stacks import StackStore
from corral.store.tables import Base, HostContainerRow, SlotRow

NAMES = st.sampled_from(["a", "b", "c"])
DOCKER_IDS = st.sampled_from(["d1", "d2", "d3", "d4"])
STATES = st.sampled_from(["running", "exited", "created"])


class Boom(Exception):
    pass


class Ids:
    """Ids that repeat from one example to the next: Hypothesis replays a case and must pick the same entities."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count:06d}"


def machine_for(engine: Engine, new_ids: Ids) -> type[RuleBasedStateMachine]:
    class StateMatchesStore(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            new_ids.count = 0
            with engine.begin() as connection:  # each example starts from an empty database
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
            self.store = Store(engine)
            self.stacks = StackStore(self.store)
            self.state = ClusterState(self.store)
            self.state.resync()
            self.views: dict[str | None, Built] = {}  # environment id -> the views' state made at the last step

        def pick(self, data: st.DataObject, kind: str) -> str | None:
            keys = sorted(str(k) for k in self.state.snapshot().tables[kind].rows)
            return data.draw(st.sampled_from(keys)) if keys else None

        @initialize()
        def populated(self) -> None:
            """Start from an environment with hosts, a stack and placed slots, so that most rules act."""
            environment = self.store.create_environment("env-0", Orchestration.CATTLE)
            hosts = [
                self.store.create_host(environment.id, f"h{i}", driver="custom", state=HostState.ACTIVE, labels={})
                for i in range(2)
            ]
            spec = StackSpec("st-0", (ServiceSpec("web", LaunchConfig(image="busybox"), scale=2),))
            self.stacks.create_stack(environment.id, spec, {})
            for service in self.stacks.list_services(environment_id=environment.id):
                slots = [
                    ContainerSlot(ids.new_id("c"), environment.id, "st-0", service.name, i, host.id, "hash0")
                    for i, host in enumerate(hosts)
                ]
                self.stacks.apply_slot_changes(service=service, add=slots)

        # -- environments and hosts ----------------------------------------------------------------------------

        @rule(name=NAMES)
        def create_environment(self, name: str) -> None:
            with contextlib.suppress(Conflict):
                self.store.create_environment(f"env-{name}", Orchestration.CATTLE)

        @rule(data=st.data())
        def delete_environment(self, data: st.DataObject) -> None:
            environment_id = self.pick(data, "environments")
            if environment_id is not None:
                self.store.delete_environment(environment_id)

        @rule(data=st.data(), name=NAMES)
        def create_host(self, data: st.DataObject, name: str) -> None:
            environment_id = self.pick(data, "environments")
            if environment_id is None:
                return
            with contextlib.suppress(Conflict):
                self.store.create_host(
                    environment_id, f"h-{name}", driver="custom", state=HostState.ACTIVE, labels={"n": name}
                )

        @rule(data=st.data(), state=st.sampled_from(list(HostState)), label=NAMES)
        def update_host(self, data: st.DataObject, state: HostState, label: str) -> None:
            host_id = self.pick(data, "hosts")
            if host_id is not None:
                self.store.update_host(host_id, state=state, labels={"zone": label}, last_seen=1.0)

        @rule(data=st.data())
        def delete_host(self, data: st.DataObject) -> None:
            host_id = self.pick(data, "hosts")
            if host_id is not None:
                self.store.delete_host(host_id)

        # -- what agents report --------------------------------------------------------------------------------

        def container(self, data: st.DataObject, docker_id: str) -> ObservedContainer:
            slot_id = self.pick(data, "slots") if data.draw(st.booleans()) else None
            labels = {CONTAINER_LABEL: slot_id} if slot_id else {}
            return ObservedContainer(docker_id, f"c-{docker_id}", "busybox", data.draw(STATES), labels=labels)

        @rule(data=st.data(), docker_ids=st.sets(DOCKER_IDS, max_size=3))
        def report_snapshot(self, data: st.DataObject, docker_ids: set[str]) -> None:
            host_id = self.pick(data, "hosts")
            if host_id is not None:
                containers = [self.container(data, d) for d in sorted(docker_ids)]
                self.store.replace_host_containers(host_id, containers)

        @rule(data=st.data(), docker_id=DOCKER_IDS)
        def report_container(self, data: st.DataObject, docker_id: str) -> None:
            host_id = self.pick(data, "hosts")
            if host_id is not None:
                self.store.upsert_host_container(host_id, self.container(data, docker_id))

        @rule(data=st.data(), docker_id=DOCKER_IDS)
        def remove_container(self, data: st.DataObject, docker_id: str) -> None:
            host_id = self.pick(data, "hosts")
            if host_id is not None:
                self.store.remove_host_container(host_id, docker_id)

        @rule(data=st.data())
        def engine_down(self, data: st.DataObject) -> None:
            host_id = self.pick(data, "hosts")
            if host_id is not None:
                self.store.mark_host_containers(host_id, state="unknown", status="engine down")

        # -- stacks, services, slots ---------------------------------------------------------------------------

        @rule(data=st.data(), name=NAMES, scales=st.lists(st.integers(0, 3), min_size=1, max_size=3))
        def create_stack(self, data: st.DataObject, name: str, scales: list[int]) -> None:
            environment_id = self.pick(data, "environments")
            if environment_id is None:
                return
            services = tuple(
                ServiceSpec(f"s{i}", LaunchConfig(image="busybox"), scale=scale) for i, scale in enumerate(scales)
            )
            with contextlib.suppress(Conflict):
                self.stacks.create_stack(environment_id, StackSpec(f"st-{name}", services), {})

        @rule(data=st.data())
        def delete_stack(self, data: st.DataObject) -> None:
            stack_id = self.pick(data, "stacks")
            if stack_id is not None:
                self.stacks.delete_stack(stack_id)

        @rule(data=st.data(), scale=st.integers(0, 5))
        def set_scale(self, data: st.DataObject, scale: int) -> None:
            service_id = self.pick(data, "services")
            if service_id is not None:
                self.stacks.set_scale(service_id, scale)

        @rule(data=st.data(), index=st.integers(0, 3))
        def place_slot(self, data: st.DataObject, index: int) -> None:
            service_id, host_id = self.pick(data, "services"), self.pick(data, "hosts")
            if service_id is None or host_id is None:
                return
            service = self.state.snapshot().get("services", service_id)
            slot = ContainerSlot(
                ids.new_id("c"), service.environment_id, service.stack, service.name, index, host_id, "hash1"
            )
            self.stacks.apply_slot_changes(service=service, add=[slot])

        @rule(data=st.data())
        def remove_slot(self, data: st.DataObject) -> None:
            slot_id = self.pick(data, "slots")
            if slot_id is not None:
                record = self.state.snapshot().get("slots", slot_id)
                service = self.state.snapshot().get("services", record.service_id)
                self.stacks.apply_slot_changes(service=service, remove=[slot_id])

        @rule(data=st.data(), address=st.sampled_from(["", "10.42.0.2"]), running=st.booleans(), reason=NAMES)
        def update_slot(self, data: st.DataObject, address: str, running: bool, reason: str) -> None:
            slot_id = self.pick(data, "slots")
            if slot_id is None:
                return
            self.stacks.set_slot_ips({slot_id: address})
            self.stacks.set_running([slot_id], running, start_requested_at=2.0)
            record = self.state.snapshot().get("slots", slot_id)
            self.stacks.set_slot_reason(record.slot.host_id, slot_id, f"because {reason}")
            self.stacks.set_slot_host_ports({slot_id: ((80, "tcp", 32768),)})

        @rule(data=st.data(), count=st.integers(1, 4), port=st.integers(32768, 32770))
        def address_slots(self, data: st.DataObject, count: int, port: int) -> None:
            """Several slots at once, as the IPAM and port passes store them (one bulk update each)."""
            picked = {self.pick(data, "slots") for _ in range(count)} - {None}
            self.stacks.set_slot_ips({str(slot_id): f"10.42.0.{port - 32760}" for slot_id in picked})
            self.stacks.set_slot_host_ports({str(slot_id): ((80, "tcp", port),) for slot_id in picked})

        @rule(data=st.data())
        def forget_leftover(self, data: st.DataObject) -> None:
            slot_id = self.pick(data, "leftovers")
            if slot_id is not None:
                self.stacks.forget_leftovers([slot_id])

        # -- writes that fail change nothing -------------------------------------------------------------------

        @rule()
        def missing_environment(self) -> None:
            with pytest.raises(NotFound):
                self.store.update_environment("env-nope", description="x")

        @rule(data=st.data())
        def rolled_back(self, data: st.DataObject) -> None:
            slot_id = self.pick(data, "slots")
            if slot_id is None:
                return
            with pytest.raises(Boom), self.store.session() as session:
                row = session.get(SlotRow, slot_id)
                assert row is not None
                row.reason = "never committed"
                session.flush()
                raise Boom

        @rule()
        def restart(self) -> None:
            before = self.state.snapshot()
            self.store = Store(engine)
            self.stacks = StackStore(self.store)
            self.state = ClusterState(self.store)
            self.state.resync()
            self.views = {}
            for kind in TABLES:
                assert dict(self.state.snapshot().tables[kind].rows) == dict(before.tables[kind].rows), kind

        @invariant()
        def derived_views_equal_built_ones(self) -> None:
            """The views' state made from the last one and the changes since equals one built from scratch."""
            snapshot = self.state.snapshot()
            for environment_id in [None, *(e.id for e in snapshot.environments())]:
                built = EnvironmentState.build(snapshot, environment_id)
                last = self.views.get(environment_id)
                derived = EnvironmentState.derived(self.state, last, snapshot, environment_id) if last else None
                if derived is not None:
                    assert dataclasses.replace(derived, now=0) == dataclasses.replace(built, now=0)
                    assert derived.slots_by_service == built.slots_by_service
                    assert derived.services_by_id == built.services_by_id
                    assert last is not None and derived.marks is not None and last.state.marks is not None
                    then = dataclasses.replace(last.state, now=derived.now)
                    for service in derived.services:  # an unchanged mark: the view is the same
                        if derived.marks[service.id] == last.state.marks.get(service.id):
                            assert service_view(service, derived) == service_view(service, then), service.name
                    fresh = dataclasses.replace(built, now=derived.now)
                    for service in derived.services:  # a view reused for its mark is the one made afresh
                        reused = dumps(service_view(service, derived, encoded=True))
                        assert reused == dumps(service_view(fresh.services_by_id[service.id], fresh, encoded=True))
                    every = all_containers_json(derived)  # the unpaged list from the services' views
                    if every is not None:
                        assert dumps(every) == dumps([slot_container_json(r, fresh) for r in fresh.slots])
                self.views[environment_id] = Built(derived or built, snapshot)

        @invariant()
        def memory_equals_database(self) -> None:
            snapshot = self.state.snapshot()
            with self.store.session() as session:
                for kind in TABLES:
                    table = snapshot.tables[kind]
                    assert dict(table.rows) == read_all(session, kind), kind
                    rebuilt = EntityTable.empty(kind).changed(dict(table.rows), ())
                    assert dict(table.indexes) == dict(rebuilt.indexes), kind

    return StateMatchesStore


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database: a SQLite file, then a database of the tests' PostgreSQL (tests/api/conftest.py)."""
    engine = open_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_memory_equals_database_after_any_writes(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    new_ids = Ids()
    monkeypatch.setattr(ids, "new_id", new_ids)
    run_state_machine_as_test(
        machine_for(engine, new_ids),
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


def test_snapshots_stay_as_they_were(engine: Engine) -> None:
    store = Store(engine)
    state = ClusterState(store)
    state.resync()
    environment = store.create_environment("frozen", Orchestration.CATTLE)
    before = state.snapshot()
    store.create_host(environment.id, "h1", driver="custom", state=HostState.ACTIVE, labels={})
    after = state.snapshot()
    assert before.hosts(environment.id) == []
    assert [h.name for h in after.hosts(environment.id)] == ["h1"]
    assert after.version > before.version
    changes = state.changes_since(before.version)
    assert changes is not None and set(changes) == {"hosts"}


@pytest.mark.parametrize("other_host", [False, True], ids=["same host", "other host"])
def test_a_report_delivered_after_a_later_one_leaves_memory_equal_to_the_database(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, other_host: bool
) -> None:
    """Commits may reach memory in another order than the database took them: here a report's delivery waits until
    a later report (of the same host, or of another) has committed and been delivered. A report of the same host
    overlapped it, so both are read again; a report of another host did not, so both are taken as written."""
    store = Store(engine)
    state = ClusterState(store)
    state.resync()
    environment = store.create_environment("busy", Orchestration.CATTLE)
    h1, h2 = (
        store.create_host(environment.id, name, driver="custom", state=HostState.ACTIVE, labels={}).id
        for name in ("h1", "h2")
    )
    first_committed, later_delivered = threading.Event(), threading.Event()
    reads: list[str] = []

    def held_delivery(session: Any) -> None:
        if threading.current_thread().name == "first-report":
            first_committed.set()
            assert later_delivered.wait(10)
        journal.deliver(session)

    def counted_read(session: Any, scope: Any) -> Any:
        reads.append(scope.kind)
        return read_scope(session, scope)

    monkeypatch.setattr(repository, "deliver", held_delivery)
    monkeypatch.setattr(cluster, "read_scope", counted_read)
    container = ObservedContainer(docker_id="d1", name="c1", image="busybox", state="created")
    first = threading.Thread(target=store.upsert_host_container, args=(h1, container), name="first-report")
    first.start()
    assert first_committed.wait(10)
    store.upsert_host_container(h2 if other_host else h1, dataclasses.replace(container, state="running"))
    later_delivered.set()
    first.join(10)
    with store.session() as session:
        assert dict(state.snapshot().tables["containers"].rows) == read_all(session, "containers")
    assert reads.count("containers") == (0 if other_host else 2)


def test_the_safety_net_warns_of_a_real_difference_but_not_of_a_commit_on_its_way(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full reload that reads the database while a commit waits to be applied finds that commit's rows differing
    from memory: no fault, noted quietly. A row memory never heard of (written around the store) is a fault."""
    store = Store(engine)
    state = ClusterState(store)
    state.resync()
    environment = store.create_environment("net", Orchestration.CATTLE)
    host_id = store.create_host(environment.id, "h1", driver="custom", state=HostState.ACTIVE, labels={}).id
    committed, reloaded = threading.Event(), threading.Event()

    def held_delivery(session: Any) -> None:
        if threading.current_thread().name == "report":
            committed.set()
            assert reloaded.wait(10)
        journal.deliver(session)

    monkeypatch.setattr(repository, "deliver", held_delivery)
    monkeypatch.setattr(cluster, "RESYNC_COST_FACTOR", 0.0)  # due whenever asked
    container = ObservedContainer(docker_id="d1", name="c1", image="busybox", state="running")
    report = threading.Thread(target=store.upsert_host_container, args=(host_id, container), name="report")
    report.start()
    try:
        assert committed.wait(10)
        with caplog.at_level("INFO", logger="corral.state"):
            assert state.resync_if_due(0.0)
    finally:
        reloaded.set()
        report.join(10)
    assert [r.levelname for r in caplog.records] == ["INFO"] and "1 containers" in caplog.records[0].getMessage()
    caplog.clear()
    with engine.begin() as connection:  # around the store: nothing tells memory
        connection.execute(SlotRow.__table__.delete())
        connection.execute(
            HostContainerRow.__table__.update().where(HostContainerRow.docker_id == "d1").values(state="exited")
        )
    with caplog.at_level("INFO", logger="corral.state"):
        assert state.resync_if_due(0.0)
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "1 containers" in caplog.records[0].getMessage()
    with store.session() as session:
        assert dict(state.snapshot().tables["containers"].rows) == read_all(session, "containers")
