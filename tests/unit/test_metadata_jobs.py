"""The metadata-extraction Jobs of pvc:// models: their state, which model they belong to."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from kubectl_omepvc.core import metadata_jobs, status
from tests import factories as f

Obj = dict[str, Any]
CBM = "llama-3-2-1b-instruct"


def report(models: list[Obj], **sources: Any) -> status.StatusReport:
    return status.build_statuses(models, now=f.NOW, **sources)


def job(
    name: str,
    *,
    namespace: str = "team-a",
    claim: str | None = None,
    labels: dict[str, str] | None = None,
    failed: bool = False,
    complete: bool = False,
    active: int = 0,
) -> Obj:
    volumes = [{"name": "m", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
    conditions = []
    if failed:
        conditions.append({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                           "message": "Job has reached the specified backoff limit"})  # fmt: skip
    if complete:
        conditions.append({"type": "Complete", "status": "True"})
    created = (f.NOW - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                     "creationTimestamp": created},
        "spec": {"template": {"spec": {"volumes": volumes}}},
        "status": {"conditions": conditions, "active": active},
    }  # fmt: skip


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


def test_metadata_jobs_match_by_claim_or_label_in_the_claims_namespace() -> None:
    (m,) = report([f.base_model("team-a", "qwen", path=None, uri="pvc://models/qwen")]).models
    jobs = [
        job("mounts", claim="models"),
        job("labelled", labels={"model": "qwen"}),
        job("other-claim", claim="other"),
        job("elsewhere", namespace="team-b", claim="models"),
    ]
    assert [j["name"] for j in metadata_jobs.metadata_jobs(m, jobs, f.NOW) or []] == [
        "labelled",
        "mounts",
    ]
    assert metadata_jobs.metadata_jobs(m, None, f.NOW) is None
    (hostpath,) = report([f.cluster_base_model(CBM)]).models
    assert metadata_jobs.metadata_jobs(hostpath, jobs, f.NOW) is None


def test_report_document_adds_metadata_jobs_to_every_item() -> None:
    rep = report([f.base_model("team-a", "qwen", path=None, uri="pvc://models/qwen")])
    doc = metadata_jobs.report_document(rep, [job("mounts", claim="models")], f.NOW)
    assert doc["items"][0]["metadataJobs"][0]["name"] == "mounts"
    assert json.loads(json.dumps(doc)) == doc
