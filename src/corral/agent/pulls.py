"""Image pulls in the background, so that one stack's slow or hanging pull never holds up another stack's containers.

Why: a pull takes as long as its registry wants (a registry that accepts the connection and never answers holds
it until the engine gives up). Done inside a convergence round, it held up every other action of the host: the
round ends only when its last action does, and the next round waits for it. Here a convergence round only *asks*
for an image: present -> go on; missing -> a pull starts on a thread of its own and the container's action fails
with `WaitingForImage` ("waiting for image X: pull running for 12 s"), which the converger reports as the slot's
reason and retries; when a pull ends, `on_done` asks the session for a new round at once.

At most `max_parallel` pulls run at a time, each on its own pooled engine connection (the converger's connections
stay free); the images beyond wait, and say so. `pull_image: always` asks for a pull that ended after the container
asked for it (not a copy pulled earlier). A failed pull is reported once to each slot that waited for it, then
the next request pulls again (the converger's retry delay spaces the attempts).

`pull_now` is the pull an operator asks for (`corral pull`): it blocks its caller (never the converger), joins a
pull of the same image already running, else starts one on the same threads and table (it does not wait for a
free slot: an operator's pull is asked for explicitly).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.model.errors import CorralError, Unavailable
from corral.model.registries import RegistryCredential
from corral.runtime import containers as runtime
from corral.runtime.docker_engine import DockerEngine

log = logging.getLogger("corral.agent.pulls")

MAX_PARALLEL_PULLS = 4
PULL_TIMEOUT_SECONDS = 600.0  # the engine connection's read timeout during a pull


class WaitingForImage(CorralError):
    """The image of a container is being pulled (or waits for a pull slot); the container is created after."""

    status = 409
    code = "waiting_for_image"


@dataclass
class _Pull:
    started: float
    requesters: set[str]
    finished: float | None = None
    failure: str = ""  # "" when it worked (or still runs)
    done: threading.Event = field(default_factory=threading.Event)


class ImagePuller:
    """Pulls images on threads of their own; `require` never blocks on a pull. Thread-safe."""

    def __init__(
        self,
        engine: DockerEngine,
        *,
        on_done: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_parallel: int = MAX_PARALLEL_PULLS,
        pull: Callable[[DockerEngine, str, RegistryCredential | None], str] | None = None,
    ) -> None:
        self.engine = engine
        self.on_done = on_done
        self._clock = clock
        self._max_parallel = max_parallel
        self._pull_fn = pull if pull is not None else runtime.pull_image
        self._lock = threading.Lock()
        self._pulls: dict[str, _Pull] = {}  # image -> its latest pull (running or ended)
        self._asked: dict[tuple[str, str], float] = {}  # (requester, image) -> when an `always` pull was asked for
        self._failed: dict[str, str] = {}  # image -> why its latest pull failed (kept in the waiting reason)

    def require(
        self,
        image: str,
        *,
        present: Callable[[], bool],
        always: bool = False,
        credential: RegistryCredential | None = None,
        requester: str = "",
    ) -> None:
        """Return when `image` may be used now; raise `WaitingForImage` while its pull runs (starting one if
        needed), or the pull's error once a pull this requester waited for failed."""
        now = self._clock()
        with self._lock:
            pull = self._pulls.get(image)
            if pull is not None and pull.finished is None:
                pull.requesters.add(requester)
                raise self._waiting(image, f"pull running for {now - pull.started:.0f} s", always)
            asked = self._asked.get((requester, image)) if always else None
            if pull is not None and pull.finished is not None and requester in pull.requesters:
                pull.requesters.discard(requester)
                if pull.failure:
                    self._asked.pop((requester, image), None)
                    raise runtime.pull_error(image, pull.failure, always_pull=always)
                if not always or (asked is not None and pull.finished >= asked):
                    self._asked.pop((requester, image), None)
                    return
        if not always and present():
            return
        with self._lock:
            pull = self._pulls.get(image)
            if pull is not None and pull.finished is None:  # another thread started it meanwhile
                pull.requesters.add(requester)
                raise self._waiting(image, f"pull running for {now - pull.started:.0f} s", always)
            running = [name for name, p in self._pulls.items() if p.finished is None]
            if len(running) >= self._max_parallel:
                busy = ", ".join(sorted(running))
                raise WaitingForImage(f"waiting to pull image {image}: {len(running)} pulls already running ({busy})")
            if always:
                self._asked.setdefault((requester, image), now)
            self._pulls[image] = _Pull(started=now, requesters={requester})
        threading.Thread(target=self._run, args=(image, credential), name=f"pull-{image[:40]}", daemon=True).start()
        raise self._waiting(image, "pull started", always)

    def pull_now(self, image: str, credential: RegistryCredential | None, timeout: float | None = None) -> str:
        """Pull `image` now, or wait for its running pull; "" when it worked, else why not."""
        with self._lock:
            pull = self._pulls.get(image)
            if pull is None or pull.finished is not None:
                pull = _Pull(started=self._clock(), requesters=set())
                self._pulls[image] = pull
                start = True
            else:
                start = False
        if start:
            threading.Thread(target=self._run, args=(image, credential), name=f"pull-{image[:40]}", daemon=True).start()
        if not pull.done.wait(timeout):
            return f"the pull of {image} did not end within {timeout:.0f} s"
        return pull.failure

    def _waiting(self, image: str, doing: str, always: bool) -> WaitingForImage:
        """The reason of a container waiting for its image; after a failed pull, why that one failed too."""
        failed = self._failed.get(image)
        if failed is None:
            return WaitingForImage(f"waiting for image {image}: {doing}")
        earlier = runtime.pull_error(image, failed, always_pull=always).message
        return WaitingForImage(f"waiting for image {image}: {doing}; the previous attempt failed: {earlier}")

    def running(self) -> list[str]:
        with self._lock:
            return sorted(name for name, p in self._pulls.items() if p.finished is None)

    def _run(self, image: str, credential: RegistryCredential | None) -> None:
        log.info("pulling image %s", image)
        try:
            failure = self._pull_fn(self.engine, image, credential)
        except Unavailable as exc:
            failure = exc.message
        except Exception as exc:  # a bug must end this pull, not leave it running forever
            log.exception("pulling %s failed", image)
            failure = repr(exc)
        with self._lock:
            pull = self._pulls[image]
            pull.finished = self._clock()
            pull.failure = failure
            if failure:
                self._failed[image] = failure
            else:
                self._failed.pop(image, None)
            took = pull.finished - pull.started
            pull.done.set()
        if failure:
            log.warning("pull of image %s failed after %.0f s: %s", image, took, failure)
        else:
            log.info("pulled image %s in %.1f s", image, took)
        if self.on_done is not None:
            self.on_done()

    def forget(self, keep: Callable[[str], bool]) -> None:
        """Drop ended pulls and `always` requests of requesters `keep` rejects (slots no longer desired)."""
        with self._lock:
            self._asked = {k: v for k, v in self._asked.items() if keep(k[0])}
            for pull in self._pulls.values():
                pull.requesters = {r for r in pull.requesters if keep(r)}
            self._pulls = {k: p for k, p in self._pulls.items() if p.finished is None or p.requesters}
