"""Websockets of the UI opened from tests with every wait bounded.

Why not websockets' sync client alone: when the server does not answer its handshake within `open_timeout`, the
client joins its receiving thread, which may sit in a blocking SSL read (select woke it for TLS data, SSL_read then
waits for a whole record) that closing the socket does not wake; the test then hangs until pytest-timeout (300 s).
Reproduced with websockets 17.4 against a TLS server that completes the handshake and stays silent.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import pytest
import websockets.sync.client as ws_client
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED
from websockets.typing import Origin
from websockets.uri import parse_uri

from tests.integration.servers import ServerProcess


def open_socket(
    url: str, origin: str, server: ServerProcess, timeout: float, headers: dict[str, str] | None = None
) -> tuple[int, int | None, list[bytes]]:
    """Open a websocket as a browser of `origin` would and read until the server closes it: (handshake status, close
    code, data frames received). Every step has its share of one deadline, so a server that never answers fails the
    test within `timeout` s, naming the step and with the server's log (websockets' own sync client, after a handshake
    timeout, can hang in its receiving thread, blocked in an SSL read, until something arrives)."""
    uri = parse_uri(url)
    protocol = ClientProtocol(uri, origin=Origin(origin))
    request = protocol.connect()
    request.headers.update(headers or {})
    deadline = time.monotonic() + timeout
    step = "connecting"

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    status, data_frames = 0, []
    try:
        raw = socket.create_connection((uri.host, uri.port), timeout=remaining())
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(raw)
            context = server.ssl_context()
            if uri.secure and context is not None:
                step = "in the TLS handshake"
                raw.settimeout(remaining())
                sock = stack.enter_context(context.wrap_socket(raw, server_hostname=uri.host))
            protocol.send_request(request)
            step = "waiting for the handshake response"
            while protocol.close_rcvd is None and protocol.state is not CLOSED:
                for data in protocol.data_to_send():
                    if data:
                        sock.sendall(data)
                sock.settimeout(remaining())
                received = sock.recv(65536)
                if received:
                    protocol.receive_data(received)
                else:
                    protocol.receive_eof()
                for event in protocol.events_received():
                    if isinstance(event, Response):
                        status, step = event.status_code, "waiting for the close frame"
                    elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                        data_frames.append(bytes(event.data))
            with contextlib.suppress(OSError):  # the close frame's echo: a polite end, not needed by the test
                for data in protocol.data_to_send():
                    sock.sendall(data)
    except TimeoutError:
        pytest.fail(f"no answer within {timeout} s {step} (server log, last lines):\n{server.log()}")
    close_code = protocol.close_rcvd.code if protocol.close_rcvd is not None else None
    return status, close_code, data_frames


def connect(url: str, server: ServerProcess, timeout: float, **options: Any) -> ws_client.ClientConnection:
    """websockets' sync `connect` with `open_timeout=timeout`, failing the test at most 10 s after that if the client
    hangs after a handshake timeout (it is left behind in a daemon thread)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(ws_client.connect(url, open_timeout=timeout, ssl=server.ssl_context(), **options))
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="ws-connect", daemon=True)
    thread.start()
    thread.join(timeout + 10)
    if not outcome:
        pytest.fail(f"websocket {url}: no handshake within {timeout} s (server log, last lines):\n{server.log()}")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    connection: ws_client.ClientConnection = outcome[0]
    return connection
