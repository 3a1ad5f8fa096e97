"""The HTTP layer: a stdlib ``ThreadingHTTPServer`` adapter around ``Dispatcher``, and ``EmulatorServer``.

HTTP/1.1 with exact ``Content-Length`` on every reply, so keep-alive clients (requests/httpx pools) reuse
connections; one daemon thread per connection; a deep listen backlog so bursts of a few hundred connects are
queued by the kernel instead of refused.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from seedream_emulator.config import EmulatorConfig
from seedream_emulator.handlers import Dispatcher
from seedream_emulator.state import EmulatorState
from seedream_emulator.wire import Reply, Request, gateway_error

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11; the package supports 3.10

#: Largest request body read into memory (a 10 MB image as base64 is ~13.4 MB; leave room for "too big" tests).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Idle keep-alive connections are dropped after this many seconds, freeing their thread.
IDLE_TIMEOUT_SECONDS = 120.0


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler: read the request, ask the dispatcher, write or reset."""

    protocol_version = "HTTP/1.1"
    server_version = "seedream-emulator/1.0"
    timeout = IDLE_TIMEOUT_SECONDS
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Without NODELAY, a reply written as headers + body meets the client's delayed ACK: ~40 ms per request.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as exc:
            # The rest of the body was not read, so the connection cannot be reused.
            self.close_connection = True
            self._send(gateway_error(exc.status, str(exc)))
            return
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            client_host=self.client_address[0],
        )
        try:
            reply = self.server.dispatcher.handle(request)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer like a server would
            self.log_error("internal error on %s %s: %r", self.command, parts.path, exc)
            reply = gateway_error(500, "Internal Server Error")
        if reply.reset:
            self._reset_connection()
        else:
            self._send(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BodyError(400, "invalid Content-Length") from None
        if length < 0:
            raise _BodyError(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise _BodyError(400, "invalid chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and reply.body:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            # The client gave up (e.g. after its read timeout during a "delay" fault).
            self.close_connection = True

    def _reset_connection(self) -> None:
        """Abort the connection so the peer sees a TCP reset rather than a clean close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference to the socket; the descriptor closes (with RST) only when both are closed.
        self.rfile.close()
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer tuned for many keep-alive clients, tracking connections so ``stop`` can close them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.dispatcher = dispatcher
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    @property
    def verbose(self) -> bool:
        """Read at each use, so ``POST /_emulator/config {"verbose": true}`` takes effect at once."""
        return self.dispatcher.state.config.verbose

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can hang without network.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open client connection (idle keep-alive threads then exit)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that vanish mid-request are normal here (timeouts, resets); only say so when asked.
        if self.verbose:
            super().handle_error(request, client_address)


class EmulatorServer:
    """The emulator as a loopback HTTP server, served from a daemon thread.

    ``with EmulatorServer(EmulatorConfig(task_seconds=0.2)) as emu: requests.get(emu.url + "/api/v1/chat/credit")``

    :param config: settings (defaults: ``EmulatorConfig()``).
    :param host: address to bind; loopback by default, and it should stay so outside a sandbox.
    :param port: port to bind; 0 picks a free one (read it back from ``url`` / ``port``).
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = EmulatorState(config or EmulatorConfig())
        self._host = host
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._bound_port: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> EmulatorConfig:
        """The settings in force (see ``state.update_config`` to change them)."""
        return self.state.config

    @property
    def port(self) -> int:
        """The bound port (known once ``start`` has run)."""
        if self._bound_port is None:
            raise RuntimeError("EmulatorServer is not started")
        return self._bound_port

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:40123`` (only after ``start``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind, start serving in a daemon thread, and return ``self``."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self._host, self._requested_port), Dispatcher(self.state))
        self._bound_port = int(self._httpd.server_address[1])
        self.state.set_server_address(self.url, self._host, self.port)
        self.state.start_ticker()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="seedream-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close open connections, stop the ticker. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        self.state.stop_ticker()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
