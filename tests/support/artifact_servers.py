"""Local artifact stores for the verifier and registry tests: a scripted HTTP server and a server
that accepts connections and never answers (the slow store of the noisy-neighbour tests)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    """The status line's reason phrase (a hostile server may put anything there)."""
    chunked: bool = False
    """Send the body chunked, without Content-Length."""
    content_length: int | None = None
    """Announce this Content-Length instead of the body's."""


class ScriptedServer:
    """An HTTP server answering each path with its scripted ``Reply``; it records the paths asked."""

    def __init__(self, routes: dict[str, Reply] | None = None) -> None:
        self.routes: dict[str, Reply] = dict(routes or {})
        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                reply = owner.routes.get(self.path, Reply(404, b"no such artifact"))
                self.send_response(reply.status, reply.reason)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                try:
                    if reply.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for i in range(0, len(reply.body), 4096):
                            piece = reply.body[i : i + 4096]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    length = reply.content_length if reply.content_length is not None else len(reply.body)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: its choice
                    self.close_connection = True

            def handle(self) -> None:
                with contextlib.suppress(
                    BrokenPipeError, ConnectionResetError
                ):  # a client closed a kept-alive connection
                    super().handle()

            def log_message(self, *a: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HangingServer:
    """Accepts every connection and never answers; counts the connections it holds open."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._held.append(conn)

    def open_connections(self) -> int:
        """Connections the clients still hold: a client that gave up has closed its end."""
        with self._lock:
            alive = []
            for c in self._held:
                c.setblocking(False)
                closed = False
                try:
                    while c.recv(65536):  # drain the request we never answer; b"": the client closed
                        pass
                    closed = True
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
                if closed:
                    c.close()
                else:
                    alive.append(c)
            self._held = alive
            return len(alive)

    def start(self) -> HangingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every held connection (their readers fail at once) and the listener."""
        self._stopped.set()
        with self._lock:
            for c in self._held:
                c.close()
            self._held = []
        self._sock.close()


@contextmanager
def scripted(routes: dict[str, Reply] | None = None) -> Iterator[ScriptedServer]:
    server = ScriptedServer(routes).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def hanging() -> Iterator[HangingServer]:
    server = HangingServer().start()
    try:
        yield server
    finally:
        server.stop()
