"""The connection layer against the real API server: kubeconfig rules, auth, errors."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_omepvc import errors
from kubectl_omepvc.core import resources as r
from tests.e2e.conftest import Cluster, Plugin


def kubeconfig_doc(cluster: Cluster) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    return doc


def dead_cluster_config(current: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "nobody", "user": {"token": "x"}}],
        "contexts": [{"name": "decoy", "context": {"cluster": "dead", "user": "nobody"}}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_kubeconfig_list_context_only_in_second_file(
    plugin: Plugin, cluster: Cluster, tmp_path: Path
) -> None:
    first = tmp_path / "a"
    first.write_text(yaml.safe_dump(dead_cluster_config(current=None)))
    env = {"KUBECONFIG": f"{first}:{cluster.kubeconfig}"}
    result = plugin("version", "-o", "json", env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["server"]["serverVersion"].startswith("v1.")


def test_kubeconfig_list_first_current_context_wins(
    plugin: Plugin, cluster: Cluster, tmp_path: Path
) -> None:
    second = tmp_path / "b"
    second.write_text(yaml.safe_dump(dead_cluster_config(current="decoy")))
    ok = plugin("version", "-o", "json", env={"KUBECONFIG": f"{cluster.kubeconfig}:{second}"})
    assert ok.exit_code == 0, ok.stderr
    # The reverse order selects the decoy, whose server is dead: proof the order is honoured.
    bad = plugin("version", env={"KUBECONFIG": f"{second}:{cluster.kubeconfig}"})
    assert bad.exit_code == 1
    assert "127.0.0.1:1" in bad.stderr


def test_tls_failure_with_the_wrong_ca(plugin: Plugin, tmp_path: Path) -> None:
    key, crt = tmp_path / "k", tmp_path / "other-ca.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=someone-else",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    result = plugin("version", "--certificate-authority", str(crt))
    assert result.exit_code == 1
    assert "TLS handshake" in result.stderr


def test_bad_token_is_unauthorized(plugin: Plugin) -> None:
    result = plugin("version", "--token", "not-a-real-token")
    assert result.exit_code == 1
    assert "rejected the credentials" in result.stderr


def test_restricted_user_gets_forbidden_naming_verb_and_resource(cluster: Cluster) -> None:
    client = cluster.client(context="local-restricted")
    with pytest.raises(errors.Forbidden) as caught:
        list(client.list(r.CLUSTER_BASE_MODELS))
    assert "cannot list clusterbasemodels.ome.io" in caught.value.message
    with pytest.raises(errors.Forbidden) as caught_ns:
        list(client.list(r.DEPLOYMENTS, "kube-system"))
    assert "cannot list deployments.apps in namespace kube-system" in caught_ns.value.message


def test_impersonation_sends_every_group(cluster: Cluster, admin: Any, namespace: str) -> None:
    """Two --as-group flags must reach the server as two groups (one grants access)."""
    admin.create(
        r.ResourceRef("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-cm"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
        namespace,
    )
    admin.create(
        r.ResourceRef("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read-cm"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-cm"},
            "subjects": [
                {"kind": "Group", "name": "second-group", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
        namespace,
    )
    two = cluster.client(impersonate="alice", impersonate_groups=("first-group", "second-group"))
    assert isinstance(list(two.list(r.CONFIG_MAPS, namespace)), list)
    one = cluster.client(impersonate="alice", impersonate_groups=("first-group",))
    with pytest.raises(errors.Forbidden, match=r'User \\?"alice\\?"'):
        list(one.list(r.CONFIG_MAPS, namespace))


def test_exec_credential_plugin(plugin: Plugin, cluster: Cluster, tmp_path: Path) -> None:
    doc = kubeconfig_doc(cluster)
    token = next(u for u in doc["users"] if u["name"] == "admin")["user"]["token"]
    helper = tmp_path / "bin" / "token-helper"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\n"
        'echo \'{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",'
        f' "status": {{"token": "{token}"}}}}\'\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    for user in doc["users"]:
        if user["name"] == "admin":
            user["user"] = {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "./bin/token-helper",  # relative to this kubeconfig's folder
                    "interactiveMode": "Never",
                }
            }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    result = plugin("version", "-o", "json", "--kubeconfig", str(path))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["server"]["ome"]["served"] is True


def test_client_certificate_auth(plugin: Plugin, cluster: Cluster, tmp_path: Path) -> None:
    """A kubeconfig user with a client certificate (data inline, and as relative file paths)."""
    pki = cluster.kubeconfig.parent / "pki"
    key, csr, crt = tmp_path / "u.key", tmp_path / "u.csr", tmp_path / "u.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/O=system:masters/CN=cert-admin",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    doc = kubeconfig_doc(cluster)
    import base64

    inline = {
        "client-certificate-data": base64.b64encode(crt.read_bytes()).decode(),
        "client-key-data": base64.b64encode(key.read_bytes()).decode(),
    }
    as_files = {"client-certificate": "u.crt", "client-key": "u.key"}
    for user in (inline, as_files):
        for entry in doc["users"]:
            if entry["name"] == "admin":
                entry["user"] = user
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(doc))
        result = plugin("version", "-o", "json", "--kubeconfig", str(path))
        assert result.exit_code == 0, result.stderr
        # Reading the OME schema needs an authenticated user: proof the certificate was used.
        assert json.loads(result.stdout)["server"]["ome"]["nativePVC"] is not None


def test_in_cluster_service_account(
    plugin: Plugin,
    cluster: Cluster,
    admin: Any,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No kubeconfig anywhere, as in a pod: the service account's token, CA and namespace.

    The token is a real one, issued by the server's TokenRequest API for a service account
    without rights: the server naming that account in a Forbidden proves the token was sent.
    The pod's files are laid out in a temporary directory standing in for
    /var/run/secrets/kubernetes.io/serviceaccount.
    """
    from kubectl_omepvc.api import kubeconfig as kubeconfig_rules

    sa = r.ResourceRef("", "v1", "serviceaccounts", "ServiceAccount")
    admin.create(sa, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "agent"}},
                 namespace)  # fmt: skip
    token = admin.request(
        "POST", sa.path(namespace, "agent") + "/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 600}},
    )["status"]["token"]  # fmt: skip
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(token)
    (account / "namespace").write_text(namespace)
    (account / "ca.crt").write_bytes((cluster.kubeconfig.parent / "pki" / "ca.crt").read_bytes())
    monkeypatch.setattr(kubeconfig_rules, "SERVICE_ACCOUNT_DIR", account)
    port = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    env = {
        "KUBECONFIG": "",
        "HOME": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": port.rsplit(":", 1)[1],
    }
    from kubectl_omepvc.api.client import Client
    from kubectl_omepvc.options import ConnectionOptions

    client = Client(ConnectionOptions(), environ={**cluster.env, **env})
    assert client.namespace == namespace
    with pytest.raises(errors.Forbidden, match="system:serviceaccount:" + namespace + ":agent"):
        list(client.list(r.CONFIG_MAPS, namespace))
    result = plugin("version", "-o", "json", env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["server"]["serverVersion"].startswith("v1.")
