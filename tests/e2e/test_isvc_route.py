"""`patch --strategy isvc` on the real control plane: the isvc, the copy, the node labels, undo.

No OME controller runs here (the real-OME tier has one): these tests pin what the plugin writes,
what the server accepts (the isvc's schema, dry runs, resourceVersion), and that `unpatch` gives
the isvc back byte for byte and removes the copy and labels only with their last user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from click.testing import Result

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import isvc_route, naming
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import KWOK_NODES, SERVED_MODEL, Cluster, Plugin
from tests.e2e.test_unpatch import cluster_model  # noqa: F401 (fixture)

Obj = dict[str, Any]
CLAIM = "models"
COPY = f"{SERVED_MODEL}-pvc"
REACHING = KWOK_NODES[:2]  # the local volume is pinned to these


def copy_key(namespace: str, copy: str = COPY, kind: ModelKind = ModelKind.NAMESPACED) -> str:
    return naming.model_label_key(kind, copy, namespace if kind is ModelKind.NAMESPACED else None)


def labelled(admin: Client, key: str) -> list[str]:
    return sorted(n["metadata"]["name"] for n in admin.list(r.NODES, label_selector=key))


@pytest.fixture
def local_claim(admin: Client, namespace: str, pv_names: list[str]) -> Obj:
    pv, pvc = ome.create_local_claim(admin, namespace, CLAIM, nodes=REACHING)
    pv_names.append(pv["metadata"]["name"])
    return pvc


@pytest.fixture
def cleanup_labels(admin: Client, namespace: str) -> Iterator[None]:
    """Node labels are cluster-wide: whatever a failed test left goes."""
    yield
    for key in (copy_key(namespace), copy_key(namespace, "shared-copy")):
        ome.label_nodes(admin, key, None, KWOK_NODES)


def patch_isvc(plugin: Plugin, namespace: str, name: str, *extra: str) -> Result:
    return plugin("patch", name, "-n", namespace, "--claim", CLAIM, "--strategy", "isvc",
                  "--no-wait", *extra)  # fmt: skip


def isvc_state(isvc: ome.Isvc) -> str:
    """What `unpatch` must give back byte for byte: spec, labels and annotations."""
    live = isvc.get()
    meta = live["metadata"]
    return json.dumps([live["spec"], meta.get("labels"), meta.get("annotations")])


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_patch_and_unpatch_round_trip(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    ome.create_workload(isvc, ome.component_deployment(isvc))
    before = isvc_state(isvc)
    key = copy_key(namespace)
    sub_path = f"{namespace}/{SERVED_MODEL}"

    result = patch_isvc(plugin, namespace, "llama")
    assert result.exit_code == 0, result.output
    assert f"basemodel.ome.io/{COPY} created" in result.stdout
    assert "inferenceservice.ome.io/llama configured" in result.stdout
    assert "node/gpu-node-1 labeled" in result.stdout
    assert "(strategy isvc)" in result.stderr

    copy = admin.get(r.BASE_MODELS, COPY, namespace)
    assert copy["spec"]["storage"] == {"storageUri": f"pvc://{CLAIM}/{sub_path}"}
    live = isvc.get()
    engine = live["spec"]["engine"]
    assert live["spec"]["model"]["name"] == COPY
    assert engine["volumes"] == [isvc_route.claim_volume(CLAIM)]
    assert engine["runner"]["name"] == "ome-container"
    assert engine["runner"]["volumeMounts"] == [
        {"name": isvc_route.VOLUME, "mountPath": isvc.model_path, "readOnly": True,
         "subPath": sub_path}
    ]  # fmt: skip
    assert engine["runner"]["env"] == [{"name": "MODEL_PATH", "value": isvc.model_path}]
    # exactly the nodes the local volume is pinned to
    assert labelled(admin, key) == list(REACHING)

    again = patch_isvc(plugin, namespace, "llama")
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.stdout
    # a label lost (say to the agents' pass over a deleted copy of the same name) comes back
    ome.label_nodes(admin, key, None, [REACHING[1]])
    healed = patch_isvc(plugin, namespace, "llama")
    assert healed.exit_code == 0, healed.output
    assert healed.stdout.strip() == f"node/{REACHING[1]} labeled"
    assert labelled(admin, key) == list(REACHING)

    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert "inferenceservice.ome.io/llama configured" in undone.stdout
    assert f"basemodel.ome.io/{COPY} deleted" in undone.stdout
    assert isvc_state(isvc) == before
    assert labelled(admin, key) == []
    assert admin.get_or_none(r.BASE_MODELS, COPY, namespace) is None


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_dry_run_client_prints_what_gitops_should_commit_and_writes_nothing(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    ome.create_workload(isvc, ome.component_deployment(isvc))
    before = isvc_state(isvc)
    result = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "isvc",
                    "--dry-run=client", "-o", "yaml")  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = yaml.safe_load(result.stdout)
    kinds = [o["kind"] for o in listed["items"]]
    assert kinds == ["BaseModel", "InferenceService"]
    committed = listed["items"][1]
    assert committed["spec"]["model"]["name"] == COPY
    for server_owned in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        assert server_owned not in committed["metadata"]
    assert isvc_state(isvc) == before
    assert admin.get_or_none(r.BASE_MODELS, COPY, namespace) is None
    assert labelled(admin, copy_key(namespace)) == []

    # the server accepts that object as it is (and the plugin's server dry run writes nothing)
    server = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "isvc",
                    "--dry-run=server")  # fmt: skip
    assert server.exit_code == 0, server.output
    assert "inferenceservice.ome.io/llama configured (server dry run)" in server.stdout
    assert isvc_state(isvc) == before
    assert labelled(admin, copy_key(namespace)) == []


def test_diff_shows_the_isvc_the_copy_and_the_labels(
    plugin: Plugin, namespace: str, isvc: ome.Isvc, local_claim: Obj
) -> None:
    ome.create_workload(isvc, ome.component_deployment(isvc))
    result = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "isvc")
    assert result.exit_code == 1, result.output
    out = result.stdout
    # as every object `diff` shows beside the workloads: `<kind>.<group>/<name>`, now and after
    assert "--- inferenceservice.ome.io/llama (now)" in out
    assert f"+  name: {COPY}" in out or f"+    name: {COPY}" in out
    assert f"+++ basemodel.ome.io/{COPY} (created)" in out
    assert f"+    storageUri: pvc://{CLAIM}/{namespace}/{SERVED_MODEL}" in out
    assert "--- node/gpu-node-1 (now)" in out
    assert f"+    {copy_key(namespace)}: Ready" in out
    assert "v1.Node.gpu-node-3" not in out


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_two_isvcs_share_one_copy_until_the_last_goes(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    other = ome.create_isvc(admin, namespace, "llama-2", SERVED_MODEL, create_the_model=False)
    for served in (isvc, other):
        ome.create_workload(served, ome.component_deployment(served))
    key = copy_key(namespace)
    states = {s.name: isvc_state(s) for s in (isvc, other)}
    for name in ("llama", "llama-2"):
        done = patch_isvc(plugin, namespace, name)
        assert done.exit_code == 0, done.output
    assert other.get()["spec"]["model"]["name"] == COPY
    assert len([m for m in admin.list(r.BASE_MODELS, namespace)]) == 2  # original and one copy

    first = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert first.exit_code == 0, first.output
    assert "also used by" in first.stderr
    assert admin.get_or_none(r.BASE_MODELS, COPY, namespace) is not None
    assert labelled(admin, key) == list(REACHING)
    assert isvc_state(isvc) == states["llama"]

    last = plugin("unpatch", "llama-2", "-n", namespace, "--no-wait")
    assert last.exit_code == 0, last.output
    assert admin.get_or_none(r.BASE_MODELS, COPY, namespace) is None
    assert labelled(admin, key) == []
    assert isvc_state(other) == states["llama-2"]


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_leader_and_worker_of_a_multi_node_isvc_are_both_switched(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    live = isvc.get()
    live["spec"]["engine"]["leader"] = {"runner": {"name": "ome-container", "args": ["--lead"]}}
    live["spec"]["engine"]["worker"] = {"size": 1}
    admin.replace(r.INFERENCE_SERVICES, live, namespace)
    ome.create_workload(isvc, ome.leader_worker_set(isvc))
    before = isvc_state(isvc)

    result = patch_isvc(plugin, namespace, "llama")
    assert result.exit_code == 0, result.output
    engine = isvc.get()["spec"]["engine"]
    for role in ("leader", "worker"):
        assert engine[role]["volumes"] == [isvc_route.claim_volume(CLAIM)], role
        assert engine[role]["runner"]["volumeMounts"][0]["mountPath"] == isvc.model_path
    assert engine["leader"]["runner"]["args"] == ["--lead"]
    assert "volumes" not in engine

    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert isvc_state(isvc) == before


@pytest.fixture
def late_binding_class(admin: Client, namespace: str) -> Iterator[str]:
    """A StorageClass whose claims bind only at their first pod (and nothing provisions)."""
    name = f"late-{namespace}"
    admin.create(
        r.STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "example.com/nothing",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    yield name
    admin.delete(r.STORAGE_CLASSES, name)


@pytest.mark.usefixtures("cleanup_labels")
def test_unknown_reach_labels_nothing_and_says_so(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
    late_binding_class: str,
) -> None:
    """A claim that binds at its first pod: which nodes reach it is not known yet."""
    admin.create(
        r.PVCS,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": late_binding_class,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace,
    )
    ome.create_workload(isvc, ome.component_deployment(isvc))
    result = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "isvc",
                    "--sub-path", f"{namespace}/{SERVED_MODEL}", "--no-wait")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no node labelled" in result.stderr
    assert f"claim {CLAIM} is not bound yet" in result.stderr
    assert "labeled" not in result.stdout
    assert labelled(admin, copy_key(namespace)) == []
    assert isvc.get()["spec"]["model"]["name"] == COPY

    # patch again, naming the nodes: it labels them (and changes nothing else)
    named = patch_isvc(plugin, namespace, "llama", "--node", KWOK_NODES[0])
    assert named.exit_code == 0, named.output
    assert named.stdout.strip() == f"node/{KWOK_NODES[0]} labeled"
    assert labelled(admin, copy_key(namespace)) == [KWOK_NODES[0]]
    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert labelled(admin, copy_key(namespace)) == []


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_status_names_the_route_and_explains_the_copy(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    ome.create_workload(isvc, ome.component_deployment(isvc))
    done = patch_isvc(plugin, namespace, "llama")
    assert done.exit_code == 0, done.output
    # a labelled node the local volume cannot be used on
    ome.label_nodes(admin, copy_key(namespace), "Ready", [KWOK_NODES[2]])
    shown = plugin("status", COPY, "-n", namespace, "-o", "json")
    assert shown.exit_code == 0, shown.output
    (model,) = json.loads(shown.stdout)["items"]
    (service,) = model["inferenceServices"]
    assert service["route"] == "isvc"
    found = {d["code"]: d for d in model["diagnoses"]}
    assert "pvc-not-supported" not in found
    assert found["pvc-isvc-route"]["severity"] == "info"
    assert found["labelled-node-unreachable"]["next"] == (
        f"kubectl label node {KWOK_NODES[2]} {copy_key(namespace)}-"
    )


def test_version_lists_the_routes(plugin: Plugin) -> None:
    result = plugin("version", "-o", "json")
    assert result.exit_code == 0, result.output
    routes = {r["name"]: r for r in json.loads(result.stdout)["server"]["routes"]}
    assert routes["isvc"]["available"] is True
    assert routes["deployment"]["default"] is False
    text = plugin("version")
    assert "Route isvc:" in text.stdout


@pytest.mark.usefixtures("cleanup_labels")
def test_an_upgraded_ome_turns_the_isvc_route_native_in_one_step(
    plugin: Plugin,
    cluster: Cluster,
    admin: Client,
    namespace: str,
    pv_names: list[str],
    cluster_model: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    isvc = ome.create_isvc(admin, namespace, "llama", cluster_model, kind=ModelKind.CLUSTER)
    ome.create_workload(isvc, ome.component_deployment(isvc))
    pv, _ = ome.create_local_claim(admin, namespace, CLAIM, nodes=REACHING)
    pv_names.append(pv["metadata"]["name"])
    spec_before = isvc.get()["spec"]
    done = patch_isvc(plugin, namespace, "llama")
    assert done.exit_code == 0, done.output
    copy = f"{cluster_model}-pvc"
    key = copy_key(namespace, copy, ModelKind.CLUSTER)
    assert labelled(admin, key) == list(REACHING)

    request.getfixturevalue("native_ome")  # OME upgraded: its model CRDs gain conditions
    told = plugin("status", copy, "-o", "json")
    codes = [d["code"] for d in json.loads(told.stdout)["items"][0]["diagnoses"]]
    assert "isvc-route-can-go-native" in codes

    native = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--no-wait")
    assert native.exit_code == 0, native.output
    live = isvc.get()
    assert live["spec"]["model"]["name"] == copy
    assert live["spec"]["engine"] == spec_before["engine"]
    record = json.loads(live["metadata"]["annotations"][jp.ANNOTATION])
    assert record["strategy"] == "native"
    assert labelled(admin, key) == []
    ome.label_nodes(admin, key, None, KWOK_NODES)

    back = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert back.exit_code == 0, back.output
    assert isvc.get()["spec"] == spec_before


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_the_default_route_follows_the_servers_admission_api(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    """Without the MutatingAdmissionPolicy API (Kubernetes before 1.36 as shipped: run with
    KUBE_VERSION=1.34.x LOCAL_CLUSTER_MUTATING_POLICY=off) the default is isvc, end to end;
    with it, policy stays the default."""
    from kubectl_omepvc.api import probe

    expected = "policy" if probe.probe(admin).mutating_policy_version else "isvc"
    ome.create_workload(isvc, ome.component_deployment(isvc))
    before = isvc_state(isvc)
    shown = json.loads(plugin("version", "-o", "json").stdout)
    assert [r["name"] for r in shown["server"]["routes"] if r["default"]] == [expected]

    diff = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM)
    assert diff.exit_code == 1, diff.output
    assert ("ome.io.v1beta1.InferenceService" in diff.stdout) is (expected == "isvc")

    done = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--no-wait")
    assert done.exit_code == 0, done.output
    assert f"(strategy {expected})" in done.stderr
    if expected == "isvc":
        assert isvc.get()["spec"]["model"]["name"] == COPY
        assert labelled(admin, copy_key(namespace)) == list(REACHING)
    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert isvc_state(isvc) == before
    assert labelled(admin, copy_key(namespace)) == []


@pytest.mark.usefixtures("local_claim", "cleanup_labels")
def test_the_printed_isvc_roles_suffice_for_a_fresh_user(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    isvc: ome.Isvc,
) -> None:
    """`rbac --for patch --strategy isvc`, bound to a new user: diff, patch and unpatch run
    with no 403 (each permission's need is argued in IsvcStrategy.rules; the runtime read is
    only needed by a multi-node isvc whose leader or worker the runtime alone defines)."""
    from kubectl_omepvc.core import rbac
    from tests.e2e.test_rbac_commands import fresh_user, granted, strategy_rules

    ome.create_workload(isvc, ome.component_deployment(isvc))
    before = isvc_state(isvc)
    user = fresh_user()
    rules = rbac.rules_for("patch", strategy_rules(), "isvc")
    with granted(admin, user, rules):
        for args, ok in (
            (["diff", "llama", "--claim", CLAIM, "--strategy", "isvc"], 1),
            (["patch", "llama", "--claim", CLAIM, "--strategy", "isvc", "--no-wait"], 0),
            (["unpatch", "llama", "--no-wait"], 0),
        ):
            result = plugin(*args, "-n", namespace, "--as", user)
            assert result.exit_code == ok, (args, result.output)
            assert "forbidden" not in result.output.lower(), (args, result.output)
            assert "cannot" not in result.stderr, (args, result.stderr)
            if args[0] == "patch":
                assert labelled(admin, copy_key(namespace)) == list(REACHING)
    assert isvc_state(isvc) == before
    assert labelled(admin, copy_key(namespace)) == []
