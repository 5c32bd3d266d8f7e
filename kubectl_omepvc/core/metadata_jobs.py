"""The metadata-extraction Jobs OME `main` runs for a `pvc://` model, as `status` shows them (pure).

OME finds its own Jobs by two labels, and so does the plugin (OME `main`,
pkg/controller/v1beta1/basemodel/backends/pvc/metadata_job.go at 5ed809d2): the Job and its pod
carry `models.ome/model-name: <model>` and `models.ome/model-scope: namespaced|cluster`, and
run in the claim's namespace. What the agent in the Job reports lands in one ConfigMap per
model in the OME namespace, `pvc-metadata-<8 hex of sha256(name or ns/name)>`
(pkg/constants/pvc.go), whose annotation `models.ome/pvc-metadata-last-error` holds the last
error. A finished Job is deleted after its TTL (3600 s) and OME creates it again: the model
shows In_Transit / PVCMetadataExtracting for a while, which is normal.

`report_document` is `status -o json|yaml`: `core.status`'s schema with two more keys per item:

    metadataJobs: null | [           # null: not a pvc:// model, older OME, or Jobs not readable
        {namespace, name, state: Complete | Failed | Running | Pending,
         active: int, succeeded: int, failed: int, reason: str | null, message: str | null,
         ageSeconds: int | null, ttlSecondsAfterFinished: int | null,
         pods: null | [{name, phase: str | null, reason: str | null, message: str | null}]}]
    metadataStatus: null | {         # null: not a pvc:// model, older OME, or not readable
        configMap: str,              # ome/pvc-metadata-<hash>
        found: bool, entryStatus: str | null, lastError: str | null}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kubectl_omepvc.core import naming
from kubectl_omepvc.core.diagnoses import Diagnosis, Severity, model_ref
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.core.status import ModelStatus, StatusReport, parse_time

METADATA_JOBS_KEY = "metadataJobs"
METADATA_STATUS_KEY = "metadataStatus"
MODEL_NAME_LABEL = "models.ome/model-name"
MODEL_SCOPE_LABEL = "models.ome/model-scope"
STATUS_CONFIGMAP_LABEL = "models.ome/pvc-status"
STATUS_CONFIGMAP_SELECTOR = f"{STATUS_CONFIGMAP_LABEL}=true"
LAST_ERROR_ANNOTATION = "models.ome/pvc-metadata-last-error"
# Every metadata Job and its pods carry the model-name label: one LIST per namespace finds them.
JOB_SELECTOR = MODEL_NAME_LABEL
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
# Waiting reasons that are progress, not trouble.
_STARTING = {"ContainerCreating", "PodInitializing"}

Obj = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class MetadataSources:
    """What `status` read for the metadata Jobs; None: not read or not readable."""

    jobs: Sequence[Obj] | None = None
    pods: Sequence[Obj] | None = None
    configmaps: Sequence[Obj] | None = None


def scope(kind: ModelKind) -> str:
    return "cluster" if kind is ModelKind.CLUSTER else "namespaced"


def status_configmap_name(kind: ModelKind, name: str, namespace: str | None) -> str:
    """OME's per-model status ConfigMap: `pvc-metadata-` + 8 hex of sha256 of the name (a
    ClusterBaseModel's) or `<namespace>/<name>` (a BaseModel's)."""
    key = name if kind is ModelKind.CLUSTER else f"{namespace}/{name}"
    return "pvc-metadata-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _owns(job: Obj, pod: Obj) -> bool:
    labels = dig(pod, "metadata", "labels") or {}
    name = dig(job, "metadata", "name")
    uid = dig(job, "metadata", "uid")
    if uid and any(o.get("uid") == uid for o in dig(pod, "metadata", "ownerReferences") or ()):
        return True
    return any(labels.get(k) == name for k in JOB_NAME_LABELS)


def pod_summary(pod: Obj) -> dict[str, Any]:
    """A Job pod's phase and, when it is in trouble, why (the first reason found)."""
    status = pod.get("status") or {}
    reason, message = _str(status.get("reason")), _str(status.get("message"))
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and not reason:
            reason, message = _str(cond.get("reason")), _str(cond.get("message"))
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        done = state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        if done and done.get("exitCode") not in (None, 0):
            why = _str(done.get("reason")) or "Error"
            reason = f"{why} (exit code {done.get('exitCode')})"
            message = _str(done.get("message")) or message
            break
        if waiting and waiting.get("reason") not in _STARTING:
            reason, message = _str(waiting.get("reason")), _str(waiting.get("message"))
            break
    return {
        "name": dig(pod, "metadata", "name"),
        "phase": _str(status.get("phase")),
        "reason": reason,
        "message": message,
    }


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def job_summary(job: Obj, now: datetime, pods: Sequence[Obj] | None = None) -> dict[str, Any]:
    """A Job's state in one record: Complete, Failed (with reason), Running or Pending."""
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    state, reason, message = "Pending", None, None
    for cond in status.get("conditions") or ():
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            state = "Complete"
        elif cond.get("type") in ("Failed", "FailureTarget"):
            state, reason, message = "Failed", cond.get("reason"), cond.get("message")
            break
    if state == "Pending" and (status.get("active") or 0) > 0:
        state = "Running"
    created = parse_time(meta.get("creationTimestamp"))
    ttl = dig(job, "spec", "ttlSecondsAfterFinished")
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "state": state,
        "active": status.get("active") or 0,
        "succeeded": status.get("succeeded") or 0,
        "failed": status.get("failed") or 0,
        "reason": reason,
        "message": message,
        "ageSeconds": None if created is None else int((now - created).total_seconds()),
        "ttlSecondsAfterFinished": ttl if isinstance(ttl, int) else None,
        "pods": None
        if pods is None
        else sorted((pod_summary(p) for p in pods if _owns(job, p)), key=lambda p: str(p["name"])),
    }


