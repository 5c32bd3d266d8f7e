"""Credentials and TLS from a kubeconfig context, without the official client."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3

from kubectl_omepvc import errors
from kubectl_omepvc.api import proxy, transport
from tests import pki, wire


def config(cluster: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    return {
        "clusters": [{"name": "c", "cluster": {"server": "https://example.test:6443", **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }


def plugin_script(tmp_path: Path, body: str) -> Path:
    """An exec credential plugin: a Python script that also logs each run to runs.log."""
    script = tmp_path / "plugin"
    log = tmp_path / "runs.log"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(log)!r}, 'a').write(os.environ.get('KUBERNETES_EXEC_INFO', '') + '\\n')\n"
        f"{body}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "runs.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def exec_user(command: Path, **extra: Any) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(command),
            "interactiveMode": "Never",
            **extra,
        }
    }


def authorization(t: transport.Transport) -> str | None:
    return t.connect()[1]


def test_static_token() -> None:
    t = transport.from_kubeconfig(config({}, {"token": "abc"}), {})
    assert authorization(t) == "Bearer abc"
    assert t.server == "https://example.test:6443"
    assert t.unauthorized(t.connect()[2]) is False


def test_token_file_is_read_each_time(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    t = transport.from_kubeconfig(config({}, {"tokenFile": str(token)}), {})
    assert authorization(t) == "Bearer one"
    token.write_text("two")
    assert authorization(t) == "Bearer two"


def test_basic_auth() -> None:
    t = transport.from_kubeconfig(config({}, {"username": "a", "password": "b"}), {})
    assert authorization(t) == "Basic " + base64.b64encode(b"a:b").decode()


def credential_body(status: str, version: str = "client.authentication.k8s.io/v1") -> str:
    """A plugin body printing an ExecCredential; `status` is a Python expression; `n` is the
    number of this run (1 for the first)."""
    return (
        f"n = len(open({'RUNS'!s}).read().splitlines())\n"
        f"print(json.dumps({{'apiVersion': {version!r}, 'kind': 'ExecCredential',"
        f" 'status': {status}}}))"
    )


def counting_plugin(tmp_path: Path, status: str, **kwargs: str) -> Path:
    body = credential_body(status, **kwargs).replace("RUNS", repr(str(tmp_path / "runs.log")))
    return plugin_script(tmp_path, body)


def test_exec_plugin_token_cached_until_expiry(tmp_path: Path) -> None:
    script = counting_plugin(
        tmp_path, "{'token': 'T%d' % n, 'expirationTimestamp': '2999-01-01T00:00:00Z'}"
    )
    user = exec_user(script, env=[{"name": "EXTRA", "value": "1"}], provideClusterInfo=True)
    t = transport.from_kubeconfig(config({"tls-server-name": "api"}, user), {"PATH": "/usr/bin"})
    assert not (tmp_path / "runs.log").exists()  # nothing runs before the first request
    _pool, header, used = t.connect()
    assert header == "Bearer T1"
    assert authorization(t) == "Bearer T1"  # cached: not expired
    info = runs(tmp_path)
    assert len(info) == 1
    assert info[0]["kind"] == "ExecCredential"
    assert info[0]["spec"]["interactive"] is False
    assert info[0]["spec"]["cluster"] == {
        "server": "https://example.test:6443",
        "tls-server-name": "api",
    }
    assert t.unauthorized(used) is True  # a 401 to these credentials makes it run again
    assert authorization(t) == "Bearer T2"
    assert t.unauthorized(used) is True  # already renewed by then: no third run
    assert len(runs(tmp_path)) == 2


def test_exec_plugin_expired_token_is_renewed(tmp_path: Path) -> None:
    script = counting_plugin(
        tmp_path, "{'token': 'x', 'expirationTimestamp': '2000-01-01T00:00:00Z'}"
    )
    t = transport.from_kubeconfig(config({}, exec_user(script)), {})
    t.connect()
    t.connect()
    assert len(runs(tmp_path)) == 2


def test_exec_plugin_runs_once_for_eight_threads(tmp_path: Path) -> None:
    script = counting_plugin(tmp_path, "(__import__('time').sleep(0.3), {'token': 'T%d' % n})[1]")
    t = transport.from_kubeconfig(config({}, exec_user(script)), {})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        headers = list(pool.map(lambda _: authorization(t), range(8)))
    assert headers == ["Bearer T1"] * 8
    assert len(runs(tmp_path)) == 1


def test_exec_plugin_401_from_many_threads_runs_it_once_more(tmp_path: Path) -> None:
    script = counting_plugin(tmp_path, "(__import__('time').sleep(0.2), {'token': 'T%d' % n})[1]")
    t = transport.from_kubeconfig(config({}, exec_user(script)), {})
    used = t.connect()[2]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        renewed = list(pool.map(lambda _: t.unauthorized(used), range(8)))
    assert renewed == [True] * 8
    assert len(runs(tmp_path)) == 2


@pytest.mark.parametrize(
    ("mode", "terminal", "interactive", "stdin_seen"),
    [
        ("Never", True, False, ""),
        ("IfAvailable", False, False, ""),
        ("IfAvailable", True, True, "typed"),
        ("Always", True, True, "typed"),
    ],
)
def test_exec_plugin_interactive_mode(
    tmp_path: Path, mode: str, terminal: bool, interactive: bool, stdin_seen: str
) -> None:
    body = (
        "import select\n"
        "data = sys.stdin.read() if sys.stdin and not sys.stdin.closed else ''\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential', 'status': {'token': data.strip() or 'none'}}))"
    )
    script = plugin_script(tmp_path, body)
    stdin = tmp_path / "stdin"
    stdin.write_text("typed\n")
    t = transport.from_kubeconfig(
        config({}, exec_user(script, interactiveMode=mode)), {}, stdin_is_terminal=lambda: terminal
    )
    with open(stdin) as handle, pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdin", handle)
        os_stdin = os.dup(0)
        os.dup2(handle.fileno(), 0)
        try:
            header = authorization(t)
        finally:
            os.dup2(os_stdin, 0)
            os.close(os_stdin)
    assert runs(tmp_path)[0]["spec"]["interactive"] is interactive
    assert header == f"Bearer {stdin_seen or 'none'}"


def test_exec_plugin_always_interactive_needs_a_terminal(tmp_path: Path) -> None:
    script = counting_plugin(tmp_path, "{'token': 't'}")
    user = exec_user(script, interactiveMode="Always")
    t = transport.from_kubeconfig(config({}, user), {}, stdin_is_terminal=lambda: False)
    with pytest.raises(errors.ConfigError, match="needs a terminal"):
        t.connect()
    assert not (tmp_path / "runs.log").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.exit(3)", "failed with exit code 3"),
        ("print('not json')", "printed no JSON"),
        ("print(json.dumps([1]))", "something other than an ExecCredential"),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
            " 'kind': 'ExecCredential'}))",
            "without a status",
        ),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
            " 'kind': 'ExecCredential', 'status': {}}))",
            "without a token or a certificate",
        ),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
            " 'kind': 'ExecCredential', 'status': {'token': 5}}))",
            "is not a string",
        ),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
            " 'kind': 'ExecCredential', 'status': {'clientCertificateData': 'x'}}))",
            "only a certificate or only a key",
        ),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
            " 'kind': 'ExecCredential', 'status': {'token': 't', 'expirationTimestamp': 'soon'}}))",
            "not a time",
        ),
        (
            "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1',"
            " 'kind': 'ExecCredential', 'status': {'token': 't'}}))",
            "answered with apiVersion 'client.authentication.k8s.io/v1beta1'",
        ),
    ],
    ids=["exit-code", "garbage", "list", "no-status", "empty", "token-type", "half-pair",
         "bad-time", "other-version"],
)  # fmt: skip
def test_exec_plugin_failures_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    script = plugin_script(tmp_path, body)
    t = transport.from_kubeconfig(config({}, exec_user(script)), {})
    with pytest.raises(errors.ConfigError, match=re.escape(message)) as caught:
        t.connect()
    assert "\n" not in caught.value.format_message()


def test_exec_plugin_missing_command_shows_the_whole_install_hint(tmp_path: Path) -> None:
    hint = "Install the cloud CLI:\n\x1b[1m  brew install cloud\x1b[0m\nthen log in."
    user = exec_user(tmp_path / "nope", installHint=hint)
    t = transport.from_kubeconfig(config({}, user), {})
    with pytest.raises(errors.ConfigError) as caught:
        t.connect()
    assert "cannot run exec credential plugin" in caught.value.message
    assert caught.value.hint == "Install the cloud CLI:\n  brew install cloud\nthen log in."


def test_exec_plugin_cluster_info_as_client_go_builds_it(tmp_path: Path) -> None:
    script = counting_plugin(tmp_path, "{'token': 't'}")
    ca = pki.make_ca(tmp_path / "pki")
    cluster = {
        "certificate-authority": str(ca.cert),
        "proxy-url": "http://proxy.test:3128",
        "extensions": [
            {"name": "other", "extension": {"no": 1}},
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}},
        ],
    }
    t = transport.from_kubeconfig(config(cluster, exec_user(script, provideClusterInfo=True)), {})
    t.connect()
    assert runs(tmp_path)[0]["spec"]["cluster"] == {
        "server": "https://example.test:6443",
        "certificate-authority-data": base64.b64encode(ca.cert.read_bytes()).decode(),
        "proxy-url": "http://proxy.test:3128",
        "config": {"audience": "x"},
    }


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    cluster = {"certificate-authority": str(tmp_path / "ca.crt")}
    with pytest.raises(errors.ConfigError, match="certificate-authority"):
        transport.from_kubeconfig(config(cluster, {"token": "t"}), {})


def test_bad_ca_pem_is_one_line(tmp_path: Path) -> None:
    bad = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    t = transport.from_kubeconfig(config({"certificate-authority-data": bad.decode()}, {}), {})
    with pytest.raises(errors.ConfigError, match="unable to load root certificates") as caught:
        t.connect()
    assert "\n" not in caught.value.format_message()


def test_ca_with_insecure_is_refused(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path)
    cluster = {"certificate-authority": str(ca.cert), "insecure-skip-tls-verify": True}
    with pytest.raises(errors.ConfigError, match="root certificates file with the insecure flag"):
        transport.from_kubeconfig(config(cluster, {}), {})


def test_bad_base64_is_named() -> None:
    with pytest.raises(errors.ConfigError, match="certificate-authority-data"):
        transport.from_kubeconfig(config({"certificate-authority-data": "***"}, {}), {})


# -- which credential is used (client-go's precedence) -------------------------------------


def test_token_before_exec_and_oidc(tmp_path: Path) -> None:
    script = counting_plugin(tmp_path, "{'token': 'from-exec'}")
    t = transport.from_kubeconfig(config({}, {"token": "tok", **exec_user(script)}), {})
    assert authorization(t) == "Bearer tok"
    assert not (tmp_path / "runs.log").exists()  # the plugin never ran
    user = oidc_user(**{"idp-issuer-url": "https://idp.invalid", "client-id": "k"})
    t = transport.from_kubeconfig(config({}, {**user, "token": "tok"}), {})
    assert authorization(t) == "Bearer tok"  # the expired-less oidc config was not asked


def test_client_certificate_keeps_exec_from_running(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "pki")
    client = pki.issue(ca, tmp_path / "pki", "jane")
    script = counting_plugin(tmp_path, "{'token': 'from-exec'}")
    user = {"client-certificate": str(client.cert), "client-key": str(client.key)}
    t = transport.from_kubeconfig(config({}, {**user, **exec_user(script)}), {})
    assert authorization(t) is None
    assert not (tmp_path / "runs.log").exists()


def test_token_with_basic_auth_is_refused() -> None:
    user = {"tokenFile": "/dev/null", "username": "a", "password": "b"}
    with pytest.raises(errors.ConfigError, match="both a token and a username/password"):
        transport.from_kubeconfig(config({}, user), {})


@pytest.mark.parametrize("server", ["http://example.test:8080", "example.test:8080"])
def test_plain_http_sends_no_credentials(tmp_path: Path, server: str) -> None:
    script = counting_plugin(tmp_path, "{'token': 'from-exec'}")
    for user in ({"token": "t"}, {"username": "a", "password": "b"}, exec_user(script),
                 oidc_user(**{"client-id": "k"})):  # fmt: skip
        cfg = config({}, {**user, "as": "bob"})
        cfg["clusters"][0]["cluster"]["server"] = server
        t = transport.from_kubeconfig(cfg, {})
        assert t.server == "http://example.test:8080"  # no scheme means http, as in client-go
        assert authorization(t) is None
        assert t.impersonation == [("Impersonate-User", "bob")]
    assert not (tmp_path / "runs.log").exists()


def test_impersonation_headers_from_the_user() -> None:
    user = {
        "token": "t",
        "as": "jane",
        "as-uid": "42",
        "as-groups": ["devs", "ops"],
        "as-user-extra": {"scopes": ["a", "b"], "example.com/team name%": ["x"]},
    }
    t = transport.from_kubeconfig(config({}, user), {})
    assert t.impersonation == [
        ("Impersonate-User", "jane"),
        ("Impersonate-Uid", "42"),
        ("Impersonate-Group", "devs"),
        ("Impersonate-Group", "ops"),
        ("Impersonate-Extra-scopes", "a"),
        ("Impersonate-Extra-scopes", "b"),
        ("Impersonate-Extra-example.com%2Fteam%20name%25", "x"),
    ]


# -- client keys never stay on disk ----------------------------------------------------------


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "temp-file"])
def test_client_key_leaves_nothing_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memfd: bool
) -> None:
    ca = pki.make_ca(tmp_path / "pki")
    client = pki.issue(ca, tmp_path / "pki", "jane")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    if not memfd:
        monkeypatch.delattr(os, "memfd_create")
    data = {
        "client-certificate-data": base64.b64encode(client.cert.read_bytes()).decode(),
        "client-key-data": base64.b64encode(client.key.read_bytes()).decode(),
    }
    t = transport.from_kubeconfig(config({}, data), {})
    t.connect()
    assert list(scratch.iterdir()) == []


def test_sigterm_while_loading_keys_leaves_no_key_file(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "pki")
    client = pki.issue(ca, tmp_path / "pki", "jane")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    child = subprocess.Popen(
        [
            sys.executable, "-c",
            "import os, ssl, sys\n"
            "del os.memfd_create\n"  # the portable path: a temp file
            "from kubectl_omepvc.api import transport\n"
            f"pem = open({str(client.cert)!r}, 'rb').read()"
            f" + open({str(client.key)!r}, 'rb').read()\n"
            "print('ready', flush=True)\n"
            "while True: transport.ssl_context({}, None, pem)\n",
        ],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    assert child.wait(10) == -signal.SIGTERM
    assert list(scratch.iterdir()) == []


# -- proxies by Go's rules -------------------------------------------------------------------


def no_proxy(value: str, name: str = "NO_PROXY") -> dict[str, str]:
    return {"HTTPS_PROXY": "http://p", name: value}


@pytest.mark.parametrize(
    ("server", "environ", "expected"),
    [
        ("https://example.test:6443", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://example.test:6443", {"https_proxy": "p:3128"}, "http://p:3128"),
        ("https://example.test:6443", {"HTTPS_PROXY": "http://p:1", "https_proxy": "http://q:2"}, "http://p:1"),
        ("https://example.test:6443", {"HTTP_PROXY": "http://p:3128"}, None),
        ("http://example.test:8080", {"HTTP_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://127.0.0.1:6443", {"HTTPS_PROXY": "http://p:3128"}, None),
        ("https://[::1]:6443", {"HTTPS_PROXY": "http://p:3128"}, None),
        ("https://localhost:6443", {"HTTPS_PROXY": "http://p:3128"}, None),
        ("https://127.8.0.1:6443", {"HTTPS_PROXY": "http://p:3128"}, None),
        ("https://10.1.2.3:6443", no_proxy("10.0.0.0/8"), None),
        ("https://11.1.2.3:6443", no_proxy("10.0.0.0/8"), "http://p"),
        ("https://10.1.2.3:6443", no_proxy("10.1.2.3:6443"), None),
        ("https://10.1.2.3:443", no_proxy("10.1.2.3:6443"), "http://p"),
        ("https://api.example.test:6443", no_proxy("example.test", "no_proxy"), None),
        ("https://example.test:6443", no_proxy("example.test"), None),
        ("https://example.test:6443", no_proxy("*.example.test"), "http://p"),
        ("https://a.example.test:6443", no_proxy("*.example.test"), None),
        ("https://example.test:6443", no_proxy(".example.test"), "http://p"),
        ("https://a.example.test", no_proxy("a.example.test:443"), None),
        ("https://a.example.test:6443", no_proxy("a.example.test:443"), "http://p"),
        ("https://badexample.test", no_proxy("example.test"), "http://p"),
        ("https://example.test", no_proxy(" x , * "), None),
        ("https://[fd00::5]:6443", no_proxy("fd00::/8"), None),
    ],
)  # fmt: skip
def test_environment_proxy_by_gos_rules(
    server: str, environ: dict[str, str], expected: str | None
) -> None:
    assert proxy.for_server(server, None, environ) == expected


def test_proxy_url_ignores_no_proxy_and_loopback() -> None:
    via = proxy.for_server("https://127.0.0.1:1", "socks5://p:1080", {"NO_PROXY": "*"})
    assert via == "socks5://p:1080"


def test_proxy_url_gives_a_proxy_manager() -> None:
    t = transport.from_kubeconfig(config({"proxy-url": "http://proxy:3128"}, {}), {})
    assert isinstance(t.pool, urllib3.ProxyManager)
    t = transport.from_kubeconfig(config({"proxy-url": "ftp://proxy:21"}, {}), {})
    with pytest.raises(errors.ConfigError, match="unsupported scheme 'ftp'"):
        t.connect()


def test_socks5_proxy_url_tunnels_the_request() -> None:
    with wire.recorder() as server, wire.SocksProxy() as socks:
        cfg = config({"proxy-url": f"socks5://127.0.0.1:{socks.port}"}, {})
        cfg["clusters"][0]["cluster"]["server"] = server.url
        t = transport.from_kubeconfig(cfg, {})
        response = t.pool.request("GET", f"{server.url}/version")
        assert response.status == 200
        assert socks.targets == [f"127.0.0.1:{server.port}"]
        assert [s.path for s in server.seen] == ["/version"]


def test_https_proxy_without_scheme_is_http_connect(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path)
    cert = pki.issue(ca, tmp_path, "server", server_names=("api.example.test",))
    tls = wire.tls_server_context(str(cert.cert), str(cert.key))
    with wire.recorder(tls) as server, wire.HttpProxy(connect_to="127.0.0.1") as connect_proxy:
        cfg = config(
            {"certificate-authority": str(ca.cert), "tls-server-name": "api.example.test"},
            {"token": "t"},
        )
        cfg["clusters"][0]["cluster"]["server"] = f"https://10.255.0.1:{server.port}"
        t = transport.from_kubeconfig(cfg, {"HTTPS_PROXY": f"127.0.0.1:{connect_proxy.port}"})
        response = t.pool.request("GET", f"https://10.255.0.1:{server.port}/version")
        assert response.status == 200
        assert server.seen[0].path == "/version"
        assert connect_proxy.targets == [f"10.255.0.1:{server.port}"]


# -- client certificates from an exec plugin rotate --------------------------------------------


def test_rotated_exec_certificate_closes_the_old_connections(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "pki")
    certs = [pki.issue(ca, tmp_path / "pki", f"user{i}") for i in (1, 2)]
    server_cert = pki.issue(ca, tmp_path / "pki", "server", server_names=("127.0.0.1",))
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps([{"cert": c.cert.read_text(), "key": c.key.read_text()} for c in certs])
    )
    script = counting_plugin(
        tmp_path,
        f"{{'clientCertificateData': json.load(open({str(answers)!r}))[n - 1]['cert'],"
        f" 'clientKeyData': json.load(open({str(answers)!r}))[n - 1]['key']}}",
    )
    tls = wire.tls_server_context(str(server_cert.cert), str(server_cert.key), str(ca.cert))
    with wire.recorder(tls) as server:
        cfg = config({"certificate-authority": str(ca.cert)}, exec_user(script))
        cfg["clusters"][0]["cluster"]["server"] = server.url
        t = transport.from_kubeconfig(cfg, {})
        first_pool, _, used = t.connect()
        first_pool.request("GET", f"{server.url}/a").release_conn()
        server.reply = wire.Reply(401)
        assert t.unauthorized(used) is True  # the server refused user1: run the plugin again
        second_pool, _, _ = t.connect()
        assert second_pool is not first_pool
        server.reply = wire.Reply(200)
        second_pool.request("GET", f"{server.url}/b").release_conn()
        deadline = time.monotonic() + 5
        while server.seen[0].connection not in server.closed and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [s.client_subject for s in server.seen] == ["commonName=user1", "commonName=user2"]
    assert server.seen[0].connection != server.seen[1].connection
    assert server.seen[0].connection in server.closed  # the old certificate's connection


def oidc_user(**config: str) -> dict[str, Any]:
    return {"auth-provider": {"name": "oidc", "config": config}}


@pytest.mark.parametrize(
    ("provider", "message", "hint"),
    [
        (
            {"name": "gcp", "config": {"access-token": "x"}},
            'the "gcp" auth-provider was removed in kubectl 1.26; use the gke-gcloud-auth-plugin',
            "gcloud components install gke-gcloud-auth-plugin",
        ),
        (
            {"name": "azure", "config": {"tenant-id": "t"}},
            'the "azure" auth-provider was removed in kubectl 1.26; use the kubelogin',
            "kubelogin convert-kubeconfig",
        ),
        (
            {"name": "openstack"},
            'auth-provider "openstack" is not supported (kubectl supports only "oidc")',
            "exec credential plugin",
        ),
    ],
    ids=["gcp", "azure", "unknown"],
)
def test_removed_auth_providers_say_what_to_use(
    provider: dict[str, Any], message: str, hint: str
) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        transport.from_kubeconfig(config({}, {"auth-provider": provider}), {})
    assert caught.value.message.startswith(message)
    assert hint in (caught.value.hint or "")


def test_oidc_user_sends_its_id_token() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 4102444800}).encode()).decode()
    id_token = f"h.{payload.rstrip('=')}.s"
    user = oidc_user(**{"idp-issuer-url": "https://idp.invalid", "client-id": "k"})
    user["auth-provider"]["config"]["id-token"] = id_token
    t = transport.from_kubeconfig(config({}, user), {})
    _pool, header, used = t.connect()
    assert header == f"Bearer {id_token}"  # valid until 2100: no IdP request
    assert t.unauthorized(used) is False


def test_oidc_user_without_issuer_is_named() -> None:
    with pytest.raises(errors.ConfigError, match="has no idp-issuer-url"):
        transport.from_kubeconfig(config({}, oidc_user(**{"client-id": "k"})), {})


def test_auth_provider_and_exec_together_is_an_error(tmp_path: Path) -> None:
    user = {**oidc_user(**{"idp-issuer-url": "https://idp", "client-id": "k"})}
    user.update(exec_user(tmp_path / "plugin"))
    with pytest.raises(errors.ConfigError, match="both an auth-provider and an exec plugin"):
        transport.from_kubeconfig(config({}, user), {})


def test_package_never_imports_the_official_client() -> None:
    package = Path(transport.__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import|from)\s+kubernetes\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_expired_exec_certificate_gets_a_new_pool(tmp_path: Path) -> None:
    ca = pki.make_ca(tmp_path / "pki")
    certs = [pki.issue(ca, tmp_path / "pki", f"user{i}") for i in (1, 2)]
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([c.pem() for c in certs]))
    pem = f"json.load(open({str(answers)!r}))[min(n, 2) - 1]"
    script = counting_plugin(
        tmp_path,
        f"{{'clientCertificateData': {pem}, 'clientKeyData': {pem},"
        " 'expirationTimestamp': '2000-01-01T00:00:00Z' if n == 1 else '2999-01-01T00:00:00Z'}",
    )
    t = transport.from_kubeconfig(
        config({"certificate-authority": str(ca.cert)}, exec_user(script)), {}
    )
    first = t.connect()[0]
    first.connection_from_url("https://example.test:6443")  # a pool with (idle) connections
    second = t.connect()[0]  # the first answer had expired: the plugin ran again
    assert second is not first
    assert len(first.pools) == 0  # the old certificate's connections are closed
    assert t.connect()[0] is second  # the second answer is still good
    assert len(runs(tmp_path)) == 2
