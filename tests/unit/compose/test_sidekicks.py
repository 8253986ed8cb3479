"""Sidekick units in compose files: the label, its checks, volumes_from and network_mode inside a unit."""

from __future__ import annotations

import textwrap

import pytest

from .helpers import DC, RC, error, stack

UNIT = """\
version: '2'
services:
  web:
    image: busybox
    labels:
      io.rancher.sidekicks: data, helper
  data:
    image: busybox
    volumes: [/data]
  helper:
    image: busybox
    volumes_from: [data]
    network_mode: container:web
"""


def compose(services: str) -> str:
    return "version: '2'\nservices:\n" + textwrap.indent(textwrap.dedent(services), "  ")


def test_a_unit_is_recorded_on_primary_and_sidekicks() -> None:
    spec = stack(UNIT)
    web, data, helper = (spec.service(n) for n in ("web", "data", "helper"))
    assert web is not None and data is not None and helper is not None
    assert web.sidekicks == ("data", "helper")
    assert web.sidekick_of is None
    assert data.sidekick_of == "web" and helper.sidekick_of == "web"
    assert helper.launch.volumes_from == ("data",)
    assert helper.launch.network_mode == "service:web"  # container:SERVICE means the unit's container
    assert spec.warnings == ()


def test_volumes_from_forms_and_outside_containers() -> None:
    spec = stack(
        compose("""\
        web:
          image: busybox
          labels: {io.rancher.sidekicks: data}
          volumes_from: ["data:ro", "container:legacy:rw", "container:other"]
          network_mode: container:not-a-service
        data: {image: busybox}
        """)
    )
    web = spec.service("web")
    assert web is not None
    assert web.launch.volumes_from == ("data:ro", "container:legacy", "container:other")
    assert web.launch.network_mode == "container:not-a-service"


def test_sidekick_scale_follows_primary_and_own_scale_warns() -> None:
    spec = stack(
        compose("""\
        web:
          image: busybox
          labels: {io.rancher.sidekicks: data}
        data: {image: busybox, scale: 5}
        """),
        "web: {scale: 3}\n",
    )
    data = spec.service("data")
    assert data is not None and data.scale == 3
    assert any("service data: scale 5 was ignored: it is a sidekick of 'web'" in w for w in spec.warnings)


def test_depends_on_inside_a_unit_is_dropped_and_scheduling_labels_of_a_sidekick_warn() -> None:
    spec = stack(
        compose("""\
        web:
          image: busybox
          depends_on: [data, db]
          labels: {io.rancher.sidekicks: data}
        data:
          image: busybox
          labels: {io.rancher.scheduler.affinity:host_label: zone=a}
        db: {image: busybox}
        """)
    )
    web = spec.service("web")
    assert web is not None and web.depends_on == ("db",)
    assert any("scheduling label io.rancher.scheduler.affinity:host_label was ignored" in w for w in spec.warnings)


@pytest.mark.parametrize(
    ("services", "field", "message"),
    [
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: nope}}\n",
            "services.web.labels.io.rancher.sidekicks",
            "names service 'nope', which is not defined in docker-compose.yml",
        ),
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: web}}\n",
            "services.web.labels.io.rancher.sidekicks",
            "names the service itself ('web')",
        ),
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: data}}\n"
            "data: {image: busybox, labels: {io.rancher.sidekicks: log}}\n"
            "log: {image: busybox}\n",
            "services.web.labels.io.rancher.sidekicks",
            "names service 'data', which has sidekicks of its own",
        ),
        (
            "api: {image: busybox, labels: {io.rancher.sidekicks: data}}\n"
            "web: {image: busybox, labels: {io.rancher.sidekicks: data}}\n"
            "data: {image: busybox}\n",
            "services.web.labels.io.rancher.sidekicks",
            "names service 'data', which is already a sidekick of 'api'",
        ),
        (
            "web: {image: busybox, volumes_from: [db]}\ndb: {image: busybox}\n",
            "services.web.volumes_from[0]",
            "volumes_from names service 'db', which is not in the deployment unit of 'web'",
        ),
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: data}}\n"
            "data: {image: busybox, network_mode: 'service:db'}\ndb: {image: busybox}\n",
            "services.data.network_mode",
            "network_mode names service 'db', which is not in the deployment unit of 'data'",
        ),
        (
            "web: {image: busybox, volumes_from: [nope]}\n",
            "services.web.volumes_from[0]",
            "volumes_from names service 'nope', which is not defined",
        ),
        (
            "web: {image: busybox, volumes_from: ['data:rx']}\n",
            "services.web.volumes_from[0]",
            "must be SERVICE[:ro|:rw] or container:NAME[:ro|:rw]",
        ),
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: data}, volumes_from: [data]}\n"
            "data: {image: busybox, network_mode: 'container:web'}\n",
            "services.web.volumes_from[0]",
            "references form a cycle: data -> web -> data",
        ),
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: data}, ports: ['80:80']}\n"
            "data: {image: busybox, ports: ['8080:80', '80:81']}\n",
            "services.data.ports",
            "publishes port 80/tcp, which 'web' of the same deployment unit publishes too",
        ),
        (
            "web: {image: busybox, labels: {io.rancher.sidekicks: data}}\n"
            "data: {image: busybox, network_mode: 'service:web', ports: ['80:80']}\n",
            "services.data.ports",
            "cannot publish ports with network_mode service:web",
        ),
    ],
)
def test_invalid_units_name_file_service_and_reason(services: str, field: str, message: str) -> None:
    exc = error(compose(services))
    assert exc.field == f"{DC}:{field}"
    assert message in exc.message
    assert exc.message.startswith(f"{DC}: service ")


def test_unit_checks_see_rancher_compose_scale() -> None:
    spec = stack(UNIT, "data: {scale: 2}\nweb: {scale: 2}\n")
    assert [s.scale for s in spec.services if s.name in ("web", "data", "helper")] == [2, 2, 2]
    assert RC  # the rancher-compose scale of a sidekick equal to the primary's gives no warning
    assert spec.warnings == ()