def _belongs(m: ModelStatus, obj: Obj) -> bool:
    labels = dig(obj, "metadata", "labels") or {}
    return labels.get(MODEL_NAME_LABEL) == m.name and labels.get(MODEL_SCOPE_LABEL) == scope(m.kind)


def metadata_jobs(
    m: ModelStatus, jobs: Sequence[Obj] | None, now: datetime, pods: Sequence[Obj] | None = None
) -> list[dict[str, Any]] | None:
    """The metadata Jobs of a pvc:// model, by OME's labels in the claim's namespace. None
    when Jobs were not read."""
    claim = m.claim
    if jobs is None or claim is None or claim.uri is None or not claim.namespace:
        return None
    out = [
        job_summary(job, now, pods)
        for job in jobs
        if dig(job, "metadata", "namespace") == claim.namespace and _belongs(m, job)
    ]
    return sorted(out, key=lambda j: str(j["name"]))


def metadata_status(m: ModelStatus, configmaps: Sequence[Obj] | None) -> dict[str, Any] | None:
    """What OME's per-model status ConfigMap says (None: not a pvc:// model or not read)."""
    if configmaps is None or m.claim is None:
        return None
    name = status_configmap_name(m.kind, m.name, m.namespace)
    shown = f"{naming.AGENT_NAMESPACE}/{name}"
    found = next((c for c in configmaps if dig(c, "metadata", "name") == name), None)
    if found is None:
        return {"configMap": shown, "found": False, "entryStatus": None, "lastError": None}
    key = naming.model_configmap_key(m.kind, m.name, m.namespace)
    entry_status = None
    try:
        entry = json.loads((found.get("data") or {}).get(key) or "null")
        entry_status = _str(entry.get("status")) if isinstance(entry, Mapping) else None
    except ValueError:
        pass
    annotations = dig(found, "metadata", "annotations") or {}
    return {
        "configMap": shown,
        "found": True,
        "entryStatus": entry_status,
        "lastError": _str(annotations.get(LAST_ERROR_ANNOTATION)),
    }


