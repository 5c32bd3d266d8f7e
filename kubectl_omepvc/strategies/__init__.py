"""How `patch` makes an InferenceService serve its model from a claim, one strategy per module.

- `native`: a `pvc://` model and the isvc pointed at it (OME that serves `pvc://` itself);
- `policy`: a MutatingAdmissionPolicy that rewrites the isvc's workloads on every write, so
  OME's own reconcile converges on the claim (released OME, Kubernetes with the policy API);
- `isvc`: the claim in the isvc's own spec, beside a path-less `pvc://` copy of its model
  (released OME on any Kubernetes: no admission object, node labels instead);
- `deployment`: a one-shot JSON Patch of the workloads, which OME's controller reverts unless
  it is stopped (so it is used only when asked for by name).

A strategy gets a `Job` (the preflight's `Target`, the flags, a client and a logger), writes,
and returns an `Outcome`. Before its first write each one sends every write as a server
dry-run, so a refusal (RBAC, admission, validation) leaves nothing changed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kubectl_omepvc import errors
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import transform
from kubectl_omepvc.core.capabilities import Capabilities

# Re-exported: the strategy modules and their callers take these from here.
from kubectl_omepvc.core.objects import strip_server_fields as strip_server_fields
from kubectl_omepvc.core.rbac import Rule
from kubectl_omepvc.core.served_model import ModelInfo as ModelInfo
from kubectl_omepvc.core.served_model import workload_model_name as workload_model_name
from kubectl_omepvc.options import DryRun

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

Obj = dict[str, Any]
Log = Callable[[str], None]

ORDER = ("native", "policy", "isvc", "deployment")  # best first
ISVC_STRATEGIES = ("native", "isvc")  # recorded on the isvc itself


class Declined(errors.InputError):
    """A strategy cannot run on this cluster (or was not asked for): `reason` says why."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason, hint)


class NothingToDo(Exception):
    """The isvc is already in the state asked for; `message` says so (exit 0)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class Target:
    """Everything the preflight established, before any write."""

    namespace: str
    isvc: Obj
    model: ModelInfo
    claim: str
    claim_obj: Obj
    sub_path: str
    workloads: tuple[Obj, ...]
    caps: Capabilities

    @property
    def isvc_name(self) -> str:
        return str(self.isvc["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class Settings:
    """The flags that shape a run."""

    dry_run: DryRun = DryRun.NONE
    model_name: str | None = None  # native: the pvc:// model's name
    settle: float = 15.0  # deployment: how long to watch for a revert
    nodes: tuple[str, ...] = ()  # isvc: the nodes to label (--node)
    node_selector: str | None = None  # isvc: the nodes to label (--node-selector)


@dataclasses.dataclass(frozen=True)
class Job:
    client: Client
    target: Target
    settings: Settings
    log: Log


@dataclasses.dataclass
class Outcome:
    """What a run did: objects as they now are, and kubectl-style lines about each write."""

    strategy: str
    objects: list[Obj] = dataclasses.field(default_factory=list)
    actions: list[str] = dataclasses.field(default_factory=list)
    # Workloads whose pods change now (their rollout is what --wait follows).
    rollout: list[Obj] = dataclasses.field(default_factory=list)


class Strategy(Protocol):
    """One way to switch an isvc to a claim."""

    name: str
    summary: str
    # The RBAC rules its `patch` and `unpatch` need beyond `core.rbac.PATCH_RULES` (what
    # `kubectl ome-pvc rbac --for patch --strategy NAME` prints; e2e proves each is needed).
    rules: tuple[Rule, ...]

    def unavailable(self, caps: Capabilities) -> str | None:
        """Why this cluster cannot use the strategy, or None when it can."""

    def run(self, job: Job) -> Outcome:
        """Check what only this strategy needs, dry-run every write, then write."""


def registry() -> dict[str, Strategy]:
    """name → strategy, best first (imported here so each module stays independent)."""
    from kubectl_omepvc.strategies import deployment, isvc, native, policy

    found: list[Strategy] = [native.NATIVE, policy.POLICY, isvc.ISVC, deployment.DEPLOYMENT]
    return {s.name: s for s in found}


def select(caps: Capabilities, requested: str | None = None) -> Strategy:
    """The strategy asked for, or the best one the cluster offers; `Declined` otherwise.

    `deployment` is never chosen on its own: OME reverts it within seconds, so only a user
    who knows that (controller stopped, or a test) gets it, by naming it.
    """
    strategies = registry()
    if requested is not None:
        if requested not in strategies:
            raise Declined(f"unknown strategy {requested!r}", f"use one of {', '.join(strategies)}")
        chosen = strategies[requested]
        reason = chosen.unavailable(caps)
        if reason:
            others = [n for n in ORDER if n != requested and not strategies[n].unavailable(caps)]
            hint = (
                f"use --strategy {others[0]}"
                if others and others[0] != "deployment"
                else "see `kubectl ome-pvc version` for what this cluster offers"
            )
            raise Declined(f"strategy {requested} is not possible here: {reason}", hint)
        return chosen
    reasons = []
    for name in ORDER:
        if name == "deployment":
            break
        reason = strategies[name].unavailable(caps)
        if reason is None:
            return strategies[name]
        reasons.append(f"{name}: {reason}")
    raise Declined(
        "no durable strategy is possible on this cluster ("
        + "; ".join(reasons)
        + "); a one-shot patch of the workloads is left, and OME's controller reverts it"
        " within seconds",
        "pass --strategy deployment if OME's controller is stopped or you accept that;"
        " for a lasting switch serve MutatingAdmissionPolicy (Kubernetes 1.32+) or upgrade OME",
    )


# --- records of what was done ------------------------------------------------------------------


NATIVE_RECORD_FORMAT = 1


def isvc_record(isvc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `native` or `isvc` record on an isvc (its `ome-pvc.io/original` annotation), or
    None."""
    raw = ((isvc.get("metadata") or {}).get("annotations") or {}).get(jp.ANNOTATION)
    if raw is None:
        return None
    try:
        record = json.loads(str(raw))
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("strategy") not in ISVC_STRATEGIES:
        name = (isvc.get("metadata") or {}).get("name", "")
        raise errors.InputError(
            f"the {jp.ANNOTATION} annotation of inferenceservice {name} is not a record"
            " this plugin can read",
            f"point the isvc at its model by hand, then remove the {jp.ANNOTATION} annotation",
        )
    return record


