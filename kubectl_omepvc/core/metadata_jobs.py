"""The metadata-extraction Jobs newer OME runs for a `pvc://` model, as `status` shows them (pure).

A Job belongs to a model when it runs in the claim's namespace and mounts the claim, or carries
the model's name in a label. `report_document` is `status -o json|yaml`: `core.status`'s schema
with one more key per item:

    metadataJobs: null | [           # null: not a pvc:// model, older OME, or Jobs not readable
        {namespace, name, state: Complete | Failed | Running | Pending,
         active: int, succeeded: int, failed: int, reason: str | null, message: str | null,
         ageSeconds: int | null}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.core.status import ModelStatus, StatusReport, parse_time

METADATA_JOBS_KEY = "metadataJobs"

Obj = Mapping[str, Any]


def _job_mounts_claim(job: Obj, claim: str) -> bool:
    volumes = dig(job, "spec", "template", "spec", "volumes") or ()
    return any(dig(v, "persistentVolumeClaim", "claimName") == claim for v in volumes)


def job_summary(job: Obj, now: datetime) -> dict[str, Any]:
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
    }


def metadata_jobs(
    m: ModelStatus, jobs: Sequence[Obj] | None, now: datetime
) -> list[dict[str, Any]] | None:
    """The metadata-extraction Jobs of a pvc:// model: in the claim's namespace, mounting the
    claim (or labelled with the model's name). None when Jobs were not read."""
    claim = m.claim
    if jobs is None or claim is None or claim.uri is None or not claim.namespace:
        return None
    out = []
    for job in jobs:
        meta = job.get("metadata") or {}
        if meta.get("namespace") != claim.namespace:
            continue
        labelled = m.name in (meta.get("labels") or {}).values()
        if labelled or _job_mounts_claim(job, claim.uri.claim):
            out.append(job_summary(job, now))
    return sorted(out, key=lambda j: str(j["name"]))


def report_document(
    report: StatusReport, jobs: Sequence[Obj] | None, now: datetime
) -> dict[str, Any]:
    """`-o json|yaml`: core's schema plus `metadataJobs` on every item."""
    doc = report.as_dict()
    for item, m in zip(doc["items"], report.models, strict=True):
        item[METADATA_JOBS_KEY] = metadata_jobs(m, jobs, now)
    return doc
