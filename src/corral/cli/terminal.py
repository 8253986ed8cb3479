"""Interactive exec over a websocket: the local terminal in raw mode wired to a process in a container.

Why its own module: terminal modes, signals and two pumps (stdin → socket, socket → stdout) are fiddly and have
nothing to do with the rest of the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import sys
import threading
from collections.abc import Iterator

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _stdin_to_socket(socket: ClientConnection) -> None:
    fd = sys.stdin.fileno()
    with contextlib.suppress(ConnectionClosed, OSError):
        while True:
            data = os.read(fd, 4096)
            if not data:
                socket.send(json.dumps({"eof": True}))
                return
            socket.send(data)


def interactive_exec(url: str, headers: dict[str, str], *, tty: bool, ssl_context: ssl.SSLContext | None = None) -> int:
    """Run the session; returns the command's exit code (1 if it could not run)."""
    try:
        secure = ssl_context if url.startswith("wss:") else None
        socket = connect(url, additional_headers=headers, max_size=None, ssl=secure)
    except (OSError, ConnectionClosed) as exc:
        print(f"error: cannot open the exec session: {exc}", file=sys.stderr)
        return 1
    exit_code = 1
    with socket, _raw_terminal(tty):
        if tty:
            size = shutil.get_terminal_size()
            socket.send(json.dumps({"resize": [size.lines, size.columns]}))
        threading.Thread(target=_stdin_to_socket, args=(socket,), daemon=True).start()
        with contextlib.suppress(ConnectionClosed):
            for frame in socket:
                if isinstance(frame, bytes):
                    sys.stdout.buffer.write(frame)
                    sys.stdout.flush()
                    continue
                status = json.loads(frame)
                if status.get("error"):
                    print(f"\r\nerror: {status['error']}", file=sys.stderr)
                code = status.get("exit_code")
                exit_code = code if isinstance(code, int) else 1
                break
    return exit_code