def model_volume(template: Mapping[str, Any], model_name: str) -> Mapping[str, Any] | None:
    for volume in (template.get("spec") or {}).get("volumes") or []:
        if volume.get("name") == model_name:
            return dict(volume)
    return None


def claim_of(workload: Mapping[str, Any], model_name: str) -> str | None:
    """The claim the workload's model volume uses (first template that has one), or None."""
    for _, template in jp.pod_templates(workload):
        volume = model_volume(template, model_name)
        pvc = (volume or {}).get("persistentVolumeClaim")
        if isinstance(pvc, Mapping):
            return str(pvc.get("claimName", ""))
    return None


# --- writing a workload ------------------------------------------------------------------------


def patch_workload(
    client: Client,
    workload: Obj,
    make_ops: Callable[[Obj], list[jp.Operation]],
    *,
    dry_run: bool = False,
    log: Log | None = None,
) -> Obj:
    """Send `make_ops(workload)`; when its `test` ops fail, re-read and retry once.

    The server answers a failed `test` with a bare 422 Invalid; the ops are replayed on a fresh
    read to tell "the workload changed meanwhile" (retry with ops planned on the fresh copy)
    from a real rejection of the result (re-raised as is). Returns the server's answer; an
    `AlreadyPatched` from re-planning returns the fresh copy unchanged.
    """
    from kubectl_omepvc.api import workloads as w

    ref = w.resource_for(workload)
    meta = workload["metadata"]
    name, namespace = str(meta["name"]), meta.get("namespace")
    ops = make_ops(workload)
    try:
        return client.patch(ref, name, ops, namespace=namespace, dry_run=dry_run)
    except errors.Invalid as first:
        fresh = {**client.get(ref, name, namespace), "kind": workload.get("kind")}
        try:
            jp.apply_patch(fresh, ops)
        except jp.PatchFailed:
            pass
        else:
            raise first  # the patch still applies: the server rejected the result itself
        shown = w.display(workload)
        if log:
            log(f"{shown} changed while it was being written; read it again, trying once more")
        try:
            retry = make_ops(fresh)
        except transform.AlreadyPatched:
            return fresh
        try:
            return client.patch(ref, name, retry, namespace=namespace, dry_run=dry_run)
        except errors.Invalid:
            raise errors.Conflict(
                f"{shown} changed again while it was being written (the workload changed"
                " meanwhile; it was re-read and retried once)",
                "something else keeps editing it (OME's controller?); run the command again",
            ) from None


