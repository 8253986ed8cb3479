"""Image references, image architectures and the agents' `images` report: the pure parts of heterogeneous hosts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model import protocol
from corral.model.errors import InvalidInput
from corral.model.images import archs_of_image, image_arch, normalise_reference
from corral.runtime.docker_engine import is_image_action, is_state_action


@pytest.mark.parametrize(
    ("reference", "normalised"),
    [
        ("busybox", "busybox:latest"),
        ("busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox", "busybox:latest"),
        ("library/busybox:1.36", "busybox:1.36"),
        ("index.docker.io/corral/busybox-arm64", "corral/busybox-arm64:latest"),
        ("corral/busybox-arm64:latest", "corral/busybox-arm64:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("localhost:5000/app:2", "localhost:5000/app:2"),
        ("registry.example/team/app@sha256:abc", "registry.example/team/app@sha256:abc"),
        ("app:1.0@sha256:abc", "app@sha256:abc"),
        ("localhost:5000/app:1@sha256:abc", "localhost:5000/app@sha256:abc"),
        ("SHA256:ABCDEF", "sha256:abcdef"),
        ("  busybox  ", "busybox:latest"),
        ("<none>:<none>", ""),
        ("<none>@<none>", ""),
        ("", ""),
    ],
)
def test_references_are_normalised(reference: str, normalised: str) -> None:
    assert normalise_reference(reference) == normalised


_component = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
_references = st.builds(
    lambda registry, parts, tag, digest: (
        (registry + "/" if registry else "")
        + "/".join(parts)
        + (":" + tag if tag else "")
        + ("@" + digest if digest else "")
    ),
    st.sampled_from(["", "docker.io", "localhost:5000", "registry.example"]),
    st.lists(_component, min_size=1, max_size=3),
    st.one_of(st.just(""), _component),
    st.one_of(st.just(""), _component.map(lambda d: "sha256:" + d)),
)


@given(_references)
def test_normalising_is_idempotent(reference: str) -> None:
    once = normalise_reference(reference)
    assert once and normalise_reference(once) == once


@pytest.mark.parametrize(
    ("architecture", "variant", "arch"),
    [
        ("arm64", "v8", "aarch64"),
        ("amd64", "", "x86_64"),
        ("arm", "v7", "armv7l"),
        ("arm", "", "armv7l"),
        ("arm", "v6", "armv6l"),
        ("riscv64", "", "riscv64"),
        ("", "", ""),
    ],
)
def test_image_architecture_from_inspect_fields(architecture: str, variant: str, arch: str) -> None:
    assert image_arch(architecture, variant) == arch


def test_archs_of_an_image_are_the_union_over_hosts() -> None:
    x86 = {"corral/busybox:latest": ("x86_64",), "multi:1": ("x86_64",)}
    arm = {"corral/busybox-arm64:latest": ("aarch64",), "multi:1": ("aarch64",)}
    assert archs_of_image("corral/busybox-arm64", [x86, arm]) == frozenset({"aarch64"})
    assert archs_of_image("docker.io/corral/busybox:latest", [x86, arm]) == frozenset({"x86_64"})
    assert archs_of_image("multi:1", [x86, arm]) == frozenset({"x86_64", "aarch64"})


def test_an_image_no_host_knows_is_not_filtered() -> None:
    reports = [{"corral/busybox:latest": ("x86_64",)}, {}]
    assert archs_of_image("nginx", reports) is None
    assert archs_of_image("", reports) is None
    assert archs_of_image("nginx", []) is None
    assert archs_of_image("odd:1", [{"odd:1": ()}]) is None  # known, but without an architecture: no filter


def test_an_images_message_is_parsed_and_normalised() -> None:
    raw = protocol.Message(
        protocol.IMAGES,
        {"images": {"busybox": ["amd64"], "docker.io/library/busybox:latest": ["arm64"], "sha256:AB": ["x86_64"]}},
    ).encode()
    message = protocol.decode(raw)
    assert message.type == protocol.IMAGES and protocol.IMAGES in protocol.AGENT_MESSAGE_TYPES
    assert protocol.images_from_wire(message.data["images"]) == {
        "busybox:latest": ("aarch64", "x86_64"),
        "sha256:ab": ("x86_64",),
    }


def test_images_round_trip_through_the_wire() -> None:
    images = {"corral/busybox-arm64:latest": ("aarch64",), "sha256:0123": ("aarch64",)}
    wire = json.loads(json.dumps(protocol.images_to_wire(images)))
    assert protocol.images_from_wire(wire) == images


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["busybox"], "images must be an object"),
        ({"busybox": "amd64"}, "images['busybox'] must be a list of architecture strings"),
        ({"busybox": [1]}, "images['busybox'] must be a list of architecture strings"),
    ],
)
def test_a_malformed_images_report_names_the_field(data: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        protocol.images_from_wire(data)
    assert caught.value.field == "images" and message in caught.value.message


def test_a_huge_images_report_is_refused() -> None:
    data = {f"img{i}:1": ["amd64"] for i in range(protocol.MAX_IMAGE_REFERENCES + 1)}
    with pytest.raises(InvalidInput, match="more than"):
        protocol.images_from_wire(data)


def test_image_events_are_told_apart_from_container_events() -> None:
    for action in ("pull", "load", "tag", "untag", "delete", "import"):
        assert is_image_action("image:" + action) and not is_state_action("image:" + action)
    assert not is_image_action("image:save") and not is_image_action("image:push")
    assert not is_image_action("destroy") and not is_image_action("tag")
