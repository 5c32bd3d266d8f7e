"""The oidc auth-provider against a real in-process OIDC issuer: discovery, refresh, saving."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import urllib3
import yaml

from kubectl_omepvc import errors
from kubectl_omepvc.api import kubeconfig, oidc, transport
from kubectl_omepvc.options import ConnectionOptions

NOW = 1_700_000_000.0


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with these claims (the client never checks signatures)."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


FRESH = jwt({"sub": "alice", "exp": NOW + 3600})
EXPIRED = jwt({"sub": "alice", "exp": NOW - 60})
NEW = jwt({"sub": "alice", "exp": NOW + 7200, "n": 2})


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body)


@dataclass
class Answer:
    status: int
    body: str
    content_type: str = "application/json"


def token_answer(**fields: Any) -> Answer:
    return Answer(200, json.dumps({"access_token": "at", "token_type": "bearer", **fields}))


@dataclass
class Issuer:
    """An OIDC issuer: discovery at /.well-known/openid-configuration, tokens at /token."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    discovery: Answer | None = None
    token: Callable[[Request], Answer] = lambda _: token_answer(id_token=NEW)

    @property
    def posts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST"]

    def reset(self) -> Issuer:
        self.requests.clear()
        self.discovery = None
        self.token = lambda _: token_answer(id_token=NEW)
        return self


def serve(tls: ssl.SSLContext | None = None) -> Iterator[Issuer]:
    issuer = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, answer: Answer) -> None:
            data = answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            request = Request(self.command, self.path, dict(self.headers.items()), body)
            issuer.requests.append(request)
            return request

        def do_GET(self) -> None:
            self._record()
            if self.path != "/.well-known/openid-configuration":
                self._answer(Answer(404, "{}"))
                return
            default = {"issuer": issuer.url, "token_endpoint": issuer.url + "/token"}
            self._answer(issuer.discovery or Answer(200, json.dumps(default)))

        def do_POST(self) -> None:
            request = self._record()
            self._answer(issuer.token(request) if self.path == "/token" else Answer(404, "{}"))

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    issuer.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def http_issuer() -> Iterator[Issuer]:
    yield from serve()


@pytest.fixture
def issuer(http_issuer: Issuer) -> Issuer:
    return http_issuer.reset()


def provider(url: str, **values: str | None) -> dict[str, Any]:
    config = {
        "idp-issuer-url": url,
        "client-id": "kube client",
        "client-secret": "s&cret",
        "id-token": EXPIRED,
        "refresh-token": "r1",
        **values,
    }
    return {k: v for k, v in config.items() if v is not None}


