"""The UI's stream relay against a real (local, raw TCP) upstream: a stream cut mid-way must reach the browser as a
broken response, never as a clean end, or a page shows part of a log as all of it (the build log's "end of log")."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.responses import StreamingResponse

from corral.web.sessions import Session
from corral.web.streams import relay_stream

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


async def _relay_from(body: bytes) -> tuple[list[bytes], BaseException | None]:
    """Relay one GET from an upstream that answers `body` after the headers and closes; the chunks and the error."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    session = Session(token="t", access_key="a", secret_key="s", csrf_token="c", api_url=f"http://127.0.0.1:{port}")
    chunks: list[bytes] = []
    error: BaseException | None = None
    try:
        response = await relay_stream(session, "/v1/log", {"follow": True}, "text/plain")
        assert isinstance(response, StreamingResponse)
        try:
            async for chunk in response.body_iterator:
                chunks.append(chunk if isinstance(chunk, bytes) else str(chunk).encode())
        except httpx.TransportError as exc:
            error = exc
    finally:
        session.close()
        server.close()
        await server.wait_closed()
    return chunks, error


def test_a_whole_stream_ends_cleanly() -> None:
    chunks, error = asyncio.run(_relay_from(b"6\r\nline 1\r\n0\r\n\r\n"))
    assert b"".join(chunks) == b"line 1"
    assert error is None


@pytest.mark.parametrize("body", [b"6\r\nline 1\r\n", b""])
def test_a_stream_cut_mid_way_breaks_the_response_off(body: bytes) -> None:
    chunks, error = asyncio.run(_relay_from(body))
    assert b"".join(chunks) == (b"line 1" if body else b"")
    assert isinstance(error, httpx.TransportError)  # propagated: the browser's response ends without its last chunk
