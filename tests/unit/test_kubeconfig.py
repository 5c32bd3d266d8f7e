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
