"""`kubectl ome-pvc patch` on the real control plane.

Workloads are created as OME would (model, isvc, then Deployments/LeaderWorkerSets owned by the
isvc with its uid); no OME controller runs here, so what OME does to them (its reconcile and
reverts) is tested against OME's real manager in tests/ome. kwok runs the pods, kube-scheduler
places them by the PV's node affinity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import manifests, policy
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.errors import Conflict
from tests import factories
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import KWOK_NODES, POLICY_VERSION, SERVED_MODEL, Plugin

Obj = dict[str, Any]
NODES = KWOK_NODES
CLAIM = "models"
MODEL = SERVED_MODEL
SUB_PATH = f"{{namespace}}/{MODEL}"  # factories put BaseModels at /raid/models/<ns>/<name>
UNRELATED_HOSTPATH = {"name": "cache", "hostPath": {"path": "/var/cache/llm", "type": "Directory"}}
MAP = r.mutating_policies(POLICY_VERSION)


def claim(admin: Client, namespace: str, pv_names: list[str], **kw: Any) -> Obj:
    pv, pvc = ome.create_local_claim(admin, namespace, kw.pop("name", CLAIM), **kw)
    pv_names.append(pv["metadata"]["name"])
    return pvc


def template(obj: Obj, path: str = jp.DEPLOYMENT_TEMPLATE) -> Obj:
    found: Obj = jp.resolve(obj, path)
    return found


def model_volume(obj: Obj, model: str = MODEL, path: str = jp.DEPLOYMENT_TEMPLATE) -> Obj:
    return next(v for v in template(obj, path)["spec"]["volumes"] if v["name"] == model)


def assert_unchanged(before: Obj, after: Obj) -> None:
    """No write but the controllers' status updates: same generation, spec and metadata."""
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
    for key in ("labels", "annotations"):
        got = {
            k: v
            for k, v in (after["metadata"].get(key) or {}).items()
            if not k.startswith("deployment.kubernetes.io/")
        }
        assert got == (before["metadata"].get(key) or {}), key


def policy_exists(admin: Client, namespace: str, isvc: str = "llama") -> bool:
    return admin.get_or_none(MAP, policy.policy_name(namespace, isvc)) is not None


# --- the transform on every kind of workload -----------------------------------------------------


def test_deployment_strategy_switches_every_workload(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str]
) -> None:
    """Engine, decoder, router and LWS, the model volume at indexes 0-2, another hostPath kept."""
    claim(admin, namespace, pv_names)
    created = {
        "engine": ome.create_workload(isvc, ome.component_deployment(isvc, "engine")),
        "decoder": ome.create_workload(
            isvc,
            ome.component_deployment(
                isvc, "decoder", extra_volumes=[factories.DSHM_VOLUME, UNRELATED_HOSTPATH]
            ),
        ),
        "router": ome.create_workload(
            isvc, ome.component_deployment(isvc, "router", extra_volumes=[])
        ),
        "lws": ome.create_workload(isvc, ome.leader_worker_set(isvc)),
    }
    sub_path = SUB_PATH.format(namespace=namespace)

    result = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM,
        "--strategy", "deployment", "--settle", "0", "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("llama-engine", "llama-decoder", "llama-router"):
        assert f"deployment.apps/{name} patched" in result.stdout
    assert "leaderworkerset.leaderworkerset.x-k8s.io/lws-llama-engine patched" in result.stdout

    pvc_volume = {"name": MODEL, "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True}}
    for component, index in (("engine", 1), ("decoder", 2), ("router", 0)):
        live = isvc.deployment(component)
        before = template(created[component])["spec"]
        spec = template(live)["spec"]
        assert spec["volumes"][index] == pvc_volume, component
        others = [v for i, v in enumerate(spec["volumes"]) if i != index]
        assert others == [v for i, v in enumerate(before["volumes"]) if i != index]
        assert "nodeSelector" not in spec
        mounts = spec["containers"][0].get("volumeMounts") or []
        model_mounts = [m for m in mounts if m["name"] == MODEL]
        expected = [] if component == "router" else [
            {"name": MODEL, "mountPath": isvc.model_path, "readOnly": True, "subPath": sub_path}
        ]  # fmt: skip
        assert model_mounts == expected, component
        # MODEL_PATH kept (the router has none: OME sets it on the engine and decoder only)
        assert spec["containers"][0].get("env") == before["containers"][0].get("env")
        assert jp.ANNOTATION in live["metadata"]["annotations"]
    lws = admin.get(r.LEADER_WORKER_SETS, "lws-llama-engine", namespace)
    for path in (jp.LWS_LEADER_TEMPLATE, jp.LWS_WORKER_TEMPLATE):
        assert model_volume(lws, path=path) == pvc_volume
        # a custom resource keeps the emptied map (a Deployment's typed spec drops it)
        assert template(lws, path)["spec"].get("nodeSelector", {}) == {}

    # patching again writes nothing and says so ("unchanged", or the rollout still under way)
    again = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "deployment")
    assert again.exit_code == 0, again.output
    assert "already serve" in again.stdout


