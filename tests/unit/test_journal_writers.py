"""store/journal.py: an entity handed over as written is taken only from a transaction that had its part of its kind
(a reported container's host; the whole kind for the others) to itself from its first write to its delivery; any
overlap with another writer of that part, or of the whole kind, means the rows are read again (two commits may reach
the in-memory state in another order than the database committed them)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from corral.store.journal import PK, WHOLE, _Writers, part_of


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


def test_writers_of_different_hosts_containers_do_not_disturb_each_other() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(a, "containers", "h1")
    writers.register(b, "containers", "h2")
    assert writers.alone(a, "containers", "h1") and writers.alone(b, "containers", "h2")
    assert not writers.alone(a, "containers", "h2")  # a part it did not write


def test_writers_of_one_hosts_containers_disturb_each_other() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(a, "containers", "h1")
    writers.register(b, "containers", "h1")
    writers.done(b)
    assert not writers.alone(a, "containers", "h1")
    c = _session()
    writers.register(c, "containers", "h1")  # after b was done, but a is still writing
    assert not writers.alone(c, "containers", "h1")


def test_a_writer_of_the_whole_kind_disturbs_every_part_and_is_disturbed_by_any() -> None:
    writers, a, b, c = _Writers(), _session(), _session(), _session()
    writers.register(a, "containers", "h1")
    writers.register(b, "containers", WHOLE)
    assert not writers.alone(a, "containers", "h1") and not writers.alone(b, "containers", WHOLE)
    writers.done(a)
    writers.done(b)
    writers.register(b, "containers", WHOLE)
    writers.register(c, "containers", "h2")  # a part written while the whole kind is being written
    assert not writers.alone(c, "containers", "h2") and not writers.alone(b, "containers", WHOLE)


def test_a_writers_own_parts_are_disturbed_when_it_also_writes_the_whole_kind_beside_another() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(a, "containers", "h1")
    writers.register(b, "containers", "h2")
    writers.register(a, "containers", WHOLE)  # a may now have written h2's rows too
    assert not writers.alone(a, "containers", "h1") and not writers.alone(b, "containers", "h2")


def test_a_finished_writer_leaves_nothing_behind() -> None:
    writers, a, b = _Writers(), _session(), _session()
    writers.register(a, "containers", "h1")
    writers.register(b, "containers", "h1")
    writers.done(a)
    writers.done(b)
    assert writers.active == {} and writers.parts == {} and writers.disturbed == set()


def test_the_part_of_a_row() -> None:
    assert part_of("containers", PK, ("h1", "d1")) == "h1"
    assert part_of("containers", "host_id", "h1") == "h1"
    assert part_of("slots", PK, "s1") == WHOLE
    assert part_of("slots", "host_id", "h1") == WHOLE
