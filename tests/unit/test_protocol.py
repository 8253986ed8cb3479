"""The agent wire protocol: envelopes survive a round trip, bad input is refused naming the field."""

from __future__ import annotations

import json

import pytest

from corral.model import protocol
from corral.model.entities import ObservedContainer
from corral.model.errors import InvalidInput


def test_message_round_trip_keeps_type_id_data_and_version() -> None:
    message = protocol.Message(protocol.HEARTBEAT, {"time": 12.5})
    decoded = protocol.decode(message.encode())
    assert decoded == message
    assert decoded.v == protocol.PROTOCOL_VERSION
    assert len(message.id) == 16


def test_messages_get_distinct_ids() -> None:
    assert protocol.Message(protocol.HELLO).id != protocol.Message(protocol.HELLO).id


def test_decode_accepts_bytes_and_missing_optional_fields() -> None:
    decoded = protocol.decode(b'{"type": "welcome"}')
    assert decoded.type == protocol.WELCOME
    assert decoded.data == {}
    assert decoded.id == ""
    assert decoded.v == protocol.PROTOCOL_VERSION


def test_unknown_types_decode_so_that_the_receiver_can_answer_them() -> None:
    assert protocol.decode(json.dumps({"type": "frobnicate", "id": "x"})).type == "frobnicate"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", "message"),
        ("[1, 2]", "message"),
        ('{"data": {}}', "type"),
        ('{"type": ""}', "type"),
        ('{"type": 7}', "type"),
        ('{"type": "hello", "data": [1]}', "data"),
        ('{"type": "hello", "v": "1"}', "v"),
    ],
)
def test_malformed_envelopes_name_the_field(raw: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        protocol.decode(raw)
    assert caught.value.field == field


def test_oversized_messages_are_refused() -> None:
    with pytest.raises(InvalidInput, match="too large"):
        protocol.decode(" " * (protocol.MAX_MESSAGE_BYTES + 1))


def test_container_wire_round_trip() -> None:
    container = ObservedContainer(
        docker_id="abc123",
        name="web-1",
        image="corral/busybox:latest",
        state="exited",
        status="Exited (3)",
        exit_code=3,
        restart_count=2,
        labels={"io.corral.environment": "env-1", "tier": "web"},
        created=1700000000.25,
    )
    wire = protocol.container_to_wire(container)
    assert json.loads(json.dumps(wire)) == wire
    assert protocol.container_from_wire(json.loads(json.dumps(wire))) == container


def test_container_wire_defaults_for_missing_fields() -> None:
    container = protocol.container_from_wire({"docker_id": "abc"})
    assert container == ObservedContainer(docker_id="abc", name="", image="", state="")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("abc", "container"),
        ({}, "container.docker_id"),
        ({"docker_id": ""}, "container.docker_id"),
        ({"docker_id": "abc", "labels": ["a"]}, "container.labels"),
    ],
)
def test_malformed_containers_name_the_field(data: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        protocol.container_from_wire(data)
    assert caught.value.field == field
