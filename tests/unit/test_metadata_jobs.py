"""OME main's metadata-extraction Jobs of pvc:// models: found by OME's labels, their pods'
failure reasons, the TTL recreation, and the last error from the per-model status ConfigMap.

Labels, names and the ConfigMap follow sgl-project/ome at 5ed809d2440dd47fcabcafa46bf1200d93236cc5:
pkg/controller/v1beta1/basemodel/backends/pvc/metadata_job.go (labels models.ome/model-name and
models.ome/model-scope on the Job and its pod, TTL 3600 s), pvc.go (the last error from the
annotation) and pkg/constants/pvc.go (ConfigMap `pvc-metadata-<8 hex of sha256>`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from kubectl_omepvc.core import metadata_jobs, status
from kubectl_omepvc.core.metadata_jobs import MetadataSources
from kubectl_omepvc.core.naming import ModelKind
from tests import factories as f

Obj = dict[str, Any]
CBM = "llama-3-2-1b-instruct"
QWEN_URI = "pvc://models/qwen"


def report(models: list[Obj], **sources: Any) -> status.StatusReport:
    return status.build_statuses(models, now=f.NOW, native_pvc=True, **sources)


def ome_labels(model: str, scope: str = "namespaced") -> dict[str, str]:
    return {"models.ome/model-name": model, "models.ome/model-scope": scope}


def job(
    name: str,
    *,
    namespace: str = "team-a",
    labels: dict[str, str] | None = None,
    failed: bool = False,
    complete: bool = False,
    active: int = 0,
) -> Obj:
    conditions = []
    if failed:
        conditions.append({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                           "message": "Job has reached the specified backoff limit"})  # fmt: skip
    if complete:
        conditions.append({"type": "Complete", "status": "True"})
    created = (f.NOW - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                     "creationTimestamp": created, "uid": f"uid-{name}"},
        "spec": {"ttlSecondsAfterFinished": 3600, "template": {"spec": {"volumes": []}}},
        "status": {"conditions": conditions, "active": active},
    }  # fmt: skip


def pod(name: str, job_name: str, status: Obj, namespace: str = "team-a") -> Obj:
    labels = {**ome_labels("qwen"), "batch.kubernetes.io/job-name": job_name}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "status": status}


def status_cm(kind: ModelKind, name: str, namespace: str | None, entry: str | None,
              last_error: str | None = None) -> Obj:  # fmt: skip
    key = f"{name}" if kind is ModelKind.CLUSTER else f"{namespace}/{name}"
    data_key = (
        f"clusterbasemodel.{name}" if kind is ModelKind.CLUSTER else f"{namespace}.basemodel.{name}"
    )
    meta: Obj = {
        "name": "pvc-metadata-" + hashlib.sha256(key.encode()).hexdigest()[:8],
        "namespace": "ome",
        "labels": {"models.ome/pvc-status": "true"},
    }
    if last_error:
        meta["annotations"] = {"models.ome/pvc-metadata-last-error": last_error}
    data = {} if entry is None else {data_key: json.dumps({"name": name, "status": entry})}
    return {"metadata": meta, "data": data}


@pytest.mark.parametrize(
    ("kwargs", "state", "reason"),
    [
        ({}, "Pending", None),
        ({"active": 1}, "Running", None),
        ({"complete": True}, "Complete", None),
        ({"failed": True, "active": 1}, "Failed", "BackoffLimitExceeded"),
    ],
    ids=["pending", "running", "complete", "failed"],
)
def test_job_summary(kwargs: dict[str, Any], state: str, reason: str | None) -> None:
    summary = metadata_jobs.job_summary(job("j", **kwargs), f.NOW)
    assert (summary["state"], summary["reason"], summary["ageSeconds"]) == (state, reason, 600)
    assert summary["ttlSecondsAfterFinished"] == 3600


def test_jobs_are_found_by_omes_labels_in_the_claims_namespace() -> None:
    (m,) = report([f.base_model("team-a", "qwen", path=None, uri=QWEN_URI)]).models
    jobs = [
        job("qwen-metadata-1a2b3c4d", labels=ome_labels("qwen")),
        job("cluster-scope", labels=ome_labels("qwen", "cluster")),  # a ClusterBaseModel's
        job("other-model", labels=ome_labels("llama")),
        job("elsewhere", namespace="team-b", labels=ome_labels("qwen")),
        job("old-guess", labels={"app.kubernetes.io/component": "metadata-extraction"}),
    ]
    found = metadata_jobs.metadata_jobs(m, jobs, f.NOW)
    assert [j["name"] for j in found or []] == ["qwen-metadata-1a2b3c4d"]
    assert metadata_jobs.metadata_jobs(m, None, f.NOW) is None
    (hostpath,) = report([f.cluster_base_model(CBM)]).models
    assert metadata_jobs.metadata_jobs(hostpath, jobs, f.NOW) is None


def test_a_cluster_models_jobs_run_in_the_uris_namespace() -> None:
    (m,) = report([f.cluster_base_model(CBM, path=None, uri="pvc://team-b:models/x")]).models
    jobs = [
        job("in-b", namespace="team-b", labels=ome_labels(CBM, "cluster")),
        job("in-a", namespace="team-a", labels=ome_labels(CBM, "cluster")),
    ]
    assert [j["name"] for j in metadata_jobs.metadata_jobs(m, jobs, f.NOW) or []] == ["in-b"]


@pytest.mark.parametrize(
    ("pod_status", "reason", "message"),
    [
        ({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {
            "reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]},
         "ImagePullBackOff", "Back-off pulling image"),
        ({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
            "reason": "Error", "exitCode": 1, "message": "config.json not found"}}}]},
         "Error (exit code 1)", "config.json not found"),
        ({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {
            "reason": "OOMKilled", "exitCode": 137}}}]}, "OOMKilled (exit code 137)", None),
        ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/3 nodes are available"}]},
         "Unschedulable", "0/3 nodes are available"),
        ({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}, "Evicted",
         "low on memory"),
        ({"phase": "Pending", "containerStatuses": [{"state": {"waiting": {
            "reason": "ContainerCreating"}}}]}, None, None),
        ({"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {
            "reason": "Completed", "exitCode": 0}}}]}, None, None),
    ],
    ids=["image-pull", "exit-1", "oom", "unschedulable", "evicted", "starting", "succeeded"],
)  # fmt: skip
def test_pod_failure_reasons(pod_status: Obj, reason: str | None, message: str | None) -> None:
    summary = metadata_jobs.pod_summary(pod("p", "j", pod_status))
    assert (summary["reason"], summary["message"]) == (reason, message)


def test_a_failing_pod_becomes_a_diagnosis() -> None:
    (m,) = report([f.base_model("team-a", "qwen", path=None, uri=QWEN_URI)]).models
    meta = MetadataSources(
        jobs=[job("qwen-metadata-1", labels=ome_labels("qwen"), active=1)],
        pods=[
            pod("qwen-metadata-1-abc", "qwen-metadata-1", {"phase": "Pending",
                "containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}]}),
            pod("stranger", "other-job", {"phase": "Failed", "reason": "Evicted"}),
        ],
    )  # fmt: skip
    enriched, ((jobs, _),) = metadata_jobs.with_metadata(_one(m), meta, f.NOW)
    assert [p["name"] for p in (jobs or [])[0]["pods"]] == ["qwen-metadata-1-abc"]
    (d,) = [d for d in enriched.models[0].diagnoses if d.code == "pvc-metadata-pod-failing"]
    assert "pod qwen-metadata-1-abc ErrImagePull" in d.message
    assert d.next == "kubectl describe pod qwen-metadata-1-abc -n team-a"


def _one(m: status.ModelStatus) -> status.StatusReport:
    return status.StatusReport((m,))


def test_status_configmap_name_follows_ome() -> None:
    # pkg/constants/pvc.go GetPVCMetadataConfigMapName: sha256 of name, or of ns/name
    cluster = metadata_jobs.status_configmap_name(ModelKind.CLUSTER, CBM, None)
    assert cluster == "pvc-metadata-" + hashlib.sha256(CBM.encode()).hexdigest()[:8]
    namespaced = metadata_jobs.status_configmap_name(ModelKind.NAMESPACED, "qwen", "team-a")
    assert namespaced == "pvc-metadata-" + hashlib.sha256(b"team-a/qwen").hexdigest()[:8]


def test_last_error_from_the_configmap_when_the_condition_lacks_it() -> None:
    conds = [f.condition("Ready", "False", "PVCMetadataExtractionFailed",
                         "agent reported Failed without an error message")]  # fmt: skip
    model = f.base_model("team-a", "qwen", path=None, uri=QWEN_URI, state="Failed",
                         conditions=conds)  # fmt: skip
    (m,) = report([model], pvcs=[f.pvc("team-a", "models")]).models
    cms = [status_cm(ModelKind.NAMESPACED, "qwen", "team-a", "Failed", "config.json missing")]
    meta = MetadataSources(jobs=[], pods=[], configmaps=cms)
    doc = metadata_jobs.report_document(_one(m), meta, f.NOW)
    item = doc["items"][0]
    assert item["metadataStatus"] == {
        "configMap": f"ome/{cms[0]['metadata']['name']}",
        "found": True,
        "entryStatus": "Failed",
        "lastError": "config.json missing",
    }
    (d,) = [d for d in item["diagnoses"] if d["code"] == "pvc-extraction-failed"]
    assert d["message"].endswith(f"last error in ConfigMap ome/{cms[0]['metadata']['name']}: "
                                 "config.json missing")  # fmt: skip
    assert json.loads(json.dumps(doc)) == doc


def test_last_error_already_in_the_condition_is_not_repeated() -> None:
    conds = [f.condition("Ready", "False", "PVCMetadataExtractionFailed", "config.json missing")]
    model = f.base_model("team-a", "qwen", path=None, uri=QWEN_URI, conditions=conds)
    (m,) = report([model], pvcs=[f.pvc("team-a", "models")]).models
    cms = [status_cm(ModelKind.NAMESPACED, "qwen", "team-a", "Failed", "config.json missing")]
    enriched, _ = metadata_jobs.with_metadata(_one(m), MetadataSources([], [], cms), f.NOW)
    (d,) = [d for d in enriched.models[0].diagnoses if d.code == "pvc-extraction-failed"]
    assert d.message.count("config.json missing") == 1


def test_the_ttl_recreation_is_said_to_be_normal() -> None:
    conds = [f.condition("Ready", "False", "PVCMetadataExtracting", "metadata extraction Job "
                         "team-a/qwen-metadata-1 created")]  # fmt: skip
    model = f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/x", conditions=conds)
    (m,) = report([model], pvcs=[f.pvc("team-a", "models")]).models
    cms = [status_cm(ModelKind.CLUSTER, CBM, None, "Ready")]
    jobs = [job("recreated", labels=ome_labels(CBM, "cluster"), active=1)]
    enriched, _ = metadata_jobs.with_metadata(_one(m), MetadataSources(jobs, [], cms), f.NOW)
    (d,) = [d for d in enriched.models[0].diagnoses if d.code == "pvc-metadata-extracting"]
    assert d.severity.value == "info"
    assert "an hour after the last one finished" in d.message and "normal" in d.message


def test_report_document_adds_both_keys_to_every_item() -> None:
    rep = report([f.base_model("team-a", "qwen", path=None, uri=QWEN_URI),
                  f.cluster_base_model(CBM)])  # fmt: skip
    meta = MetadataSources([job("q", labels=ome_labels("qwen"))], [], [])
    doc = metadata_jobs.report_document(rep, meta, f.NOW)
    assert doc["items"][0]["metadataJobs"][0]["name"] == "q"
    assert doc["items"][0]["metadataStatus"]["found"] is False
    assert doc["items"][1]["metadataJobs"] is None and doc["items"][1]["metadataStatus"] is None