class Saved:
    """A persist callback that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def __call__(self, tokens: dict[str, str]) -> None:
        self.calls.append(dict(tokens))


def source(
    config: dict[str, Any], persist: Saved | None = None, tls: bool = False
) -> oidc.IdTokenSource:
    """A token source at a fixed time; over plain HTTP it skips loading the system CAs."""
    pool_factory = None if tls else urllib3.PoolManager
    return oidc.IdTokenSource(config, pool_factory=pool_factory, persist=persist, now=lambda: NOW)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_valid_id_token_is_used_without_asking_the_issuer(issuer: Issuer) -> None:
    saved = Saved()
    tokens = source(provider(issuer.url, **{"id-token": FRESH}), saved)
    assert tokens.token() == FRESH
    assert tokens.token() == FRESH
    assert issuer.requests == []
    assert saved.calls == []


@pytest.mark.parametrize(
    "id_token",
    [
        EXPIRED,
        jwt({"exp": NOW + 5}),
        None,
        "not-a-jwt",
        jwt({"sub": "alice"}),
        "a.%%%.c",
    ],
    ids=["expired", "inside-10s-margin", "absent", "not-a-jwt", "no-exp", "bad-base64"],
)
def test_unusable_id_token_is_refreshed(issuer: Issuer, id_token: str | None) -> None:
    saved = Saved()
    tokens = source(provider(issuer.url, **{"id-token": id_token}), saved)
    assert tokens.token() == NEW
    assert [(r.method, r.path) for r in issuer.requests] == [
        ("GET", "/.well-known/openid-configuration"),
        ("POST", "/token"),
    ]
    post = issuer.posts[0]
    assert post.form == {"grant_type": ["refresh_token"], "refresh_token": ["r1"]}
    # oauth2 sends the client credentials form-escaped in HTTP Basic auth first.
    assert post.headers["Authorization"] == basic("kube+client", "s%26cret")
    assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert saved.calls == [{"id-token": NEW, "refresh-token": "r1"}]
    assert tokens.token() == NEW  # now cached: no second refresh
    assert len(issuer.requests) == 2


@pytest.mark.parametrize(
    ("answer", "refresh_token"),
    [
        (token_answer(id_token=NEW, refresh_token="r2"), "r2"),
        (token_answer(id_token=NEW), "r1"),
        (token_answer(id_token=NEW, refresh_token=""), "r1"),
        (
            Answer(200, f"id_token={NEW}&refresh_token=r3", "application/x-www-form-urlencoded"),
            "r3",
        ),
    ],
    ids=["rotated", "kept", "empty-kept", "form-encoded-answer"],
)
def test_rotated_refresh_token_is_kept(issuer: Issuer, answer: Answer, refresh_token: str) -> None:
    issuer.token = lambda _: answer
    saved = Saved()
    tokens = source(provider(issuer.url), saved)
    assert tokens.token() == NEW
    assert saved.calls == [{"id-token": NEW, "refresh-token": refresh_token}]
    assert tokens.config["refresh-token"] == refresh_token


@pytest.mark.parametrize(
    ("secret", "form_extra"),
    [("s&cret", {"client_id": ["kube client"], "client_secret": ["s&cret"]}), (None, {})],
    ids=["with-secret", "public-client"],
)
def test_client_credentials_move_to_the_form_when_basic_auth_is_refused(
    issuer: Issuer, secret: str | None, form_extra: dict[str, list[str]]
) -> None:
    def token(request: Request) -> Answer:
        if "Authorization" in request.headers:
            return Answer(401, json.dumps({"error": "invalid_client"}))
        return token_answer(id_token=NEW)

    issuer.token = token
    tokens = source(provider(issuer.url, **{"client-secret": secret}))
    assert tokens.token() == NEW
    first, second = issuer.posts
    assert "Authorization" in first.headers
    assert "Authorization" not in second.headers
    expected = {"grant_type": ["refresh_token"], "refresh_token": ["r1"]}
    if secret is None:
        expected["client_id"] = ["kube client"]
    assert second.form == {**expected, **form_extra}


@pytest.mark.parametrize(
    ("discovery", "answer", "message"),
    [
        (
            None,
            Answer(
                400, json.dumps({"error": "invalid_grant", "error_description": "spent\ntoken"})
            ),
            r"refused to refresh the id-token \(HTTP 400, invalid_grant: spent token\)",
        ),
        (None, Answer(500, "<html>\nboom</html>", "text/html"), r"\(HTTP 500\)"),
        (None, Answer(200, json.dumps({"error": "invalid_request"})), r"HTTP 200, invalid_request"),
        (None, token_answer(), "answered the refresh without an id_token"),
        (Answer(404, "not here"), None, "OIDC discovery at .* failed with HTTP 404"),
        (Answer(200, json.dumps({"issuer": "x"})), None, "did not name a token_endpoint"),
        (Answer(200, "not json"), None, "did not name a token_endpoint"),
    ],
    ids=[
        "invalid-grant",
        "server-error",
        "error-with-200",
        "no-id-token",
        "no-discovery",
        "no-token-endpoint",
        "discovery-not-json",
    ],
)
def test_issuer_errors_are_one_line(
    issuer: Issuer, discovery: Answer | None, answer: Answer | None, message: str
) -> None:
    issuer.discovery = discovery
    if answer is not None:
        issuer.token = lambda _: answer
    saved = Saved()
    with pytest.raises(errors.ConfigError, match=message) as caught:
        source(provider(issuer.url), saved).token()
    text = str(caught.value)
    assert "\n" not in text
    assert issuer.url in text
    assert saved.calls == []


@pytest.mark.parametrize(
    ("id_token", "state"),
    [
        (EXPIRED, "has an expired id-token"),
        (None, "has no id-token"),
        ("opaque", "not a JWT with an expiry"),
    ],
    ids=["expired", "absent", "not-a-jwt"],
)
def test_no_refresh_token_asks_for_a_new_login(
    issuer: Issuer, id_token: str | None, state: str
) -> None:
    tokens = source(provider(issuer.url, **{"id-token": id_token, "refresh-token": None}))
    with pytest.raises(errors.ConfigError, match=state) as caught:
        tokens.token()
    assert caught.value.hint == oidc.LOGIN_AGAIN
    assert "no refresh-token" in caught.value.message
    assert issuer.requests == []


@pytest.mark.parametrize("key", ["idp-issuer-url", "client-id"])
def test_issuer_and_client_id_are_required(key: str) -> None:
    config = provider("https://idp.test", **{"id-token": FRESH})
    del config[key]
    with pytest.raises(errors.ConfigError, match=f"has no {key}"):
        source(config)


def test_unreachable_issuer_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(errors.ConnectionFailed, match=f"cannot reach the OIDC issuer {url}"):
        source(provider(url)).token()


# -- TLS to the issuer ----------------------------------------------------------------------


@dataclass
class Certificate:
    cert_pem: bytes
    key_pem: bytes


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI that the local control
    plane needs anyway (an EC key: quick to make)."""
    folder = tmp_path_factory.mktemp("idp-cert")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=test-idp",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate((folder / "cert.pem").read_bytes(), (folder / "key.pem").read_bytes())


