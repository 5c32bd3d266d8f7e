"""The native route against OME `main`'s PVC backend, re-enacted on the real server.

OME main's model CRDs (hack/crds-native-pvc), its model webhook as a ValidatingAdmissionPolicy,
its PVC reconcile, metadata Job and agent report (tests/e2e/ome_main_pvc.py; the OME files and
commits each piece follows are named there): both model kinds, every condition reason, a
metadata Job found by OME's own labels, and an isvc outside the claim's namespace refused.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests.e2e import ome_controller as ome
from tests.e2e import ome_main_pvc as main
from tests.e2e.conftest import Plugin, deleted_after, make_namespace

Obj = dict[str, Any]


@pytest.fixture
def webhook(admin: Client, namespace: str) -> Iterator[None]:
    """OME's model webhook (failurePolicy Fail), until it is seen denying."""
    name = f"ome-basemodel-webhook-{secrets.token_hex(3)}"
    policy, binding = main.webhook_policy(name)
    admin.create(main.POLICIES, policy)
    admin.create(main.BINDINGS, binding)
    probe = {"apiVersion": "ome.io/v1beta1", "kind": "BaseModel",
             "metadata": {"name": "probe"},
             "spec": {"storage": {"storageUri": "pvc://x:y/z"}}}  # fmt: skip

    def denies() -> bool:
        try:
            admin.create(r.BASE_MODELS, probe, namespace, dry_run=True)
        except errors.PluginError:
            return True
        return False

    try:
        ome.wait_for(denies, bool, what="OME's model webhook to deny", timeout=60)
        yield
    finally:
        admin.delete(main.BINDINGS, name)
        admin.delete(main.POLICIES, name)


@pytest.fixture
def cluster_models(admin: Client) -> Iterator[list[str]]:
    yield from deleted_after(admin, r.CLUSTER_BASE_MODELS)


@pytest.fixture
def other_namespace(admin: Client) -> Iterator[str]:
    name = make_namespace(admin)
    yield name
    admin.delete(r.NAMESPACES, name)


def model(namespace: str | None, name: str, uri: str) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "ome.io/v1beta1",
        "kind": "BaseModel" if namespace else "ClusterBaseModel",
        "metadata": meta,
        "spec": {"storage": {"storageUri": uri}},
    }


def add(admin: Client, obj: Obj) -> Obj:
    ref = r.BASE_MODELS if obj["kind"] == "BaseModel" else r.CLUSTER_BASE_MODELS
    return admin.create(ref, obj, obj["metadata"].get("namespace"))


def status_items(plugin: Plugin, *args: str) -> dict[str, Obj]:
    result = plugin("status", *args, "-o", "json")
    assert result.exit_code == 0, result.output
    return {
        (f"{i['namespace']}/" if i["namespace"] else "") + i["name"]: i
        for i in json.loads(result.stdout)["items"]
    }


def diagnosis(item: Obj, code: str) -> Obj:
    found: list[Obj] = [d for d in item["diagnoses"] if d["code"] == code]
    assert found, (code, item["diagnoses"])
    return found[0]


def ready_condition(item: Obj) -> Obj:
    return next(c for c in item["conditions"] or [] if c["type"] == "Ready")


# --- URIs per model kind ----------------------------------------------------------------------


