"""A recording relay on loopback, in front of the real API server.

The plugin talks plain HTTP to the relay; the relay forwards each request to the API server
over TLS, unchanged unless a test says otherwise, and records what passed. Like kubectl, the
plugin sends no credential over plain HTTP, so the relay adds the context user's token itself,
as an authenticating proxy would. Tests use it to see
the requests the plugin made (pages, retries) and to put in front of the real server what only
a busy or throttling server does: a 429 or 503 with Retry-After, or a small page size.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
import yaml

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int


@dataclasses.dataclass
class Injected:
    """Answer requests `matches` accepts with `status` (and Retry-After), `times` times."""

    matches: Callable[[str, str, dict[str, list[str]]], bool]  # (method, path, query)
    status: int
    retry_after: str | None
    times: int


WRITES = ("POST", "PUT", "PATCH", "DELETE")


def is_write(method: str, query: dict[str, list[str]], path: str = "") -> bool:
    """A write the server stores (a dry-run is not one, nor an access review: the server
    answers a SelfSubjectAccessReview and stores nothing)."""
    return method in WRITES and "dryRun" not in query and not path.endswith("accessreviews")


@dataclasses.dataclass
class Relay:
    url: str
    seen: list[Seen] = dataclasses.field(default_factory=list)
    injected: list[Injected] = dataclasses.field(default_factory=list)
    max_limit: int | None = None  # rewrite each LIST's `limit` down to this
    refuse_write: int | None = None  # refuse the n-th stored write (0-based), as admission would
    refusal: str = "denied by the test's admission policy"
    token: str | None = None  # the credential the relay adds (the kubeconfig context's user)

    def writes(self) -> list[Seen]:
        """The writes that reached the server (or were refused in its place), in order."""
        return [s for s in self.seen if is_write(s.method, s.query, s.path)]

    def inject(
        self,
        matches: Callable[[str, str, dict[str, list[str]]], bool],
        status: int,
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        self.injected.append(Injected(matches, status, retry_after, times))

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def kubeconfig(self, cluster_kubeconfig: Path, out: Path, context: str = "local-admin") -> Path:
        """The cluster's kubeconfig, with `context`'s cluster pointing at the relay."""
        doc: Obj = yaml.safe_load(cluster_kubeconfig.read_text())
        for cluster in doc["clusters"]:
            cluster["cluster"] = {"server": self.url}
        doc["current-context"] = context
        user = next(c["context"]["user"] for c in doc["contexts"] if c["name"] == context)
        self.token = next(u["user"].get("token") for u in doc["users"] if u["name"] == user)
        out.write_text(yaml.safe_dump(doc))
        return out


def _handler(relay: Relay, upstream: str, pool: urllib3.PoolManager) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _relay(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if (
                relay.refuse_write is not None
                and is_write(self.command, query, parsed.path)
                and len(relay.writes()) == relay.refuse_write
            ):
                relay.seen.append(Seen(self.command, parsed.path, query, 422))
                self._answer(422, "Invalid", f"{parsed.path}: {relay.refusal}", None)
                return
            for rule in relay.injected:
                if rule.times > 0 and rule.matches(self.command, parsed.path, query):
                    rule.times -= 1
                    relay.seen.append(Seen(self.command, parsed.path, query, rule.status))
                    self._answer(rule.status, "", "", rule.retry_after)
                    return
            if relay.max_limit is not None and "limit" in query:
                query["limit"] = [str(min(int(query["limit"][0]), relay.max_limit))]
            target = upstream + parsed.path
            if query:
                target += "?" + urllib.parse.urlencode(query, doseq=True)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
            }
            if relay.token:
                headers["Authorization"] = f"Bearer {relay.token}"
            answer = pool.request(
                self.command, target, body=body, headers=headers, preload_content=True,
                retries=False, redirect=False,
            )  # fmt: skip
            relay.seen.append(Seen(self.command, parsed.path, query, answer.status))
            data = answer.data
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, status: int, reason: str, message: str, retry: str | None) -> None:
            """A Status as the API server sends it (an admission denial is 422 Invalid)."""
            payload = json.dumps(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                 "reason": reason, "message": message}
            ).encode()  # fmt: skip
            self.send_response(status)
            if retry is not None:
                self.send_header("Retry-After", retry)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    return Handler


@contextmanager
def running(cluster_kubeconfig: Path) -> Iterator[Relay]:
    """A relay to the server of `cluster_kubeconfig` (its CA), on a free loopback port."""
    doc: Obj = yaml.safe_load(cluster_kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    pool = urllib3.PoolManager(ca_certs=cluster["certificate-authority"], maxsize=8)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    relay = Relay(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(relay, cluster["server"], pool)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        pool.clear()
