"""The pure parts of api.workloads: ownership, Serverless, replicas, rollout state, events."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.api import workloads as w
from kubectl_omepvc.core.rollout import replicas_of, rollout_of
from tests.unit import ome_objects as ome

Obj = dict[str, Any]
UID = "6c9d7a52-2f3e-4c1b-9a63-0d7f1e2b3c4d"
ISVC: Obj = {"metadata": {"name": ome.ISVC, "namespace": ome.NAMESPACE, "uid": UID}}


def _owned(**changes: Any) -> Obj:
    workload = ome.deployment()
    workload["metadata"]["ownerReferences"][0].update(changes)
    return workload


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        (_owned(), True),
        (_owned(uid=None), True),
        (_owned(uid="another-uid"), False),
        (_owned(controller=False), False),
        (_owned(name="other"), False),
        (_owned(kind="TrainingJob"), False),
        (_owned(apiVersion="serving.kserve.io/v1beta1"), False),
        ({"metadata": {"name": "x"}}, False),
    ],
    ids=["controller", "no-uid", "recreated-isvc", "not-controller", "other-name", "other-kind",
         "other-group", "no-owner"],
)  # fmt: skip
def test_is_owned_by(workload: Obj, expected: bool) -> None:
    assert w.is_owned_by(workload, ISVC) is expected


def test_serverless_by_annotation_or_knative_service() -> None:
    serverless = {
        "metadata": {**ISVC["metadata"], "annotations": {w.DEPLOYMENT_MODE: "Serverless"}}
    }
    assert (
        w.serverless_reason(serverless)
        == "inferenceservice llama has ome.io/deploymentMode: Serverless"
    )
    service = {
        "metadata": {
            "name": "llama-engine",
            "ownerReferences": _owned()["metadata"]["ownerReferences"],
        }
    }
    assert (
        w.serverless_reason(ISVC, [service])
        == "inferenceservice llama runs as Knative Service llama-engine"
    )
    assert w.serverless_reason(ISVC, [{"metadata": {"name": "unowned"}}]) is None
    assert w.serverless_reason(ISVC) is None  # fmt: skip


@pytest.mark.parametrize(
    ("workload", "pods"),
    [
        ({"kind": "Deployment", "spec": {"replicas": 3}}, 3),
        ({"kind": "Deployment", "spec": {}}, 1),
        ({"kind": "Deployment", "spec": {"replicas": 0}}, 0),
        ({"kind": "LeaderWorkerSet",
          "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 4}}}, 8),
        ({"kind": "LeaderWorkerSet", "spec": {"leaderWorkerTemplate": {}}}, 1),
    ],
    ids=["deployment", "default-one", "scaled-to-zero", "lws-groups-times-size", "lws-defaults"],
)  # fmt: skip
def test_replicas_of(workload: Obj, pods: int) -> None:
    assert replicas_of(workload) == pods


def _deployment(status: Obj) -> Obj:
    return {
        "kind": "Deployment",
        "metadata": {"name": "llama-engine", "generation": 2},
        "spec": {"replicas": 2},
        "status": status,
    }


DONE = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
        "availableReplicas": 2}  # fmt: skip
DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet has timed out progressing."}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "done", "message"),
    [
        (
            {**DONE, "observedGeneration": 1},
            False,
            "waiting for the controller to see the new template",
        ),
        ({**DONE, "updatedReplicas": 1}, False, "1 of 2 replicas updated, 2 ready"),
        ({**DONE, "replicas": 3}, False, "1 replica of the old template left"),
        ({**DONE, "availableReplicas": 1}, False, "1 of 2 updated replicas available"),
        ({**DONE, "terminatingReplicas": 1}, False, "1 old pod still shutting down"),
        (DONE, True, "rolled out: 2 of 2 replicas updated and available"),
    ],
    ids=["not-observed", "updating", "old-replicas", "unavailable", "terminating", "done"],
)
def test_rollout_of_a_deployment(status: Obj, done: bool, message: str) -> None:
    state = rollout_of(_deployment(status))
    assert (state.ref, state.done, state.message, state.failed) == (
        "deployment/llama-engine", done, message, None
    )  # fmt: skip


def test_rollout_gives_up_at_the_progress_deadline() -> None:
    state = rollout_of(_deployment({**DONE, "updatedReplicas": 1, "conditions": [DEADLINE]}))
    assert state.failed == "ReplicaSet has timed out progressing."
    assert not state.done


def test_rollout_of_a_leader_worker_set_counts_groups() -> None:
    lws: Obj = {"kind": "LeaderWorkerSet", "metadata": {"name": "lws-llama-engine"},
           "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 4}},
           "status": {"updatedReplicas": 2, "readyReplicas": 1}}  # fmt: skip
    assert rollout_of(lws).message == "1 of 2 updated replicas available"
    lws["status"]["readyReplicas"] = 2
    assert rollout_of(lws).done


def _event(kind: str, name: str, reason: str, when: str, message: str = "m") -> Obj:
    return {"involvedObject": {"kind": kind, "name": name}, "reason": reason,
            "lastTimestamp": when, "message": f"{message} "}  # fmt: skip


def test_explain_events_keeps_the_newest_per_object_and_reason() -> None:
    events = [
        _event("Pod", "llama-engine-abc-1", "FailedScheduling", "2026-07-01T12:00:02Z", "new"),
        _event("Pod", "llama-engine-abc-1", "FailedScheduling", "2026-07-01T12:00:01Z", "old"),
        _event("Pod", "llama-engine-abc-1", "FailedMount", "2026-07-01T12:00:00Z", "mount"),
        _event("ReplicaSet", "llama-engine-abc", "FailedCreate", "2026-07-01T12:00:03Z", "quota"),
        _event("Pod", "someone-else", "FailedScheduling", "2026-07-01T12:00:04Z"),
        _event("Pod", "llama-engine-abc-1", "Pulled", "2026-07-01T12:00:05Z"),
        _event("ReplicaSet", "llama-engine-other-xyz", "FailedCreate", "2026-07-01T12:00:06Z"),
    ]
    lines = w.explain_events(events, {"llama-engine-abc-1"}, "llama-engine")
    assert lines == [
        "pod/llama-engine-abc-1 FailedMount: mount",
        "pod/llama-engine-abc-1 FailedScheduling: new",
        "replicaset/llama-engine-abc FailedCreate: quota",
        "replicaset/llama-engine-other-xyz FailedCreate: m",
    ]


@pytest.mark.parametrize(
    ("kind", "display"),
    [("Deployment", "deployment.apps/x"),
     ("LeaderWorkerSet", "leaderworkerset.leaderworkerset.x-k8s.io/x")],
    ids=["deployment", "lws"],
)  # fmt: skip
def test_display(kind: str, display: str) -> None:
    assert w.display({"kind": kind, "metadata": {"name": "x"}}) == display