def test_both_model_kinds_pass_omes_webhook_as_the_plugin_writes_them(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    native_ome: None,
    webhook: None,
    cluster_models: list[str],
) -> None:
    # OME: pkg/validation/basemodel.go (ValidatePVCStorage) at aab06ebe, through
    # pkg/webhook/admission/basemodel/basemodel_webhook.go at 39b5dd06
    cluster_name = f"llama-{secrets.token_hex(3)}"
    cluster_models.append(cluster_name)
    nfs = ("--nfs-server", "10.0.0.5", "--nfs-path", "/export", "--size", "1Gi")
    try:
        for register in ("basemodel/llama-pvc", cluster_name):
            result = plugin("create", "weights", "-n", namespace, *nfs,
                            "--sub-path", "meta/llama", "--register-model", register)  # fmt: skip
            assert result.exit_code == 0, result.output
        namespaced = admin.get(r.BASE_MODELS, "llama-pvc", namespace)
        assert namespaced["spec"]["storage"]["storageUri"] == "pvc://weights/meta/llama"
        cluster = admin.get(r.CLUSTER_BASE_MODELS, cluster_name)
        uri = f"pvc://{namespace}:weights/meta/llama"
        assert cluster["spec"]["storage"]["storageUri"] == uri

        # the other forms, by hand: OME's webhook denies them, in OME's words
        wrong = [
            (model(namespace, "ns-in-uri", uri), "must not specify a namespace"),
            (model(None, f"{cluster_name}-bare", "pvc://weights/meta/llama"),
             "must specify a namespace"),
        ]  # fmt: skip
        for obj, words in wrong:
            with pytest.raises(errors.PluginError, match=words):
                add(admin, obj)

        # both, reconciled by OME main's backend: the claim is found, the Job created
        assert main.reconcile(admin, "BaseModel", "llama-pvc", namespace) == "PVCMetadataExtracting"
        assert main.reconcile(admin, "ClusterBaseModel", cluster_name) == "PVCMetadataExtracting"
        jobs = admin.list(r.JOBS, namespace, label_selector=main.NAME_LABEL)
        scopes = sorted(j["metadata"]["labels"][main.SCOPE_LABEL] for j in jobs)
        assert scopes == ["cluster", "namespaced"]
    finally:
        admin.delete(r.PVS, m.pv_name(namespace, "weights"))


# --- every reason -------------------------------------------------------------------------------


