"""The shared-storage route: a claim whose root is not the node's model directory.

An NFS export (`/export/models` on a server) or a provisioned volume holds a copy of the model at
a sub-path the user chose (`create --sub-path`, `copy`); `diff` and `patch` take it from the
claim or from `--sub-path`, never from the node's hostPath. kwok nodes mount no NFS, but the
API objects, the policy the server admits and the patch semantics are the real ones.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import manifests
from kubectl_omepvc.core import resources as r
from tests import factories
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import SERVED_MODEL, Plugin
from tests.e2e.kubelet import StandInKubelet
from tests.e2e.test_verify import schedulable_nodes  # noqa: F401 (autouse fixture)

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


def patch_onto(plugin: Plugin, isvc: ome.Isvc, claim: str, sub_path: str) -> Obj:
    """`patch --strategy policy` (released OME); the engine Deployment, its model at `sub_path`."""
    patched = plugin(
        "patch", isvc.name, "-n", isvc.namespace, "--claim", claim, "--strategy", "policy",
        "--timeout", "180s",
    )  # fmt: skip
    assert patched.exit_code == 0, patched.output
    engine = isvc.deployment()
    assert model_mount(engine)["subPath"] == sub_path
    return engine


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

    engine = patch_onto(plugin, isvc, nfs_claim, MODEL)
    assert model_volume(engine) == {
        "name": MODEL,
        "persistentVolumeClaim": {"claimName": nfs_claim, "readOnly": True},
    }

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


# --- the whole route, as a user runs it ----------------------------------------------------------


@pytest.fixture
def agent_on_models_root(admin: Client) -> Iterator[None]:
    """A model-agent DaemonSet whose models root /raid/models holds the isvc's model."""
    if admin.get_or_none(r.NAMESPACES, "ome") is None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ome"}}
        admin.create(r.NAMESPACES, body)
    daemonset = factories.agent_daemonset()
    daemonset["metadata"]["name"] = f"ome-model-agent-{secrets.token_hex(3)}"
    admin.create(r.DAEMON_SETS, daemonset, "ome")
    yield
    admin.delete(r.DAEMON_SETS, daemonset["metadata"]["name"], "ome")


def _nfs(admin: Client, namespace: str) -> list[str]:
    return ["--nfs-server", "10.0.0.50", "--nfs-path", EXPORT]


def _storage_class(admin: Client, namespace: str) -> list[str]:
    """A class whose volumes an admin made beforehand (no provisioner runs here): the claim
    binds to one of them, as to a provisioned volume."""
    name = f"shared-{namespace}"
    admin.create(r.STORAGE_CLASSES, {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "nfs.example.com/external", "volumeBindingMode": "Immediate",
    })  # fmt: skip
    admin.create(r.PVS, {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"pool-{namespace}"},
        "spec": {"capacity": {"storage": "20Gi"}, "accessModes": ["ReadWriteMany"],
                 "storageClassName": name, "persistentVolumeReclaimPolicy": "Retain",
                 "nfs": {"server": "10.0.0.60", "path": "/pool/pvc-0001"}},
    })  # fmt: skip
    return ["--storage-class", name]


ROUTES = {"nfs": _nfs, "storage-class": _storage_class}


@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
def test_shared_storage_route_end_to_end(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    labelled: ome.Isvc,
    agent_on_models_root: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    route: Any,
) -> None:
    """create, copy, verify, diff, patch, status, unpatch on a claim rooted elsewhere than the
    node's model directory. Containers (the copy, verify's checks) run in the one kubelet
    stand-in (tests/e2e/kubelet.py); everything else is the real control plane."""
    isvc = labelled
    ome.create_workload(isvc, ome.component_deployment(isvc))
    admin.request(
        "PATCH",
        r.BASE_MODELS.path(namespace, MODEL) + "/status",
        body={"status": {"nodesReady": ["gpu-node-2"]}},
        content_type=MERGE_PATCH,
    )
    host = tmp_path / "node"
    files = host / isvc.model_path.lstrip("/")
    files.mkdir(parents=True)
    for name, data in {
        "config.json": "{}",
        "tokenizer.json": "{}",
        "model.safetensors": "w",
    }.items():
        (files / name).write_text(data)
    kubelet_claims = {CLAIM: tmp_path / "claim"}
    sub_path = f"{namespace}/{MODEL}"  # the model's path below the agent's root
    try:
        source = route(admin, namespace)
        created = plugin(
            "create", CLAIM, "-n", namespace, *source, "--size", "10Gi",
            "--access-mode", "ReadWriteMany",
        )  # fmt: skip
        assert created.exit_code == 0, created.output

        with StandInKubelet(admin, namespace, monkeypatch, host_root=host, claims=kubelet_claims):
            copied = plugin("copy", f"basemodel/{MODEL}", "--claim", CLAIM, "-n", namespace)
            assert copied.exit_code == 0, copied.output
            assert (tmp_path / "claim" / sub_path / "config.json").read_text() == "{}"
            verified = plugin("verify", CLAIM, "-n", namespace, "--timeout", "60s")
            assert verified.exit_code == 0, verified.output
            assert (
                "copy" in verified.stdout and "3 files as copied from gpu-node-2" in verified.stdout
            )

        diff = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM)
        assert diff.exit_code == 1, diff.output
        assert f"+      subPath: {sub_path}" in diff.stdout

        engine = patch_onto(plugin, isvc, CLAIM, sub_path)
        assert model_volume(engine)["persistentVolumeClaim"]["claimName"] == CLAIM

        shown = plugin("status", MODEL, "-n", namespace, "-o", "json")
        assert shown.exit_code == 0, shown.output
        doc = json.loads(shown.stdout)
        item = doc["items"][0] if "items" in doc else doc
        uses = [w for u in item["inferenceServices"] for w in u["workloads"]]
        assert {(w["name"], w["mode"]) for w in uses} == {("llama-engine", "pvc-patched")}

        undone = plugin("unpatch", "llama", "-n", namespace, "--timeout", "180s")
        assert undone.exit_code == 0, undone.output
        assert "hostPath" in model_volume(isvc.deployment())
    finally:
        admin.delete(r.PVS, manifests.pv_name(namespace, CLAIM))
        admin.delete(r.PVS, f"pool-{namespace}")
        admin.delete(r.STORAGE_CLASSES, f"shared-{namespace}")
