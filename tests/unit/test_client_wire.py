"""What the REST client sends and how it reads answers, against a recording server on loopback."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.options import ConnectionOptions
from tests import wire


def kubeconfig(tmp_path: Path, server: str, user: Mapping[str, object]) -> str:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


def test_redirect_is_a_one_line_error(tmp_path: Path) -> None:
    with wire.recorder() as server:
        server.reply = wire.Reply(302, {"Location": "https://login.example.test/"}, b"")
        client = Client(ConnectionOptions(kubeconfig=kubeconfig(tmp_path, server.url, {})), {})
        with pytest.raises(errors.ConnectionFailed) as caught:
            client.get_raw("/version")
    message = caught.value.format_message()
    assert "answered HTTP 302 (a redirect to https://login.example.test/)" in message
    assert "\n" not in message
    assert len(server.seen) == 1  # not followed


def test_plain_http_carries_no_credentials_but_impersonation(tmp_path: Path) -> None:
    with wire.recorder() as server:
        user = {"token": "secret", "as": "jane", "as-groups": ["a", "b"]}
        opts = ConnectionOptions(kubeconfig=kubeconfig(tmp_path, server.url, user))
        Client(opts, {}).get_raw("/version")
    seen = server.seen[0]
    assert seen.header("authorization") is None
    assert seen.headers["impersonate-user"] == ["jane"]
    assert seen.headers["impersonate-group"] == ["a", "b"]


def test_double_verbose_shows_status_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with wire.recorder() as server:
        opts = ConnectionOptions(kubeconfig=kubeconfig(tmp_path, server.url, {}), verbose=2)
        Client(opts, {}).get_raw("/version")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"kubectl-ome-pvc: GET {server.url}/version"
    assert lines[1].startswith("kubectl-ome-pvc: 200 in ") and lines[1].endswith(" ms")
