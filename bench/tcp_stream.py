"""Bulk TCP between two network namespaces for N1 (bench/overlay_crypto.py): a sink and a timed sender.

Why not `wget` inside the containers: busybox `time` counts in 10 ms steps and busybox's wget/httpd copy in small
buffers, so the plain path was measured in one 0.08 s transfer or capped by the tools rather than the network. This
runs in a container's network namespace (`nsenter -n -t PID`), so its packets take exactly the container's path
(veth, bridge, VXLAN or WireGuard), with the same 1 MiB writes and reads for both overlays, for a fixed time.

Run: tcp_stream.py sink PORT | tcp_stream.py send HOST PORT SECONDS STREAMS  (prints "BYTES SECONDS")
"""

from __future__ import annotations

import socket
import sys
import threading
import time

CHUNK = 1 << 20
WARM_UP_BYTES = 16 << 20


def sink(port: int) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(16)
    print("listening", flush=True)

    def drain(conn: socket.socket) -> None:
        buffer = bytearray(CHUNK)
        with conn:
            while conn.recv_into(buffer):
                pass

    while True:
        conn, _ = server.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def send(host: str, port: int, seconds: float, streams: int) -> None:
    data = bytes(CHUNK)
    with socket.create_connection((host, port), timeout=30) as warm:  # ARP, routes, the WireGuard handshake
        warm.sendall(bytes(WARM_UP_BYTES))
    sent = [0] * streams
    conns = [socket.create_connection((host, port), timeout=30) for _ in range(streams)]

    def push(index: int, end: float) -> None:
        with conns[index] as conn:
            while time.monotonic() < end:
                sent[index] += conn.send(data)
            conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # the sink closes once it has read everything: the clock stops on delivery

    started = time.monotonic()
    threads = [threading.Thread(target=push, args=(i, started + seconds)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sum(sent), round(time.monotonic() - started, 4), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
