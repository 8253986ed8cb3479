"""The agent's side of `corral pull` (issue 18): pull the images the server names, now, and answer per image.

Why through the converger's `ImagePuller` (agent/pulls.py): one table of pulls per host, so an operator's pull and a
container waiting for the same image share one engine pull; credentials are the ones a container of the image would
use: the request's `registries` (the server sends those of the registries its images come from), else those of
the last `desired` message. Answered by one `end` whose `results` hold, per image,
`pulled` (a new image id), `present` (the engine had that image already: the pull changed nothing) or `failed`
with the engine's reason. Nothing is created or restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.agent.converge import Converger
from corral.agent.engine_monitor import EngineMonitor
from corral.agent.pulls import PULL_TIMEOUT_SECONDS, ImagePuller
from corral.model import protocol
from corral.model.builds import is_built_image
from corral.model.errors import CorralError, InvalidInput
from corral.model.registries import RegistryCredential, credential_for, credentials_from_wire
from corral.runtime import containers as runtime

log = logging.getLogger("corral.agent")
Send = Callable[[str, dict[str, Any]], Awaitable[None]]
MAX_IMAGES = 200


class PullRequests:
    def __init__(
        self, monitor: EngineMonitor, converger: Converger, send: Send, on_pulled: Callable[[], Awaitable[None]]
    ) -> None:
        self.monitor = monitor
        self.converger = converger
        self._send = send
        self._on_pulled = on_pulled  # sends a fresh image report
        self._own_puller: ImagePuller | None = None

    def _puller(self) -> ImagePuller:
        if self.converger.puller is not None:
            return self.converger.puller
        if self._own_puller is None:  # an agent built without background pulls (tests): one on the same engine
            self._own_puller = ImagePuller(self.monitor.engine)
        return self._own_puller

    async def handle(self, message: protocol.Message) -> None:
        request_id = message.data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            await self._send(protocol.ERROR, {"message": "pull needs a request_id", "in_reply_to": message.id})
            return
        images = message.data.get("images")
        if (
            not isinstance(images, list)
            or len(images) > MAX_IMAGES
            or not all(isinstance(i, str) and 0 < len(i) <= protocol.MAX_REFERENCE_LENGTH for i in images)
        ):
            error = f"pull needs `images`, a list of up to {MAX_IMAGES} image references"
            await self._send(protocol.END, {"request_id": request_id, "exit_code": 1, "error": error})
            return
        try:
            sent = credentials_from_wire(message.data.get("registries"))
        except InvalidInput as exc:
            await self._send(protocol.END, {"request_id": request_id, "exit_code": 1, "error": exc.message})
            return
        registries = {**self.converger.registries, **sent}
        results = await asyncio.gather(*(self._pull(image, registries) for image in dict.fromkeys(images)))
        failed = any(r["status"] == "failed" for r in results)
        await self._send(
            protocol.END, {"request_id": request_id, "exit_code": 1 if failed else 0, "error": None, "results": results}
        )
        await self._on_pulled()

    async def _pull(self, image: str, registries: dict[str, RegistryCredential]) -> dict[str, str]:
        try:
            before = await self.monitor.call(runtime.image_identity, self.monitor.engine, image)
            if is_built_image(image):  # no registry has it: the server sends it (agent/builds.py)
                if before:
                    return {"image": image, "status": "present", "id": before, "reason": ""}
                return _failed(image, "built by Corral: the server sends it to a host that runs its containers")
            credential = credential_for(image, registries)
            failure = await asyncio.to_thread(self._puller().pull_now, image, credential, PULL_TIMEOUT_SECONDS)
            if failure:
                return _failed(image, failure)
            after = await self.monitor.call(runtime.image_identity, self.monitor.engine, image)
        except CorralError as exc:
            return _failed(image, exc.message)
        status = "present" if before and before == after else "pulled"
        log.info("pull of %s asked by the server: %s (%s)", image, status, after)
        return {"image": image, "status": status, "id": after, "reason": ""}


def _failed(image: str, reason: str) -> dict[str, str]:
    return {"image": image, "status": "failed", "id": "", "reason": reason}