# Durability against OME's reconcile (the policy holding, a one-shot patch reverted and
# reported) is tested against OME's real manager: tests/ome/test_patch.py.


# --- scheduling -----------------------------------------------------------------------------------


def test_pods_follow_the_volume_to_its_node(
    plugin: Plugin, admin: Client, namespace: str, labelled: ome.Isvc, pv_names: list[str]
) -> None:
    isvc = labelled
    claim(admin, namespace, pv_names, nodes=["gpu-node-2"])
    ome.create_workload(isvc, ome.component_deployment(isvc, replicas=2))

    result = plugin(
        "patch",
        "llama",
        "-n",
        namespace,
        "--claim",
        CLAIM,
        "--strategy",
        "policy",
        "--timeout",
        "180s",
    )
    assert result.exit_code == 0, result.output
    assert "deployment/llama-engine: rolled out: 2 of 2" in result.stderr
    pods = [
        p for p in admin.list(r.PODS, namespace, label_selector="app=llama-engine")
        if not p["metadata"].get("deletionTimestamp")
    ]  # fmt: skip
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == "gpu-node-2"
        ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
        assert any(
            (v.get("persistentVolumeClaim") or {}).get("claimName") == CLAIM
            for v in pod["spec"]["volumes"]
        )


def test_volume_on_no_usable_node_is_refused(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str]
) -> None:
    claim(admin, namespace, pv_names, nodes=["no-such-node"])
    created = ome.create_workload(isvc, ome.component_deployment(isvc))

    result = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "policy")
    assert result.exit_code == 1
    assert "kubernetes.io/hostname In [no-such-node]" in result.stderr
    assert "Ready nodes does" in result.stderr
    assert not policy_exists(admin, namespace)
    assert_unchanged(created, isvc.deployment())


def test_unschedulable_pods_are_explained(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str]
) -> None:
    claim(admin, namespace, pv_names, nodes=["gpu-node-2"])
    engine = ome.component_deployment(isvc)
    # more GPUs than any kwok node has (8): the scheduler can never place it
    engine["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": "9"}
    }
    ome.create_workload(isvc, engine)

    result = plugin(
        "patch",
        "llama",
        "-n",
        namespace,
        "--claim",
        CLAIM,
        "--strategy",
        "policy",
        "--timeout",
        "6s",
    )
    assert result.exit_code == 1, result.output
    assert "not rolled out after 6s" in result.stderr
    assert "FailedScheduling" in result.stderr
    assert "Insufficient nvidia.com/gpu" in result.stderr


# --- RBAC and concurrency ------------------------------------------------------------------------


RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLES = r.ResourceRef(RBAC, "v1", "clusterroles", "ClusterRole", False)
CLUSTER_ROLE_BINDINGS = r.ResourceRef(
    RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False
)
READ_WRITE = ["get", "list", "watch", "patch", "update"]


