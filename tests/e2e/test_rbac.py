"""`kubectl ome-pvc rbac` on the real API server: the printed roles are what `status` needs.

A fresh impersonated user (nobody else's bindings apply to it) gets the printed objects; with
them `status` prints no permission warning, and without the Role in `ome` it does (so the Role
is needed, and the ClusterRole does not hold the agent's reads).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests import factories as f
from tests.e2e.conftest import Plugin

RBAC = "rbac.authorization.k8s.io"
REFS = {
    "ClusterRole": r.ResourceRef(RBAC, "v1", "clusterroles", "ClusterRole", False),
    "ClusterRoleBinding": r.ResourceRef(
        RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    "Role": r.ResourceRef(RBAC, "v1", "roles", "Role"),
    "RoleBinding": r.ResourceRef(RBAC, "v1", "rolebindings", "RoleBinding"),
}
Obj = dict[str, Any]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def without_finalizers(obj: Obj) -> Obj:
    """No OME controller runs here to remove them: the namespace must be deletable."""
    obj["metadata"].pop("finalizers", None)
    return obj


@pytest.fixture
def models(admin: Client, namespace: str) -> str:
    """Models whose status reads every source: a hostPath model (nodes, the agent's ConfigMaps
    and DaemonSet), a pvc:// model (claims and volumes), and an isvc using one (workloads)."""
    admin.create(r.BASE_MODELS, without_finalizers(f.base_model(namespace, "hostpath")), namespace)
    claimed = f.base_model(namespace, "claimed", path=None, uri="pvc://weights/meta/llama")
    admin.create(r.BASE_MODELS, without_finalizers(claimed), namespace)
    isvc = f.inference_service(namespace, "web", "hostpath", kind=ModelKind.NAMESPACED)
    isvc["metadata"].pop("uid", None)
    admin.create(r.INFERENCE_SERVICES, isvc, namespace)
    return namespace


@pytest.fixture
def user() -> str:
    return f"u-{secrets.token_hex(4)}"


@pytest.fixture
def printed(plugin: Plugin, admin: Client, user: str) -> Iterator[list[Obj]]:
    """The objects `rbac` prints for `user`; whatever of them was created is deleted after."""
    name = f"ome-pvc-rbac-{secrets.token_hex(4)}"
    result = plugin("rbac", "--name", name, "--bind-user", user, "-o", "json")
    assert result.exit_code == 0, result.output
    objects: list[Obj] = json.loads(result.stdout)["items"]
    yield objects
    for obj in reversed(objects):
        meta = obj["metadata"]
        with contextlib.suppress(errors.NotFound):
            admin.delete(REFS[obj["kind"]], meta["name"], meta.get("namespace"))


def create(admin: Client, objects: list[Obj], *kinds: str) -> None:
    if admin.get_or_none(r.NAMESPACES, naming.AGENT_NAMESPACE) is None:  # shared: left in place
        with contextlib.suppress(errors.Conflict):
            admin.create(r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": naming.AGENT_NAMESPACE}})  # fmt: skip
    for obj in objects:
        if obj["kind"] in kinds:
            admin.create(REFS[obj["kind"]], obj, obj["metadata"].get("namespace"))


def permission_warnings(plugin: Plugin, user: str, *args: str) -> list[str] | None:
    """The permission warnings of `status` as `user`; None while it cannot list models yet."""
    result = plugin("status", "--as", user, *args)
    if result.exit_code != 0:
        return None
    return [
        line
        for line in result.stderr.splitlines()
        if "forbidden" in line or line.startswith("Warning: cannot")
    ]


def test_printed_roles_give_status_its_full_output(
    plugin: Plugin, admin: Client, models: str, user: str, printed: list[Obj]
) -> None:
    assert [o["kind"] for o in printed] == [
        "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding",
    ]  # fmt: skip
    create(admin, printed, "ClusterRole", "ClusterRoleBinding")
    partial = wait_for(
        "the ClusterRoleBinding to take effect",
        lambda: permission_warnings(plugin, user, "-n", models),
    )
    assert any("configmaps in namespace ome (forbidden)" in w for w in partial), partial
    assert any("daemonsets.apps in namespace ome (forbidden)" in w for w in partial), partial

    create(admin, printed, "Role", "RoleBinding")
    wait_for(
        "the RoleBinding to take effect",
        lambda: permission_warnings(plugin, user, "-n", models) == [],
    )
    everywhere = permission_warnings(plugin, user, "-A")
    assert everywhere == [], everywhere
    detail = plugin("status", "--as", user, "-n", models, "claimed")
    assert detail.exit_code == 0, detail.output
    assert "forbidden" not in detail.stderr
    assert "Claim:" in detail.stdout


def test_without_the_roles_status_cannot_list_models(
    plugin: Plugin, models: str, user: str
) -> None:
    result = plugin("status", "--as", user, "-n", models)
    assert result.exit_code == 1
    assert "forbidden" in result.stderr
