"""The network pass builds each host's `network` message from parts shared by the environment (issue 15: the pass
was O(hosts²)); every agent must still receive exactly the bytes the per-host construction made. The reference here
is that construction as it was (`_Reference`), run side by side with the pass on random environments and changes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model import network_deltas, protocol
from corral.model.entities import Environment, Host, HostFacts, HostState, Orchestration
from corral.model.network import ContainerRecord, NetworkSettings, NetworkState, ServiceRecord
from corral.server.control import network_pass
from corral.server.control.network_pass import NetworkPass


@dataclasses.dataclass
class _Session:
    network_deltas: bool
    network_scope: bool = False


class _Hub:
    def __init__(self, sessions: dict[str, _Session]) -> None:
        self.sessions = sessions


class _Reads:
    """The in-memory state's reads the pass uses, over plain lists."""

    def __init__(self, envs: list[Environment], hosts: list[Host]) -> None:
        self.envs = {e.id: e for e in envs}
        self.hosts = hosts

    def list_hosts(self, environment_id: str | None = None, *, container_counts: bool = True) -> list[Host]:
        return [h for h in self.hosts if environment_id is None or h.environment_id == environment_id]

    def get_environment(self, environment_id: str) -> Environment:
        return self.envs[environment_id]


Parts = tuple[tuple[ContainerRecord, ...], tuple[ServiceRecord, ...], tuple[dict[str, Any], ...]]


class _Pass(NetworkPass):
    """The pass with its per-environment records given (their construction from slots is not what changed)."""

    def __init__(self, reads: _Reads, hub: _Hub, records: dict[str, Parts]) -> None:
        super().__init__(store=None, stacks=None, hub=hub, reads=reads)  # type: ignore[arg-type]
        self.records = records

    def _environment_parts(self, env: Environment, hosts: list[Host]) -> Parts:
        containers, services, _ = self.records[env.id]
        return containers, services, tuple(network_pass._host_record(h) for h in sorted(hosts, key=lambda h: h.id))


