"""The streams the server opens on agents (logs, stats, exec, builds, volumes) and relays to their clients.

Why bounded, and apart from the hub: a client may read slower than an agent writes, so when more than
`stream_high_bytes` of a stream's output waits for its client, the agent is told to `pause` that stream (only that
one), and to `resume` once the client has read it down to `stream_low_bytes`. A stream whose agent sends past
`stream_limit_bytes` anyway, or whose client has not read for `stream_stall_seconds`, is ended with a reason that
says so. The hub (server/hub/hub.py) owns the sockets and hands this relay the stream messages; the relay sends through
the hub's `send`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from corral.model import protocol
from corral.model.errors import Unavailable

log = logging.getLogger("corral.hub")

STREAM_HIGH_BYTES = 1024 * 1024
STREAM_LOW_BYTES = 256 * 1024
STREAM_LIMIT_BYTES = 8 * 1024 * 1024
STREAM_STALL_SECONDS = 600.0


@dataclass
class Stream:
    """One logs or exec stream opened on an agent; its `output` and `end` messages arrive on `queue`."""

    request_id: str
    host_id: str
    queue: asyncio.Queue[protocol.Message] = field(default_factory=asyncio.Queue)
    ended: bool = False
    buffered: int = 0  # bytes of `output` data waiting in `queue`
    paused: bool = False  # the agent was told to pause this stream
    stall: asyncio.TimerHandle | None = None  # ends the stream when it stays paused too long
    opened_by: str = ""  # the id of the message that asked for it: an agent's `error` in reply to it ends it


class StreamRelay:
    def __init__(self, send: Callable[[str, protocol.Message], Awaitable[bool]]) -> None:
        self._send = send  # to a host's connected agent; False when it is not connected
        self.streams: dict[str, Stream] = {}
        self.stream_high_bytes = STREAM_HIGH_BYTES
        self.stream_low_bytes = STREAM_LOW_BYTES
        self.stream_limit_bytes = STREAM_LIMIT_BYTES
        self.stream_stall_seconds = STREAM_STALL_SECONDS

    async def open_stream(self, host_id: str, kind: str, data: dict[str, object]) -> Stream:
        """Ask a connected agent for a logs or exec stream; Unavailable if the host's agent is not connected."""
        stream = Stream(request_id=secrets.token_hex(12), host_id=host_id)
        request = protocol.Message(kind, {**data, "request_id": stream.request_id})
        stream.opened_by = request.id
        self.streams[stream.request_id] = stream
        if not await self._send(host_id, request):
            del self.streams[stream.request_id]
            raise Unavailable("the agent of this container's host is not connected")
        return stream

    async def send_to_stream(self, stream: Stream, kind: str, data: dict[str, object]) -> None:
        if not stream.ended:
            await self._send(stream.host_id, protocol.Message(kind, {**data, "request_id": stream.request_id}))

    async def close_stream(self, stream: Stream, error: str = "cancelled") -> None:
        """Forget a stream; if the agent has not ended it yet, tell it to stop."""
        self.streams.pop(stream.request_id, None)
        if stream.stall is not None:
            stream.stall.cancel()
        if not stream.ended:
            stream.ended = True
            end = {"request_id": stream.request_id, "exit_code": None, "error": error}
            stream.queue.put_nowait(protocol.Message(protocol.END, end))  # wakes a reader still waiting
            await self._send(stream.host_id, protocol.Message(protocol.CANCEL, {"request_id": stream.request_id}))

    async def next_message(self, stream: Stream) -> protocol.Message:
        """The stream's next `output` or `end`, for its client; resumes the agent once the client has caught up."""
        message = await stream.queue.get()
        stream.buffered -= _output_bytes(message)
        if stream.paused and stream.buffered <= self.stream_low_bytes and not stream.ended:
            stream.paused = False
            if stream.stall is not None:
                stream.stall.cancel()
                stream.stall = None
            await self._send(stream.host_id, protocol.Message(protocol.RESUME, {"request_id": stream.request_id}))
        return message

    def on_error(self, host_id: str, message: protocol.Message) -> None:
        """An agent's `error` in reply to the message that opened a stream (an agent too old to know the request,
        or one that refused it): the stream ends with that error rather than waiting out its deadline."""
        replied_to = message.data.get("in_reply_to")
        if not isinstance(replied_to, str) or not replied_to:
            return
        for stream in list(self.streams.values()):
            if stream.opened_by == replied_to and stream.host_id == host_id and not stream.ended:
                stream.ended = True
                if stream.stall is not None:
                    stream.stall.cancel()
                error = f"the agent refused the request: {message.data.get('message', '')}"
                end = {"request_id": stream.request_id, "exit_code": None, "error": error, "refused": True}
                stream.queue.put_nowait(protocol.Message(protocol.END, end))

    async def on_message(self, host_id: str, message: protocol.Message) -> None:
        request_id = message.data.get("request_id")
        stream = self.streams.get(request_id) if isinstance(request_id, str) else None
        if stream is None or stream.host_id != host_id or stream.ended:  # unknown, finished, another host's
            return
        if message.type == protocol.END:
            stream.ended = True
            if stream.stall is not None:
                stream.stall.cancel()
            stream.queue.put_nowait(message)
            return
        size = _output_bytes(message)
        if stream.buffered + size > self.stream_limit_bytes:  # the agent did not pause: never hold more than this
            log.warning("stream %s of host %s: over %d bytes unread; ended", request_id, host_id, stream.buffered)
            await self.close_stream(
                stream, f"the client read too slowly: more than {self.stream_limit_bytes} bytes of output waited"
            )
            return
        stream.buffered += size
        stream.queue.put_nowait(message)
        if not stream.paused and stream.buffered >= self.stream_high_bytes:
            stream.paused = True
            stream.stall = asyncio.get_running_loop().call_later(
                self.stream_stall_seconds, lambda: asyncio.ensure_future(self._stalled(stream))
            )
            await self._send(host_id, protocol.Message(protocol.PAUSE, {"request_id": stream.request_id}))

    async def _stalled(self, stream: Stream) -> None:
        if stream.paused and not stream.ended:
            await self.close_stream(
                stream, f"the client read nothing for {self.stream_stall_seconds:g} s: stream ended"
            )

    def end_streams_of(self, host_id: str, reason: str) -> None:
        for stream in list(self.streams.values()):
            if stream.host_id == host_id and not stream.ended:
                stream.ended = True
                if stream.stall is not None:
                    stream.stall.cancel()
                stream.queue.put_nowait(
                    protocol.Message(
                        protocol.END, {"request_id": stream.request_id, "exit_code": None, "error": reason}
                    )
                )


def _output_bytes(message: protocol.Message) -> int:
    data = message.data.get("data") if message.type == protocol.OUTPUT else None
    return len(data) if isinstance(data, str) else 0
