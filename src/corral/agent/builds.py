"""The agent's image jobs: build an image, save one, load one, remove one (model/protocol.py `build`, `save`,
`load`, `remove_image`).

Why as streams: a build's log, a saved image and an image to load are long byte streams between the server and
this host's engine, exactly what the logs/exec streams already carry with backpressure (agent/streams.py). Each
job is an exec-like handle: `read` yields what goes to the server (build lines, the saved tar, load
acknowledgements), `write` takes a load's input, and a failure raises a `CorralError` whose message the stream's
`end` carries (for a build: the Dockerfile step that failed).
"""

from __future__ import annotations

import base64
import binascii
import queue
from collections.abc import Callable, Iterator
from typing import Any

from corral.agent.streams import ExecHandle
from corral.model import protocol
from corral.model.builds import MAX_CONTEXT_BYTES, is_built_image
from corral.model.errors import InvalidInput
from corral.runtime import builds as runtime
from corral.runtime.docker_engine import DockerEngine

ACK_STREAM = "ack"


def _text(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", field=key)
    return value


def _pairs(data: dict[str, Any], key: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput(f"{key} must map strings to strings", field=key)
    return dict(value)


def _image(data: dict[str, Any]) -> str:
    image = _text(data, "image")
    if not is_built_image(image):
        raise InvalidInput(f"image {image!r} is not one Corral builds", field="image")
    return image


class _Job:
    """What streams.py needs of a handle, for jobs without input or a terminal."""

    def write(self, data: bytes) -> None:
        raise InvalidInput("this job takes no input", field="stdin")

    def close_stdin(self) -> None:
        return None

    def resize(self, rows: int, cols: int) -> None:
        return None

    def exit_code(self) -> int | None:
        return 0

    def close(self) -> None:
        return None


class BuildJob(_Job):
    def __init__(self, engine: DockerEngine, data: dict[str, Any], on_built: Callable[[], object] | None) -> None:
        self.image = _image(data)
        self.on_built = on_built
        try:
            self.context = base64.b64decode(_text(data, "context"), validate=True)
        except binascii.Error as exc:
            raise InvalidInput("context must be base64", field="context") from exc
        if len(self.context) > MAX_CONTEXT_BYTES:
            raise InvalidInput(f"the context holds more than {MAX_CONTEXT_BYTES} bytes", field="context")
        self.engine = engine
        self.dockerfile = _text(data, "dockerfile", "Dockerfile")
        self.args = _pairs(data, "args")
        self.labels = _pairs(data, "labels")
        self.target = _text(data, "target")
        self.platform = _text(data, "platform")

    def read(self) -> Iterator[tuple[str, bytes]]:
        lines = runtime.build_image(
            self.engine,
            self.context,
            tag=self.image,
            dockerfile=self.dockerfile,
            args=self.args,
            target=self.target,
            labels=self.labels,
            platform=self.platform,
        )
        for line in lines:
            yield "stdout", f"{line}\n".encode()
        if self.on_built is not None:  # this host's containers that waited for the image are created at once
            self.on_built()


class SaveJob(_Job):
    def __init__(self, engine: DockerEngine, data: dict[str, Any]) -> None:
        self.image = _image(data)
        self.engine = engine

    def read(self) -> Iterator[tuple[str, bytes]]:
        for chunk in runtime.save_image(self.engine, self.image):
            yield "stdout", chunk


class LoadJob(_Job):
    """Each chunk written is acknowledged (stream "ack", the total so far), so the server never sends more than
    the agent's stdin allowance ahead."""

    def __init__(self, engine: DockerEngine, data: dict[str, Any], on_loaded: Callable[[], object] | None) -> None:
        self.image = _image(data)
        self.on_loaded = on_loaded
        self._load = runtime.ImageLoad(engine)
        self._events: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._written = 0

    def write(self, data: bytes) -> None:
        self._load.write(data)
        self._written += len(data)
        self._events.put(f"{self._written}\n".encode())

    def close_stdin(self) -> None:
        self._load.close_input()
        self._events.put(None)

    def read(self) -> Iterator[tuple[str, bytes]]:
        while (event := self._events.get()) is not None:
            yield ACK_STREAM, event
        output = self._load.result()
        if self.on_loaded is not None:  # the containers that waited for it are created at once
            self.on_loaded()
        yield "stdout", f"{output}\n".encode()

    def close(self) -> None:
        self._load.abort()
        self._events.put(None)


class RemoveJob(_Job):
    """Remove a superseded built image (the server's cleanup chose it); the engine refuses one a container uses."""

    def __init__(self, engine: DockerEngine, data: dict[str, Any]) -> None:
        self.image = _image(data)
        self.engine = engine

    def read(self) -> Iterator[tuple[str, bytes]]:
        yield "stdout", f"{runtime.remove_image(self.engine, self.image)}\n".encode()


class ImageJobs:
    """`(kind, data) -> handle` for agent/streams.py, on an engine client of its own."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self.on_loaded: Callable[[], object] | None = None  # set by the session: converge after a build or load

    def __call__(self, kind: str, data: dict[str, Any]) -> ExecHandle:
        if kind == protocol.BUILD:
            return BuildJob(self.engine, data, self.on_loaded)
        if kind == protocol.SAVE:
            return SaveJob(self.engine, data)
        if kind == protocol.LOAD:
            return LoadJob(self.engine, data, self.on_loaded)
        if kind == protocol.REMOVE_IMAGE:
            return RemoveJob(self.engine, data)
        raise InvalidInput(f"unknown image job {kind!r}", field="type")