def reworded(exc: errors.PluginError, add: str, hint: str | None = None) -> errors.PluginError:
    """The same kind of error with `add` after its message and `hint` (or its own) after."""
    message = str(exc.message)
    if exc.hint and message.endswith(f": {exc.hint}"):
        message = message[: -len(exc.hint) - 2]
    return type(exc)(f"{message}{add}", hint if hint is not None else exc.hint)


FINISH_HINT = "run the command again to finish, or `kubectl ome-pvc unpatch` to undo"


def write_each(
    writes: Sequence[tuple[Obj, Callable[[Obj], Obj]]],
    outcome: Outcome,
    verb: str,
    hint: str = FINISH_HINT,
    in_place: str = "",
) -> None:
    """Each `(workload, write)` in turn, its answer and `<workload> <verb>` into `outcome`.

    When one fails after others were written, the error names what is in place (`in_place`,
    and the workloads written so far) and `hint` says how to finish: nothing half-done goes
    unmentioned.
    """
    from kubectl_omepvc.api import workloads as w

    done: list[str] = []
    try:
        for workload, write in writes:
            answer = write(workload)
            outcome.objects.append(strip_server_fields({**answer, "kind": workload["kind"]}))
            outcome.actions.append(f"{w.display(workload)} {verb}")
            done.append(w.display(workload))
    except errors.PluginError as exc:
        parts = [p for p in (in_place, f"{', '.join(done)} {verb} already" if done else "") if p]
        if not parts:
            raise
        raise reworded(exc, f" ({'; '.join(parts)})", hint) from None


def workload_ops(target: Target, workload: Obj, strategy: str) -> list[jp.Operation]:
    """The JSON Patch switching every pod template of `workload` (raises `AlreadyPatched`)."""
    return jp.workload_patch(
        workload,
        jp.pod_template_paths(workload),
        target.model.name,
        target.claim,
        target.sub_path,
        target.model.label_key,
        strategy,
    )


def plan_workloads(target: Target, strategy: str) -> list[tuple[Obj, list[jp.Operation]]]:
    """(workload, patch) for each workload not yet on the claim."""
    planned = []
    for workload in target.workloads:
        try:
            planned.append((workload, workload_ops(target, workload, strategy)))
        except transform.AlreadyPatched:
            continue
    return planned


def dry_run_suffix(mode: DryRun) -> str:
    """kubectl's marker on lines about writes that were not stored."""
    return {DryRun.CLIENT: " (dry run)", DryRun.SERVER: " (server dry run)"}.get(mode, "")


@dataclasses.dataclass(frozen=True)
class Applied:
    """How an isvc is switched already: the strategy and the claim, read from the records."""

    strategy: str
    claim: str
    where: str  # the object holding the record, kubectl-style


def current_patch(
    client: Client, isvc: Mapping[str, Any], workloads: tuple[Obj, ...], caps: Capabilities
) -> Applied | None:
    """The switch this plugin made earlier, from the isvc, its policy or its workloads."""
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.core import policy as core_policy
    from kubectl_omepvc.core import resources as r

    meta = isvc.get("metadata") or {}
    own = isvc_record(isvc)
    if own is not None:
        return Applied(
            str(own["strategy"]), str(own.get("claim")), f"inferenceservice.ome.io/{meta['name']}"
        )
    if caps.mutating_policy_version:
        name = core_policy.policy_name(str(meta["namespace"]), str(meta["name"]))
        try:
            found = client.get_or_none(r.mutating_policies(caps.mutating_policy_version), name)
        except errors.Forbidden:
            found = None  # the policy strategy itself will say what is missing
        record = core_policy.read_policy_record(found) if found else None
        if found is not None:
            claim = str((record or {}).get("claim", ""))
            return Applied(
                "policy", claim, f"mutatingadmissionpolicy.admissionregistration.k8s.io/{name}"
            )
    for workload in workloads:
        own = jp.read_record(workload)
        for template in (own or {}).get("templates", {}).values():
            return Applied(
                str(template.get("strategy")), str(template.get("claim")), w.display(workload)
            )
    return None
