"""store/journal.py: an entity handed over as written is taken only from a transaction that had its kind to itself
from its first write to its delivery; any overlap with another writer of the kind means the rows are read again
(two commits may reach the in-memory state in another order than the database committed them)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from corral.store.journal import _Writers


def _session() -> Any:
    return SimpleNamespace(info={})


def test_a_writer_alone_from_start_to_delivery_is_trusted() -> None:
    writers, a = _Writers(), _session()
    writers.register(a, "containers")
    writers.register(a, "containers")  # a second write of the same transaction changes nothing
    assert writers.alone(a, "containers")
    writers.done(a)
    b = _session()
    writers.register(b, "containers")  # one after the other: each had the kind to itself
    assert writers.alone(b, "containers")


def test_a_writer_that_started_beside_another_is_not() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(b, "containers")
    writers.register(a, "containers")
    writers.done(b)  # b has finished by the time a is delivered: a still overlapped it
    assert not writers.alone(a, "containers")


def test_a_writer_another_started_beside_is_not_even_once_that_one_finished() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(a, "containers")
    writers.register(b, "containers")
    assert not writers.alone(a, "containers")
    writers.done(b)
    assert not writers.alone(a, "containers")


def test_other_kinds_do_not_count() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(a, "containers")
    writers.register(b, "slots")
    assert writers.alone(a, "containers") and writers.alone(b, "slots")
    assert not writers.alone(a, "slots")  # a kind it did not write is nothing it can hand over
