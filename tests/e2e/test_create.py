"""`kubectl ome-pvc create` against the real control plane.

kube-controller-manager's PV binder runs here, so "Bound" is real binding; admission (quota,
ValidatingAdmissionPolicy), RBAC and server-side apply are the API server's own. PVs are
cluster-scoped, so each test removes the ones its namespace's claims used.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.errors import PluginError
from tests import factories
from tests.e2e.conftest import Plugin

Obj = dict[str, Any]
NODE_1, NODE_2 = "gpu-node-1", "gpu-node-2"
VAP = r.ResourceRef("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "", False)
VAP_BINDING = r.ResourceRef(
    "admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "", False
)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture
def pvs(admin: Client, namespace: str) -> Iterator[None]:
    """Deletes the PVs bound (or pre-bound) to claims in the test's namespace."""
    yield
    for pv in admin.list(r.PVS):
        ref = pv["spec"].get("claimRef") or {}
        if ref.get("namespace") == namespace:
            admin.delete(r.PVS, pv["metadata"]["name"])


def pv_name(namespace: str, claim: str) -> str:
    return m.pv_name(namespace, claim)


def content(obj: Obj) -> Obj:
    """What a command may change: everything but status and server-kept metadata."""
    meta = obj["metadata"]
    return {"spec": obj["spec"], "labels": meta.get("labels"), "ann": meta.get("annotations")}


def local(claim: str, *extra: str, nodes: tuple[str, ...] = (NODE_1, NODE_2)) -> list[str]:
    args = ["create", claim, "--local-path", "/raid/models", "--size", "1Gi"]
    for node in nodes:
        args += ["--node", node]
    return [*args, *extra]


# --- local volumes --------------------------------------------------------------------------------


