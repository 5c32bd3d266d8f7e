"""Credentials and TLS from a kubeconfig context, without the official client."""

from __future__ import annotations

import base64
import json
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import urllib3

from kubectl_omepvc import errors
from kubectl_omepvc.api import transport


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


def test_static_token() -> None:
    t = transport.from_kubeconfig(config({}, {"token": "abc"}), {})
    assert t.authorization() == "Bearer abc"
    assert t.server == "https://example.test:6443"
    assert t.on_unauthorized() is False


def test_token_file_is_read_each_time(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n")
    t = transport.from_kubeconfig(config({}, {"tokenFile": str(token)}), {})
    assert t.authorization() == "Bearer one"
    token.write_text("two")
    assert t.authorization() == "Bearer two"


def test_basic_auth() -> None:
    t = transport.from_kubeconfig(config({}, {"username": "a", "password": "b"}), {})
    assert t.authorization() == "Basic " + base64.b64encode(b"a:b").decode()


def test_exec_plugin_token_cached_until_expiry(tmp_path: Path) -> None:
    body = (
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential', 'status': {'token': 'T%d' % len(open("
        f"{str(tmp_path / 'runs.log')!r}).read().splitlines()),"
        " 'expirationTimestamp': '2999-01-01T00:00:00Z'}}))"
    )
    script = plugin_script(tmp_path, body)
    user = exec_user(script, env=[{"name": "EXTRA", "value": "1"}], provideClusterInfo=True)
    t = transport.from_kubeconfig(config({"tls-server-name": "api"}, user), {"PATH": "/usr/bin"})
    assert t.authorization() == "Bearer T1"
    assert t.authorization() == "Bearer T1"  # cached: not expired
    info = runs(tmp_path)
    assert len(info) == 1
    assert info[0]["kind"] == "ExecCredential"
    assert info[0]["spec"]["interactive"] is False
    assert info[0]["spec"]["cluster"]["server"] == "https://example.test:6443"
    assert info[0]["spec"]["cluster"]["tls-server-name"] == "api"
    assert t.on_unauthorized() is True  # a 401 makes it run again
    assert t.authorization() == "Bearer T2"


def test_exec_plugin_expired_token_is_renewed(tmp_path: Path) -> None:
    body = (
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential', 'status': {'token': 'x',"
        " 'expirationTimestamp': '2000-01-01T00:00:00Z'}}))"
    )
    script = plugin_script(tmp_path, body)
    t = transport.from_kubeconfig(config({}, exec_user(script)), {})
    t.authorization()
    t.authorization()
    assert len(runs(tmp_path)) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.exit(3)", "failed with exit code 3"),
        ("print('not json')", "did not print an ExecCredential"),
        ("print(json.dumps({'status': {}}))", "returned no credentials"),
    ],
    ids=["exit-code", "garbage", "empty"],
)
def test_exec_plugin_failures_are_one_line(tmp_path: Path, body: str, message: str) -> None:
    script = plugin_script(tmp_path, body)
    with pytest.raises(errors.ConfigError, match=message):
        transport.from_kubeconfig(config({}, exec_user(script)), {})


def test_exec_plugin_missing_command_shows_install_hint(tmp_path: Path) -> None:
    user = exec_user(tmp_path / "nope", installHint="Install the cloud CLI.\nMore text.")
    with pytest.raises(errors.ConfigError) as caught:
        transport.from_kubeconfig(config({}, user), {})
    assert "cannot run exec credential plugin" in caught.value.message
    assert caught.value.hint == "Install the cloud CLI."


def test_exec_plugin_unsupported_api_version(tmp_path: Path) -> None:
    script = plugin_script(tmp_path, "pass")
    user = exec_user(script, apiVersion="client.authentication.k8s.io/v1alpha1")
    with pytest.raises(errors.ConfigError, match="not supported"):
        transport.from_kubeconfig(config({}, user), {})


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    cluster = {"certificate-authority": str(tmp_path / "ca.crt")}
    with pytest.raises(errors.ConfigError, match="certificate-authority"):
        transport.from_kubeconfig(config(cluster, {"token": "t"}), {})


def test_bad_base64_is_named() -> None:
    with pytest.raises(errors.ConfigError, match="certificate-authority-data"):
        transport.from_kubeconfig(config({"certificate-authority-data": "***"}, {}), {})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        ({"https_proxy": "http://proxy:3128", "NO_PROXY": ".test"}, None),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.test"}, None),
        ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "*"}, None),
        ({"HTTP_PROXY": "http://proxy:3128"}, None),
    ],
    ids=["https-proxy", "no-proxy-suffix", "no-proxy-host", "no-proxy-star", "http-only"],
)
def test_environment_proxy(environ: dict[str, str], expected: str | None) -> None:
    assert transport._environment_proxy("https://example.test:6443", environ) == expected


@pytest.mark.parametrize(
    ("cluster", "environ", "expected"),
    [
        ({"proxy-url": "http://proxy:3128"}, {}, "http://proxy:3128"),
        (
            {"proxy-url": "https://kube:8443"},
            {"HTTPS_PROXY": "http://env:3128"},
            "https://kube:8443",
        ),
        ({}, {"HTTPS_PROXY": "http://env:3128"}, "http://env:3128"),
    ],
    ids=["proxy-url", "proxy-url-wins-over-env", "env"],
)
def test_proxy_url_gives_a_proxy_manager(
    cluster: dict[str, str], environ: dict[str, str], expected: str
) -> None:
    t = transport.from_kubeconfig(config(cluster, {}), environ)
    assert isinstance(t.pool, urllib3.ProxyManager)
    assert t.pool.proxy is not None and t.pool.proxy.url == expected


def test_no_proxy_gives_a_plain_pool() -> None:
    t = transport.from_kubeconfig(
        config({}, {}), {"HTTPS_PROXY": "http://env:3128", "NO_PROXY": "*"}
    )
    assert not isinstance(t.pool, urllib3.ProxyManager)


def test_socks_proxy_is_refused() -> None:
    with pytest.raises(errors.ConfigError, match="only http and https proxies"):
        transport.from_kubeconfig(config({"proxy-url": "socks5://proxy:1080"}, {}), {})


def test_server_without_scheme_defaults_to_https() -> None:
    cfg = config({}, {})
    cfg["clusters"][0]["cluster"]["server"] = "10.0.0.1:6443"
    assert transport.from_kubeconfig(cfg, {}).server == "https://10.0.0.1:6443"


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
    assert t.authorization() == f"Bearer {id_token}"  # valid until 2100: no IdP request
    assert t.on_unauthorized() is False


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
