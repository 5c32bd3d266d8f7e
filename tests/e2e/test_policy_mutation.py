"""The rendered MutatingAdmissionPolicy and the JSON Patches, on the real API server.

Pure-core objects only (no command): the policy from `core.policy` must rewrite OME-shaped
workloads on CREATE and UPDATE and leave everything else alone, and the patches from
`core.jsonpatch` must apply and undo byte for byte, with their `test` guards enforced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import policy
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.errors import Invalid
from tests.e2e.conftest import POLICY_VERSION
from tests.expect import raises_exactly
from tests.unit import ome_objects as ome

Obj = dict[str, Any]
ISVCS = r.INFERENCE_SERVICES
PVC = {"name": ome.MODEL, "persistentVolumeClaim": {"claimName": ome.CLAIM, "readOnly": True}}


@pytest.fixture
def owner(admin: Client, namespace: str) -> str:
    """The InferenceService the workloads belong to (so the garbage collector keeps them)."""
    isvc = {
        "apiVersion": "ome.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": ome.ISVC},
        "spec": {"model": {"name": ome.MODEL}, "engine": {"minReplicas": 1}},
    }
    return str(admin.create(ISVCS, isvc, namespace)["metadata"]["uid"])


def owned(workload: Obj, namespace: str, uid: str) -> Obj:
    workload["metadata"]["namespace"] = namespace
    workload["metadata"]["ownerReferences"][0]["uid"] = uid
    return workload


@pytest.fixture
def with_policy(admin: Client, namespace: str, owner: str) -> Iterator[str]:
    pol, binding = policy.policy_objects(
        POLICY_VERSION, namespace, ome.ISVC, ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY
    )
    admin.create(r.mutating_policies(POLICY_VERSION), pol)
    admin.create(r.mutating_policy_bindings(POLICY_VERSION), binding)
    try:
        # The policy takes effect once the server's informer saw it: wait for a first mutation.
        probe = owned(ome.deployment(), namespace, owner)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = admin.create(r.DEPLOYMENTS, probe, namespace, dry_run=True)
            if "persistentVolumeClaim" in out["spec"]["template"]["spec"]["volumes"][1]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the policy never took effect")
        yield owner
    finally:
        name = pol["metadata"]["name"]
        admin.delete(r.mutating_policy_bindings(POLICY_VERSION), name)
        admin.delete(r.mutating_policies(POLICY_VERSION), name)


def pod_spec(obj: Obj, path: str = jp.DEPLOYMENT_TEMPLATE) -> Obj:
    spec: Obj = jp.resolve(obj, path)["spec"]
    return spec


def test_policy_rewrites_the_engine(admin: Client, namespace: str, with_policy: str) -> None:
    workload = owned(
        ome.deployment(node_selector={"gpu": "a100", ome.LABEL_KEY: "Ready"}),
        namespace,
        with_policy,
    )
    workload["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "check", "image": "busybox", "volumeMounts": [ome.model_mount(path="/check")]}
    ]
    spec = pod_spec(admin.create(r.DEPLOYMENTS, workload, namespace))
    assert spec["volumes"] == [ome.dshm_volume(), PVC]
    assert spec["nodeSelector"] == {"gpu": "a100"}
    mounts = spec["containers"][0]["volumeMounts"]
    assert mounts[0] == {"name": "dshm", "mountPath": "/dev/shm"}
    assert mounts[1] == ome.model_mount() | {"subPath": ome.SUB_PATH}
    assert spec["initContainers"][0]["volumeMounts"][0]["subPath"] == ome.SUB_PATH


def test_policy_sets_the_sub_path_on_both_mounts_of_a_container_that_mounts_twice(
    admin: Client, namespace: str, with_policy: str
) -> None:
    """The policy's CEL on the server: a container mounting the model twice gets the subPath on
    both mounts (its first and last), one mounting it once on its only mount."""
    workload = owned(ome.deployment(), namespace, with_policy)
    containers = workload["spec"]["template"]["spec"]["containers"]
    containers[0]["volumeMounts"].append(ome.model_mount(path="/copy"))
    containers.append(
        {"name": "sidecar", "image": "busybox", "volumeMounts": [ome.model_mount(path="/side")]}
    )
    spec = pod_spec(admin.create(r.DEPLOYMENTS, workload, namespace, dry_run=True))
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "dshm", "mountPath": "/dev/shm"},
        ome.model_mount() | {"subPath": ome.SUB_PATH},
        ome.model_mount(path="/copy") | {"subPath": ome.SUB_PATH},
    ]
    assert spec["containers"][1]["volumeMounts"] == [
        ome.model_mount(path="/side") | {"subPath": ome.SUB_PATH}
    ]


def test_policy_rewrites_both_lws_templates(
    admin: Client, namespace: str, with_policy: str
) -> None:
    lws = admin.create(
        r.LEADER_WORKER_SETS, owned(ome.leader_worker_set(), namespace, with_policy), namespace
    )
    for path, index in ((jp.LWS_LEADER_TEMPLATE, 2), (jp.LWS_WORKER_TEMPLATE, 1)):
        spec = pod_spec(lws, path)
        assert spec["volumes"][index] == PVC
        assert spec["containers"][0]["volumeMounts"][1]["subPath"] == ome.SUB_PATH
        assert ome.LABEL_KEY not in spec["nodeSelector"]
    assert pod_spec(lws, jp.LWS_LEADER_TEMPLATE)["volumes"][1]["name"] == "cache"  # unrelated


def _no_owner(w: Obj) -> None:
    del w["metadata"]["ownerReferences"]


def _not_controller(w: Obj) -> None:
    w["metadata"]["ownerReferences"][0]["controller"] = False


def _other_label(w: Obj) -> None:
    w["metadata"]["labels"]["ome.io/inferenceservice"] = "other"


def _already_pvc(w: Obj) -> None:
    w["spec"]["template"]["spec"]["volumes"][1] = {
        "name": ome.MODEL,
        "persistentVolumeClaim": {"claimName": "mine"},
    }


def _no_model_volume(w: Obj) -> None:
    spec = w["spec"]["template"]["spec"]
    del spec["volumes"][1]
    del spec["containers"][0]["volumeMounts"][1]


@pytest.mark.parametrize(
    "change",
    [_no_owner, _not_controller, _other_label, _already_pvc, _no_model_volume],
    ids=["no-owner", "not-controller", "other-isvc-label", "already-pvc", "no-model-volume"],
)
def test_policy_leaves_other_workloads_alone(
    admin: Client, namespace: str, with_policy: str, change: Callable[[Obj], None]
) -> None:
    workload = owned(ome.deployment(), namespace, with_policy)
    change(workload)
    out = admin.create(r.DEPLOYMENTS, workload, namespace, dry_run=True)
    assert model_parts(pod_spec(out)) == model_parts(workload["spec"]["template"]["spec"])


def model_parts(spec: Obj) -> Obj:
    """What the policy could touch (the server defaults other fields of the pod spec)."""
    return {
        "volumes": spec.get("volumes"),
        "nodeSelector": spec.get("nodeSelector"),
        "mounts": [c.get("volumeMounts") for c in spec["containers"]],
    }


def test_json_patch_round_trip(admin: Client, namespace: str, owner: str) -> None:
    workload = ome.deployment(
        "decoder",
        volume_index=3,
        node_selector={"gpu": "a100", ome.LABEL_KEY: "Ready", "zone": "b"},
    )
    created = admin.create(r.DEPLOYMENTS, owned(workload, namespace, owner), namespace)
    ops = jp.template_patch(
        created, jp.DEPLOYMENT_TEMPLATE, ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY
    )
    patched = admin.patch(r.DEPLOYMENTS, "llama-decoder", ops, namespace=namespace)
    assert pod_spec(patched)["volumes"][3] == PVC
    assert pod_spec(patched)["nodeSelector"] == {"gpu": "a100", "zone": "b"}
    undo = jp.restore_patch(patched)
    restored = admin.patch(r.DEPLOYMENTS, "llama-decoder", undo, namespace=namespace)
    before, after = created["spec"]["template"], restored["spec"]["template"]
    assert json.dumps(after, sort_keys=False) == json.dumps(before, sort_keys=False)
    assert jp.ANNOTATION not in restored["metadata"]["annotations"]
    # The same undo again: its `test` ops no longer hold, and the server says so (a bare 422).
    with raises_exactly(Invalid, match="patch deployments.apps/llama-decoder"):
        admin.patch(r.DEPLOYMENTS, "llama-decoder", undo, namespace=namespace)