def test_classless_local_pair_is_pre_bound_and_bound(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    result = plugin(
        *local("llama", "--no-storage-class", "--sub-path", "meta/llama"), "-n", namespace
    )
    assert result.exit_code == 0, result.stderr
    name = pv_name(namespace, "llama")
    assert result.stdout.splitlines()[:2] == [
        f"persistentvolume/{name} created",
        "persistentvolumeclaim/llama created",
    ]
    assert "URI: pvc://llama/meta/llama (for a BaseModel" in result.stdout
    assert f"URI: pvc://{namespace}:llama/meta/llama (for a ClusterBaseModel)" in result.stdout
    assert "Sub-path: meta/llama" in result.stdout
    assert f"persistentvolumeclaim/llama is Bound to persistentvolume/{name}" in result.stdout

    pv = admin.get(r.PVS, name)
    assert pv["status"]["phase"] == "Bound"
    assert pv["spec"]["local"] == {"path": "/raid/models"}
    assert pv["spec"].get("storageClassName", "") == ""  # the server omits ""
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["accessModes"] == ["ReadOnlyMany"]
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [NODE_1, NODE_2]
    claim = admin.get(r.PVCS, "llama", namespace)
    assert claim["spec"]["volumeName"] == name
    assert claim["metadata"]["annotations"][m.SUB_PATH_ANNOTATION] == "meta/llama"
    assert claim["metadata"]["labels"][m.MANAGED_BY_LABEL] == m.MANAGED_BY
    managers = {f["manager"] for f in claim["metadata"]["managedFields"]}
    assert m.FIELD_MANAGER in managers


def test_local_storage_class_pair_binds_without_a_consumer(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    """WaitForFirstConsumer delays only claims without a volumeName: a pre-bound pair binds."""
    result = plugin(*local("weights"), "-n", namespace)
    assert result.exit_code == 0, result.stderr
    storage_class = admin.get(r.STORAGE_CLASSES, m.DEFAULT_LOCAL_STORAGE_CLASS)
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage_class["provisioner"] == m.NO_PROVISIONER
    assert admin.get(r.PVCS, "weights", namespace)["status"]["phase"] == "Bound"
    assert admin.get(r.PVS, pv_name(namespace, "weights"))["spec"]["storageClassName"] == (
        m.DEFAULT_LOCAL_STORAGE_CLASS
    )
    assert "is Bound to" in result.stdout
    assert "binds when the first pod uses it" not in result.stderr


def test_rerun_is_unchanged(plugin: Plugin, admin: Client, namespace: str, pvs: None) -> None:
    args = [*local("llama", "--no-storage-class", "--sub-path", "meta/llama"), "-n", namespace]
    assert plugin(*args).exit_code == 0
    before = content(admin.get(r.PVCS, "llama", namespace))
    again = plugin(*args)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[:2] == [
        f"persistentvolume/{pv_name(namespace, 'llama')} unchanged",
        "persistentvolumeclaim/llama unchanged",
    ]
    assert "waiting" not in again.stderr
    assert content(admin.get(r.PVCS, "llama", namespace)) == before


def test_changed_size_is_refused_then_forced(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    name = pv_name(namespace, "llama")
    assert plugin(*local("llama", "--no-storage-class"), "-n", namespace).exit_code == 0
    before = (content(admin.get(r.PVS, name)), content(admin.get(r.PVCS, "llama", namespace)))
    bigger = [
        "create", "llama", "--local-path", "/raid/models", "--node", NODE_1, "--node", NODE_2,
        "--size", "2Gi", "--no-storage-class", "-n", namespace,
    ]  # fmt: skip
    refused = plugin(*bigger)
    assert refused.exit_code == 1
    assert f"persistentvolume/{name} exists with a different spec:" in refused.stderr
    assert 'spec.capacity.storage: has "1Gi", wants "2Gi"' in refused.stderr
    assert 'spec.resources.requests.storage: has "1Gi", wants "2Gi"' in refused.stderr
    assert "--force-conflicts" in refused.stderr.splitlines()[-1]
    assert refused.stdout == ""
    assert before == (
        content(admin.get(r.PVS, name)),
        content(admin.get(r.PVCS, "llama", namespace)),
    )

    forced = plugin(*bigger, "--force-conflicts")
    assert forced.exit_code == 0, forced.stderr
    assert f"persistentvolume/{name} replaced" in forced.stdout
    assert "persistentvolumeclaim/llama replaced" in forced.stdout
    claim = admin.get(r.PVCS, "llama", namespace)
    assert claim["status"]["phase"] == "Bound"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert admin.get(r.PVS, name)["spec"]["capacity"]["storage"] == "2Gi"


def test_replacing_a_claim_in_use_is_refused(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    assert plugin(*local("llama", "--no-storage-class"), "-n", namespace).exit_code == 0
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "engine"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "volumes": [{"name": "m", "persistentVolumeClaim": {"claimName": "llama"}}],
        },
    }
    service_accounts = r.ResourceRef("", "v1", "serviceaccounts", "ServiceAccount")
    assert eventually(lambda: admin.get_or_none(service_accounts, "default", namespace) is not None)
    admin.create(r.PODS, pod, namespace)
    result = plugin(
        *local("llama", "--no-storage-class", nodes=(NODE_1,)), "-n", namespace, "--force-conflicts"
    )
    assert result.exit_code == 1
    assert "is used by pod engine" in result.stderr
    assert admin.get(r.PVCS, "llama", namespace)["status"]["phase"] == "Bound"


def test_released_volume_is_bound_to_the_new_claim(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    args = [*local("llama", "--no-storage-class"), "-n", namespace]
    assert plugin(*args).exit_code == 0
    admin.delete(r.PVCS, "llama", namespace)
    name = pv_name(namespace, "llama")
    assert eventually(lambda: admin.get(r.PVS, name)["status"]["phase"] == "Released")
    again = plugin(*args)
    assert again.exit_code == 0, again.stderr
    assert "was released by an earlier claim" in again.stderr
    assert admin.get(r.PVCS, "llama", namespace)["status"]["phase"] == "Bound"


# --- other sources ----------------------------------------------------------------------------


def test_nfs_pair_and_a_registered_basemodel(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    result = plugin(
        "create", "shared", "-n", namespace, "--nfs-server", "10.0.0.5",
        "--nfs-path", "/export/models", "--size", "10Gi", "--sub-path", "qwen/qwen3-8b",
        "--register-model", "basemodel/qwen3-8b-pvc",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    pv = admin.get(r.PVS, pv_name(namespace, "shared"))
    assert pv["spec"]["nfs"] == {"server": "10.0.0.5", "path": "/export/models", "readOnly": True}
    assert "nodeAffinity" not in pv["spec"]
    assert admin.get(r.PVCS, "shared", namespace)["status"]["phase"] == "Bound"
    model = admin.get(r.BASE_MODELS, "qwen3-8b-pvc", namespace)
    assert model["spec"]["storage"] == {"storageUri": "pvc://shared/qwen/qwen3-8b"}
    assert "basemodel.ome.io/qwen3-8b-pvc created" in result.stdout
    assert "stays In_Transit" in result.stderr


def test_storage_class_with_delayed_binding_is_not_waited_for(
    plugin: Plugin, admin: Client, namespace: str
) -> None:
    name = f"{namespace}-delayed"
    admin.create(
        r.STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "example.com/shared-files",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    try:
        result = plugin(
            "create", "dyn", "-n", namespace, "--storage-class", name, "--size", "5Gi",
            "--access-mode", "ReadWriteMany",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert "persistentvolumeclaim/dyn created" in result.stdout
        assert "binds when the first pod uses it" in result.stderr
        claim = admin.get(r.PVCS, "dyn", namespace)
        assert claim["spec"]["storageClassName"] == name
        assert "volumeName" not in claim["spec"]
        assert claim["status"]["phase"] == "Pending"
    finally:
        admin.delete(r.STORAGE_CLASSES, name)


def test_claim_that_does_not_bind_in_time_is_reported(
    plugin: Plugin, admin: Client, namespace: str
) -> None:
    name = f"{namespace}-immediate"
    admin.create(
        r.STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "example.com/absent",  # nobody provisions: the claim stays Pending
            "volumeBindingMode": "Immediate",
        },
    )
    try:
        result = plugin(
            "create", "dyn", "-n", namespace, "--storage-class", name, "--size", "1Gi",
            "--timeout", "1s",
        )  # fmt: skip
        assert result.exit_code == 1
        last = result.stderr.strip().splitlines()[-1]
        assert "persistentvolumeclaim/dyn is not Bound after 1s (Pending" in last, last
        assert "the objects are in place" in last
        assert admin.get(r.PVCS, "dyn", namespace)["status"]["phase"] == "Pending"
    finally:
        admin.delete(r.STORAGE_CLASSES, name)


def test_missing_storage_class_creates_nothing(
    plugin: Plugin, admin: Client, namespace: str
) -> None:
    result = plugin(
        "create", "dyn", "-n", namespace, "--storage-class", f"{namespace}-none", "--size", "1Gi"
    )
    assert result.exit_code == 1
    assert f'StorageClass "{namespace}-none" does not exist' in result.stderr
    assert list(admin.list(r.PVCS, namespace)) == []


# --- from an OME model -------------------------------------------------------------------------


@pytest.fixture
def ome_namespace(admin: Client) -> Iterator[str]:
    """Namespace `ome`, OME's own: created if missing and never deleted.

    It is shared by every test, as on a real cluster; deleting it would leave it Terminating
    for the next test that writes there.
    """
    if admin.get_or_none(r.NAMESPACES, "ome") is None:
        admin.create(
            r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ome"}}
        )
    yield "ome"


@pytest.fixture
def agent_root(admin: Client, ome_namespace: str) -> Iterator[str]:
    """A model-agent DaemonSet with its own models root (so other tests' agents do not match)."""
    token = secrets.token_hex(3)
    root = f"/raid/models-{token}"
    daemonset = factories.agent_daemonset(models_root=root, host_path=root)
    daemonset["metadata"]["name"] = f"ome-model-agent-{token}"
    admin.create(r.DAEMON_SETS, daemonset, ome_namespace)
    yield root
    admin.delete(r.DAEMON_SETS, daemonset["metadata"]["name"], ome_namespace)


@pytest.fixture
def make_model(admin: Client) -> Iterator[Callable[..., str]]:
    """Creates ClusterBaseModels (with the status OME's controller would write); removes them."""
    names: list[str] = []

    def make(path: str | None, nodes_ready: tuple[str, ...] = (NODE_2,)) -> str:
        name = f"t-{secrets.token_hex(4)}"
        model = factories.cluster_base_model(name, path=path, nodes_ready=nodes_ready)
        status = model.pop("status")
        del model["metadata"]["finalizers"]  # no OME controller here to remove them
        admin.create(r.CLUSTER_BASE_MODELS, model)
        names.append(name)
        admin.request(
            "PATCH",
            r.CLUSTER_BASE_MODELS.path(None, name) + "/status",
            body={"status": status},
            content_type=MERGE_PATCH,
        )
        return name

    yield make
    for name in names:
        admin.delete(r.CLUSTER_BASE_MODELS, name)
        admin.delete(r.CLUSTER_BASE_MODELS, f"{name}-pvc")


def test_from_model_derives_root_nodes_and_sub_path(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    pvs: None,
    agent_root: str,
    make_model: Callable[..., str],
) -> None:
    name = make_model(f"{agent_root}/meta/llama-3-2-1b-instruct")
    result = plugin(
        "create", "llama", "-n", namespace, "--from-model", name, "--size", "3Gi",
        "--register-model", f"{name}-pvc", "--no-storage-class",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    uri = f"pvc://{namespace}:llama/meta/llama-3-2-1b-instruct"
    assert f"URI: {uri}" in result.stdout
    pv = admin.get(r.PVS, pv_name(namespace, "llama"))
    assert pv["spec"]["local"] == {"path": agent_root}
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [NODE_2]
    assert pv["metadata"]["labels"][m.MODEL_LABEL] == name
    claim = admin.get(r.PVCS, "llama", namespace)
    assert claim["metadata"]["annotations"][m.SUB_PATH_ANNOTATION] == "meta/llama-3-2-1b-instruct"
    assert claim["status"]["phase"] == "Bound"
    registered = admin.get(r.CLUSTER_BASE_MODELS, f"{name}-pvc")
    assert registered["spec"]["storage"] == {"storageUri": uri}
    assert registered["spec"]["vendor"] == "meta"
    assert registered["spec"]["modelFormat"] == {"name": "safetensors"}
    assert "stays In_Transit" in result.stderr and "ome-pvc patch" in result.stderr


@pytest.mark.parametrize(
    ("path", "nodes", "message"),
    [
        (None, (NODE_2,), "has no storage.path"),
        ("{root}/meta/llama", (), "is Ready on no node"),
        ("/somewhere/else/llama", (NODE_2,), "is outside the model-agent's models directory"),
    ],
    ids=["no-path", "no-ready-node", "outside-agent-root"],
)
def test_from_model_refusals(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    agent_root: str,
    make_model: Callable[..., str],
    path: str | None,
    nodes: tuple[str, ...],
    message: str,
) -> None:
    name = make_model(path.format(root=agent_root) if path else None, nodes)
    result = plugin("create", "llama", "-n", namespace, "--from-model", name, "--size", "1Gi")
    assert result.exit_code == 1
    assert message in result.stderr
    assert list(admin.list(r.PVCS, namespace)) == []
    assert admin.get_or_none(r.PVS, pv_name(namespace, "llama")) is None


# --- nothing half-made ------------------------------------------------------------------------


@pytest.fixture
def deny_real_claims(admin: Client, namespace: str) -> Iterator[None]:
    """A policy that rejects the real (not dry-run) creation of claims in the test namespace.

    The command's server-side dry run passes it, so the PV is really created before the claim
    fails: the way a quota used up meanwhile, or a webhook that skips dry runs, would fail it.
    """
    name = f"{namespace}-deny-claims"
    admin.create(
        VAP,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["persistentvolumeclaims"],
                        }
                    ]
                },
                "matchConditions": [{"name": "real-writes", "expression": "!request.dryRun"}],
                "validations": [{"expression": "false", "message": "claims are frozen here"}],
            },
        },
    )
    admin.create(
        VAP_BINDING,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    )

    def denied() -> bool:
        probe = factories.pvc(namespace, f"probe-{secrets.token_hex(3)}", phase="Pending")
        del probe["status"]
        try:
            admin.create(r.PVCS, probe, namespace)
        except PluginError as exc:
            return "claims are frozen here" in exc.message
        admin.delete(r.PVCS, probe["metadata"]["name"], namespace)
        return False

    assert eventually(denied), "the policy never took effect"
    yield
    admin.delete(VAP_BINDING, name)
    admin.delete(VAP, name)


def test_failed_claim_rolls_back_the_volume(
    plugin: Plugin, admin: Client, namespace: str, pvs: None, deny_real_claims: None
) -> None:
    result = plugin(*local("llama", "--no-storage-class"), "-n", namespace)
    assert result.exit_code == 1
    name = pv_name(namespace, "llama")
    assert f"rolled back: deleted persistentvolume/{name}" in result.stderr
    assert "claims are frozen here" in result.stderr.splitlines()[-1]
    assert eventually(lambda: admin.get_or_none(r.PVS, name) is None)
    assert list(admin.list(r.PVCS, namespace)) == []


def test_restricted_user_is_told_what_is_forbidden(
    plugin: Plugin, admin: Client, namespace: str
) -> None:
    result = plugin(
        *local("llama", "--no-storage-class"), "-n", namespace, "--context", "local-restricted"
    )
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: forbidden: cannot get persistentvolumes"), last
    assert admin.get_or_none(r.PVS, pv_name(namespace, "llama")) is None
    assert list(admin.list(r.PVCS, namespace)) == []


def test_server_dry_run_creates_nothing(plugin: Plugin, admin: Client, namespace: str) -> None:
    result = plugin(
        *local("llama", "--no-storage-class", "--sub-path", "a/b"), "-n", namespace,
        "--dry-run=server", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert [i["kind"] for i in items] == ["PersistentVolume", "PersistentVolumeClaim"]
    assert "managedFields" not in items[1]["metadata"]
    assert admin.get_or_none(r.PVS, pv_name(namespace, "llama")) is None
    assert list(admin.list(r.PVCS, namespace)) == []


def test_pv_bound_to_another_claim_is_refused(
    plugin: Plugin, admin: Client, namespace: str, pvs: None
) -> None:
    shared = f"{namespace}-shared"
    assert (
        plugin(
            *local("first", "--no-storage-class", "--pv-name", shared), "-n", namespace
        ).exit_code
        == 0
    )
    result = plugin(
        *local("second", "--no-storage-class", "--pv-name", shared), "-n", namespace,
        "--force-conflicts",
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"PV {shared} is bound to claim {namespace}/first" in result.stderr
    assert admin.get_or_none(r.PVCS, "second", namespace) is None


BAD_INPUTS = [
    (["--local-path", "raid/models", "--node", NODE_1], "is not absolute"),
    (["--local-path", "/raid//models", "--node", NODE_1], "write it as /raid/models"),
    (["--local-path", "/raid/models", "--node", NODE_1, "--sub-path", "../etc"], "'..'"),
    (["--local-path", "/raid/models", "--node", NODE_1, "--sub-path", "/meta"], "starts with '/'"),
    (["--local-path", "/raid/models", "--node", "gpu-node-9"], 'node "gpu-node-9" does not exist'),
    (["--local-path", "/raid/models", "--node", NODE_1, "--size", "10GB"], "size '10GB'"),
    (["--local-path", "/raid/models", "--node", "GPU_1"], "node 'GPU_1' is not a valid name"),
    (["--nfs-server", "10.0.0.5", "--nfs-path", "export"], "NFS path 'export' is not absolute"),
]


@pytest.mark.parametrize(
    ("args", "message"),
    BAD_INPUTS,
    ids=[
        "relative",
        "unnormalised",
        "dotdot-sub",
        "abs-sub",
        "no-node",
        "size",
        "node-name",
        "nfs",
    ],
)
def test_bad_input_creates_nothing(
    plugin: Plugin, admin: Client, namespace: str, args: list[str], message: str
) -> None:
    size = [] if "--size" in args else ["--size", "1Gi"]
    result = plugin("create", "llama", "-n", namespace, *size, *args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1], lines
    assert list(admin.list(r.PVCS, namespace)) == []
    assert admin.get_or_none(r.PVS, pv_name(namespace, "llama")) is None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["Llama", "-n", "{ns}"], 1, "claim name 'Llama' is not a valid name"),
        (["llama", "-n", "{ns}-missing"], 1, "does not exist"),
        (["llama", "-n", "{ns}", "--nfs-server", "x", "--nfs-path", "/e"], 1, "one storage source"),
    ],
    ids=["claim-name", "namespace", "two-sources"],
)
def test_bad_names_and_sources(
    plugin: Plugin, admin: Client, namespace: str, args: list[str], code: int, message: str
) -> None:
    argv = [a.format(ns=namespace) for a in args]
    result = plugin(
        "create", *argv, "--local-path", "/raid/models", "--node", NODE_1, "--size", "1Gi"
    )
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert list(admin.list(r.PVCS, namespace)) == []
