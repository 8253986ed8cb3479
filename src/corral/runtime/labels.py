"""Label keys Corral puts on every container it creates.

Why constants: engine labels are the only truth a restarted agent has about which containers are Corral's and
what they were created from; server, agent and runtime must spell the keys the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

# spelt once, in the vocabulary (the pure core reads them too)
from corral.model.container_labels import CONFIG_HASH as CONFIG_HASH
from corral.model.container_labels import START_ONCE_KEYS as START_ONCE_KEYS
from corral.model.container_labels import is_start_once as is_start_once
from corral.model.container_labels import says

PREFIX = "io.corral."

ENVIRONMENT = "io.corral.environment"
STACK = "io.corral.stack"
SERVICE = "io.corral.service"
CONTAINER = "io.corral.container"  # Corral's uuid of the container (survives recreation of the Docker container)
SERVICE_INDEX = "io.corral.service.index"
HOST_PORTS = "io.corral.host-ports"  # random host ports it was created with, "80/tcp:49200,..." (a change recreates)
OVERLAY_IP = "io.corral.overlay-ip"  # the managed overlay address the container was created with (a change recreates)

MANAGED = ENVIRONMENT  # a container carrying this key was created by Corral

ALL = (ENVIRONMENT, STACK, SERVICE, CONTAINER, SERVICE_INDEX, CONFIG_HASH)

# Rancher 1.x spellings, set too so that catalog templates and tools written for Rancher find our containers.
RANCHER_STACK_NAME = "io.rancher.stack.name"  # "STACK"
RANCHER_STACK_SERVICE_NAME = "io.rancher.stack_service.name"  # "STACK/SERVICE"

# Container labels a user sets (either spelling) that change how the agent treats a container.
PULL_IMAGE_KEYS = frozenset({"io.rancher.container.pull_image", "io.corral.container.pull_image"})  # "always"


def pulls_always(launch_labels: Iterable[tuple[str, str]]) -> bool:
    """`pull_image: always`: the image is pulled before every create."""
    return says(launch_labels, PULL_IMAGE_KEYS, "always")
