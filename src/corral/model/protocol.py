"""The server <-> agent wire protocol: JSON envelopes over the `/v1/agent` websocket.

Why here: both ends import the same message names and envelope checks, so they cannot drift apart. Every message
is ``{"v": 1, "type": ..., "id": ..., "data": {...}}``; a message of an unknown type is answered with an `error`
message and never crashes either side.

Agent -> server
  ``hello``      data: {"facts": {...HostFacts fields}, "labels": {...}, "agent_version": str}; "deltas": true and
                 "network_deltas": true ask for `desired` and `network` as deltas; "network_scope": true (with
                 network deltas) for a scoped `network` state, "network_demand": ["stack/service", ...] | "all" what
                 it asked for beyond that scope on its last connection (model/network_scope.py)
                 sent first on every connection; also "wireguard": {"public_key": base64 str, "port": int}  the
                 host's WireGuard key and listen port for the encrypted overlay (model/network.py), when it has one
  ``snapshot``   data: {"containers": [ObservedContainer as dict, ...]}  full set, after hello and on resync
  ``container``  data: {"container": {...}} or {"removed": docker_id}   one delta from the engine's events
  ``heartbeat``  data: {"time": float}
  ``slot``       data: {"slot_id": str, "reason": str}  why a desired container cannot be created or started on
                 this host ("" when the problem is gone); the server shows it as the container's reason
  ``images``     data: {"images": {reference: [arch, ...]}}  the architectures of every image on the host's engine,
                 by each repo tag, repo digest and image id (normalised: model/images.py); the full map, sent on
                 connect and whenever the engine's images change. `hello` may carry the same map as "images"
  ``converged``  data: {"revision": float}  the agent finished converging its engine to the desired set of that
                 revision (sent once per revision): containers that set does not run are stopped or removed
  ``connectivity`` data: {"peers": {host_id: {"ok": bool, "since": float, "error": str}}}  the overlay probe's
                 result towards every peer (sent when a status changes, and after each connect)
  ``engine``     data: {"available": bool, "reason": str}  the host's Docker engine stopped answering (why), or
                 answers again (a snapshot follows); sent when that changes and after a connect while it is down.
                 The server shows the host `engine-down` and its containers `unknown` until it is back
  ``trusted``    data: {"digests": [str, ...]}  the CA digests the agent pinned after a `trust` message
  ``volumes``    data: {"volumes": [{"name", "driver", "labels": {}, "containers": [name, ...]}, ...]}  every volume
                 of the host's engine and the containers that mount it (model/volumes.py); the full list, sent after
                 each snapshot and whenever it changes. Optional: an agent that never sends it shows no volumes
  ``image_list`` data: {"images": [{"id", "tags": [], "size": int, "created": float, "containers": [name, ...]}]}
                 every image of the host's engine and the containers made from it (model/image_inventory.py), for
                 people (`GET /v1/images`); sent like `volumes`. Optional: an agent that never sends it lists none
  ``ack``        data: {"desired": int}  the agent holds the desired set of that version (model/deltas.py); with
                 "resync": true it holds another one (a gap): the server sends the full set again. {"network": int}
                 (and "resync") the same for the network state (model/network_deltas.py); "demand":
                 ["stack/service", ...] | "all" (with "network") asks for those services' every container and
                 record, or the unscoped state, for the rest of the connection (model/network_scope.py)
Server -> agent
  ``welcome``    data: {"host_id": str, "environment_id": str, "heartbeat_seconds": float}
  ``desired``    data: {"containers": [DesiredContainer.to_dict(), ...]}  the full desired set for the host, sent
                 on connect and whenever it changes (see model/stack.py DesiredContainer for the semantics);
                 also "registries": [{"server", "username", "password"}, ...]  the environment's private registry
                 credentials of the registries this host's desired images pull from, no others
                 (plain passwords: only over this websocket, never logged), used to authenticate pulls
                 of images whose reference names that registry (model/registries.py); "revision": float, the
                 set's number (increasing), which the agent acknowledges with `converged`. To an agent whose
                 `hello` said "deltas": true it also carries "version": int; after that first full set the server
                 sends deltas {"version", "base": the version it follows, "put": [entries new or changed],
                 "remove": [slot ids], "revision"} with "registries"/"secrets" only when those changed (absent:
                 unchanged); the agent applies one whose base it holds and acknowledges with `ack`
  ``network``    data: NetworkState.to_dict() (model/network.py)  the overlay settings, this host's slice, its peers,
                 and the environment's containers and services for DNS and metadata; sent on connect and whenever
                 it changes. To an agent whose `hello` said "network_deltas": true it also carries "version": int,
                 and after that first full state the server sends deltas {"version", "base", "put": {section:
                 [entries]}, "remove": {section: [keys]}} over the sections peers, containers, services, hosts
                 (and directory), with environment/settings/host/scoped only when they changed
                 (model/network_deltas.py). A scoped state ("scoped": true) holds only what the host needs and a
                 "directory" of every service (model/network_scope.py)
  ``trust``      data: {"ca": PEM}  the CA bundle to pin from now on (a CA rotation: the current and the next CA,
                 then the new one alone; server/hub/ca_rotation.py); it arrives over the channel the pinned CA verified
  ``error``      data: {"message": str, "in_reply_to": str | None}
Streams (logs, exec, stats): the server opens one with a request carrying a fresh `request_id`; the agent answers with
any number of `output` messages and exactly one `end`, also when the request fails or is cancelled.
  server -> agent
  ``logs``       data: {"request_id", "docker_id", "follow": bool, "tail": int | None, "timestamps": bool}
  ``exec``       data: {"request_id", "docker_id", "cmd": [str, ...], "tty": bool, "interactive": bool}
  ``stats``      data: {"request_id", "docker_id", "stream": bool}   resource use: each `output` (stream "stats")
                 carries one JSON line per sample (runtime/stats.py sample_of), about one a second while `stream`
  ``build``      data: {"request_id", "image", "context": base64 tar, "dockerfile", "args": {}, "target", "labels": {},
                 "platform"}   build `image` on the host's engine (server/hub/builds.py); `output` carries the builder's
                 lines, `end` exit_code 0, or the error naming the failing Dockerfile step
  ``save``       data: {"request_id", "image"}   `output` carries the `docker save` tar of `image`
  ``load``       data: {"request_id", "image"}   `docker load` of the tar the server sends as `stdin` (then eof);
                 `output` of stream "ack" carries the bytes written so far (one decimal a line), for flow control
  ``remove_image`` data: {"request_id", "image"}   remove a built image (`corral-build/...`) from the host's engine
                 (server/hub/builds.py cleanup), never by force: an image a container uses stays and `end` says why;
                 an image already gone ends with exit_code 0
  ``volume``     data: {"request_id", "action": "create" | "remove", "name", "driver", "driver_opts": {},
                 "labels": {}}   create or remove a named volume on the host's engine; answered by one `end`
                 (exit_code 0, or the error: a volume in use names its containers), then a `volumes` report
  ``image``      data: {"request_id", "action": "remove", "id"}   remove an unused image (by id) from the host's
                 engine; answered by one `end` (exit_code 0, or the error naming the containers that use it), then an
                 `image_list` report
  ``stdin``      data: {"request_id", "data": base64}   input for an interactive exec or a load; "eof": true closes it
  ``resize``     data: {"request_id", "rows": int, "cols": int}
  ``cancel``     data: {"request_id"}   stop a stream (a logs follow, a running exec); the agent still sends `end`
  ``pause``      data: {"request_id"}   the server holds too much of this stream's output unread (its client reads
                 slowly): send no more `output` for it until ``resume`` (other streams go on)
  ``resume``     data: {"request_id"}   go on sending
  agent -> server
  ``output``     data: {"request_id", "stream": "stdout" | "stderr", "data": base64}   at most 64 KiB of raw bytes
  ``end``        data: {"request_id", "exit_code": int | None, "error": str | None}
Websocket close codes the server uses: 4401 bad credentials, 4404 host removed (the agent stops retrying), 4422 a
hello whose facts are out of bounds (after an `error` naming the field; nothing of it is stored).
A host `pending` approval (its environment requires approval) may connect and report, but its `desired` set is
empty, it gets no `network` message and no registry credentials until an admin approves it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from corral.model.entities import ObservedContainer, normalise_arch
from corral.model.errors import InvalidInput
from corral.model.images import normalise_reference

PROTOCOL_VERSION = 1

HELLO = "hello"
SNAPSHOT = "snapshot"
CONTAINER = "container"
HEARTBEAT = "heartbeat"
WELCOME = "welcome"
DESIRED = "desired"
SLOT = "slot"
IMAGES = "images"
CONNECTIVITY = "connectivity"
ENGINE = "engine"
CONVERGED = "converged"
NETWORK = "network"
TRUST = "trust"
TRUSTED = "trusted"
ACK = "ack"
VOLUMES = "volumes"
VOLUME = "volume"
IMAGE_LIST = "image_list"  # agent -> server: the engine's images for people (model/image_inventory.py)
IMAGE = "image"  # server -> agent: remove an image, answered by one `end`
PULL = "pull"  # server -> agent: pull these images now (`corral pull`), answered by one `end` with results
LOGS = "logs"
EXEC = "exec"
STATS = "stats"
STDIN = "stdin"
RESIZE = "resize"
CANCEL = "cancel"
PAUSE = "pause"
RESUME = "resume"
BUILD = "build"
SAVE = "save"
LOAD = "load"
REMOVE_IMAGE = "remove_image"
OUTPUT = "output"
END = "end"
ERROR = "error"

AGENT_MESSAGE_TYPES = frozenset(
    {
        HELLO,
        SNAPSHOT,
        CONTAINER,
        HEARTBEAT,
        SLOT,
        IMAGES,
        CONNECTIVITY,
        ENGINE,
        CONVERGED,
        OUTPUT,
        END,
        ERROR,
        ACK,
        VOLUMES,
        IMAGE_LIST,
    }
)
SERVER_MESSAGE_TYPES = frozenset(
    {
        WELCOME,
        DESIRED,
        NETWORK,
        LOGS,
        EXEC,
        STATS,
        STDIN,
        RESIZE,
        CANCEL,
        PAUSE,
        RESUME,
        ERROR,
        BUILD,
        SAVE,
        LOAD,
        REMOVE_IMAGE,
        VOLUME,
        PULL,
        IMAGE,
    }
)
MAX_OUTPUT_CHUNK = 64 * 1024

CLOSE_BAD_CREDENTIALS = 4401
CLOSE_HOST_REMOVED = 4404
CLOSE_BAD_HELLO = 4422  # a hello with out-of-bounds facts (model/admission.py): an `error` message says which field
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_IMAGE_REFERENCES = 20_000
MAX_REFERENCE_LENGTH = 1024
MAX_ARCHS_PER_IMAGE = 32


@dataclass(frozen=True)
class Message:
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    v: int = PROTOCOL_VERSION

    def encode(self) -> str:
        return json.dumps({"v": self.v, "type": self.type, "id": self.id, "data": self.data})


def decode(raw: str | bytes) -> Message:
    """Parse one envelope; raise InvalidInput naming what is wrong with it."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidInput("message too large", field="message")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"message is not JSON: {exc}", field="message") from exc
    if not isinstance(body, dict):
        raise InvalidInput("message must be a JSON object", field="message")
    kind = body.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidInput("message has no type", field="type")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("message data must be an object", field="data")
    msg_id = body.get("id")
    version = body.get("v", PROTOCOL_VERSION)
    if not isinstance(version, int):
        raise InvalidInput("message version must be an integer", field="v")
    return Message(type=kind, data=data, id=msg_id if isinstance(msg_id, str) else "", v=version)


