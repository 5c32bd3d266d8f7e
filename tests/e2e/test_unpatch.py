"""`kubectl ome-pvc unpatch`: back to the hostPath, byte for byte, for every strategy.

The native test swaps the model CRDs for hack/crds-native-pvc (the schema of OME with native
pvc:// support) and puts hack/crds back afterwards, as `hack/local-cluster up` installs them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import policy
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import KWOK_NODES, POLICY_VERSION, SERVED_MODEL, Plugin

Obj = dict[str, Any]
NODES = KWOK_NODES
CLAIM = "models"
MODEL = SERVED_MODEL
MAP = r.mutating_policies(POLICY_VERSION)


def claim(admin: Client, namespace: str, pv_names: list[str]) -> None:
    pv, _ = ome.create_local_claim(admin, namespace, CLAIM)
    pv_names.append(pv["metadata"]["name"])


def templates(obj: Obj) -> dict[str, str]:
    """Each pod template as the exact JSON text the server returned."""
    return {p: json.dumps(jp.resolve(obj, p)) for p in jp.pod_template_paths(obj)}


def get(admin: Client, namespace: str, ref: str) -> Obj:
    kind, name = ref.split("/")
    resource = r.DEPLOYMENTS if kind == "deployment" else r.LEADER_WORKER_SETS
    return {**admin.get(resource, name, namespace), "kind": resource.kind}


def on_claim(obj: Obj) -> bool:
    return all(
        any("persistentVolumeClaim" in v for v in jp.resolve(obj, p)["spec"]["volumes"])
        for p in jp.pod_template_paths(obj)
    )


# --- policy --------------------------------------------------------------------------------------


def test_policy_round_trip_is_byte_identical(
    plugin: Plugin, admin: Client, namespace: str, labelled: ome.Isvc, pv_names: list[str]
) -> None:
    isvc = labelled
    claim(admin, namespace, pv_names)
    ome.create_workload(isvc, ome.component_deployment(isvc, "engine"))
    ome.create_workload(isvc, ome.component_deployment(isvc, "decoder", replicas=2))
    original = {ref: templates(get(admin, namespace, ref)) for ref in isvc.workloads}

    # Waiting for the patch's rollout keeps it from overlapping the undo's: two rollouts of
    # the same Deployment at once made the undo's wait time out on a loaded CI machine.
    patched = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "policy",
        "--timeout", "180s",
    )  # fmt: skip
    assert patched.exit_code == 0, patched.output
    assert all(on_claim(get(admin, namespace, ref)) for ref in isvc.workloads)

    dry = plugin("unpatch", "llama", "-n", namespace, "--dry-run", "server", "-o", "yaml")
    assert dry.exit_code == 0, dry.output
    shown = yaml.safe_load(dry.stdout)
    assert [i["kind"] for i in shown["items"]] == ["Deployment", "Deployment"]
    assert admin.get_or_none(MAP, policy.policy_name(namespace, "llama")) is not None

    result = plugin("unpatch", "llama", "-n", namespace, "--timeout", "180s")
    assert result.exit_code == 0, result.output
    name = policy.policy_name(namespace, "llama")
    assert f"mutatingadmissionpolicy.admissionregistration.k8s.io/{name} deleted" in result.stdout
    assert "deployment.apps/llama-decoder restored" in result.stdout
    assert "deployment/llama-decoder: rolled out: 2 of 2" in result.stderr
    assert admin.get_or_none(MAP, name) is None
    for ref in isvc.workloads:
        live = get(admin, namespace, ref)
        assert templates(live) == original[ref], ref
        assert jp.ANNOTATION not in (live["metadata"].get("annotations") or {})

    again = plugin("unpatch", "llama", "-n", namespace)
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.stdout


# --- deployment ----------------------------------------------------------------------------------


def test_deployment_round_trip_with_leader_worker_set(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc, pv_names: list[str]
) -> None:
    claim(admin, namespace, pv_names)
    ome.create_workload(isvc, ome.component_deployment(isvc, "router", extra_volumes=[]))
    ome.create_workload(isvc, ome.leader_worker_set(isvc))
    original = {ref: templates(get(admin, namespace, ref)) for ref in isvc.workloads}

    patched = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM,
        "--strategy", "deployment", "--settle", "0", "--no-wait",
    )  # fmt: skip
    assert patched.exit_code == 0, patched.output
    assert all(on_claim(get(admin, namespace, ref)) for ref in isvc.workloads)

    result = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert result.exit_code == 0, result.output
    assert "leaderworkerset.leaderworkerset.x-k8s.io/lws-llama-engine restored" in result.stdout
    for ref in isvc.workloads:
        live = get(admin, namespace, ref)
        assert templates(live) == original[ref], ref
        assert jp.ANNOTATION not in (live["metadata"].get("annotations") or {})


def test_unpatch_of_an_untouched_or_missing_isvc(
    plugin: Plugin, admin: Client, namespace: str, isvc: ome.Isvc
) -> None:
    created = ome.create_workload(isvc, ome.component_deployment(isvc))
    result = plugin("unpatch", "llama", "-n", namespace)
    assert result.exit_code == 0, result.output
    assert "inferenceservice.ome.io/llama unchanged" in result.stdout
    assert isvc.deployment()["metadata"]["generation"] == created["metadata"]["generation"]

    missing = plugin("unpatch", "nope", "-n", namespace)
    assert missing.exit_code == 1
    assert 'inferenceservice "nope" not found' in missing.stderr


# --- native --------------------------------------------------------------------------------------


@pytest.fixture
def cluster_model(admin: Client) -> Iterator[str]:
    name = f"llama-native-{secrets.token_hex(3)}"
    yield name
    for leftover in (name, f"{name}-pvc"):
        admin.delete(r.CLUSTER_BASE_MODELS, leftover)


def test_native_switches_the_model_and_back(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    pv_names: list[str],
    cluster_model: str,
    native_ome: None,
) -> None:
    isvc = ome.create_isvc(admin, namespace, "llama", cluster_model, kind=ModelKind.CLUSTER)
    ome.create_workload(isvc, ome.component_deployment(isvc))
    claim(admin, namespace, pv_names)
    spec_before = json.dumps(isvc.get()["spec"])

    # default strategy; no OME controller here re-renders the workloads, so --wait gives up
    result = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--timeout", "2s")
    assert result.exit_code == 1, result.output
    created = f"{cluster_model}-pvc"
    assert f"clusterbasemodel.ome.io/{created} created" in result.stdout
    assert "inferenceservice.ome.io/llama patched" in result.stdout
    assert "(strategy native)" in result.stderr
    assert "OME has not switched the workloads" in result.stderr

    model = admin.get(r.CLUSTER_BASE_MODELS, created)
    assert model["spec"]["storage"] == {
        "storageUri": f"pvc://{namespace}:{CLAIM}/meta/{cluster_model}"
    }
    live = isvc.get()
    assert live["spec"]["model"] == {"name": created, "kind": "ClusterBaseModel"}
    record = json.loads(live["metadata"]["annotations"][jp.ANNOTATION])
    assert record["strategy"] == "native"
    assert record["originalModel"] == {"kind": "ClusterBaseModel", "name": cluster_model}
    assert record["createdModel"] is True
    assert admin.get_or_none(MAP, policy.policy_name(namespace, "llama")) is None

    again = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--no-wait")
    assert again.exit_code == 0, again.output
    # nothing written; the engine OME has not re-rendered yet is reported, not called done
    assert "already served from claim models (strategy native)" in again.stdout

    undone = plugin("unpatch", "llama", "-n", namespace)
    assert undone.exit_code == 0, undone.output
    assert f"clusterbasemodel.ome.io/{created} deleted" in undone.stdout
    restored = isvc.get()
    assert json.dumps(restored["spec"]) == spec_before
    assert jp.ANNOTATION not in (restored["metadata"].get("annotations") or {})
    assert admin.get_or_none(r.CLUSTER_BASE_MODELS, created) is None

    twice = plugin("unpatch", "llama", "-n", namespace)
    assert twice.exit_code == 0, twice.output
    assert "unchanged" in twice.stdout