class _Reference(_Pass):
    """`states_for` and `encoded_states` as they were before the shared parts (the per-host construction)."""

    def states_for(self, host_ids: Iterable[str]) -> dict[str, NetworkState]:
        wanted = set(host_ids)
        hosts = [h for h in self.reads.list_hosts(container_counts=False) if h.id in wanted]
        states: dict[str, NetworkState] = {}
        for environment_id in {h.environment_id for h in hosts}:
            env = self.reads.get_environment(environment_id)
            env_hosts = [
                h
                for h in self.reads.list_hosts(environment_id, container_counts=False)
                if h.state is not HostState.PENDING
            ]
            shared = self._environment_parts(env, env_hosts)
            for host in env_hosts:
                if host.id in wanted:
                    states[host.id] = NetworkState(
                        environment_id=env.id,
                        environment=env.name,
                        settings=env.network,
                        host=network_pass._host_network(host, env.network),
                        peers=tuple(
                            network_pass._host_network(h, env.network)
                            for h in sorted(env_hosts, key=lambda h: h.id)
                            if h.id != host.id and h.overlay_slice and h.address
                        ),
                        containers=shared[0],
                        services=shared[1],
                        hosts=shared[2],
                    )
        return states

    def encoded_states(
        self, host_ids: Iterable[str], force_host: str | None = None
    ) -> dict[str, tuple[str, str, network_deltas.Held | None]]:
        encoded: dict[str, tuple[str, str, network_deltas.Held | None]] = {}
        shared_lists: dict[str, dict[str, list[dict[str, Any]]]] = {}
        shared_parts: dict[str, network_deltas.Sections] = {}
        shared_json: dict[str, str] = {}
        memo: network_deltas.Memo = {}
        for host_id, state in self.states_for(host_ids).items():
            shared = shared_parts.get(state.environment_id)
            if shared is None:
                lists = shared_lists[state.environment_id] = {
                    "containers": [dataclasses.asdict(c) for c in state.containers],
                    "services": [s.to_dict() for s in state.services],
                    "hosts": [dict(h) for h in state.hosts],
                }
                for entry in lists["containers"]:  # ContainerRecord.to_dict as it was (asdict)
                    for key in ("networks", "network_aliases", "internal"):
                        if not entry[key]:
                            del entry[key]
                shared = shared_parts[state.environment_id] = network_deltas.Parts.of(
                    {"environment_id": state.environment_id, "host": {}, **lists}
                ).sections
            session = self.hub.sessions.get(host_id)
            takes_deltas = session is not None and session.network_deltas
            own = {
                "environment_id": state.environment_id,
                "environment": state.environment,
                "settings": state.settings.to_dict(),
                "host": {**dataclasses.asdict(state.host), "gateway": state.host.gateway},
                "peers": [{**dataclasses.asdict(p), "gateway": p.gateway} for p in state.peers],
            }
            parts = network_deltas.Parts.of({**own, "containers": [], "services": [], "hosts": []})
            parts = network_deltas.Parts(parts.fixed, {**shared, "peers": parts.sections["peers"]})
            held = self._held.get(host_id) if takes_deltas and host_id != force_host else None
            if held is not None:
                delta = network_deltas.network_delta(held.parts, parts, memo)
                if delta is None:
                    continue
                version = next(self._versions)
                message = protocol.Message(protocol.NETWORK, {**delta, "base": held.version, "version": version})
                encoded[host_id] = ("", message.encode(), network_deltas.Held(version, parts))
                continue
            if state.environment_id not in shared_json:
                shared_json[state.environment_id] = json.dumps(shared_lists[state.environment_id], sort_keys=True)
            own_json = json.dumps(own, sort_keys=True)
            data = own_json[:-1] + ", " + shared_json[state.environment_id][1:]
            digest = hashlib.sha256(data.encode()).hexdigest()
            held_now = None
            if takes_deltas:
                held_now = network_deltas.Held(next(self._versions), parts)
                data = data[:-1] + f', "version": {held_now.version}}}'
            envelope = protocol.Message(protocol.NETWORK)
            text = json.dumps({"v": envelope.v, "type": envelope.type, "id": envelope.id, "data": None})
            encoded[host_id] = (digest, text[: -len("null}")] + data + "}", held_now)
        return encoded


# -- random environments ---------------------------------------------------------------------------------------------

_names = st.sampled_from(["web", "db", "lb", "cache", "api"])


@st.composite
def _container(draw: st.DrawFn, host_ids: list[str], slot: int) -> ContainerRecord:
    stack, service = draw(st.sampled_from(["s1", "s2"])), draw(_names)
    return ContainerRecord(
        slot_id=f"slot-{slot}",
        name=f"{stack}-{service}-{slot}",
        stack=stack,
        service=service,
        index=draw(st.integers(1, 4)),
        host_id=draw(st.sampled_from(host_ids)),
        ip=draw(st.sampled_from(["", f"10.42.0.{slot % 250 + 2}", f"10.42.1.{slot % 250 + 2}"])),
        running=draw(st.booleans()),
        healthy=draw(st.booleans()),
        primary=draw(st.sampled_from(["", "web"])),
        links=tuple(draw(st.lists(_names, max_size=2))),
        external_links=tuple(draw(st.lists(st.sampled_from(["s2/db", "s1/web:w"]), max_size=1))),
        networks=tuple(draw(st.lists(st.sampled_from(["front", "back"]), max_size=2, unique=True))),
        network_aliases=tuple(draw(st.lists(st.sampled_from([("front", "www"), ("back", "b")]), max_size=1))),
        internal=draw(st.booleans()),
    )