def test_every_reason_and_the_metadata_job_by_its_labels(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    pv_names: list[str],
    native_ome: None,
    cluster_models: list[str],
) -> None:
    # OME: pkg/controller/v1beta1/basemodel/backends/pvc/pvc.go (Reconcile, the reasons) and
    # metadata_job.go (the Job's name and labels) at 5ed809d2
    ns = namespace
    pv, _ = ome.create_local_claim(admin, ns, "weights")
    pv_names.append(pv["metadata"]["name"])
    pending = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "pending"},
               "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "nowhere",
                        "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    admin.create(r.PVCS, pending, ns)
    bare = f"bare-{secrets.token_hex(3)}"
    cluster_models.append(bare)
    cases = {
        "invalid": ("pvc://" + ns + ":weights/meta/a", "PVCInvalid", "pvc-invalid"),
        "missing": ("pvc://nowhere/meta/a", "PVCNotFound", "pvc-not-found"),
        "unbound": ("pvc://pending/meta/a", "PVCNotBound", "pvc-not-bound"),
        "noimage": ("pvc://weights/meta/a", "PVCConfigMissing", "pvc-config-missing"),
        "running": ("pvc://weights/meta/a", "PVCMetadataExtracting", "pvc-metadata-extracting"),
        "broken": ("pvc://weights/meta/b", "PVCMetadataExtractionFailed", "pvc-extraction-failed"),
        "ready": ("pvc://weights/meta/c", "PVCMetadataReady", None),
    }
    for name, (uri, _, _) in cases.items():
        add(admin, model(ns, name, uri))
    add(admin, model(None, bare, "pvc://weights/meta/a"))  # a ClusterBaseModel without namespace
    for name in cases:
        main.reconcile(admin, "BaseModel", name, ns, image="" if name == "noimage" else main.IMAGE)
    main.reconcile(admin, "ClusterBaseModel", bare)
    main.agent_reports(admin, "broken", ns, "Failed", "config.json not found in /model")
    main.agent_reports(admin, "ready", ns, "Ready")
    for name in ("broken", "ready"):
        main.reconcile(admin, "BaseModel", name, ns)
    # the operator pinned metadata Jobs to nodes that do not exist: the pod cannot schedule
    add(admin, model(ns, "stuck", "pvc://weights/meta/d"))
    main.reconcile(admin, "BaseModel", "stuck", ns, node_selector={"example.com/none": "x"})

    def unschedulable() -> bool:
        pods = list(admin.list(r.PODS, ns, label_selector=f"{main.NAME_LABEL}=stuck"))
        conditions = [c for p in pods for c in (p.get("status") or {}).get("conditions") or []]
        return any(c.get("reason") == "Unschedulable" for c in conditions)

    ome.wait_for(unschedulable, bool, what="the stuck Job's pod to be unschedulable")
    try:
        items = status_items(plugin, "-n", ns)
        cbm = status_items(plugin, bare)[bare]
    finally:
        for name in ("broken", "ready"):
            main.delete_status_configmap(admin, name, ns)

    for name, (_, reason, code) in cases.items():
        item = items[f"{ns}/{name}"]
        assert ready_condition(item)["reason"] == reason, name
        assert "pvc-not-supported" not in [d["code"] for d in item["diagnoses"]]
        if code:
            assert diagnosis(item, code)["severity"] in ("error", "warning", "info")
    invalid = diagnosis(items[f"{ns}/invalid"], "pvc-invalid")
    assert (
        "must not name a namespace (OME uses the model's own): pvc://weights/meta/a"
        in (invalid["message"])
    )
    bare_invalid = diagnosis(cbm, "pvc-invalid")
    assert (
        "must name the claim's namespace: pvc://<namespace>:weights/meta/a"
        in (bare_invalid["message"])
    )
    assert diagnosis(items[f"{ns}/noimage"], "pvc-config-missing")["next"] == (
        "kubectl get configmap inferenceservice-config -n ome -o yaml"
    )
    broken = diagnosis(items[f"{ns}/broken"], "pvc-extraction-failed")
    assert broken["severity"] == "error" and "config.json not found in /model" in broken["message"]
    assert broken["next"] == f"kubectl ome-pvc verify weights -n {ns} --sub-path meta/b"
    ready = items[f"{ns}/ready"]
    assert ready["state"] == "Ready"
    assert {c["type"]: (c["status"], c["reason"]) for c in ready["conditions"]} == {
        "SourceReachable": ("True", "PVCValidated"),
        "Ready": ("True", "PVCMetadataReady"),
    }
    assert [d for d in ready["diagnoses"] if d["severity"] == "error"] == []
    assert ready["metadataStatus"]["entryStatus"] == "Ready"

    # the Job, found by OME's labels in the claim's namespace
    (job,) = items[f"{ns}/running"]["metadataJobs"]
    assert job["name"] == main.job_name("running", "pvc://weights/meta/a")
    assert job["namespace"] == ns and job["ttlSecondsAfterFinished"] == 3600
    text = plugin("status", "running", "-n", ns).stdout
    assert f"Metadata Jobs:\n  {ns}/{job['name']}: " in text
    # and its pods' failure reasons
    stuck = items[f"{ns}/stuck"]
    ((pod,),) = [j["pods"] for j in stuck["metadataJobs"]]
    assert pod["reason"] == "Unschedulable" and "node affinity/selector" in pod["message"]
    failing = diagnosis(stuck, "pvc-metadata-pod-failing")
    assert (
        failing["severity"] == "warning"
        and f"pod {pod['name']} Unschedulable" in (failing["message"])
    )
    assert failing["next"] == f"kubectl describe pod {pod['name']} -n {ns}"


