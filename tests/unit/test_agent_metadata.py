"""The metadata service: the tree and key walk (pure), and the HTTP server on a real loopback socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from corral.agent.metadata import MetadataServer
from corral.agent.metadata_tree import MetadataIndex, text_of
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord

WEB_IP = "10.42.1.5"
DB_IP = "10.42.2.7"


def _state() -> NetworkState:
    host = HostNetwork("h1", "alpha", "198.18.0.11", "10.42.1.0/24")
    peer = HostNetwork("h2", "beta", "198.18.0.12", "10.42.2.0/24")
    return NetworkState(
        environment_id="e1",
        environment="Default",
        settings=NetworkSettings(),
        host=host,
        peers=(peer,),
        containers=(
            ContainerRecord("c1", "shop-web-1", "shop", "web", 1, "h1", WEB_IP, True, True),
            ContainerRecord("c2", "shop-web-2", "shop", "web", 2, "h2", "10.42.2.8", True, False),
            ContainerRecord("c3", "shop-db-1", "shop", "db", 1, "h2", DB_IP, True, True, links=("web:front",)),
        ),
        services=(
            ServiceRecord(
                "shop",
                "web",
                2,
                image="corral/busybox:latest",
                labels={"io.rancher.x": "1"},
                metadata={"greeting": "hello", "nested": {"list": [1, "two"], "flag": True}},
                ports=("49200:80/tcp",),
            ),
            ServiceRecord("shop", "db", 1),
        ),
        hosts=({"host_id": "h1", "name": "alpha", "address": "198.18.0.11", "labels": {"zone": "a"}},),
    )


def _get(path: str, caller: str = WEB_IP, *, as_json: bool = False) -> tuple[int, str]:
    answer = MetadataIndex(_state()).answer(path, caller, as_json=as_json)
    return answer.status, answer.body


def test_self_service_and_stack_names() -> None:
    assert _get("/latest/self/service/name") == (200, "web")
    assert _get("/latest/self/stack/name") == (200, "shop")
    assert _get("/latest/self/container/name") == (200, "shop-web-1")
    assert _get("/latest/self/container/primary_ip") == (200, WEB_IP)
    assert _get("/latest/self/host/name") == (200, "alpha")
    assert _get("/latest/self/host/agent_ip") == (200, "198.18.0.11")
    assert _get("/latest/self/service/name", DB_IP) == (200, "db")


def test_user_metadata_is_served_under_the_service() -> None:
    assert _get("/latest/self/service/metadata/greeting") == (200, "hello")
    assert _get("/latest/self/service/metadata/") == (200, "greeting\nnested/\n")
    assert _get("/latest/self/service/metadata/nested/list") == (200, "0\n1\n")
    assert _get("/latest/self/service/metadata/nested/list/1") == (200, "two")
    assert _get("/latest/self/service/metadata/nested/flag") == (200, "true")


def test_key_walk_lists_maps_with_slashes_and_lists_by_name() -> None:
    assert _get("/") == (200, "2015-07-25\n2015-12-19\nlatest\n")
    status, body = _get("/latest")
    assert status == 200
    assert body == "containers/\nhosts/\nself/\nservices/\nstacks/\n"
    assert _get("/latest/services") == (200, "0=db\n1=web\n")
    assert _get("/latest/services/web/scale") == (200, "2")
    assert _get("/latest/services/1/containers") == (200, "0=shop-web-1\n1=shop-web-2\n")
    assert _get("/latest/self/container/labels") == (200, "io.rancher.x\n")
    assert _get("/latest/containers/shop-db-1/links/0") == (200, "web:front")
    assert _get("/latest/hosts") == (200, "0=alpha\n1=beta\n")


def test_versions_differ_in_nesting() -> None:
    assert _get("/2015-07-25/self/service/containers/1") == (200, "shop-web-2")
    assert _get("/2015-12-19/self/service/containers/1/name") == (200, "shop-web-2")
    assert _get("/2015-07-25/stacks/shop/services") == (200, "0\n1\n")


def test_json_answers() -> None:
    status, body = _get("/latest/self/service", as_json=True)
    assert status == 200
    service = json.loads(body)
    assert service["name"] == "web"
    assert service["stack_name"] == "shop"
    assert service["metadata"]["nested"]["list"] == [1, "two"]
    assert [c["name"] for c in service["containers"]] == ["shop-web-1", "shop-web-2"]
    assert json.loads(_get("/latest/self/container/health_state", as_json=True)[1]) == "healthy"
    assert json.loads(_get("/latest/containers/shop-web-2/health_state", as_json=True)[1]) == "unhealthy"


def test_unknown_paths_and_callers() -> None:
    assert _get("/latest/nothing")[0] == 404
    assert _get("/latest/services/9")[0] == 404
    assert _get("/1999-01-01/self")[0] == 404
    assert _get("/latest/self/service/name/deeper")[0] == 404
    # a caller that is not a known container sees everything but `self`
    assert _get("/latest/self/service/name", "10.42.9.9")[0] == 404
    assert _get("/latest", "10.42.9.9") == (200, "containers/\nhosts/\nservices/\nstacks/\n")
    assert _get("/latest/stacks/shop/environment_name", "10.42.9.9") == (200, "Default")
    assert json.loads(_get("/latest/x", as_json=True)[1])["code"] == 404


def test_no_state_yet_answers_an_empty_environment() -> None:
    index = MetadataIndex(None)
    assert index.answer("/latest/services", WEB_IP, as_json=False).body == ""
    assert index.answer("/latest/self", WEB_IP, as_json=False).status == 404


_keys = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
_leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
_values = st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3), max_leaves=12
)


@given(st.dictionaries(_keys, _values, max_size=5))
def test_every_listed_key_of_user_metadata_can_be_walked(metadata: dict[str, Any]) -> None:
    """Whatever `metadata:` holds, each line of a walk names a path that answers, and JSON returns it whole."""
    state = NetworkState(
        "e1",
        "Default",
        NetworkSettings(),
        HostNetwork("h1", "alpha", "198.18.0.11", "10.42.1.0/24"),
        containers=(ContainerRecord("c1", "s-web-1", "s", "web", 1, "h1", WEB_IP, True, True),),
        services=(ServiceRecord("s", "web", 1, metadata=metadata),),
    )
    index = MetadataIndex(state)
    base = "/latest/self/service/metadata"
    assert json.loads(index.answer(base, WEB_IP, as_json=True).body) == metadata
    pending = [base]
    while pending:
        path = pending.pop()
        answer = index.answer(path, WEB_IP, as_json=False)
        assert answer.status == 200, path
        node = json.loads(index.answer(path, WEB_IP, as_json=True).body)
        if isinstance(node, dict | list):
            assert answer.body == text_of(node)
            for line in answer.body.splitlines():
                key = line.split("=", 1)[0].rstrip("/")
                pending.append(f"{path}/{key}")


# -- the HTTP server on a real socket ----------------------------------------------------------------------------


async def _fetch(port: int, path: str, *, source: str, accept: str = "", method: str = "GET") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    headers = f"Accept: {accept}\r\n" if accept else ""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: metadata\r\n{headers}\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


def test_server_answers_by_source_address_on_a_loopback_socket() -> None:
    asyncio.run(_answers_by_source_address())


async def _answers_by_source_address() -> None:
    state = _state()
    local = ContainerRecord("c9", "shop-db-2", "shop", "db", 2, "h1", "127.0.0.3", True, True)
    server = MetadataServer(address="127.0.0.1", port=0)
    server.update(NetworkState(**{**state.__dict__, "containers": (*state.containers, local)}))
    await server.start()
    try:
        port = server.bound_port
        assert await _fetch(port, "/latest/self/service/name", source="127.0.0.3") == ("HTTP/1.1 200 OK", "db")
        assert await _fetch(port, "/latest/self/container/name?x=1", source="127.0.0.3") == (
            "HTTP/1.1 200 OK",
            "shop-db-2",
        )
        status, body = await _fetch(port, "/latest/self/stack", source="127.0.0.3", accept="application/json")
        assert status == "HTTP/1.1 200 OK"
        assert json.loads(body)["name"] == "shop"
        # another source address is not a known container
        assert (await _fetch(port, "/latest/self/service/name", source="127.0.0.4"))[0] == "HTTP/1.1 404 Not Found"
        assert await _fetch(port, "/latest/services/web/name", source="127.0.0.4") == ("HTTP/1.1 200 OK", "web")
        assert (await _fetch(port, "/latest", source="127.0.0.3", method="POST"))[0].endswith("405 Method Not Allowed")
        assert await _fetch(port, "/latest/self/service/name", source="127.0.0.3", method="HEAD") == (
            "HTTP/1.1 200 OK",
            "",
        )
        # a state update is answered from at once
        server.update(_state())
        assert (await _fetch(port, "/latest/self/service/name", source="127.0.0.3"))[0].endswith("404 Not Found")
    finally:
        await server.stop()


def test_server_survives_garbage_and_a_half_request() -> None:
    asyncio.run(_survives_garbage())


async def _survives_garbage() -> None:
    server = MetadataServer(address="127.0.0.1", port=0)
    server.update(_state())
    await server.start()
    try:
        port = server.bound_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"NONSENSE\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 400")
        writer.close()
        _, half = await asyncio.open_connection("127.0.0.1", port)
        half.write(b"GET /latest HT")
        half.close()
        assert await _fetch(port, "/latest/stacks/0/name", source="127.0.0.1") == ("HTTP/1.1 200 OK", "shop")
    finally:
        await server.stop()


def test_server_binds_an_address_the_host_does_not_have_yet() -> None:
    async def scenario() -> None:
        server = MetadataServer(address="169.254.169.250", port=0)  # not on this machine: IP_FREEBIND binds it
        await server.start()
        try:
            assert server.bound_port > 0
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_run_listens_from_the_first_state_until_stopped() -> None:
    async def scenario() -> None:
        server = MetadataServer(address="127.0.0.1", port=0)
        stop = asyncio.Event()
        task = asyncio.create_task(server.run(stop))
        await asyncio.sleep(0.05)
        assert server.bound_port == 0  # nothing to answer about yet
        server.update(_state())
        for _ in range(100):
            if server.bound_port:
                break
            await asyncio.sleep(0.01)
        assert await _fetch(server.bound_port, "/latest/stacks/0/name", source="127.0.0.1") == (
            "HTTP/1.1 200 OK",
            "shop",
        )
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        assert server.bound_port == 0

    asyncio.run(scenario())
