"""The images report (model/image_inventory.py): the wire form round-trips, bad reports are refused naming the field,
ids are normalised, and a reference finds an image by id, id prefix or tag, never one of several."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.image_inventory import HostImage, ObservedImage, find_image, image_to_wire, images_from_wire

HEX = "0123456789abcdef"
images = st.builds(
    ObservedImage,
    id=st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    tags=st.lists(st.from_regex(r"[a-z]{1,8}:[a-z0-9]{1,5}", fullmatch=True), max_size=3, unique=True).map(
        lambda t: tuple(sorted(t))
    ),
    size=st.integers(0, 2**40),
    created=st.integers(0, 2**32).map(float),
    containers=st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), max_size=3, unique=True).map(
        lambda c: tuple(sorted(c))
    ),
)


@given(st.lists(images, max_size=5, unique_by=lambda i: i.id))
def test_the_wire_form_round_trips_sorted_by_id(observed: list[ObservedImage]) -> None:
    parsed = images_from_wire([image_to_wire(i) for i in observed])
    assert parsed == tuple(sorted(observed, key=lambda i: i.id))


def test_ids_are_normalised_and_dangling_tags_dropped() -> None:
    (image,) = images_from_wire([{"id": "A" * 64, "tags": ["<none>:<none>"], "containers": ["/web-1"]}])
    assert image.id == "sha256:" + "a" * 64 and image.tags == () and image.containers == ("web-1",)
    assert image.short_id == "a" * 12 and image.in_use and image.size == 0


@pytest.mark.parametrize(
    ("report", "field"),
    [
        ({}, "images"),
        (["x"], "images[0]"),
        ([{"id": "nothex"}], "images[0].id"),
        ([{"id": "a" * 64, "size": -1}], "images[0].size"),
        ([{"id": "a" * 64, "created": "yesterday"}], "images[0].created"),
        ([{"id": "a" * 64, "tags": "busybox"}], "images[0].tags"),
        ([{"id": "a" * 64, "containers": [1]}], "images[0].containers"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(report: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        images_from_wire(report)
    assert caught.value.field == field


def test_a_reference_finds_one_image_by_id_prefix_or_tag() -> None:
    one = ObservedImage(id="sha256:" + "1" * 64, tags=("corral/busybox:latest",))
    two = ObservedImage(id="sha256:" + "1" * 12 + "2" * 52, tags=("shop:1", "shop:old"))
    held = [one, two]
    assert find_image(held, one.id) is one
    assert find_image(held, "1" * 13) is one
    assert find_image(held, "1" * 12) is None  # both start so: ambiguous
    assert find_image(held, "corral/busybox") is one and find_image(held, "shop:old") is two
    assert find_image(held, "shop") is None and find_image(held, "") is None


def test_untagged_images_list_after_tagged_ones_of_their_host() -> None:
    tagged = HostImage("e", "h1", "one", ObservedImage(id="sha256:" + "f" * 64, tags=("z:1",)))
    bare = HostImage("e", "h1", "one", ObservedImage(id="sha256:" + "0" * 64))
    other = HostImage("e", "h0", "two", ObservedImage(id="sha256:" + "0" * 64))
    assert sorted([bare, other, tagged], key=lambda i: i.sort_key) == [tagged, bare, other]
    assert tagged.view()["in_use"] is False and tagged.view()["short_id"] == "f" * 12
