"""The agent's side of volumes (issue 17 item 4): report the engine's volumes to the server when they change, and
create or remove one when the server asks (`volume` request, answered by one `end`).

Why apart from the session: the session carries the connection; this keeps what it last reported (per
connection, so a reconnect reports again) and runs the engine calls on the engine monitor's worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.agent.engine_monitor import EngineMonitor
from corral.model import protocol
from corral.model.errors import CorralError, InvalidInput
from corral.model.volumes import (
    ObservedVolume,
    validate_driver_options,
    validate_volume_name,
    volume_to_wire,
)
from corral.runtime.volumes import create_volume, list_volumes, remove_volume

log = logging.getLogger("corral.agent")
Send = Callable[[str, dict[str, Any]], Awaitable[None]]


class VolumeReporter:
    """One per connection: what this connection last told the server about the engine's volumes."""

    def __init__(self, monitor: EngineMonitor, send: Send) -> None:
        self.monitor = monitor
        self._send = send
        self._sent: tuple[ObservedVolume, ...] | None = None

    async def report(self) -> None:
        """Send the engine's volumes when they differ from the last report of this connection."""
        try:
            volumes = await self.monitor.call(list_volumes, self.monitor.engine)
        except CorralError as exc:
            log.debug("no volume report now: %s", exc.message)
            return
        if volumes == self._sent:
            return
        await self._send(protocol.VOLUMES, {"volumes": [volume_to_wire(v) for v in volumes]})
        self._sent = volumes

    async def handle(self, message: protocol.Message) -> None:
        """A `volume` request: create or remove, then `end` (with the error, if any) and a fresh report."""
        request_id = message.data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            await self._send(protocol.ERROR, {"message": "volume needs a request_id", "in_reply_to": message.id})
            return
        error: str | None = None
        try:
            await self._act(message.data)
        except CorralError as exc:
            error = exc.message
        await self._send(
            protocol.END, {"request_id": request_id, "exit_code": 0 if error is None else 1, "error": error}
        )
        await self.report()

    async def _act(self, data: dict[str, Any]) -> None:
        action = data.get("action")
        name = validate_volume_name(data.get("name"))
        if action == "remove":
            await self.monitor.call(remove_volume, self.monitor.engine, name)
            log.info("removed volume %s", name)
            return
        if action != "create":
            raise InvalidInput(f"unknown volume action {action!r} (create or remove)", field="action")
        driver = data.get("driver") or "local"
        opts, labels = data.get("driver_opts") or {}, data.get("labels") or {}
        if not isinstance(driver, str) or not isinstance(opts, dict) or not isinstance(labels, dict):
            raise InvalidInput("driver must be a string, driver_opts and labels objects", field="driver")
        await self.monitor.call(
            _create,
            self.monitor,
            name,
            driver,
            validate_driver_options(opts),
            {str(k): str(v) for k, v in labels.items()},
        )
        log.info("created volume %s (driver %s)", name, driver)


def _create(monitor: EngineMonitor, name: str, driver: str, opts: dict[str, str], labels: dict[str, str]) -> None:
    create_volume(monitor.engine, name, driver=driver, driver_opts=opts, labels=labels)