@pytest.fixture
def restricted_rights(admin: Client, namespace: str) -> Iterator[None]:
    """Rights on isvcs, models, workloads, claims (and reading PVs/nodes), not on policies."""
    name = f"omepvc-{namespace}"
    rules = [
        {"apiGroups": ["ome.io"], "verbs": READ_WRITE,
         "resources": ["inferenceservices", "basemodels", "clusterbasemodels"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": READ_WRITE},
        {"apiGroups": ["leaderworkerset.x-k8s.io"], "resources": ["leaderworkersets"],
         "verbs": READ_WRITE},
        {"apiGroups": [""], "verbs": ["get", "list", "watch"],
         "resources": ["persistentvolumeclaims", "persistentvolumes", "nodes", "pods", "events"]},
    ]  # fmt: skip
    role = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name}}
    admin.create(CLUSTER_ROLES, {**role, "rules": rules})
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "User", "name": "restricted", "apiGroup": RBAC}],
    }
    admin.create(CLUSTER_ROLE_BINDINGS, binding)
    yield
    admin.delete(CLUSTER_ROLE_BINDINGS, name)
    admin.delete(CLUSTER_ROLES, name)


def test_no_right_on_policies_changes_nothing(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str],
    restricted_rights: None,
) -> None:  # fmt: skip
    claim(admin, namespace, pv_names)
    created = ome.create_workload(isvc, ome.component_deployment(isvc))

    result = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "policy",
        "--context", "local-restricted",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "mutatingadmissionpolicies.admissionregistration.k8s.io" in result.stderr
    assert "forbidden" in result.stderr
    assert "nothing was changed" in result.stderr
    assert not policy_exists(admin, namespace)
    assert_unchanged(created, isvc.deployment())


def _insert_volume(admin: Client, namespace: str, name: str) -> None:
    """Someone else's write between our read and our patch: a volume before the model's."""
    for _ in range(10):  # the deployment controller writes status meanwhile
        live = admin.get(r.DEPLOYMENTS, "llama-engine", namespace)
        live["spec"]["template"]["spec"]["volumes"].insert(0, {"name": name, "emptyDir": {}})
        try:
            admin.replace(r.DEPLOYMENTS, live, namespace)
            return
        except Conflict:
            time.sleep(0.05)
    raise AssertionError("could not change the Deployment")


@pytest.mark.parametrize("interruptions", [1, 2], ids=["changed-once-retried", "changed-twice"])
def test_concurrent_change_is_retried_once(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
    pv_names: list[str],
    monkeypatch: pytest.MonkeyPatch,
    interruptions: int,
) -> None:
    claim(admin, namespace, pv_names)
    ome.create_workload(isvc, ome.component_deployment(isvc))
    real_patch = Client.patch
    writes = {"n": 0}

    def racing_patch(self: Client, ref: r.ResourceRef, name: str, patch: Any, **kw: Any) -> Obj:
        if ref == r.DEPLOYMENTS and not kw.get("dry_run") and writes["n"] < interruptions:
            writes["n"] += 1
            _insert_volume(admin, namespace, f"scratch-{writes['n']}")
        return real_patch(self, ref, name, patch, **kw)

    monkeypatch.setattr(Client, "patch", racing_patch)
    result = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM,
        "--strategy", "deployment", "--settle", "0", "--no-wait",
    )  # fmt: skip
    monkeypatch.undo()
    live = isvc.deployment()
    names = [v["name"] for v in template(live)["spec"]["volumes"]]
    assert "changed while it was being written" in result.stderr
    if interruptions == 1:
        assert result.exit_code == 0, result.output
        assert names == ["scratch-1", "dshm", MODEL]
        assert "persistentVolumeClaim" in model_volume(live)
    else:
        assert result.exit_code == 1
        assert "changed again" in result.stderr
        assert "re-read and retried once" in result.stderr
        assert names == ["scratch-2", "scratch-1", "dshm", MODEL]
        assert "hostPath" in model_volume(live)


# --- bad inputs change nothing -------------------------------------------------------------------