@pytest.fixture(scope="module")
def https_issuer(
    certificate: Certificate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Issuer]:
    folder = tmp_path_factory.mktemp("idp")
    (folder / "idp.crt").write_bytes(certificate.cert_pem)
    (folder / "idp.key").write_bytes(certificate.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "idp.crt", folder / "idp.key")
    yield from serve(context)


@pytest.fixture
def tls_issuer(https_issuer: Issuer) -> Issuer:
    return https_issuer.reset()


@pytest.mark.parametrize("how", ["data", "file"])
def test_idp_certificate_authority_is_trusted(
    tls_issuer: Issuer, certificate: Certificate, tmp_path: Path, how: str
) -> None:
    if how == "data":
        ca = {"idp-certificate-authority-data": base64.b64encode(certificate.cert_pem).decode()}
    else:
        (tmp_path / "idp.crt").write_bytes(certificate.cert_pem)
        ca = {"idp-certificate-authority": str(tmp_path / "idp.crt")}
    tokens = source(provider(tls_issuer.url, **ca), tls=True)
    assert tokens.token() == NEW
    assert len(tls_issuer.posts) == 1


def test_issuer_certificate_is_checked_against_system_cas(tls_issuer: Issuer) -> None:
    with pytest.raises(errors.ConnectionFailed, match="TLS handshake with the OIDC issuer"):
        source(provider(tls_issuer.url), tls=True).token()


