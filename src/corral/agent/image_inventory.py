"""The agent's side of the images view (issue 18): report the engine's images (tags, size, created, the containers
made from each) when they change, and remove an unused one when the server asks (`image` request, one `end`).

Why apart from the session and from the architectures report: that one (`images`) feeds the scheduler and changes
only with images; this one is for people and also changes when containers come and go. It keeps what this
connection last sent (a reconnect reports again) and runs the engine calls on the engine monitor's worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.agent.engine_monitor import EngineMonitor
from corral.model import protocol
from corral.model.errors import CorralError, InvalidInput
from corral.model.image_inventory import IMAGE_ID, ObservedImage, image_to_wire
from corral.runtime.images import list_image_inventory, remove_image

log = logging.getLogger("corral.agent")
Send = Callable[[str, dict[str, Any]], Awaitable[None]]


class ImageInventoryReporter:
    """One per connection: what this connection last told the server about the engine's images."""

    def __init__(self, monitor: EngineMonitor, send: Send) -> None:
        self.monitor = monitor
        self._send = send
        self._sent: tuple[ObservedImage, ...] | None = None

    async def report(self) -> None:
        """Send the engine's images when they differ from the last report of this connection."""
        try:
            images = await self.monitor.call(list_image_inventory, self.monitor.engine)
        except CorralError as exc:
            log.debug("no image list now: %s", exc.message)
            return
        if images == self._sent:
            return
        await self._send(protocol.IMAGE_LIST, {"images": [image_to_wire(i) for i in images]})
        self._sent = images

    async def handle(self, message: protocol.Message) -> None:
        """An `image` request: remove, then `end` (with the error, if any) and a fresh report."""
        request_id = message.data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            await self._send(protocol.ERROR, {"message": "image needs a request_id", "in_reply_to": message.id})
            return
        error: str | None = None
        try:
            image_id = message.data.get("id")
            if message.data.get("action") != "remove":
                raise InvalidInput(f"unknown image action {message.data.get('action')!r} (remove)", field="action")
            if not isinstance(image_id, str) or not IMAGE_ID.fullmatch(image_id):
                raise InvalidInput("image needs an `id` (sha256:<hex>)", field="id")
            await self.monitor.call(remove_image, self.monitor.engine, image_id)
            log.info("removed image %s", image_id)
        except CorralError as exc:
            error = exc.message
        await self._send(
            protocol.END, {"request_id": request_id, "exit_code": 0 if error is None else 1, "error": error}
        )
        await self.report()
