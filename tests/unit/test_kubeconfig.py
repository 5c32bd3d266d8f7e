"""kubeconfig resolution must match kubectl's, not the Python client's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
        "exec": {
            "command": "./bin/helper",
            "apiVersion": "client.authentication.k8s.io/v1",
            "interactiveMode": "Never",
        },
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
    doc["users"][0]["user"] = {
        "exec": {
            "command": "aws",
            "args": ["eks", "get-token"],
            "apiVersion": "client.authentication.k8s.io/v1beta1",
        }
    }
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
        (["u"], [], ConnectionOptions(token="t"), ("a", "u")),
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


def resolve_user(tmp_path: Path, user: dict[str, Any], **flags: Any) -> dict[str, Any]:
    doc = config("c", {"c": ("cl", "u", None)})
    doc["users"][0]["user"] = user
    a = write(tmp_path / "a", doc)
    resolved = kubeconfig.resolve(ConnectionOptions(kubeconfig=str(a), **flags), {})
    found: dict[str, Any] = resolved.config["users"][0]["user"]
    return found


def resolve_cluster(tmp_path: Path, cluster: dict[str, Any], **flags: Any) -> dict[str, Any]:
    doc = config("c", {"c": ("cl", "u", None)})
    doc["clusters"][0]["cluster"].update(cluster)
    a = write(tmp_path / "a", doc)
    resolved = kubeconfig.resolve(ConnectionOptions(kubeconfig=str(a), **flags), {})
    found: dict[str, Any] = resolved.config["clusters"][0]["cluster"]
    return found


IMPERSONATING = {
    "token": "t",
    "as": "someone-else",
    "as-groups": ["g1"],
    "as-uid": "7",
    "as-user-extra": {"k": ["v"]},
}


def test_kubeconfig_impersonation_is_kept(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, IMPERSONATING) == IMPERSONATING


def test_impersonation_flags_override_the_kubeconfig_field_by_field(tmp_path: Path) -> None:
    user = resolve_user(tmp_path, IMPERSONATING, impersonate="jane", impersonate_groups=("a", "b"))
    assert user == {**IMPERSONATING, "as": "jane", "as-groups": ["a", "b"]}
    user = resolve_user(tmp_path, IMPERSONATING, impersonate_uid="8")
    assert user == {**IMPERSONATING, "as-uid": "8"}


@pytest.mark.parametrize(
    ("user", "flags"),
    [({"token": "t", "as-groups": ["g"]}, {}), ({"token": "t"}, {"impersonate_uid": "1"})],
    ids=["kubeconfig-groups", "uid-flag"],
)
def test_impersonating_groups_or_uid_without_a_user_is_refused(
    tmp_path: Path, user: dict[str, Any], flags: dict[str, Any]
) -> None:
    with pytest.raises(errors.ConfigError, match="impersonate a uid, groups or extra without"):
        resolve_user(tmp_path, user, **flags)


def test_token_flag_keeps_the_client_certificate(tmp_path: Path) -> None:
    user = {"client-certificate": "/c.crt", "client-key": "/c.key", "as": "x"}
    assert resolve_user(tmp_path, user, token="flag") == {**user, "token": "flag"}


def test_token_flag_with_basic_auth_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="more than one authentication method"):
        resolve_user(tmp_path, {"username": "a", "password": "b"}, token="flag")


def test_ca_flag_clears_insecure(tmp_path: Path) -> None:
    cluster = resolve_cluster(
        tmp_path,
        {"insecure-skip-tls-verify": True, "certificate-authority-data": "eA=="},
        certificate_authority="ca.crt",
    )
    assert cluster["insecure-skip-tls-verify"] is False
    assert cluster["certificate-authority"] == str(Path("ca.crt").absolute())
    assert "certificate-authority-data" not in cluster


def test_insecure_flag_clears_the_ca(tmp_path: Path) -> None:
    cluster = resolve_cluster(
        tmp_path, {"certificate-authority-data": "eA=="}, insecure_skip_tls_verify=True
    )
    assert cluster["insecure-skip-tls-verify"] is True
    assert "certificate-authority-data" not in cluster


def test_ca_flag_with_insecure_flag_keeps_both_for_the_transport_to_refuse(
    tmp_path: Path,
) -> None:
    cluster = resolve_cluster(
        tmp_path, {}, certificate_authority="/ca.crt", insecure_skip_tls_verify=True
    )
    assert cluster["insecure-skip-tls-verify"] is True
    assert cluster["certificate-authority"] == "/ca.crt"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, "kubeconfig.internal"),
        ({"server": "https://other:6443"}, None),
        ({"server": "https://other:6443", "tls_server_name": "flag"}, "flag"),
        ({"tls_server_name": "flag"}, "flag"),
    ],
    ids=["kubeconfig", "server-drops-it", "server-and-flag", "flag"],
)
def test_server_flag_drops_tls_server_name(
    tmp_path: Path, flags: dict[str, Any], expected: str | None
) -> None:
    cluster = resolve_cluster(tmp_path, {"tls-server-name": "kubeconfig.internal"}, **flags)
    assert cluster.get("tls-server-name") == expected


def test_relative_paths_resolve_against_the_symlinks_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "home").mkdir()
    doc = config("c", {"c": ("cl", "u", None)})
    doc["clusters"][0]["cluster"]["certificate-authority"] = "ca.crt"
    doc["users"][0]["user"] = {"client-certificate": "../pki/u.crt", "client-key": "u.key"}
    real = write(tmp_path / "real" / "config", doc)
    link = tmp_path / "home" / "config"
    link.symlink_to(real)
    resolved = kubeconfig.resolve(ConnectionOptions(kubeconfig=str(link)), {})
    cluster = resolved.config["clusters"][0]["cluster"]
    assert cluster["certificate-authority"] == str(tmp_path / "home" / "ca.crt")
    user = resolved.config["users"][0]["user"]
    assert user["client-certificate"] == str(tmp_path / "pki" / "u.crt")
    assert user["client-key"] == str(tmp_path / "home" / "u.key")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"apiVersion": "client.authentication.k8s.io/v1"}, "must set interactiveMode"),
        ({"apiVersion": "client.authentication.k8s.io/v1", "interactiveMode": "Sometimes"},
         "unknown interactiveMode 'Sometimes'"),
        ({"apiVersion": "client.authentication.k8s.io/v1alpha1"}, "has apiVersion"),
        ({"apiVersion": "client.authentication.k8s.io/v1beta1", "command": ""}, "has no command"),
    ],
    ids=["v1-without-mode", "unknown-mode", "old-version", "no-command"],
)  # fmt: skip
def test_exec_settings_checked_as_kubectl_checks_them(
    tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        resolve_user(tmp_path, {"exec": {"command": "plugin", **spec}})


def test_v1beta1_exec_without_interactive_mode_is_if_available(tmp_path: Path) -> None:
    spec = {"command": "p", "apiVersion": "client.authentication.k8s.io/v1beta1"}
    assert resolve_user(tmp_path, {"exec": spec})["exec"] == spec


# -- in a pod without a kubeconfig -----------------------------------------------------------


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("sa-token")
    (account / "ca.crt").write_text("ca")
    (account / "namespace").write_text("sa-ns\n")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", account)
    return {
        "HOME": str(tmp_path / "home"),
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
    }


def test_in_cluster_service_account(pod: dict[str, str]) -> None:
    resolved = kubeconfig.resolve(ConnectionOptions(), pod)
    assert resolved.config["clusters"][0]["cluster"] == {
        "server": "https://10.0.0.1:443",
        "certificate-authority": str(kubeconfig.SERVICE_ACCOUNT_DIR / "ca.crt"),
    }
    assert resolved.config["users"][0]["user"] == {
        "tokenFile": str(kubeconfig.SERVICE_ACCOUNT_DIR / "token")
    }
    assert resolved.namespace == "sa-ns"


def test_in_cluster_needs_the_port_and_a_token_file(pod: dict[str, str]) -> None:
    no_port = {k: v for k, v in pod.items() if k != "KUBERNETES_SERVICE_PORT"}
    with pytest.raises(errors.ConfigError, match="no kubeconfig found"):
        kubeconfig.resolve(ConnectionOptions(), no_port)


def test_in_cluster_token_and_ca_flags(pod: dict[str, str]) -> None:
    opts = ConnectionOptions(token="flag", certificate_authority="/my/ca.crt", impersonate="bob")
    resolved = kubeconfig.resolve(opts, pod)
    assert resolved.config["clusters"][0]["cluster"]["certificate-authority"] == "/my/ca.crt"
    assert resolved.config["users"][0]["user"] == {"token": "flag", "as": "bob"}


def test_in_cluster_server_flag_leaves_the_service_account(pod: dict[str, str]) -> None:
    resolved = kubeconfig.resolve(ConnectionOptions(server="https://elsewhere:6443"), pod)
    assert server_of(resolved) == "https://elsewhere:6443"
    assert resolved.config["users"][0]["user"] == {}


@pytest.mark.parametrize(
    ("environ", "flag", "expected"),
    [({}, None, "sa-ns"), ({"POD_NAMESPACE": "pod-ns"}, None, "pod-ns"),
     ({"POD_NAMESPACE": "pod-ns"}, "flag-ns", "flag-ns")],
    ids=["service-account", "pod-namespace", "flag"],
)  # fmt: skip
def test_in_cluster_namespace(
    pod: dict[str, str], environ: dict[str, str], flag: str | None, expected: str
) -> None:
    resolved = kubeconfig.resolve(ConnectionOptions(namespace=flag), {**pod, **environ})
    assert resolved.namespace == expected


@pytest.mark.parametrize("flag", ["context", "cluster", "user"])
def test_in_cluster_unknown_kubeconfig_names_are_errors(pod: dict[str, str], flag: str) -> None:
    with pytest.raises(errors.ConfigError, match=f'{flag} "nope" does not exist'):
        opts = ConnectionOptions()
        setattr(opts, flag, "nope")
        kubeconfig.resolve(opts, pod)


# -- refreshed OIDC tokens are written in place ------------------------------------------------


def test_persist_keeps_the_inode_hard_links_and_owner(tmp_path: Path) -> None:
    path = write(tmp_path / "cfg", {"users": [oidc_entry("me", "r1")]})
    twin = tmp_path / "twin"
    os.link(path, twin)
    os.chown(path, 4321, 4321)
    before = path.stat()
    kubeconfig.persist_auth_provider_config(
        kubeconfig.UserOrigin(str(path), "me"), {"refresh-token": "r2"}
    )
    after = path.stat()
    assert (after.st_ino, after.st_uid, after.st_nlink) == (before.st_ino, 4321, 2)
    assert "r2" in twin.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg", "twin"]


def test_persist_locks_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = write(tmp_path / "real", {"users": [oidc_entry("me", "r1")]})
    link = tmp_path / "link"
    link.symlink_to(real)
    locks: list[str] = []
    original = os.open

    def spy(path: Any, flags: int, *args: Any) -> int:
        if str(path).endswith(".lock"):
            locks.append(str(path))
        return original(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)
    kubeconfig.persist_auth_provider_config(
        kubeconfig.UserOrigin(str(link), "me"), {"refresh-token": "r2"}
    )
    assert locks == [str(link) + ".lock"]
    assert link.is_symlink()
    assert "r2" in real.read_text()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for a bind mount"
)
def test_persist_into_a_bind_mounted_kubeconfig(tmp_path: Path) -> None:
    source = write(tmp_path / "source", {"users": [oidc_entry("me", "r1")]})
    mounted = write(tmp_path / "mounted", {})
    script = (
        "from kubectl_omepvc.api import kubeconfig\n"
        f"kubeconfig.persist_auth_provider_config(kubeconfig.UserOrigin({str(mounted)!r}, 'me'),"
        " {'refresh-token': 'r2'})\n"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind "$1" "$2" && exec "$3" -c "$4"', "sh",
         str(source), str(mounted), sys.executable, script],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "r2" in source.read_text()  # written through the mount, into the same file
