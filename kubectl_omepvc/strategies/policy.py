"""`--strategy policy`: a MutatingAdmissionPolicy keeps the isvc's workloads on the claim.

Order of writes, so a refusal changes nothing and OME never sees a window to revert in:
1. every write as a server dry-run (policy, binding, each workload);
2. the policy, then its binding (the binding removed again if it fails);
3. wait until the server applies the policy (a dry-run write of a workload comes back on the
   claim);
4. each existing workload once, with the JSON Patch that also records what it replaced (the
   policy itself would rewrite any write, but the record makes `unpatch` exact).
The policy carries the workloads' records too, for when OME's next full Update drops the
workload's own annotation; the pod templates carry the mark `ome-pvc.io/strategy: policy`, which
the policy writes again on each of OME's rewrites, so `status` tells a patched workload from
one OME mounts a claim on natively without reading the policy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kubectl_omepvc import errors
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import policy as core_policy
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import transform
from kubectl_omepvc.core.capabilities import Capabilities
from kubectl_omepvc.core.rbac import ADMISSION, LWS, Rule
from kubectl_omepvc.options import DryRun
from kubectl_omepvc.strategies import (
    Job,
    Log,
    NothingToDo,
    Obj,
    Outcome,
    Target,
    claim_of,
    dry_run_suffix,
    patch_workload,
    reworded,
    strip_server_fields,
    workload_ops,
    write_each,
)

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

NAME = "policy"
EFFECT_TIMEOUT = 30.0  # seconds for the server's admission informer to pick the policy up
POLL = 0.2


class PolicyStrategy:
    name = NAME
    summary = "a MutatingAdmissionPolicy rewrites the workloads on every write (lasts)"
    # What `patch` writes and `unpatch` undoes: the policy and its binding; the workloads are
    # patched in dry-run to see the policy take effect.
    rules: tuple[Rule, ...] = (
        Rule(ADMISSION, ("mutatingadmissionpolicies",), ("get", "create", "patch", "delete")),
        Rule(ADMISSION, ("mutatingadmissionpolicybindings",), ("create", "delete")),
        Rule("apps", ("deployments",), ("patch",)),
        Rule(LWS, ("leaderworkersets",), ("patch",)),
    )

    def unavailable(self, caps: Capabilities) -> str | None:
        if caps.mutating_policy_version:
            return None
        return (
            "the server serves no MutatingAdmissionPolicy API (admissionregistration.k8s.io"
            " v1 from Kubernetes 1.36, v1beta1/v1alpha1 behind a feature gate before)"
        )

    def run(self, job: Job) -> Outcome:
        from kubectl_omepvc.api import workloads as w

        target, settings, client = job.target, job.settings, job.client
        version = str(target.caps.mutating_policy_version)
        policies, bindings = r.mutating_policies(version), r.mutating_policy_bindings(version)
        name = core_policy.policy_name(target.namespace, target.isvc_name)
        try:
            existing = client.get_or_none(policies, name)
        except errors.Forbidden:
            existing = None  # the dry-run create below names the missing right
        previous = core_policy.read_policy_record(existing) if existing else None
        made_for = (previous or {}).get("inferenceServiceUID")
        if made_for and made_for != target.isvc["metadata"].get("uid"):
            raise errors.InputError(
                f"policy {name} was made for an earlier inferenceservice {target.isvc_name}"
                f" (uid {made_for}), since deleted",
                f"run `kubectl ome-pvc unpatch {target.isvc_name} -n {target.namespace}` to"
                " remove it, then patch again",
            )
        if previous and (previous.get("claim"), previous.get("subPath")) != (
            target.claim,
            target.sub_path,
        ):
            raise errors.InputError(
                f"inferenceservice {target.isvc_name} is already switched by policy {name} to"
                f" claim {previous.get('claim')} (sub-path {previous.get('subPath')!r})",
                f"run `kubectl ome-pvc unpatch {target.isvc_name} -n {target.namespace}` first"
                " to change the claim",
            )

        planned: list[tuple[Obj, list[jp.Operation]]] = []
        records: dict[str, Any] = dict((previous or {}).get("workloads") or {})
        for workload in target.workloads:
            crowded = core_policy.containers_mounting_too_often(workload, target.model.name)
            if crowded:
                raise errors.InputError(
                    f"{jp.workload_ref(workload)} mounts the model volume more than twice in"
                    f" container {crowded[0]}, which the policy cannot rewrite",
                    "use --strategy deployment, or mount the volume at most twice per container",
                )
            ref = jp.workload_ref(workload)
            try:
                ops = marked_ops(target, workload)
            except transform.AlreadyPatched:
                own = jp.read_record(workload)
                if own is not None:
                    records[ref] = own
                continue
            planned.append((workload, ops))
            records[ref] = jp.read_record(jp.apply_patch(workload, ops))
        if existing is not None and not planned:
            raise NothingToDo(
                f"inferenceservice.ome.io/{target.isvc_name} unchanged: policy {name} already"
                f" keeps it on claim {target.claim}"
            )
        policy, binding = core_policy.policy_objects(
            version,
            target.namespace,
            target.isvc_name,
            target.model.name,
            target.claim,
            target.sub_path,
            target.model.label_key,
            workloads=records,
            isvc_uid=target.isvc["metadata"].get("uid"),
        )
        outcome = Outcome(NAME)
        suffix = dry_run_suffix(settings.dry_run)
        policy_line = f"mutatingadmissionpolicy.admissionregistration.k8s.io/{name}"
        binding_line = f"mutatingadmissionpolicybinding.admissionregistration.k8s.io/{name}"
        create = existing is None

        # What a dry run says it would do: the policy and binding (when new), each workload.
        planned_actions = [f"{policy_line} created{suffix}", f"{binding_line} created{suffix}"]
        planned_actions = planned_actions if create else []
        planned_actions += [f"{w.display(wl)} patched{suffix}" for wl, _ in planned]

        if settings.dry_run is DryRun.CLIENT:
            outcome.objects = [policy, binding] if create else []
            outcome.objects += [strip_server_fields(jp.apply_patch(wl, ops)) for wl, ops in planned]
            outcome.actions += planned_actions
            return outcome

        def ops_for(workload: Obj) -> list[jp.Operation]:
            return marked_ops(target, workload)

        # 1. everything as a server dry-run: RBAC or admission refusing any write stops here.
        try:
            answers = []
            if create:
                answers.append(client.create(policies, policy, dry_run=True))
                answers.append(client.create(bindings, binding, dry_run=True))
            answers += [
                {
                    **patch_workload(client, wl, ops_for, dry_run=True, log=job.log),
                    "kind": wl["kind"],
                }
                for wl, _ in planned
            ]
        except errors.Forbidden as exc:
            raise reworded(
                exc,
                "; nothing was changed",
                f"{exc.hint}; or, if OME's controller is stopped, --strategy deployment",
            ) from None
        if settings.dry_run is DryRun.SERVER:
            outcome.objects = [strip_server_fields(a) for a in answers]
            outcome.actions += planned_actions
            return outcome

        # 2. the policy, then its binding.
        if create:
            outcome.objects.append(strip_server_fields(client.create(policies, policy)))
            try:
                outcome.objects.append(strip_server_fields(client.create(bindings, binding)))
            except errors.PluginError:
                client.delete(policies, name)
                raise
            outcome.actions += [f"{policy_line} created", f"{binding_line} created"]
        elif planned:
            # Keep the records of workloads patched now with the ones the policy had.
            annotations = {jp.ANNOTATION: policy["metadata"]["annotations"][jp.ANNOTATION]}
            client.patch(
                policies,
                name,
                {"metadata": {"annotations": annotations}},
                content_type="application/merge-patch+json",
            )
            outcome.actions.append(f"{policy_line} configured")

        # 3. the server applies a new policy once its informer has it; wait for that.
        if planned and not wait_until_effective(client, target, planned[0][0], job.log):
            job.log(
                f"warning: policy {name} is not applied yet after {EFFECT_TIMEOUT:g}s;"
                " writing the workloads anyway"
            )

        # 4. each workload once, with its record.
        def patch(workload: Obj) -> Obj:
            return patch_workload(client, workload, ops_for, log=job.log)

        write_each(
            [(wl, patch) for wl, _ in planned],
            outcome,
            "patched",
            in_place=f"policy {name} is in place",
            hint="run the command again to finish, or"
            f" `kubectl ome-pvc unpatch {target.isvc_name} -n {target.namespace}` to undo",
        )
        outcome.rollout = [o for o in outcome.objects if o.get("kind") == "Deployment"]
        return outcome


def marked_ops(target: Target, workload: Obj) -> list[jp.Operation]:
    """The switch, and the pod templates' mark the policy keeps writing on OME's rewrites."""
    return workload_ops(target, workload, NAME) + jp.marker_ops(workload, NAME)


def wait_until_effective(client: Client, target: Target, workload: Obj, log: Log) -> bool:
    """Poll with a dry-run no-op write of `workload` until the policy rewrites it."""
    from kubectl_omepvc.api import workloads as w

    ref = w.resource_for(workload)
    name = str(workload["metadata"]["name"])
    probe = [{"op": "test", "path": "/metadata/name", "value": name}]
    deadline = time.monotonic() + EFFECT_TIMEOUT
    while True:
        answer = {
            **client.patch(ref, name, probe, namespace=target.namespace, dry_run=True),
            "kind": workload["kind"],
        }
        if claim_of(answer, target.model.name) == target.claim:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


POLICY = PolicyStrategy()


def undo(
    client: Client,
    version: str,
    policy: Obj,
    workloads: list[Obj],
    mode: DryRun,
    log: Log,
) -> Outcome:
    """Delete the binding, restore each workload exactly, then delete the policy.

    The binding goes first: while it binds the policy, each restoring write would be turned
    back into the claim. Each workload is restored from its own record, or from the policy's
    copy when OME's last full Update dropped the workload's annotation; so the policy goes last.
    """
    from kubectl_omepvc.strategies import deployment

    name = str(policy["metadata"]["name"])
    record = core_policy.read_policy_record(policy) or {}
    records = dict(record.get("workloads") or {})
    model = str(record.get("modelName") or "")
    # A workload OME now renders for another model (the isvc was switched) has nothing of the
    # patch left: the policy only ever rewrote that model's volume.
    serving = [w for w in workloads if not model or _has_model_volume(w, model)]
    for workload in workloads:
        if workload not in serving:
            log(
                f"{jp.workload_ref(workload)} no longer mounts model {model} (its isvc serves"
                " another model now): nothing of the patch to restore in it"
            )
    workloads = serving
    for workload in workloads:
        unrecorded = jp.read_record(workload) is None and jp.workload_ref(workload) not in records
        if unrecorded and model and claim_of(workload, model):
            log(
                f"{jp.workload_ref(workload)} was switched by the policy when it was created and"
                " has no record; OME puts its hostPath back at its next reconcile"
            )
    policies, bindings = r.mutating_policies(version), r.mutating_policy_bindings(version)
    suffix = dry_run_suffix(mode)
    deleted = [
        f"mutatingadmissionpolicybinding.admissionregistration.k8s.io/{name} deleted{suffix}",
        f"mutatingadmissionpolicy.admissionregistration.k8s.io/{name} deleted{suffix}",
    ]
    if mode is DryRun.CLIENT:
        restored = deployment.undo(client, workloads, mode, log, records)
        restored.strategy = NAME
        restored.actions = deleted + restored.actions
        return restored
    try:
        client.delete(bindings, name, dry_run=True)
        client.delete(policies, name, dry_run=True)
        restored = deployment.undo(client, workloads, DryRun.SERVER, log, records)
    except errors.Forbidden as exc:
        raise reworded(exc, "; nothing was changed") from None
    if mode is DryRun.SERVER:
        restored.strategy = NAME
        restored.actions = deleted + restored.actions
        return restored
    # The binding first: without it the policy rewrites nothing. The policy itself goes last,
    # as it holds the records of workloads whose own annotation OME's Update dropped: when a
    # restore fails, `unpatch` finds them there again.
    client.delete(bindings, name)
    wait_until_released(client, workloads, records, model)
    try:
        restored = deployment.undo(client, workloads, DryRun.NONE, log, records)
    except errors.PluginError as exc:
        raise reworded(
            exc,
            f" (binding {name} deleted; policy {name} kept with the records)",
            "run `kubectl ome-pvc unpatch` again to finish",
        ) from None
    client.delete(policies, name)
    restored.strategy = NAME
    restored.actions = deleted + restored.actions
    return restored


def _has_model_volume(workload: Obj, model: str) -> bool:
    return any(
        volume.get("name") == model
        for _path, template in jp.pod_templates(workload)
        for volume in (template.get("spec") or {}).get("volumes") or []
    )


def wait_until_released(
    client: Client, workloads: list[Obj], records: dict[str, Any], model: str
) -> bool:
    """Poll with a dry-run restore of one workload until the policy no longer rewrites it."""
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.strategies.deployment import is_reverted

    for workload in workloads:
        fallback = None if jp.read_record(workload) else records.get(jp.workload_ref(workload))
        if jp.read_record(workload) is None and fallback is None:
            continue
        ops = jp.restore_patch(workload, record=fallback)
        if not ops:
            continue
        ref, meta = w.resource_for(workload), workload["metadata"]
        deadline = time.monotonic() + EFFECT_TIMEOUT
        while True:
            answer = client.patch(
                ref, meta["name"], ops, namespace=meta.get("namespace"), dry_run=True
            )
            if is_reverted({**answer, "kind": workload["kind"]}, model):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)
    return True
