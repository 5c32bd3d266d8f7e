"""Recording servers on loopback: what a client really sent, for wire-level tests.

`Recorder` is an HTTP(S) server that answers every request with one configurable reply and
keeps each request's method, path, headers, client-certificate subject and connection number,
and which connections the client closed. `SocksProxy` is a SOCKS5 proxy (no authentication)
that records the addresses it was asked to connect to. `HttpProxy` is an HTTP CONNECT proxy.
"""

from __future__ import annotations

import dataclasses
import http.server
import itertools
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubectl_omepvc.api import proxy


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, list[str]]
    client_subject: str | None
    connection: int

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclasses.dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b'{"kind":"Status","apiVersion":"v1","status":"Success"}'


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Recorder:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self.reply = Reply()
        self.closed: set[int] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.number = next(recorder._ids)

            def finish(self) -> None:
                super().finish()
                with recorder._lock:
                    recorder.closed.add(self.number)

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers: dict[str, list[str]] = {}
                for key, value in self.headers.items():
                    headers.setdefault(key.lower(), []).append(value)
                subject = None
                if isinstance(self.connection, ssl.SSLSocket):
                    peer = self.connection.getpeercert()
                    if peer:
                        subject = ",".join(
                            f"{pair[0]}={pair[1]}"
                            for rdn in peer.get("subject", ())
                            for pair in rdn
                        )
                with recorder._lock:
                    recorder.seen.append(
                        Seen(self.command, self.path, headers, subject, self.number)
                    )
                reply = recorder.reply
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def tls_server_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(client_ca)
    return context


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 5)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()


class _Proxy:
    """A tunnelling proxy; subclasses read the target address from the client."""

    def __init__(self, connect_to: str | None = None) -> None:
        # connect_to: the host every tunnel really goes to (loopback tests of remote names).
        self.connect_to = connect_to
        self.targets: list[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._stop = False

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        try:
            host, port = self.handshake(client)
            self.targets.append(f"{host}:{port}")
            upstream = socket.create_connection((self.connect_to or host, port), timeout=5)
            self.connected(client)
        except OSError:
            client.close()
            return
        _pipe(client, upstream)

    def handshake(self, client: socket.socket) -> tuple[str, int]:
        raise NotImplementedError

    def connected(self, client: socket.socket) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop = True
        self.listener.close()


_recv = proxy.receive_exactly


class SocksProxy(_Proxy):
    def handshake(self, client: socket.socket) -> tuple[str, int]:
        _, count = _recv(client, 2)
        _recv(client, count)
        client.sendall(b"\x05\x00")
        _, _, _, kind = _recv(client, 4)
        if kind == 1:
            host = socket.inet_ntoa(_recv(client, 4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv(client, 16))
        else:
            host = _recv(client, _recv(client, 1)[0]).decode()
        return host, int.from_bytes(_recv(client, 2), "big")

    def connected(self, client: socket.socket) -> None:
        client.sendall(b"\x05\x00\x00\x01" + bytes(6))


class HttpProxy(_Proxy):
    def handshake(self, client: socket.socket) -> tuple[str, int]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                raise OSError("closed")
            data += chunk
        method, target, _ = data.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            raise OSError(f"not a CONNECT: {method}")
        host, _, port = target.rpartition(":")
        return host.strip("[]"), int(port)

    def connected(self, client: socket.socket) -> None:
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")


@contextmanager
def recorder(tls: ssl.SSLContext | None = None) -> Iterator[Recorder]:
    with Recorder(tls) as running:
        yield running
