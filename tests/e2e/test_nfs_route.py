"""The shared-storage route: a claim whose root is not the node's model directory.

An NFS export (`/export/models` on a server) or a provisioned volume holds a copy of the model at
a sub-path the user chose (`create --sub-path`, `copy`); `diff` and `patch` take it from the
claim or from `--sub-path`, never from the node's hostPath. kwok nodes mount no NFS, but the
API objects, the policy the server admits and the patch semantics are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import manifests
from kubectl_omepvc.core import resources as r
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import SERVED_MODEL, Plugin

Obj = dict[str, Any]
CLAIM = "nfs-weights"
MODEL = SERVED_MODEL
EXPORT = "/export/models"


def model_volume(obj: Obj) -> Obj:
    volumes = jp.resolve(obj, jp.DEPLOYMENT_TEMPLATE)["spec"]["volumes"]
    found: Obj = next(v for v in volumes if v["name"] == MODEL)
    return found


def model_mount(obj: Obj) -> Obj:
    container = jp.resolve(obj, jp.DEPLOYMENT_TEMPLATE)["spec"]["containers"][0]
    found: Obj = next(m for m in container["volumeMounts"] if m["name"] == MODEL)
    return found


@pytest.fixture
def nfs_claim(plugin: Plugin, admin: Client, namespace: str) -> Iterator[str]:
    """`create --nfs-server --nfs-path /export/models --sub-path <model>`, as a user types it."""
    result = plugin(
        "create", CLAIM, "-n", namespace, "--nfs-server", "10.0.0.50", "--nfs-path", EXPORT,
        "--size", "10Gi", "--sub-path", MODEL,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"Sub-path: {MODEL}" in result.output
    yield CLAIM
    admin.delete(r.PVS, manifests.pv_name(namespace, CLAIM))


def test_diff_and_patch_take_the_sub_path_the_claim_records(
    plugin: Plugin, admin: Client, namespace: str, labelled: ome.Isvc, nfs_claim: str
) -> None:
    isvc = labelled
    assert not isvc.model_path.startswith(EXPORT)  # the node's directory is elsewhere
    ome.create_workload(isvc, ome.component_deployment(isvc))

    diff = plugin("diff", "llama", "-n", namespace, "--claim", nfs_claim)
    assert diff.exit_code == 1, diff.output
    assert f"+      subPath: {MODEL}" in diff.stdout
    assert f"+      claimName: {nfs_claim}" in diff.stdout

    # --sub-path overrides what the claim records, and is not checked against the node's path.
    other = plugin("diff", "llama", "-n", namespace, "--claim", nfs_claim, "--sub-path", "a/b")
    assert other.exit_code == 1, other.output
    assert "+      subPath: a/b" in other.stdout

    patched = plugin(
        "patch", "llama", "-n", namespace, "--claim", nfs_claim, "--strategy", "policy",
        "--timeout", "180s",
    )  # fmt: skip
    assert patched.exit_code == 0, patched.output
    engine = isvc.deployment()
    assert model_volume(engine) == {
        "name": MODEL,
        "persistentVolumeClaim": {"claimName": nfs_claim, "readOnly": True},
    }
    assert model_mount(engine)["subPath"] == MODEL

    undone = plugin("unpatch", "llama", "-n", namespace, "--timeout", "180s")
    assert undone.exit_code == 0, undone.output
    assert "hostPath" in model_volume(isvc.deployment())


@pytest.mark.parametrize(
    ("export", "flags", "code", "says"),
    [
        ("/", ("--sub-path", "export/models/llama"), 1, "subPath: export/models/llama"),
        ("/export/models", (), 2, "pass --sub-path DIR"),
        ("/export/models", ("--sub-path", "../llama"), 2, "contains '..'"),
    ],
    ids=["export-root-with-flag", "nothing-recorded", "escaping-sub-path"],
)
def test_nfs_claim_without_a_recorded_sub_path(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    labelled: ome.Isvc,
    export: str,
    flags: tuple[str, ...],
    code: int,
    says: str,
) -> None:
    ome.create_workload(labelled, ome.component_deployment(labelled))
    before = labelled.deployment()
    created = plugin(
        "create", CLAIM, "-n", namespace, "--nfs-server", "10.0.0.50", "--nfs-path", export,
        "--size", "10Gi",
    )  # fmt: skip
    try:
        assert created.exit_code == 0, created.stderr
        result = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM, *flags)
        assert result.exit_code == code, result.output
        assert says in result.output
        assert labelled.deployment()["metadata"]["generation"] == before["metadata"]["generation"]
    finally:
        admin.delete(r.PVS, manifests.pv_name(namespace, CLAIM))