def test_last_error_and_the_ttl_recreation(
    plugin: Plugin, admin: Client, namespace: str, pv_names: list[str], native_ome: None
) -> None:
    # OME: pvc.go (applyPVCStatusFromConfigMap: the last-error annotation) and metadata_job.go
    # (TTLSecondsAfterFinished 3600, the Job created again) at 5ed809d2; pkg/constants/pvc.go
    ns = namespace
    pv, _ = ome.create_local_claim(admin, ns, "weights")
    pv_names.append(pv["metadata"]["name"])
    add(admin, model(ns, "qwen", "pvc://weights/qwen"))
    try:
        assert main.reconcile(admin, "BaseModel", "qwen", ns) == "PVCMetadataExtracting"
        # the agent fails without a message; OME's condition says so
        main.agent_reports(admin, "qwen", ns, "Failed")
        assert main.reconcile(admin, "BaseModel", "qwen", ns) == "PVCMetadataExtractionFailed"
        # the agent's next run records the error on the ConfigMap before OME reconciles again
        main.agent_reports(admin, "qwen", ns, "Failed", "no config.json under /model")
        item = status_items(plugin, "-n", ns)[f"{ns}/qwen"]
        assert "without an error message" in ready_condition(item)["message"]
        failed = diagnosis(item, "pvc-extraction-failed")
        assert "last error in ConfigMap ome/pvc-metadata-" in failed["message"]
        assert failed["message"].endswith("no config.json under /model")

        # fixed and read; an hour later the Job's TTL deletes it and OME creates it again
        main.agent_reports(admin, "qwen", ns, "Ready")
        assert main.reconcile(admin, "BaseModel", "qwen", ns) == "PVCMetadataReady"
        job = main.job_name("qwen", "pvc://weights/qwen")
        admin.delete(r.JOBS, job, ns, propagation="Background")
        ome.wait_for(lambda: admin.get_or_none(r.JOBS, job, ns), lambda j: j is None,
                     what="the Job to go")  # fmt: skip
        assert main.reconcile(admin, "BaseModel", "qwen", ns) == "PVCMetadataExtracting"
        item = status_items(plugin, "-n", ns)[f"{ns}/qwen"]
        assert item["state"] == "In_Transit"
        again = diagnosis(item, "pvc-metadata-extracting")
        assert (
            again["severity"] == "info"
            and "normal, the model was read before" in (again["message"])
        )
        assert [d for d in item["diagnoses"] if d["severity"] == "error"] == []
    finally:
        main.delete_status_configmap(admin, "qwen", ns)


# --- the isvc and the claim's namespace ---------------------------------------------------------


def test_isvc_outside_the_claims_namespace_is_refused(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    other_namespace: str,
    pv_names: list[str],
    native_ome: None,
    cluster_models: list[str],
) -> None:
    # OME: pkg/controller/v1beta1/inferenceservice/components/base.go at e67a86ac mounts the
    # claim by name in the isvc's namespace; pvc.go resolvePVCNamespace at 5ed809d2
    pv, _ = ome.create_local_claim(admin, other_namespace, "weights")
    pv_names.append(pv["metadata"]["name"])
    name = f"llama-{secrets.token_hex(3)}"
    cluster_models.append(name)
    uri = f"pvc://{other_namespace}:weights/meta/llama"
    isvc = ome.create_isvc(admin, namespace, "llama", name, kind=ModelKind.CLUSTER, path=None,
                           uri=uri)  # fmt: skip
    # OME main drops the URI's namespace: the engine mounts "weights" of the isvc's namespace
    engine = main.native_engine("llama", namespace, name, "weights", "meta/llama", isvc.uid,
                                ModelKind.CLUSTER)  # fmt: skip
    ome.create_workload(isvc, engine)
    for command in ("patch", "diff"):
        result = plugin(command, "llama", "-n", namespace, "--claim", "weights")
        assert result.exit_code == (2 if command == "diff" else 1), result.output  # diff: >1
        (line,) = result.stderr.strip().splitlines()
        assert (
            f"inferenceservice {namespace}/llama is outside the namespace of its model's claim "
            f"{other_namespace}/weights"
        ) in line
        assert "unchanged" not in result.stdout

    # the same isvc in the claim's namespace, on OME main's engine: served, nothing to do
    there = ome.create_isvc(admin, other_namespace, "llama", name, kind=ModelKind.CLUSTER,
                            create_the_model=False)  # fmt: skip
    engine = main.native_engine("llama", other_namespace, name, "weights", "meta/llama",
                                there.uid, ModelKind.CLUSTER)  # fmt: skip
    ome.create_workload(there, engine)
    result = plugin("patch", "llama", "-n", other_namespace, "--claim", "weights")
    assert result.exit_code == 0, result.output
    # nothing to write: "unchanged", or, while the engine's rollout is under way, where it stands
    assert "OME mounts claim weights in its workloads" in result.stdout
    assert ("unchanged" in result.stdout) != ("its rollout has not finished" in result.stdout)