def _reason_of(m: ModelStatus) -> str | None:
    for cond in m.conditions or ():
        if cond.type == "Ready":
            return cond.reason
    return None


def extra_diagnoses(
    m: ModelStatus, jobs: list[dict[str, Any]] | None, meta: dict[str, Any] | None
) -> tuple[Diagnosis, ...]:
    """The model's diagnoses with what the Jobs, their pods and the status ConfigMap add."""
    out = list(m.diagnoses)
    reason = _reason_of(m)
    said = " ".join(c.message or "" for c in m.conditions or ())
    last_error = (meta or {}).get("lastError")
    if last_error and last_error not in said and not m.is_ready:
        where = (meta or {})["configMap"]
        out = _amend(
            out,
            "pvc-extraction-failed",
            f"; last error in ConfigMap {where}: {last_error}",
        ) or [
            *out,
            Diagnosis(
                "pvc-metadata-last-error",
                Severity.ERROR if m.state == "Failed" else Severity.WARNING,
                f"OME's metadata agent last reported: {last_error} (ConfigMap {where})",
                f"kubectl describe {model_ref(m)}",
            ),
        ]
    if reason == "PVCMetadataExtracting" and (meta or {}).get("entryStatus") == "Ready":
        out = [
            Diagnosis(
                d.code,
                d.severity,
                "OME re-runs the metadata Job an hour after the last one finished (its TTL) "
                f"and the model shows In_Transit meanwhile: normal, the model was read before "
                f"(ConfigMap {(meta or {})['configMap']} says Ready)",
                d.next,
            )
            if d.code == "pvc-metadata-extracting"
            else d
            for d in out
        ]
    for job in jobs or ():
        for pod in job.get("pods") or ():
            if not pod["reason"] or pod["phase"] == "Succeeded":
                continue
            why = pod["reason"] + (f": {pod['message']}" if pod["message"] else "")
            out.append(
                Diagnosis(
                    "pvc-metadata-pod-failing",
                    Severity.ERROR if job["state"] == "Failed" else Severity.WARNING,
                    f"metadata Job {job['namespace']}/{job['name']}: pod {pod['name']} {why}",
                    f"kubectl describe pod {pod['name']} -n {job['namespace']}",
                )
            )
            break
    first: dict[str, Diagnosis] = {}
    for d in out:
        first.setdefault(d.code, d)
    return tuple(sorted(first.values(), key=lambda d: d.severity.rank))


def _amend(found: list[Diagnosis], code: str, more: str) -> list[Diagnosis] | None:
    """`found` with `more` added to the message of diagnosis `code`; None without one."""
    if not any(d.code == code for d in found):
        return None
    return [
        dataclasses.replace(d, message=d.message + more) if d.code == code else d for d in found
    ]


def with_metadata(
    report: StatusReport, sources: MetadataSources | None, now: datetime
) -> tuple[StatusReport, list[tuple[list[dict[str, Any]] | None, dict[str, Any] | None]]]:
    """The report with the Jobs' diagnoses folded in, and each model's (jobs, status)."""
    src = sources or MetadataSources()
    facts = []
    models = []
    for m in report.models:
        jobs = metadata_jobs(m, src.jobs, now, src.pods)
        meta = metadata_status(m, src.configmaps) if jobs is not None else None
        facts.append((jobs, meta))
        extra = extra_diagnoses(m, jobs, meta) if jobs is not None else m.diagnoses
        models.append(m if extra == m.diagnoses else dataclasses.replace(m, diagnoses=extra))
    return dataclasses.replace(report, models=tuple(models)), facts


def report_document(
    report: StatusReport, sources: MetadataSources | None, now: datetime
) -> dict[str, Any]:
    """`-o json|yaml`: core's schema plus `metadataJobs` and `metadataStatus` on every item."""
    enriched, facts = with_metadata(report, sources, now)
    doc = enriched.as_dict()
    for item, (jobs, meta) in zip(doc["items"], facts, strict=True):
        item[METADATA_JOBS_KEY] = jobs
        item[METADATA_STATUS_KEY] = meta
    return doc
