"""Misbehaving HTTP servers on loopback: what a broken proxy, a hostile host or a careless gateway would answer.

``HostileServer`` accepts real TCP connections on 127.0.0.1, reads each request (head and body), records it, and
hands the raw socket to a ``respond(sock, request)`` function that writes whatever it likes: an endless body, one
byte a second, an answer about another task, the request's own ``Authorization`` header. Nothing here imports the
provider: these servers know HTTP, not our client.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


Respond = Callable[[socket.socket, Request], None]


@dataclass
class HostileServer:
    """A loopback server whose answers are written by ``respond``; ``requests`` lists what it received."""

    respond: Respond
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, path_part: str) -> int:
        return sum(path_part in r.path for r in self.requests)

    def close(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            while True:  # keep-alive: one request after another on the same connection
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                self.respond(_Counting(conn, self), request)
                if request.headers.get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


class _Counting:
    """The client socket, counting what the server wrote to it."""

    def __init__(self, conn: socket.socket, server: HostileServer) -> None:
        self._conn = conn
        self._server = server

    def sendall(self, data: bytes) -> None:
        self._conn.sendall(data)
        self._server.bytes_sent += len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, path, headers, rest[:length])


# ------------------------------------------------------------------------------------------------ answers
def head(status: int = 200, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def send(sock: Any, body: bytes | str, status: int = 200, headers: dict[str, str] | None = None) -> None:
    """Write a whole answer with its Content-Length."""
    data = body.encode() if isinstance(body, str) else body
    sock.sendall(head(status, {"Content-Type": "application/json", **(headers or {})}, len(data)) + data)


def send_json(sock: Any, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
    send(sock, json.dumps(payload), status, headers)


def answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Respond:
    """A ``respond`` that always sends ``payload`` as JSON."""
    return lambda sock, request: send_json(sock, payload, status, headers)


def endless(sock: Any, request: Request, *, chunk: bytes = b" " * 65536, limit_seconds: float = 20.0) -> None:
    """A chunked answer that never ends (until the client leaves, or ``limit_seconds`` pass: loops are bounded)."""
    sock.sendall(head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}) + b"1\r\n{\r\n")
    deadline = time.monotonic() + limit_seconds
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    while time.monotonic() < deadline:
        sock.sendall(frame)


def trickle(sock: Any, data: bytes, *, every: float = 1.0, status: int = 200,
            headers: dict[str, str] | None = None, limit_seconds: float = 30.0) -> None:
    """Send the whole head at once, then the body one byte every ``every`` seconds (bounded by ``limit_seconds``)."""
    sock.sendall(head(status, {"Content-Type": "application/json", **(headers or {})}, len(data)))
    deadline = time.monotonic() + limit_seconds
    for i in range(len(data)):
        if time.monotonic() >= deadline:
            return
        sock.sendall(data[i:i + 1])
        time.sleep(every)  # the misbehaviour under test: a server that answers one byte a second


def gzip_bomb(decoded_bytes: int) -> bytes:
    """A small gzip body that decodes to ``decoded_bytes`` spaces inside a JSON string."""
    return gzip.compress(b'{"code":200,"msg":"' + b" " * decoded_bytes + b'"}', compresslevel=9)