def container_to_wire(container: ObservedContainer) -> dict[str, Any]:
    return asdict(container)


def container_from_wire(data: object) -> ObservedContainer:
    if not isinstance(data, dict):
        raise InvalidInput("container must be an object", field="container")
    docker_id = data.get("docker_id")
    if not isinstance(docker_id, str) or not docker_id:
        raise InvalidInput("container has no docker_id", field="container.docker_id")
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        raise InvalidInput("container labels must be an object", field="container.labels")
    exit_code = data.get("exit_code")
    return ObservedContainer(
        docker_id=docker_id,
        name=str(data.get("name", "")),
        image=str(data.get("image", "")),
        state=str(data.get("state", "")),
        status=str(data.get("status", "")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        restart_count=int(data.get("restart_count") or 0),
        labels={str(k): str(v) for k, v in labels.items()},
        created=float(data.get("created") or 0.0),
        ip=str(data.get("ip") or ""),
        health=str(data.get("health") or ""),
        health_reason=str(data.get("health_reason") or ""),
    )


def images_to_wire(images: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    return {ref: list(archs) for ref, archs in sorted(images.items())}


def images_from_wire(data: object) -> dict[str, tuple[str, ...]]:
    """An agent's image report: normalised reference -> sorted normalised architectures (merged per reference)."""
    if not isinstance(data, dict):
        raise InvalidInput("images must be an object of image reference -> architectures", field="images")
    if len(data) > MAX_IMAGE_REFERENCES:
        raise InvalidInput(f"images lists more than {MAX_IMAGE_REFERENCES} references", field="images")
    merged: dict[str, set[str]] = {}
    for ref, archs in data.items():
        if len(str(ref)) > MAX_REFERENCE_LENGTH:
            raise InvalidInput(f"images has a reference longer than {MAX_REFERENCE_LENGTH} characters", field="images")
        if not isinstance(archs, list) or not all(isinstance(a, str) and len(a) <= 32 for a in archs):
            raise InvalidInput(f"images[{ref!r}] must be a list of architecture strings", field="images")
        if len(archs) > MAX_ARCHS_PER_IMAGE:
            raise InvalidInput(f"images[{ref!r}] lists more than {MAX_ARCHS_PER_IMAGE} architectures", field="images")
        key = normalise_reference(str(ref))
        if key:
            merged.setdefault(key, set()).update(normalise_arch(a) for a in archs if a.strip())
    return {ref: tuple(sorted(archs)) for ref, archs in sorted(merged.items())}


def wireguard_from_wire(data: object) -> tuple[str, int]:
    """A hello's `wireguard`: (public key, listen port); InvalidInput naming the field when it is not a 32-byte
    base64 key and a port within 1..65535."""
    if not isinstance(data, dict):
        raise InvalidInput("wireguard must be an object with public_key and port", field="wireguard")
    key, port = data.get("public_key"), data.get("port")
    try:
        valid_key = isinstance(key, str) and len(key) == 44 and len(base64.b64decode(key, validate=True)) == 32
    except (binascii.Error, ValueError):
        valid_key = False
    if not valid_key:
        raise InvalidInput("wireguard.public_key must be a base64 WireGuard key", field="wireguard.public_key")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInput(f"wireguard.port must be within 1..65535, not {port!r}", field="wireguard.port")
    return str(key), port