@st.composite
def _service(draw: st.DrawFn) -> ServiceRecord:
    return ServiceRecord(
        stack=draw(st.sampled_from(["s1", "s2"])),
        name=draw(_names),
        scale=draw(st.integers(0, 5)),
        image="corral/busybox",
        labels=draw(st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"]))),
        metadata=draw(st.dictionaries(st.sampled_from(["m"]), st.lists(st.integers(0, 3), max_size=2))),
        ports=tuple(draw(st.lists(st.sampled_from(["80/tcp", "8080:80/tcp"]), max_size=1))),
        virtual=draw(st.sampled_from([{}, {"hostname": "example.org"}])),
    )


@st.composite
def _host(draw: st.DrawFn, index: int, env_id: str) -> Host:
    return Host(
        id=f"host-{draw(st.integers(0, 99)):02d}{index:02d}",
        environment_id=env_id,
        name=f"h{index}",
        state=draw(st.sampled_from([HostState.ACTIVE, HostState.ACTIVE, HostState.PENDING, HostState.RECONNECTING])),
        state_reason="",
        driver="custom",
        address=draw(st.sampled_from(["", f"198.18.0.{index + 2}"])),
        labels=draw(st.dictionaries(st.sampled_from(["zone", "role"]), st.sampled_from(["a", "b"]))),
        facts=HostFacts(arch=draw(st.sampled_from(["x86_64", "aarch64"]))),
        overlay_slice=draw(st.sampled_from(["", f"10.42.{index}.0/24"])),
        overlay_key=draw(st.sampled_from(["", f"key{index}="])),
        overlay_port=draw(st.sampled_from([0, 51820])),
    )


@st.composite
def _environment(draw: st.DrawFn) -> tuple[list[Environment], list[Host], dict[str, Parts]]:
    envs = [
        Environment(
            id=f"env-{n}",
            name=f"e{n}",
            orchestration=Orchestration.CATTLE,
            description="",
            created_at=0.0,
            network=NetworkSettings(subnet="10.42.0.0/16", vni=n + 1, encryption=draw(st.booleans())),
        )
        for n in range(draw(st.integers(1, 2)))
    ]
    hosts = [draw(_host(i, draw(st.sampled_from(envs)).id)) for i in range(draw(st.integers(1, 7)))]
    records: dict[str, Parts] = {}
    for env in envs:
        host_ids = [h.id for h in hosts if h.environment_id == env.id] or ["host-gone"]
        containers = [draw(_container(host_ids, slot)) for slot in range(draw(st.integers(0, 8)))]
        services = {(s.stack, s.name): s for s in draw(st.lists(_service(), max_size=4))}
        records[env.id] = (
            tuple(sorted(containers, key=lambda c: (c.stack, c.service, c.index, c.slot_id))),
            tuple(sorted(services.values(), key=lambda s: (s.stack, s.name))),
            (),
        )
    return envs, hosts, records


@st.composite
def _changed(
    draw: st.DrawFn, world: tuple[list[Environment], list[Host], dict[str, Parts]]
) -> tuple[list[Environment], list[Host], dict[str, Parts]]:
    """Some changes between two passes: hosts gone or added, hosts' overlay entries and containers changed."""
    envs, hosts, records = world
    kept = [h for h in hosts if draw(st.integers(0, 5)) > 0]
    changed = [
        dataclasses.replace(
            h,
            overlay_slice=draw(st.sampled_from([h.overlay_slice, f"10.42.{50 + n}.0/24", ""])),
            address=draw(st.sampled_from([h.address, "198.18.9.9"])),
            overlay_key=draw(st.sampled_from([h.overlay_key, "rotated="])),
            state=draw(st.sampled_from([h.state, HostState.ACTIVE])),
        )
        for n, h in enumerate(kept)
    ]
    added = [draw(_host(20 + i, draw(st.sampled_from(envs)).id)) for i in range(draw(st.integers(0, 2)))]
    new_records: dict[str, Parts] = {}
    for env_id, (containers, services, _) in records.items():
        now = [
            dataclasses.replace(c, running=draw(st.booleans()), ip=draw(st.sampled_from([c.ip, "10.42.7.7"])))
            for c in containers
            if draw(st.integers(0, 4)) > 0
        ]
        ids = [h.id for h in changed + added if h.environment_id == env_id] or ["host-gone"]
        now += [draw(_container(ids, 100 + slot)) for slot in range(draw(st.integers(0, 3)))]
        new_records[env_id] = (
            tuple(sorted(now, key=lambda c: (c.stack, c.service, c.index, c.slot_id))),
            services if draw(st.booleans()) else services[1:],
            (),
        )
    return envs, changed + added, new_records


_ID = re.compile(r'^\{"v": \d+, "type": "network", "id": "[0-9a-f]+"')


def _same(ours: dict[str, tuple[str, str, network_deltas.Held | None]], theirs: dict[str, Any]) -> None:
    assert list(ours) == list(theirs)
    for host_id, (digest, text, held) in ours.items():
        ref_digest, ref_text, ref_held = theirs[host_id]
        assert digest == ref_digest
        assert _ID.sub("", text) == _ID.sub("", ref_text)  # the message id is random; every other byte is equal
        assert _ID.match(text)
        assert (held is None) == (ref_held is None)
        if held is not None and ref_held is not None:
            assert held.version == ref_held.version
            assert network_deltas.full_state(held.parts) == network_deltas.full_state(ref_held.parts)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_pass_sends_what_the_per_host_construction_sent(data: st.DataObject) -> None:
    world = data.draw(_environment())
    after = data.draw(_changed(world))
    every = sorted({h.id for h in world[1] + after[1]})
    sessions = {h: _Session(network_deltas=data.draw(st.booleans())) for h in every}
    ours, theirs = (cls(_Reads(world[0], world[1]), _Hub(sessions), world[2]) for cls in (_Pass, _Reference))
    wanted = data.draw(st.lists(st.sampled_from(every), unique=True, min_size=1))
    for step, (envs, hosts, records) in enumerate((world, after, after)):
        for one in (ours, theirs):
            one.reads, one.records = _Reads(envs, hosts), records
        force = data.draw(st.sampled_from([None, *wanted])) if step == 2 else None
        assert ours.states_for(wanted) == theirs.states_for(wanted)
        sent, expected = ours.encoded_states(wanted, force), theirs.encoded_states(wanted, force)
        _same(sent, expected)
        for one, outgoing in ((ours, sent), (theirs, expected)):  # as `push` records what it sent
            for host_id, (_, _, held) in outgoing.items():
                if held is not None:
                    one._held[host_id] = held


def test_excluding_is_everyone_but_one() -> None:
    everyone = {"a": {"host_id": "a"}, "b": {"host_id": "b"}, "c": {"host_id": "c"}}
    view = network_deltas.Excluding(everyone, "b")
    assert dict(view) == {"a": {"host_id": "a"}, "c": {"host_id": "c"}}
    assert len(view) == 2 and "b" not in view and view.get("b") is None
    assert len(network_deltas.Excluding(everyone, "z")) == 3


def test_peer_diff_is_shared_and_drops_the_own_entry() -> None:
    before = {"a": {"host_id": "a", "slice": "1"}, "b": {"host_id": "b", "slice": "2"}}
    after = {"a": {"host_id": "a", "slice": "9"}, "b": {"host_id": "b", "slice": "8"}, "c": {"host_id": "c"}}

    def parts(peers: Any) -> network_deltas.Parts:
        return network_deltas.Parts({"environment_id": "e", "host": {}}, {"peers": peers})

    memo: network_deltas.Memo = {}
    for own, others in (("a", ["b", "c"]), ("b", ["a", "c"]), ("c", ["a", "b"])):
        held, now = (network_deltas.Excluding(side, own) for side in (before, after))
        delta = network_deltas.network_delta(parts(held), parts(now), memo)
        plain = network_deltas.network_delta(parts(dict(held)), parts(dict(now)))
        assert delta == plain and delta is not None
        assert [e["host_id"] for e in delta["put"]["peers"]] == others
    assert (id(before), id(after)) in memo  # the environment's peers diffed once for all its hosts
