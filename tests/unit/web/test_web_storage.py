"""The volumes and images pages' templates: every value from the API escaped, the refusal's reason shown, forms only
for roles that may change, and images grouped per host with their total size."""

from __future__ import annotations

from typing import Any

from corral.web.pages_images import _by_host
from corral.web.rendering import templates

EVIL = '<script>x</script>"><img src=x>'


def _volume(name: str, containers: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "state": "active" if containers else "inactive",
        "scope": "environment",
        "stack": "",
        "driver": EVIL,
        "containers": containers,
        "hosts": [{"id": "h1", "name": EVIL, "usable": False, "containers": containers}],
    }


def _render(template: str, **context: Any) -> str:
    return templates.get_template(template).render(session=None, csrf_token="tok", **context)


def test_the_volumes_page_escapes_shows_the_refusal_and_offers_forms_only_to_writers() -> None:
    volumes = [_volume("data", [EVIL])]
    html = _render(
        "volumes.html", volumes=volumes, can_change=True, form={"name": EVIL, "driver": ""}, error=EVIL, refused="data"
    )
    assert "<script>" not in html and "<img" not in html
    assert "Volume data not removed: &lt;script&gt;" in html
    assert 'id="volume-form"' in html and "/ui/volumes/data/delete" in html and "(away)" in html
    read_only = _render("volumes.html", volumes=volumes, can_change=False, form={"name": "", "driver": ""})
    assert 'id="volume-form"' not in read_only and "/delete" not in read_only and 'id="read-only-note"' in read_only


def _image(host_id: str, image_id: str, size: int, containers: list[str]) -> dict[str, Any]:
    return {
        "host_id": host_id,
        "id": f"sha256:{image_id * 64}",
        "short_id": image_id * 12,
        "tags": [EVIL] if containers else [],
        "size": size,
        "created": 1_700_000_000,
        "containers": containers,
        "in_use": bool(containers),
        "current": True,
    }


def test_images_are_grouped_per_host_with_their_total_and_only_unused_ones_removable() -> None:
    hosts = [{"id": "h1", "name": "one", "state": "active"}, {"id": "h2", "name": "two", "state": "disconnected"}]
    groups = _by_host(hosts, [_image("h1", "a", 1024, [EVIL]), _image("h1", "b", 2048, []), _image("h9", "c", 1, [])])
    assert [(g["host"]["name"], len(g["images"]), g["size"], g["current"]) for g in groups] == [
        ("one", 2, 3072, True),
        ("two", 0, 0, None),
    ]
    html = _render("images.html", groups=groups, can_change=True, host_ref="")
    assert "<script>" not in html and "<img" not in html and "3.0 KiB" in html
    assert html.count('class="danger"') == 1 and f"/images/sha256%3A{'b' * 64}/delete" in html
    assert "the agent has not reported them" in html
    assert "danger" not in _render("images.html", groups=groups, can_change=False, host_ref="")
