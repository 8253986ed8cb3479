"""Building, saving and loading images on the host's engine (docker-py's build, `docker save`, `docker load`).

Why each call opens its own client with a long read timeout: a build or the transfer of an image takes as long as it
takes, and must neither hold nor time out the agent's shared engine connection (the converger's). The legacy
builder's output is a stream of JSON objects; `build_image` yields its log lines as they come and, on failure,
raises `BuildFailed` naming the Dockerfile step that failed ("Step 2/3 : RUN make: ... returned a non-zero code: 2").
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions

from corral.model.errors import CorralError, Unavailable
from corral.runtime.docker_engine import DockerEngine

TRANSFER_TIMEOUT_SECONDS = 1800.0
SAVE_CHUNK_BYTES = 64 * 1024


class BuildFailed(CorralError):
    status = 422
    code = "build_failed"


def _client(engine: DockerEngine, doing: str) -> docker.DockerClient:
    """A client for one transfer; Unavailable when the engine does not answer ("auto" asks it for its version)."""
    try:
        return docker.DockerClient(base_url=engine.docker_host, version="auto", timeout=TRANSFER_TIMEOUT_SECONDS)
    except docker.errors.DockerException as exc:
        raise Unavailable(f"docker engine at {engine.docker_host} failed to {doing}: {exc}") from exc


def build_image(
    engine: DockerEngine,
    context: bytes,
    *,
    tag: str,
    dockerfile: str = "Dockerfile",
    args: dict[str, str] | None = None,
    target: str = "",
    labels: dict[str, str] | None = None,
    platform: str = "",
) -> Iterator[str]:
    """Build the tar `context` as `tag`, yielding the builder's output lines; BuildFailed with the failing step."""
    client = _client(engine, f"build {tag}")
    step = ""
    try:
        try:
            output = client.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                buildargs=args or None,
                target=target or None,
                labels=labels or None,
                platform=platform or None,
                rm=True,
                forcerm=True,
                decode=False,
            )
            for item in _objects(output):
                if "error" in item:
                    detail = str(item.get("error", "")).strip()
                    raise BuildFailed(f"{step}: {detail}" if step else detail)
                text = str(item.get("stream", "") or item.get("status", ""))
                for line in text.splitlines():
                    if line.startswith("Step "):
                        step = line.strip()
                    if line.strip():
                        yield line
        except docker.errors.APIError as exc:
            raise BuildFailed(f"{step}: {exc.explanation or exc}" if step else str(exc.explanation or exc)) from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise Unavailable(f"docker engine at {engine.docker_host} failed to build {tag}: {exc}") from exc
    finally:
        client.close()


def _objects(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """JSON objects from the builder's stream (one or several a chunk, or one split over chunks)."""
    decoder = json.JSONDecoder()
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode("utf-8", errors="replace")
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                item, end = decoder.raw_decode(buffer)
            except ValueError:
                break
            buffer = buffer[end:]
            if isinstance(item, dict):
                yield item


def save_image(engine: DockerEngine, image: str) -> Iterator[bytes]:
    """`docker save image` as chunks of the tar."""
    client = _client(engine, f"save {image}")
    try:
        try:
            response = client.api.get_image(image, chunk_size=SAVE_CHUNK_BYTES)
            yield from response
        except docker.errors.APIError as exc:
            raise CorralError(f"cannot save image {image}: {exc.explanation or exc}") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise Unavailable(f"docker engine at {engine.docker_host} failed to save {image}: {exc}") from exc
    finally:
        client.close()


def remove_image(engine: DockerEngine, image: str) -> str:
    """`docker rmi image` without force (an image a container uses stays: CorralError naming why); "removed" or
    "already gone". Its untagged parent layers (the build's steps) go with it."""
    client = _client(engine, f"remove {image}")
    try:
        try:
            client.api.remove_image(image, force=False, noprune=False)
            return "removed"
        except docker.errors.ImageNotFound:
            return "already gone"
        except docker.errors.APIError as exc:
            raise CorralError(f"cannot remove image {image}: {exc.explanation or exc}") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise Unavailable(f"docker engine at {engine.docker_host} failed to remove {image}: {exc}") from exc
    finally:
        client.close()


class ImageLoad:
    """`docker load` fed piece by piece: `write` the tar's chunks, `close_input`, then `result` (the engine's
    output) once the engine read everything. The engine reads on a thread of its own."""

    def __init__(self, engine: DockerEngine, *, depth: int = 16) -> None:
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._done = threading.Event()
        self._output = ""
        self._error: CorralError | None = None
        self._thread = threading.Thread(target=self._run, args=(engine,), name="image-load", daemon=True)
        self._thread.start()

    def _feed(self) -> Iterator[bytes]:
        while (chunk := self._chunks.get()) is not None:
            yield chunk

    def _run(self, engine: DockerEngine) -> None:
        client: docker.DockerClient | None = None
        try:
            client = _client(engine, "load an image")
            objects = [o for o in client.api.load_image(self._feed()) or [] if isinstance(o, dict)]
            lines = [str(o.get("stream", "") or o.get("error", "")) for o in objects]
            errors = [o for o in objects if "error" in o]
            self._output = "".join(lines).strip()
            if errors:
                self._error = CorralError(f"docker load failed: {self._output}")
        except docker.errors.APIError as exc:
            self._error = CorralError(f"docker load failed: {exc.explanation or exc}")
        except (requests.exceptions.RequestException, OSError) as exc:
            self._error = Unavailable(f"docker engine at {engine.docker_host} failed to load an image: {exc}")
        except Unavailable as exc:  # the engine did not answer the client's first question
            self._error = exc
        finally:
            if client is not None:
                client.close()
            self._done.set()
            while True:  # a writer blocked on a full queue must not wait for a reader that is gone
                try:
                    self._chunks.get_nowait()
                except queue.Empty:
                    break

    def write(self, data: bytes) -> None:
        while not self._done.is_set():
            try:
                self._chunks.put(data, timeout=0.5)
                return
            except queue.Full:
                continue
        if self._error is not None:
            raise self._error

    def close_input(self) -> None:
        if not self._done.is_set():
            self.write_end()

    def write_end(self) -> None:
        while not self._done.is_set():
            try:
                self._chunks.put(None, timeout=0.5)
                return
            except queue.Full:
                continue

    def result(self, timeout: float | None = None) -> str:
        self._done.wait(timeout)
        if self._error is not None:
            raise self._error
        return self._output

    def abort(self) -> None:
        self.write_end()
