"""HTTP stream relays of the UI: a container's logs and stats, read from `/v1` as they arrive and passed on to the
page's `fetch()` unchanged.

Why async and unbuffered: a followed log or a stats stream lasts as long as the page is open. Each relay holds one
upstream request on the event loop (no thread per open page), forwards every chunk at once, and closes the upstream
request as soon as the browser goes away, which in turn stops the stream on the container's agent. Nothing is
buffered here: the next chunk is read from the API only when the browser has taken the last one, so a slow browser
slows the API's response, whose bounded queue pauses the agent's stream (server/hub/hub.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.responses import Response, StreamingResponse

from corral.web.sessions import Session

CONNECT_SECONDS = 10.0


async def relay_stream(
    session: Session, path: str, params: Mapping[str, str | int | bool], media_type: str
) -> Response:
    """GET `path` of the API with the session's key pair; stream its body to the browser.

    An API error (404, 409, 503...) comes back with its status and the API's message as plain text, so the page's
    script can show it instead of an empty box; an upstream cut after the headers breaks the browser's response
    off (never a clean end), so the script sees an error rather than a log that merely looks complete."""
    client = httpx.AsyncClient(
        base_url=session.api_url,
        headers=dict(session.client().auth_headers),
        timeout=httpx.Timeout(CONNECT_SECONDS, read=None),
        verify=session.ssl_context if session.ssl_context is not None else True,
    )
    query = {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in params.items()}
    try:
        upstream = await client.send(client.build_request("GET", path, params=query), stream=True)
    except httpx.TransportError as exc:
        await client.aclose()
        return Response(f"cannot reach the Corral API: {exc}\n", status_code=503, media_type="text/plain")
    if upstream.status_code >= 400:
        body = await upstream.aread()
        await upstream.aclose()
        await client.aclose()
        return Response(api_error_message(body), status_code=upstream.status_code, media_type="text/plain")

    async def chunks() -> AsyncIterator[bytes]:
        # An upstream cut mid-way (the API went away) propagates: the browser's response is broken off without its
        # last chunk, so the page's reader fails and says so. Ending it cleanly would pass a cut log for a whole one.
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(
        chunks(), media_type=media_type, headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"}
    )


def api_error_message(body: bytes) -> str:
    """The `message` of an API error body (JSON), or the body itself."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
    if isinstance(decoded, dict):
        for key in ("message", "detail"):
            if isinstance(decoded.get(key), str):
                return str(decoded[key])
    return body.decode(errors="replace")
