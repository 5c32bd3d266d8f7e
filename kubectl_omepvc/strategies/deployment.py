"""`--strategy deployment`: one JSON Patch per workload, then a watch for OME's revert.

The patch finds the model volume by name and guards each change with a `test` of the value it
replaces (see `core.jsonpatch`). It lasts only while nothing re-applies the workload: OME's
controller rebuilds its pod template on every change of a workload it owns, so after the
writes the workloads are watched for `--settle` seconds and a revert is reported with the
strategies that do last.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kubectl_omepvc import errors
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core.capabilities import Capabilities
from kubectl_omepvc.core.rbac import LWS, Rule
from kubectl_omepvc.options import DryRun
from kubectl_omepvc.strategies import (
    Job,
    Log,
    NothingToDo,
    Obj,
    Outcome,
    Target,
    dry_run_suffix,
    model_volume,
    patch_workload,
    plan_workloads,
    strip_server_fields,
    workload_ops,
)

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

NAME = "deployment"


class Reverted(errors.PluginError):
    """Something (OME's controller) put the hostPath back after the patch; `outcome` says
    what was written before."""

    outcome: Outcome | None = None


class DeploymentStrategy:
    name = NAME
    summary = "one-shot JSON Patch of the workloads (OME's controller reverts it)"
    # What `patch` writes and `unpatch` undoes: the workloads themselves.
    rules: tuple[Rule, ...] = (
        Rule("apps", ("deployments",), ("patch",)),
        Rule(LWS, ("leaderworkersets",), ("patch",)),
    )

    def unavailable(self, caps: Capabilities) -> str | None:
        return None  # plain PATCH works everywhere; whether it lasts is another matter

    def run(self, job: Job) -> Outcome:
        target, settings, client = job.target, job.settings, job.client
        if not target.workloads:
            raise errors.InputError(
                f"inferenceservice {target.isvc_name} has no Deployment or LeaderWorkerSet"
                " to patch yet",
                "wait until OME has created them, or use --strategy policy (it also covers"
                " workloads created later)",
            )
        planned = plan_workloads(target, NAME)
        if not planned:
            raise NothingToDo(
                f"inferenceservice.ome.io/{target.isvc_name} unchanged: its workloads already"
                f" serve model {target.model.name} from claim {target.claim}"
            )
        from kubectl_omepvc.api import workloads as w

        outcome = Outcome(NAME)
        suffix = dry_run_suffix(settings.dry_run)
        if settings.dry_run is DryRun.CLIENT:
            outcome.objects = [strip_server_fields(jp.apply_patch(wl, ops)) for wl, ops in planned]
            outcome.actions = [f"{w.display(wl)} patched{suffix}" for wl, _ in planned]
            return outcome

        def ops_for(workload: Obj) -> list[jp.Operation]:
            return workload_ops(target, workload, NAME)

        # Every write as a server dry-run first: a refusal leaves all workloads as they were.
        answers = [
            patch_workload(client, wl, ops_for, dry_run=True, log=job.log) for wl, _ in planned
        ]
        if settings.dry_run is DryRun.SERVER:
            outcome.objects = [strip_server_fields(a) for a in answers]
            outcome.actions = [f"{w.display(wl)} patched{suffix}" for wl, _ in planned]
            return outcome
        patched_at = time.monotonic()
        for workload, _ in planned:
            answer = patch_workload(client, workload, ops_for, log=job.log)
            outcome.objects.append(strip_server_fields({**answer, "kind": workload["kind"]}))
            outcome.actions.append(f"{w.display(workload)} patched")
        outcome.rollout = [o for o in outcome.objects if o.get("kind") == "Deployment"]
        if settings.settle > 0:
            job.log(
                f"watching for {settings.settle:g}s whether OME's controller reverts the patch"
                " (--settle)"
            )
            reverted = watch_for_revert(
                client, target, outcome.objects, patched_at, settings.settle
            )
            if reverted:
                error = revert_error(target, reverted)
                error.outcome = outcome
                raise error
        return outcome


def is_reverted(workload: Mapping[str, Any], model_name: str) -> bool:
    """Whether any pod template's model volume is a hostPath again."""
    return any(
        "hostPath" in (model_volume(template, model_name) or {})
        for _, template in jp.pod_templates(workload)
    )


def watch_for_revert(
    client: Client,
    target: Target,
    patched: list[Obj],
    since: float,
    seconds: float,
) -> list[tuple[str, float]]:
    """Workloads that went back to hostPath within `seconds`, with when (seconds after `since`).

    The Deployments are watched (OME's revert comes within seconds, so the first one ends the
    watch); other kinds are read once when the window closes.
    """
    from kubectl_omepvc.api import workloads as w

    model = target.model.name
    deadline = time.monotonic() + seconds
    names = {str(o["metadata"]["name"]): o for o in patched if o.get("kind") == "Deployment"}
    reverted: list[tuple[str, float]] = []
    while names and not reverted and (remaining := deadline - time.monotonic()) > 0:
        for event in client.watch(
            w.WORKLOAD_REFS["Deployment"],
            target.namespace,
            label_selector=f"{w.ISVC_LABEL}={target.isvc_name}",
            timeout_seconds=max(1, math.ceil(remaining)),
        ):
            obj = {**(event.get("object") or {}), "kind": "Deployment"}
            name = str((obj.get("metadata") or {}).get("name", ""))
            seen = name in names and event.get("type") in ("ADDED", "MODIFIED")
            if seen and is_reverted(obj, model):
                reverted.append((w.display(obj), time.monotonic() - since))
                break
            if time.monotonic() >= deadline:
                break
    if not reverted:
        for obj in patched:
            if obj.get("kind") == "Deployment":
                continue
            ref = w.resource_for(obj)
            live = client.get(ref, obj["metadata"]["name"], target.namespace)
            if is_reverted({**live, "kind": obj["kind"]}, model):
                reverted.append((w.display(obj), time.monotonic() - since))
    return reverted


def revert_error(target: Target, reverted: list[tuple[str, float]]) -> Reverted:
    which, after = reverted[0]
    caps = target.caps
    options = []
    if caps.mutating_policy_version:
        options.append(
            "--strategy policy (a MutatingAdmissionPolicy rewrites OME's own writes, so its"
            f" reconcile settles on the claim; this server serves {caps.mutating_policy_version})"
        )
    else:
        options.append(
            "--strategy policy once the server serves MutatingAdmissionPolicy"
            " (Kubernetes 1.32+, GA in 1.36)"
        )
    if caps.native_pvc:
        options.append("--strategy native (this OME serves pvc:// models itself)")
    else:
        options.append("--strategy native after upgrading to an OME that serves pvc:// models")
    return Reverted(
        f"{which} is back on its hostPath {after:.1f}s after the patch: OME's controller"
        " re-applies its own pod template whenever a workload it owns changes, so a one-shot"
        " patch does not last",
        "use " + ", or ".join(options),
    )


DEPLOYMENT = DeploymentStrategy()


def undo(
    client: Client,
    workloads: list[Obj],
    mode: DryRun,
    log: Log,
    records: Mapping[str, Any] | None = None,
) -> Outcome:
    """Restore each workload from its own record (or `records[ref]`, the policy's copy).

    Workloads with neither are left alone. Every restore is sent as a server dry-run first.
    """
    from kubectl_omepvc.api import workloads as w

    outcome = Outcome(NAME)
    suffix = dry_run_suffix(mode)
    plans: list[tuple[Obj, Mapping[str, Any] | None]] = []
    for workload in workloads:
        own = jp.read_record(workload)
        fallback = None if own is not None else (records or {}).get(jp.workload_ref(workload))
        if own is None and fallback is None:
            continue
        if jp.restore_patch(workload, record=fallback):
            plans.append((workload, fallback))
    if mode is DryRun.CLIENT:
        outcome.objects = [
            strip_server_fields(jp.apply_patch(wl, jp.restore_patch(wl, record=rec)))
            for wl, rec in plans
        ]
        outcome.actions = [f"{w.display(wl)} restored{suffix}" for wl, _ in plans]
        return outcome

    def ops_for(record: Mapping[str, Any] | None) -> Callable[[Obj], list[jp.Operation]]:
        return lambda workload: jp.restore_patch(workload, record=record)

    answers = [patch_workload(client, wl, ops_for(rec), dry_run=True, log=log) for wl, rec in plans]
    if mode is DryRun.SERVER:
        outcome.objects = [strip_server_fields(a) for a in answers]
        outcome.actions = [f"{w.display(wl)} restored{suffix}" for wl, _ in plans]
        return outcome
    for workload, record in plans:
        answer = patch_workload(client, workload, ops_for(record), log=log)
        outcome.objects.append(strip_server_fields({**answer, "kind": workload["kind"]}))
        outcome.actions.append(f"{w.display(workload)} restored")
    outcome.rollout = [o for o in outcome.objects if o.get("kind") == "Deployment"]
    return outcome
