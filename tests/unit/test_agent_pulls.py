"""Background image pulls (agent/pulls.py): a convergence round never waits for a pull, says what it waits for,
and one stack's hanging pull leaves another stack's containers alone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from corral.agent.pulls import ImagePuller, WaitingForImage
from corral.model.registries import RegistryCredential
from corral.runtime.containers import EngineRejected, ImageMissing
from corral.runtime.docker_engine import DockerEngine

ENGINE: Any = object()


class Registry:
    """A pull function whose pulls of `hanging` images block until released; others end at once."""

    def __init__(self, *, hanging: frozenset[str] = frozenset(), failing: frozenset[str] = frozenset()) -> None:
        self.hanging = hanging
        self.failing = failing
        self.release = threading.Event()
        self.pulled: list[str] = []
        self.ended = threading.Event()

    def pull(self, _engine: DockerEngine, image: str, _credential: RegistryCredential | None) -> str:
        if image in self.hanging:
            self.release.wait(30)
        self.pulled.append(image)
        self.ended.set()
        return f"pull access denied for {image}" if image in self.failing else ""


def wait_for_pulls(puller: ImagePuller) -> None:
    deadline = time.monotonic() + 10
    while puller.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not puller.running()


def test_a_missing_image_is_pulled_in_the_background_and_the_container_waits_saying_so() -> None:
    registry = Registry(hanging=frozenset({"slow:1"}))
    puller = ImagePuller(ENGINE, pull=registry.pull)
    with pytest.raises(WaitingForImage, match="waiting for image slow:1: pull started"):
        puller.require("slow:1", present=lambda: False, requester="a")
    with pytest.raises(WaitingForImage, match=r"waiting for image slow:1: pull running for \d+ s"):
        puller.require("slow:1", present=lambda: False, requester="b")
    assert puller.running() == ["slow:1"]
    registry.release.set()
    wait_for_pulls(puller)
    puller.require("slow:1", present=lambda: True, requester="a")
    puller.require("slow:1", present=lambda: True, requester="b")
    assert registry.pulled == ["slow:1"]  # one pull served both


def test_a_present_image_needs_no_pull_and_a_failed_pull_is_each_waiters_error_once() -> None:
    registry = Registry(failing=frozenset({"gone:1"}))
    puller = ImagePuller(ENGINE, pull=registry.pull)
    puller.require("here:1", present=lambda: True, requester="a")
    assert registry.pulled == []
    with pytest.raises(WaitingForImage):
        puller.require("gone:1", present=lambda: False, requester="a")
    wait_for_pulls(puller)
    with pytest.raises(ImageMissing, match="gone:1 is not present on this host and cannot be pulled: pull access"):
        puller.require("gone:1", present=lambda: False, requester="a")
    with pytest.raises(WaitingForImage, match="pull started; the previous attempt failed: image gone:1 is not"):
        puller.require("gone:1", present=lambda: False, requester="a")  # the next request tries again, saying why


def test_pull_always_wants_a_pull_that_ended_after_it_asked() -> None:
    registry = Registry()
    puller = ImagePuller(ENGINE, pull=registry.pull)
    with pytest.raises(WaitingForImage):
        puller.require("img:1", present=lambda: True, always=True, requester="a")
    wait_for_pulls(puller)
    puller.require("img:1", present=lambda: True, always=True, requester="a")
    with pytest.raises(WaitingForImage):  # a later create pulls again
        puller.require("img:1", present=lambda: True, always=True, requester="a")
    wait_for_pulls(puller)
    puller.require("img:1", present=lambda: True, always=True, requester="a")
    assert registry.pulled == ["img:1", "img:1"]
    registry.failing = frozenset({"img:1"})
    with pytest.raises(WaitingForImage):
        puller.require("img:1", present=lambda: True, always=True, requester="a")
    wait_for_pulls(puller)
    with pytest.raises(EngineRejected, match="pull_image is always, and pulling img:1 failed"):
        puller.require("img:1", present=lambda: True, always=True, requester="a")


def test_pulls_beyond_the_limit_wait_for_a_slot_and_say_so() -> None:
    registry = Registry(hanging=frozenset({"a:1", "b:1", "c:1"}))
    puller = ImagePuller(ENGINE, pull=registry.pull, max_parallel=2)
    for image in ("a:1", "b:1"):
        with pytest.raises(WaitingForImage):
            puller.require(image, present=lambda: False, requester=image)
    with pytest.raises(WaitingForImage, match=r"waiting to pull image c:1: 2 pulls already running \(a:1, b:1\)"):
        puller.require("c:1", present=lambda: False, requester="c")
    registry.release.set()
    wait_for_pulls(puller)
