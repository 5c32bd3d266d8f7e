"""An InferenceService's workloads: finding them, following their rollout, explaining failures.

OME names its workloads after the isvc (`<isvc>-engine`, `-decoder`, `-router`, and
`lws-<isvc>-engine` in MultiNode mode), but a name proves nothing: a workload counts only when it
carries the `ome.io/inferenceservice` label *and* a controller ownerReference to that very
InferenceService (its uid, when both sides have one). Serverless isvcs run as Knative Services,
whose pods this plugin cannot switch; they are refused with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kubectl_omepvc import errors
from kubectl_omepvc.core import naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.rollout import PodProblem, Rollout, pod_problems, rollout_of

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

Obj = dict[str, Any]

ISVC_LABEL = naming.ISVC_LABEL
DEPLOYMENT_MODE = "ome.io/deploymentMode"
SERVERLESS = "Serverless"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
# Pod and ReplicaSet events that explain a stuck rollout of a model volume change.
EXPLAINING_REASONS = (
    "FailedScheduling",
    "FailedMount",
    "FailedAttachVolume",
    "FailedCreate",
    "Failed",
    "BackOff",
)

WORKLOAD_REFS: dict[str, r.ResourceRef] = {
    "Deployment": r.DEPLOYMENTS,
    "LeaderWorkerSet": r.LEADER_WORKER_SETS,
}


def resource_for(workload: Mapping[str, Any]) -> r.ResourceRef:
    return WORKLOAD_REFS[str(workload.get("kind"))]


def require_rollout_access(
    client: Client, namespace: str, workloads: Sequence[Mapping[str, Any]]
) -> None:
    """Following the rollout (a watch per workload kind) is allowed, checked before any write."""
    from kubectl_omepvc.api import access

    kinds = {resource_for(x).plural: resource_for(x) for x in workloads}
    access.require(client, [(ref, "watch", namespace) for ref in kinds.values()])


def display(workload: Mapping[str, Any]) -> str:
    """`deployment.apps/llama-engine`: how kubectl names an object it changed."""
    ref = resource_for(workload)
    kind = ref.kind.lower()
    name = (workload.get("metadata") or {}).get("name", "")
    return f"{kind}.{ref.group}/{name}" if ref.group else f"{kind}/{name}"


# --- the InferenceService ----------------------------------------------------------------------


def get_isvc(client: Client, namespace: str, name: str) -> Obj:
    """The InferenceService, or an `InputError` that says where it was looked for (a
    `NotFound` saying OME is not installed when the server serves no InferenceServices)."""
    from kubectl_omepvc.api.lookup import whereabouts

    try:
        return client.get(r.INFERENCE_SERVICES, name, namespace)
    except errors.NotFound:
        if not _isvcs_served(client):
            where = f' in context "{client.context}"' if client.context else ""
            raise errors.NotFound(
                f"OME is not installed{where}: the server does not serve "
                f"{r.INFERENCE_SERVICES.display}/{r.INFERENCE_SERVICES.version}",
                "install OME's CRDs, or pick the cluster with --context",
            ) from None
        hint = whereabouts(client, r.INFERENCE_SERVICES, name, namespace)
        raise errors.InputError(
            f'inferenceservice "{name}" not found in namespace {namespace}',
            hint or f"list them with `kubectl get inferenceservices -n {namespace}`, or pass -n",
        ) from None


def _isvcs_served(client: Client) -> bool:
    """Whether discovery (readable by every user) lists InferenceServices."""
    from kubectl_omepvc.core import capabilities

    try:
        found = client.get_raw(f"/apis/{r.OME_GROUP}/{r.OME_VERSION}")
    except errors.NotFound:
        return False
    return r.INFERENCE_SERVICES.plural in capabilities.resource_names(found)


def is_owned_by(obj: Mapping[str, Any], isvc: Mapping[str, Any]) -> bool:
    """A controller ownerReference to this InferenceService (same uid when both have one)."""
    meta = isvc.get("metadata") or {}
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if (
            ref.get("controller") is True
            and ref.get("kind") == "InferenceService"
            and str(ref.get("apiVersion", "")).startswith("ome.io/")
            and ref.get("name") == meta.get("name")
            and (not ref.get("uid") or not meta.get("uid") or ref.get("uid") == meta.get("uid"))
        ):
            return True
    return False


def serverless_reason(
    isvc: Mapping[str, Any], knative_services: Iterable[Mapping[str, Any]] = ()
) -> str | None:
    """Why this isvc runs on Knative (so its pods cannot be switched), or None."""
    name = (isvc.get("metadata") or {}).get("name", "")
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    if annotations.get(DEPLOYMENT_MODE) == SERVERLESS:
        return f"inferenceservice {name} has {DEPLOYMENT_MODE}: {SERVERLESS}"
    for service in knative_services:
        if is_owned_by(service, isvc):
            svc = (service.get("metadata") or {}).get("name", "")
            return f"inferenceservice {name} runs as Knative Service {svc}"
    return None


def refuse_serverless(client: Client, isvc: Mapping[str, Any]) -> None:
    """Raise `InputError` for a Serverless isvc: its pods belong to Knative revisions."""
    namespace = (isvc.get("metadata") or {}).get("namespace")
    services: list[Obj] = []
    if (isvc.get("metadata") or {}).get("annotations", {}).get(DEPLOYMENT_MODE) != SERVERLESS:
        try:
            services = list(client.list(r.KNATIVE_SERVICES, namespace))
        except (errors.NotFound, errors.Forbidden):
            services = []  # Knative not installed, or not ours to read: the annotation decides
    reason = serverless_reason(isvc, services)
    if reason:
        raise errors.InputError(
            f"{reason}: Knative creates a new revision for every change and owns its pods,"
            " so their model volume cannot be switched to a claim",
            "use RawDeployment mode for this isvc, or a newer OME that serves pvc:// models",
        )


# --- its workloads -----------------------------------------------------------------------------


def find_workloads(
    client: Client, isvc: Mapping[str, Any], lws_served: bool | None = None
) -> list[Obj]:
    """The isvc's Deployments, then its LeaderWorkerSets, each sorted by name.

    `lws_served` None means "unknown": the LeaderWorkerSet list is tried and a missing API
    is taken as none. Items carry `kind` and `apiVersion` (list answers leave them out).
    """
    meta = isvc.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    selector = f"{ISVC_LABEL}={name}"
    kinds: list[r.ResourceRef] = [r.DEPLOYMENTS]
    if lws_served is not False:
        kinds.append(r.LEADER_WORKER_SETS)
    found: list[Obj] = []
    for ref in kinds:
        try:
            items = list(client.list(ref, namespace, label_selector=selector))
        except errors.NotFound:
            if ref is r.LEADER_WORKER_SETS:
                continue
            raise
        owned = [dict(item) for item in items if is_owned_by(item, isvc)]
        for item in sorted(owned, key=lambda o: str(o["metadata"]["name"])):
            item["kind"] = ref.kind
            item["apiVersion"] = ref.api_version
            found.append(item)
    return found


# --- rollout -----------------------------------------------------------------------------------


class RolloutFailed(errors.PluginError):
    """A rollout did not finish; the message carries the events that explain why."""


def wait_for_rollouts(
    client: Client,
    namespace: str,
    workloads: Iterable[Mapping[str, Any]],
    timeout: float,
    progress: Callable[[str], None],
) -> list[Rollout]:
    """Follow each workload until it is rolled out; `RolloutFailed` with events otherwise.

    One watch per kind (the isvc's label selects them all), started without a resourceVersion
    so the first events are the current states.
    """
    pending = {(str(w.get("kind")), str(w["metadata"]["name"])): w for w in workloads}
    isvcs = {str((w["metadata"].get("labels") or {}).get(ISVC_LABEL, "")) for w in pending.values()}
    selector = f"{ISVC_LABEL}={isvcs.pop()}" if len(isvcs) == 1 and "" not in isvcs else None
    deadline = time.monotonic() + timeout
    states: dict[tuple[str, str], Rollout] = {}
    last: dict[tuple[str, str], str] = {}

    def kind_done(kind: str) -> bool:
        return all(states.get(key, _NOT_DONE).done for key in pending if key[0] == kind)

    for kind in sorted({k for k, _ in pending}):
        # The server ends a watch after timeoutSeconds; watch again until done or out of time.
        while not kind_done(kind) and (remaining := deadline - time.monotonic()) > 0:
            for event in client.watch(
                WORKLOAD_REFS[kind],
                namespace,
                label_selector=selector,
                timeout_seconds=max(1, int(remaining)),
            ):
                obj = event.get("object") or {}
                key = (kind, str((obj.get("metadata") or {}).get("name", "")))
                if key not in pending or event.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                obj = {**obj, "kind": kind}
                state = rollout_of(obj)
                states[key] = state
                if last.get(key) != state.message:
                    progress(f"{state.ref}: {state.message}")
                    last[key] = state.message
                if state.failed is not None:
                    raise _failure(client, namespace, obj, state.failed)
                if kind_done(kind) or time.monotonic() >= deadline:
                    break
    stuck = [pending[k] for k in pending if not states.get(k, _NOT_DONE).done]
    if stuck:
        first = stuck[0]
        state = states.get((str(first["kind"]), first["metadata"]["name"]), _NOT_DONE)
        raise _failure(
            client,
            namespace,
            first,
            f"not rolled out after {timeout:g}s ({state.message})",
            others=[f"{w['kind'].lower()}/{w['metadata']['name']}" for w in stuck[1:]],
        )
    return [states[k] for k in pending]


_NOT_DONE = Rollout("", False, "no status yet")


def follow_rollouts(
    client: Client,
    namespace: str,
    workloads: Sequence[Mapping[str, Any]],
    timeout: float,
    log: Callable[[str], None],
) -> None:
    """Wait for the Deployments to roll out; a LeaderWorkerSet is only pointed at."""
    deployments = [wl for wl in workloads if wl.get("kind") == "Deployment"]
    for other in workloads:
        if other.get("kind") != "Deployment":
            log(f"not following {display(other)}: see `kubectl get lws -n {namespace}`")
    if deployments:
        wait_for_rollouts(client, namespace, deployments, timeout, log)


def _failure(
    client: Client,
    namespace: str,
    workload: Mapping[str, Any],
    reason: str,
    others: list[str] | None = None,
) -> RolloutFailed:
    ref = f"{str(workload.get('kind', '')).lower()}/{workload['metadata']['name']}"
    lines = [f"{ref}: {reason}"]
    if others:
        lines.append(f"also not rolled out: {', '.join(others)}")
    explained = failure_events(client, namespace, workload)
    lines += [f"  {line}" for line in explained]
    hint = (
        None if explained else f"see `kubectl describe {ref} -n {namespace}` and its pods' events"
    )
    return RolloutFailed("\n".join(lines), hint)


def failure_events(client: Client, namespace: str, workload: Mapping[str, Any]) -> list[str]:
    """Warning events of the workload's pods and ReplicaSets that explain a stuck rollout.

    One line per (object, reason): `pod/x FailedScheduling: 0/3 nodes are available: ...`.
    Reading them is best effort: without rights on pods or events, nothing is shown.
    """
    name = workload["metadata"]["name"]
    selector = selector_of(workload)
    try:
        pods = [
            p["metadata"]["name"] for p in client.list(r.PODS, namespace, label_selector=selector)
        ]
        events = list(client.list(r.EVENTS, namespace, field_selector="type=Warning"))
    except errors.PluginError:
        return []
    return explain_events(events, set(pods), name)


def explain_events(events: Iterable[Mapping[str, Any]], pods: set[str], workload: str) -> list[str]:
    """The newest explaining event per (object, reason), oldest first (pure)."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        kind, name = involved.get("kind"), str(involved.get("name", ""))
        ours = (kind == "Pod" and name in pods) or (
            kind == "ReplicaSet" and name.startswith(f"{workload}-")
        )
        reason = str(event.get("reason", ""))
        if not ours or reason not in EXPLAINING_REASONS:
            continue
        key = (f"{str(kind).lower()}/{name}", reason)
        if key not in latest or _event_time(event) >= _event_time(latest[key]):
            latest[key] = event
    ordered = sorted(latest.items(), key=lambda item: _event_time(item[1]))
    return [f"{obj} {reason}: {str(e.get('message', '')).strip()}" for (obj, reason), e in ordered]


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def selector_of(workload: Mapping[str, Any]) -> str:
    """The label selector of the workload's pods."""
    if workload.get("kind") == "LeaderWorkerSet":
        return f"{LWS_NAME_LABEL}={workload['metadata']['name']}"
    match = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def stuck_pods(client: Client, namespace: str, workload: Mapping[str, Any]) -> list[PodProblem]:
    """What keeps the workload's pods from running (`core.rollout.pod_problems`).

    Best effort: without the right to list pods (or with no selector), nothing.
    """
    selector = selector_of(workload)
    if not selector:
        return []
    try:
        return pod_problems(client.list(r.PODS, namespace, label_selector=selector))
    except errors.PluginError:
        return []
