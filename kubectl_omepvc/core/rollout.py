"""Where a workload's rollout stands, and why its new pods do not run (pure).

`rollout_of` reads a Deployment's or LeaderWorkerSet's status as `kubectl rollout status` does;
`pod_problems` reads the pods' own status for what the scheduler or the kubelet said about them
(`PodScheduled=False` with its message, a container waiting in CrashLoopBackOff or
ImagePullBackOff, restarts), so a rollout that is not progressing is told from one in progress.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

# A container waiting for one of these is on its way, not stuck.
STARTING = frozenset({"ContainerCreating", "PodInitializing"})


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 replica`, `2 replicas`."""
    return f"{count} {word if count == 1 else many or word + 's'}"


@dataclasses.dataclass(frozen=True)
class Rollout:
    """Where one workload's rollout stands; `failed` carries the reason when it gave up."""

    ref: str
    done: bool
    message: str
    failed: str | None = None


def replicas_of(workload: Mapping[str, Any]) -> int:
    """How many pods the workload wants (a LeaderWorkerSet: groups times group size)."""
    spec = workload.get("spec") or {}
    replicas = spec.get("replicas")
    count = 1 if replicas is None else int(replicas)
    if workload.get("kind") == "LeaderWorkerSet":
        size = (spec.get("leaderWorkerTemplate") or {}).get("size")
        count *= 1 if size is None else int(size)
    return count


def lws_groups(workload: Mapping[str, Any]) -> int:
    replicas = (workload.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def rollout_of(workload: Mapping[str, Any]) -> Rollout:
    """The rollout state of a Deployment or LeaderWorkerSet, read from its status."""
    kind = str(workload.get("kind", "Deployment"))
    name = (workload.get("metadata") or {}).get("name", "")
    ref = f"{kind.lower()}/{name}"
    meta = workload.get("metadata") or {}
    status = workload.get("status") or {}
    want = replicas_of(workload) if kind == "Deployment" else lws_groups(workload)
    observed = status.get("observedGeneration")
    if kind == "Deployment" and (observed is None or observed < (meta.get("generation") or 0)):
        return Rollout(ref, False, "waiting for the controller to see the new template")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Rollout(ref, False, "progress deadline exceeded", cond.get("message") or "")
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0) if kind == "Deployment" else ready
    if updated < want:
        return Rollout(ref, False, f"{updated} of {plural(want, 'replica')} updated, {ready} ready")
    if kind == "Deployment" and total > updated:
        left = plural(total - updated, "replica")
        return Rollout(ref, False, f"{left} of the old template left")
    if available < want:
        return Rollout(ref, False, f"{available} of {want} updated replicas available")
    terminating = int(status.get("terminatingReplicas") or 0)  # reported from Kubernetes 1.33
    if terminating:
        return Rollout(ref, False, f"{plural(terminating, 'old pod')} still shutting down")
    return Rollout(
        ref, True, f"rolled out: {want} of {plural(want, 'replica')} updated and available"
    )


class PodProblem(NamedTuple):
    """Why one pod does not run: `pod` is its name, `text` the scheduler's or kubelet's word."""

    pod: str
    text: str


def pod_problems(pods: Iterable[Mapping[str, Any]]) -> list[PodProblem]:
    """What keeps each pod from running: unschedulable, a container failing, restarts."""
    found = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        name = str(meta.get("name", ""))
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        scheduled = conditions.get("PodScheduled") or {}
        if scheduled.get("status") == "False":
            why = scheduled.get("message") or scheduled.get("reason") or "no reason given"
            found.append(PodProblem(name, f"pod {name} Pending, not scheduled: {why}"))
            continue
        statuses = [
            *(status.get("initContainerStatuses") or ()),
            *(status.get("containerStatuses") or ()),
        ]
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            restarts = int(container.get("restartCount") or 0)
            if reason and reason not in STARTING:
                said = f": {waiting['message']}" if waiting.get("message") else ""
                again = f" ({plural(restarts, 'restart')})" if restarts else ""
                text = f"pod {name} container {container.get('name')} {reason}{again}{said}"
                found.append(PodProblem(name, text))
                break
            last = (container.get("lastState") or {}).get("terminated") or {}
            if restarts and last and not container.get("ready"):
                code = last.get("exitCode")
                text = (
                    f"pod {name} container {container.get('name')} restarted"
                    f" {plural(restarts, 'time')}, last exit code {code}"
                    f" ({last.get('reason') or 'no reason'})"
                )
                found.append(PodProblem(name, text))
                break
    return found