@pytest.mark.parametrize(
    ("ca", "message"),
    [
        ({"idp-certificate-authority-data": "***"}, "not valid base64"),
        ({"idp-certificate-authority-data": "bm90IGEgY2VydA=="}, "holds no usable certificate"),
        ({"idp-certificate-authority": "/nonexistent/ca.crt"}, "cannot read"),
    ],
    ids=["bad-base64", "not-pem", "missing-file"],
)
def test_bad_idp_certificate_authority(ca: dict[str, str], message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        oidc.idp_ssl_context(ca)


# -- Through kubeconfig and transport, as a command uses it ---------------------------------


def kubeconfig_files(
    tmp_path: Path, issuer_url: str, user_in_first: bool, id_token: str = EXPIRED
) -> tuple[Path, Path]:
    """Two files: the first has the context and cluster, the second the oidc user."""
    oidc_user = {
        "name": "alice",
        "user": {
            "auth-provider": {
                "name": "oidc",
                "config": {
                    "idp-issuer-url": issuer_url,
                    "client-id": "kube",
                    "client-secret": "secret",
                    "id-token": id_token,
                    "refresh-token": "r1",
                    "extra-scopes": "groups",
                },
            }
        },
    }
    first: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "work",
        "contexts": [{"name": "work", "context": {"cluster": "prod", "user": "alice"}}],
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod.test:6443"}}],
        "users": [{"name": "bob", "user": {"token": "bob-token"}}],
        "preferences": {},
    }
    second: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{"name": "carol", "user": {"token": "c"}}, oidc_user],
        "clusters": [],
        "contexts": [],
    }
    if user_in_first:
        stale = json.loads(json.dumps(oidc_user))
        stale["user"]["auth-provider"]["config"]["refresh-token"] = "other-file"
        first["users"].append(oidc_user)
        second["users"][1] = stale
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    # Hand-written layout (comments, flow style) for the file that must stay byte-for-byte.
    a.write_text("# team kubeconfig\n" + yaml.safe_dump(first, default_flow_style=None))
    b.write_text(yaml.safe_dump(second, sort_keys=False))
    a.chmod(0o600)
    b.chmod(0o640)
    return a, b


@pytest.mark.parametrize(
    "user_in_first", [False, True], ids=["user-in-second-file", "first-definition-wins"]
)
def test_refreshed_tokens_are_saved_to_the_file_defining_the_user(
    issuer: Issuer, tmp_path: Path, user_in_first: bool
) -> None:
    # Real time here: the transport's token source reads the clock itself.
    now = time.time()
    new = jwt({"sub": "alice", "exp": now + 3600})
    issuer.token = lambda _: token_answer(id_token=new, refresh_token="r2")
    a, b = kubeconfig_files(tmp_path, issuer.url, user_in_first, jwt({"exp": now - 60}))
    owner, other = (a, b) if user_in_first else (b, a)
    before = {p: (p.read_bytes(), p.stat().st_mode) for p in (a, b)}
    env = {"KUBECONFIG": f"{a}:{b}", "HOME": str(tmp_path)}

    resolved = kubeconfig.resolve(ConnectionOptions(), env)
    assert resolved.user_origin == kubeconfig.UserOrigin(str(owner), "alice")
    t = transport.from_kubeconfig(resolved.config, env, resolved.user_origin)
    _pool, header, used = t.connect()
    assert header == f"Bearer {new}"
    assert t.unauthorized(used) is False  # client-go's oidc provider does not retry a 401

    assert other.read_bytes() == before[other][0]
    expected = yaml.safe_load(before[owner][0])
    users = [u for u in expected["users"] if u["name"] == "alice"]
    users[0]["user"]["auth-provider"]["config"].update({"id-token": new, "refresh-token": "r2"})
    assert yaml.safe_load(owner.read_text()) == expected
    assert owner.stat().st_mode == before[owner][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml"]  # no temp, no lock
    assert issuer.posts[0].form["refresh_token"] == ["r1"]

    # The next run finds the saved id-token good and asks the issuer nothing.
    again = kubeconfig.resolve(ConnectionOptions(), env)
    t2 = transport.from_kubeconfig(again.config, env, again.user_origin)
    assert t2.connect()[1] == f"Bearer {new}"
    assert len(issuer.requests) == 2


def test_failed_refresh_leaves_the_kubeconfig_alone(issuer: Issuer, tmp_path: Path) -> None:
    issuer.token = lambda _: Answer(400, json.dumps({"error": "invalid_grant"}))
    a, b = kubeconfig_files(tmp_path, issuer.url, user_in_first=False)
    before = b.read_bytes()
    env = {"KUBECONFIG": f"{a}:{b}"}
    resolved = kubeconfig.resolve(ConnectionOptions(), env)
    t = transport.from_kubeconfig(resolved.config, env, resolved.user_origin)
    with pytest.raises(errors.ConfigError, match="invalid_grant"):
        t.connect()
    assert b.read_bytes() == before