def _missing_isvc(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    claim(admin, ns, pv_names)
    return "nope", ["patch", "nope", "--claim", CLAIM]


def _no_host_path(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    claim(admin, ns, pv_names)
    ome.create_isvc(admin, ns, "vendor", "vendor-model", path=None, uri="vendor://openai/gpt")
    return "vendor", ["patch", "vendor", "--claim", CLAIM]


def _claim_missing(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    return "llama", ["patch", "llama", "--claim", "nope"]


def _claim_unbound(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    admin.create(
        r.PVCS,
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pending"},
         "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                  "resources": {"requests": {"storage": "1Gi"}}}},
        ns,
    )  # fmt: skip
    return "llama", ["patch", "llama", "--claim", "pending"]


def _claim_elsewhere(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    other = f"{ns}-other"
    admin.create(
        r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}
    )
    pv_names.append(f"ns:{other}")
    claim(admin, other, pv_names, name="elsewhere")
    return "llama", ["patch", "llama", "--claim", "elsewhere"]


def _outside_root(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    claim(admin, ns, pv_names, root="/data/other")
    return "llama", ["patch", "llama", "--claim", CLAIM]


def _rwo_many_nodes(admin: Client, ns: str, pv_names: list[str]) -> tuple[str, list[str]]:
    claim(admin, ns, pv_names, access_mode=manifests.AccessMode.READ_WRITE_ONCE)
    return "llama", ["patch", "llama", "--claim", CLAIM]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_missing_isvc, 'inferenceservice "nope" not found in namespace'),
        (_no_host_path, "has no storage.path (storageUri vendor://openai/gpt)"),
        (_claim_missing, 'persistentvolumeclaim "nope" not found in namespace'),
        (_claim_unbound, "claim pending is Pending, not Bound"),
        (_claim_elsewhere, "a pod can only mount a claim of its own namespace"),
        (_outside_root, "its local volume's root /data/other does not hold the node's model"),
        (_rwo_many_nodes, "it is ReadWriteOnce"),
    ],
    ids=["isvc-not-found", "no-hostpath-model", "claim-missing", "claim-unbound",
         "claim-wrong-namespace", "model-outside-pv-root", "rwo-several-nodes"],
)  # fmt: skip
def test_bad_input_changes_nothing(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str],
    setup: Any, message: str,
) -> None:  # fmt: skip
    created = ome.create_workload(isvc, ome.component_deployment(isvc, replicas=2))
    isvc_before = isvc.get()
    try:
        name, args = setup(admin, namespace, pv_names)
        result = plugin(*args, "-n", namespace)
        assert result.exit_code == 1, result.output
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not policy_exists(admin, namespace, name)
        assert not policy_exists(admin, namespace)
        assert_unchanged(created, isvc.deployment())
        assert (
            isvc.get()["metadata"]["resourceVersion"] == isvc_before["metadata"]["resourceVersion"]
        )
    finally:
        for extra in [p for p in pv_names if p.startswith("ns:")]:
            pv_names.remove(extra)
            admin.delete(r.NAMESPACES, extra[3:])


def test_dry_run_prints_the_objects_and_writes_nothing(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str]
) -> None:
    claim(admin, namespace, pv_names)
    created = ome.create_workload(isvc, ome.component_deployment(isvc))
    for mode in ("client", "server"):
        result = plugin(
            "patch",
            "llama",
            "-n",
            namespace,
            "--claim",
            CLAIM,
            "--strategy",
            "policy",
            "--dry-run",
            mode,
            "-o",
            "json",
        )
        assert result.exit_code == 0, result.output
        listed = json.loads(result.stdout)
        kinds = [i["kind"] for i in listed["items"]]
        assert kinds == ["MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "Deployment"]
        deployment = listed["items"][2]
        assert model_volume(deployment)["persistentVolumeClaim"]["claimName"] == CLAIM
    assert not policy_exists(admin, namespace)
    assert_unchanged(created, isvc.deployment())