def test_native_patch_of_a_basemodel_isvc_writes_the_basemodel_form(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    pv_names: list[str],
    native_ome: None,
    webhook: None,
) -> None:
    # OME: pkg/validation/basemodel.go at aab06ebe (a BaseModel's URI names no namespace)
    isvc = ome.create_isvc(admin, namespace, "qwen", "qwen3-8b")
    ome.create_workload(isvc, ome.component_deployment(isvc))
    pv, _ = ome.create_local_claim(admin, namespace, "weights")
    pv_names.append(pv["metadata"]["name"])
    result = plugin("patch", "qwen", "-n", namespace, "--claim", "weights", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "basemodel.ome.io/qwen3-8b-pvc created" in result.stdout
    created = admin.get(r.BASE_MODELS, "qwen3-8b-pvc", namespace)
    sub_path = created["spec"]["storage"]["storageUri"].split("/", 3)[3]
    assert created["spec"]["storage"]["storageUri"] == f"pvc://weights/{sub_path}"
    # the webhook let the plugin's model in; OME main's backend finds its claim
    assert main.reconcile(admin, "BaseModel", "qwen3-8b-pvc", namespace) == (
        "PVCMetadataExtracting"
    )


# --- released OME: a pvc:// model leads somewhere -----------------------------------------------


def test_pvc_model_on_released_ome_is_refused_with_the_way_out(
    plugin: Plugin, admin: Client, namespace: str, pv_names: list[str]
) -> None:
    # OME v0.1.5 (shared/reference/ome.md, "Measured against OME's real controllers"): a
    # pvc:// model's isvc gets no model volume and keeps the model's node selector
    pv, _ = ome.create_local_claim(admin, namespace, "weights")
    pv_names.append(pv["metadata"]["name"])
    isvc = ome.create_isvc(admin, namespace, "tiny", "tiny-ns-pvc", path=None,
                           uri="pvc://weights/meta/tiny")  # fmt: skip
    # released OME renders it with the model's node label and no model volume
    engine = ome.component_deployment(isvc)
    spec = engine["spec"]["template"]["spec"]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "tiny-ns-pvc"]
    for container in spec["containers"]:
        container["volumeMounts"] = [
            v for v in container.get("volumeMounts") or [] if v["name"] != "tiny-ns-pvc"
        ]
    ome.create_workload(isvc, engine)
    for args in (("patch",), ("diff",), ("patch", "--strategy", "policy")):
        result = plugin(*args, "tiny", "-n", namespace, "--claim", "weights")
        assert result.exit_code != 0, result.output
        assert "unchanged" not in result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert "this OME does not serve pvc:// models: its pods mount no claim" in line
        assert "a hostPath model" in line and "kubectl ome-pvc patch tiny" in line
    item = status_items(plugin, "tiny-ns-pvc", "-n", namespace)[f"{namespace}/tiny-ns-pvc"]
    d = diagnosis(item, "pvc-not-supported")
    assert d["next"] == f"kubectl edit inferenceservice tiny -n {namespace}"
    assert "workloads-pending" not in [x["code"] for x in item["diagnoses"]]
