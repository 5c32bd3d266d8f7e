"""kubeconfig resolution must match kubectl's, not the Python client's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_omepvc import errors
from kubectl_omepvc.api import kubeconfig
from kubectl_omepvc.options import ConnectionOptions


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def config(
    current: str | None, contexts: dict[str, tuple[str, str, str | None]], server: str = "https://a"
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    for name, (cluster, user, ns) in contexts.items():
        ctx: dict[str, Any] = {"cluster": cluster, "user": user}
        if ns:
            ctx["namespace"] = ns
        doc["contexts"].append({"name": name, "context": ctx})
        doc["clusters"].append({"name": cluster, "cluster": {"server": f"{server}/{cluster}"}})
        doc["users"].append({"name": user, "user": {"token": f"tok-{user}"}})
    if current:
        doc["current-context"] = current
    return doc


def server_of(resolved: kubeconfig.ResolvedConfig) -> str:
    return str(resolved.config["clusters"][0]["cluster"]["server"])


def test_first_file_current_context_wins(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("ctx-a", {"ctx-a": ("ca", "ua", None)}))
    b = write(tmp_path / "b", config("ctx-b", {"ctx-b": ("cb", "ub", "team")}))
    resolved = kubeconfig.resolve(ConnectionOptions(), {"KUBECONFIG": f"{a}:{b}", "HOME": "/x"})
    assert resolved.context_name == "ctx-a"
    assert server_of(resolved) == "https://a/ca"


def test_context_defined_only_in_second_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config(None, {"ctx-a": ("ca", "ua", None)}))
    b = write(tmp_path / "b", config("ctx-b", {"ctx-b": ("cb", "ub", "team")}))
    resolved = kubeconfig.resolve(ConnectionOptions(), {"KUBECONFIG": f"{a}:{b}", "HOME": "/x"})
    assert resolved.context_name == "ctx-b"
    assert resolved.namespace == "team"
    assert resolved.config["users"][0]["user"] == {"token": "tok-ub"}


def test_first_definition_of_a_named_entry_wins(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c", {"c": ("shared", "u", None)}, server="https://first"))
    b = write(tmp_path / "b", config("c", {"c": ("shared", "u", None)}, server="https://second"))
    resolved = kubeconfig.resolve(ConnectionOptions(), {"KUBECONFIG": f"{a}:{b}", "HOME": "/x"})
    assert server_of(resolved) == "https://first/shared"


def test_missing_files_in_kubeconfig_list_are_skipped(tmp_path: Path) -> None:
    b = write(tmp_path / "b", config("c", {"c": ("cl", "u", None)}))
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}:{b}", "HOME": "/x"}
    assert kubeconfig.resolve(ConnectionOptions(), env).context_name == "c"


def test_explicit_kubeconfig_is_the_only_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("ctx-a", {"ctx-a": ("ca", "ua", None)}))
    b = write(tmp_path / "b", config("ctx-b", {"ctx-b": ("cb", "ub", None)}))
    opts = ConnectionOptions(kubeconfig=str(b))
    resolved = kubeconfig.resolve(opts, {"KUBECONFIG": str(a), "HOME": "/x"})
    assert resolved.context_name == "ctx-b"
    with pytest.raises(errors.ConfigError, match="ctx-a"):
        kubeconfig.resolve(ConnectionOptions(kubeconfig=str(b), context="ctx-a"), {})


def test_missing_explicit_kubeconfig_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="does not exist"):
        kubeconfig.resolve(ConnectionOptions(kubeconfig=str(tmp_path / "nope")), {})


def test_home_default(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    write(tmp_path / ".kube" / "config", config("h", {"h": ("hc", "hu", None)}))
    assert kubeconfig.resolve(ConnectionOptions(), {"HOME": str(tmp_path)}).context_name == "h"


def test_no_kubeconfig_anywhere(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="no kubeconfig found"):
        kubeconfig.resolve(ConnectionOptions(), {"HOME": str(tmp_path)})


def test_unknown_context_names_it(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c", {"c": ("cl", "u", None)}))
    with pytest.raises(errors.ConfigError, match='context "nope" does not exist'):
        kubeconfig.resolve(ConnectionOptions(kubeconfig=str(a), context="nope"), {})


@pytest.mark.parametrize(
    ("flag_ns", "expected"),
    [(None, "ctx-ns"), ("flag-ns", "flag-ns")],
    ids=["from-context", "flag-wins"],
)
def test_namespace_precedence(tmp_path: Path, flag_ns: str | None, expected: str) -> None:
    a = write(tmp_path / "a", config("c", {"c": ("cl", "u", "ctx-ns")}))
    opts = ConnectionOptions(kubeconfig=str(a), namespace=flag_ns)
    assert kubeconfig.resolve(opts, {}).namespace == expected


def test_namespace_defaults_to_default(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c", {"c": ("cl", "u", None)}))
    assert kubeconfig.resolve(ConnectionOptions(kubeconfig=str(a)), {}).namespace == "default"


def test_overrides(tmp_path: Path) -> None:
    doc = config("c", {"c": ("cl", "u", None), "d": ("other", "u2", None)})
    a = write(tmp_path / "a", doc)
    opts = ConnectionOptions(
        kubeconfig=str(a),
        cluster="other",
        user="u2",
        server="https://override:6443",
        token="secret",
        insecure_skip_tls_verify=True,
        tls_server_name="api.internal",
    )
    resolved = kubeconfig.resolve(opts, {})
    cluster = resolved.config["clusters"][0]["cluster"]
    assert cluster == {
        "server": "https://override:6443",
        "insecure-skip-tls-verify": True,
        "tls-server-name": "api.internal",
    }
    assert resolved.config["users"][0]["user"] == {"token": "secret"}


def test_relative_paths_resolve_against_their_own_file(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a = write(tmp_path / "one" / "cfg", {"current-context": "c"})
    b_doc = config(None, {"c": ("cl", "u", None)})
    b_doc["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"
    b_doc["users"][0]["user"] = {
        "client-certificate": "certs/u.crt",
        "client-key": "/abs/u.key",
        "exec": {"command": "./bin/helper", "apiVersion": "client.authentication.k8s.io/v1"},
    }
    b = write(tmp_path / "two" / "cfg", b_doc)
    resolved = kubeconfig.resolve(ConnectionOptions(), {"KUBECONFIG": f"{a}:{b}"})
    two = tmp_path.resolve() / "two"
    assert resolved.config["clusters"][0]["cluster"]["certificate-authority"] == str(two / "ca.crt")
    user = resolved.config["users"][0]["user"]
    assert user["client-certificate"] == str(two / "certs" / "u.crt")
    assert user["client-key"] == "/abs/u.key"
    assert user["exec"]["command"] == str(two / "bin" / "helper")


def test_exec_command_without_slash_stays_a_path_lookup(tmp_path: Path) -> None:
    doc = config("c", {"c": ("cl", "u", None)})
    doc["users"][0]["user"] = {"exec": {"command": "aws", "args": ["eks", "get-token"]}}
    a = write(tmp_path / "a", doc)
    user = kubeconfig.resolve(ConnectionOptions(kubeconfig=str(a)), {}).config["users"][0]["user"]
    assert user["exec"]["command"] == "aws"


def oidc_entry(name: str, refresh: str) -> dict[str, Any]:
    config = {"idp-issuer-url": "https://idp", "client-id": "k", "refresh-token": refresh}
    return {"name": name, "user": {"auth-provider": {"name": "oidc", "config": config}}}


@pytest.mark.parametrize(
    ("users_a", "users_b", "opts", "origin"),
    [
        ([], ["u"], ConnectionOptions(), ("b", "u")),
        (["u"], ["u"], ConnectionOptions(), ("a", "u")),
        (["u"], ["other"], ConnectionOptions(user="other"), ("b", "other")),
        (["u"], [], ConnectionOptions(token="t"), None),
        ([], [], ConnectionOptions(), None),
    ],
    ids=["second-file", "first-definition-wins", "user-flag", "token-flag", "undefined-user"],
)
def test_user_origin_is_the_file_whose_entry_won(
    tmp_path: Path,
    users_a: list[str],
    users_b: list[str],
    opts: ConnectionOptions,
    origin: tuple[str, str] | None,
) -> None:
    a_doc = config("c", {"c": ("cl", "u", None)})
    a_doc["users"] = [{"name": n, "user": {"token": "a"}} for n in users_a]
    b_doc = {"users": [{"name": n, "user": {"token": "b"}} for n in users_b]}
    a, b = write(tmp_path / "a", a_doc), write(tmp_path / "b", b_doc)
    env = {"KUBECONFIG": f"{a}:{b}"}
    resolved = kubeconfig.resolve(opts, env)
    expected = (
        None if origin is None else kubeconfig.UserOrigin(str(tmp_path / origin[0]), origin[1])
    )
    assert resolved.user_origin == expected


def test_explicit_kubeconfig_is_the_user_origin(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c", {"c": ("cl", "u", None)}))
    resolved = kubeconfig.resolve(ConnectionOptions(kubeconfig=str(a)), {"KUBECONFIG": "/x"})
    assert resolved.user_origin == kubeconfig.UserOrigin(str(a), "u")


def test_persist_changes_only_that_users_tokens(tmp_path: Path) -> None:
    doc: dict[str, Any] = {
        "kind": "Config",
        "users": [oidc_entry("twin", "r-twin"), oidc_entry("me", "r1")],
        "clusters": [{"name": "cl", "cluster": {"server": "https://a"}}],
        "apiVersion": "v1",
    }
    path = tmp_path / "cfg"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o604)
    origin = kubeconfig.UserOrigin(str(path), "me")
    kubeconfig.persist_auth_provider_config(origin, {"id-token": "i2", "refresh-token": "r2"})
    saved = yaml.safe_load(path.read_text())
    doc["users"][1]["user"]["auth-provider"]["config"].update(
        {"id-token": "i2", "refresh-token": "r2"}
    )
    assert saved == doc
    assert list(saved) == ["kind", "users", "clusters", "apiVersion"]  # order kept
    assert path.stat().st_mode & 0o777 == 0o604
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg"]


def test_persist_writes_through_a_symlink(tmp_path: Path) -> None:
    real = write(tmp_path / "real", {"users": [oidc_entry("me", "r1")]})
    link = tmp_path / "link"
    link.symlink_to(real)
    kubeconfig.persist_auth_provider_config(
        kubeconfig.UserOrigin(str(link), "me"), {"refresh-token": "r2"}
    )
    assert link.is_symlink()
    saved = yaml.safe_load(real.read_text())
    assert saved["users"][0]["user"]["auth-provider"]["config"]["refresh-token"] == "r2"


def test_persist_refuses_a_user_without_auth_provider(tmp_path: Path) -> None:
    path = write(tmp_path / "cfg", {"users": [{"name": "me", "user": {"token": "t"}}]})
    before = path.read_bytes()
    with pytest.raises(errors.ConfigError, match="no longer has an auth-provider"):
        kubeconfig.persist_auth_provider_config(
            kubeconfig.UserOrigin(str(path), "me"), {"id-token": "x"}
        )
    assert path.read_bytes() == before
    assert not (tmp_path / "cfg.lock").exists()


def test_persist_waits_for_kubectls_lock_then_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubeconfig, "LOCK_WAIT", 0.05)
    path = write(tmp_path / "cfg", {"users": [oidc_entry("me", "r1")]})
    (tmp_path / "cfg.lock").write_text("")
    with pytest.raises(errors.ConfigError, match=r"cfg\.lock exists"):
        kubeconfig.persist_auth_provider_config(
            kubeconfig.UserOrigin(str(path), "me"), {"id-token": "x"}
        )
    assert "id-token" not in path.read_text()


def test_persist_names_an_unreadable_file(tmp_path: Path) -> None:
    origin = kubeconfig.UserOrigin(str(tmp_path / "gone"), "me")
    with pytest.raises(errors.ConfigError, match="cannot save the refreshed OIDC tokens to"):
        kubeconfig.persist_auth_provider_config(origin, {"id-token": "x"})
    assert list(tmp_path.iterdir()) == []
