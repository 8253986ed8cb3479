"""An agent that answers a stream request with `error` (too old to know the request type, or refusing it) ends
that stream at once with its reason, instead of the caller waiting out the request's deadline; errors replying to
anything else, or from another host, end nothing."""

from __future__ import annotations

import asyncio

from corral.model import protocol
from corral.server.hub.image_pulls import _read_answer
from corral.server.hub.stream_relay import StreamRelay


def test_an_error_in_reply_to_the_request_ends_its_stream_only() -> None:
    async def scenario() -> None:
        sent: list[tuple[str, protocol.Message]] = []

        async def send(host_id: str, message: protocol.Message) -> bool:
            sent.append((host_id, message))
            return True

        relay = StreamRelay(send)
        pull = await relay.open_stream("h1", "pull", {"images": ["corral/busybox:latest"]})
        logs = await relay.open_stream("h1", "logs", {"container": "c1"})
        request = sent[0][1]
        unrelated = protocol.Message(protocol.ERROR, {"message": "bad", "in_reply_to": "someone-else"})
        relay.on_error("h1", unrelated)
        relay.on_error("h2", protocol.Message(protocol.ERROR, {"message": "x", "in_reply_to": request.id}))
        assert not pull.ended and not logs.ended
        refused = {"message": "unknown message type 'pull'", "in_reply_to": request.id}
        relay.on_error("h1", protocol.Message(protocol.ERROR, refused))
        end = await asyncio.wait_for(relay.next_message(pull), 1)
        assert end.type == protocol.END and "unknown message type 'pull'" in end.data["error"]
        assert end.data["refused"] is True  # not "the host went away": image_pulls reports it as failed
        assert pull.ended and not logs.ended

    asyncio.run(scenario())


def test_a_refused_pull_is_a_failure_not_a_missing_host() -> None:
    refused = {
        "exit_code": None,
        "error": "the agent refused the request: unknown message type 'pull'",
        "refused": True,
    }
    assert _read_answer(["a:1"], refused)["a:1"]["status"] == "failed"
    assert _read_answer(["a:1"], {"exit_code": None, "error": "host went away"})["a:1"]["status"] == "skipped"
