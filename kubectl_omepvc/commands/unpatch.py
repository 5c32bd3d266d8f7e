"""`kubectl ome-pvc unpatch <isvc>`: undo `patch`, whichever strategy it used.

Everything needed is in the records `patch` left: the isvc's annotation (native), the policy's
annotation and each workload's (policy, deployment). Running it again finds no record and
changes nothing.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_omepvc import errors
from kubectl_omepvc.commands import common
from kubectl_omepvc.commands.patch import follow_command, render_objects, rollout_options
from kubectl_omepvc.options import (
    ConnectionOptions,
    DryRun,
    Output,
    connection_options,
    dry_run_option,
    output_option,
)


@click.command("unpatch")
@click.argument("isvc")
@rollout_options("restored")
@dry_run_option
@output_option(Output.YAML, Output.JSON, default="one line per object written")
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    isvc: str,
    wait: bool,
    timeout: float | None,
    dry_run: str,
    output: str | None,
) -> None:
    """Serve an InferenceService's model from its hostPath again, as before `patch`.

    native: the isvc names its original model again (the pvc:// model is deleted if `patch`
    created it and no other isvc uses it). isvc: the isvc as before, byte for byte where
    `patch` changed it; the copy and its node labels go when no other isvc uses the copy.
    policy: the policy and binding are deleted and each workload restored exactly.
    deployment: each workload restored exactly.
    """
    from kubectl_omepvc.api import probe
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.core import jsonpatch as jp
    from kubectl_omepvc.core import policy as core_policy
    from kubectl_omepvc.core import resources as r
    from kubectl_omepvc.strategies import Outcome, deployment, isvc_record, native, policy
    from kubectl_omepvc.strategies import isvc as isvc_strategy

    mode = DryRun(dry_run)
    client = common.connect(opts)
    namespace = client.namespace
    caps = probe.probe(client)
    version = caps.mutating_policy_version
    policy_obj = None
    if version:
        name = core_policy.policy_name(namespace, isvc)
        policy_obj = client.get_or_none(r.mutating_policies(version), name)
    isvc_obj = client.get_or_none(r.INFERENCE_SERVICES, isvc, namespace)
    if isvc_obj is None and policy_obj is None:
        w.get_isvc(client, namespace, isvc)  # raises the not-found error

    workloads = (
        w.find_workloads(client, isvc_obj, caps.leader_worker_set) if isvc_obj is not None else []
    )
    if wait and mode is DryRun.NONE:
        w.require_rollout_access(client, namespace, workloads)
    outcomes: list[Outcome] = []
    record = isvc_record(isvc_obj) if isvc_obj is not None else None
    recorded = record or policy_obj or any(jp.read_record(wl) for wl in workloads)
    if isvc_obj is not None and recorded:  # before the first write
        _warn_if_nowhere_to_run(client, isvc_obj)
    if isvc_obj is not None and record is not None:
        undo = isvc_strategy.undo if record["strategy"] == "isvc" else native.undo
        outcomes.append(undo(client, isvc_obj, record, mode, common.note))
    if policy_obj is not None and version:
        made_for = (core_policy.read_policy_record(policy_obj) or {}).get("inferenceServiceUID")
        if made_for and isvc_obj is not None and isvc_obj["metadata"].get("uid") != made_for:
            # The policy never applied to this isvc (it matches its own isvc's uid only).
            common.note(
                f"policy {policy_obj['metadata']['name']} was made for an earlier"
                f" inferenceservice {isvc}, since deleted; the current one is left as it is"
            )
            workloads = []
        outcomes.append(policy.undo(client, version, policy_obj, workloads, mode, common.note))
    else:
        restored = deployment.undo(client, workloads, mode, common.note)
        if restored.actions:
            outcomes.append(restored)
    if not outcomes:
        common.emit(
            f"inferenceservice.ome.io/{isvc} unchanged: not switched to a claim by this plugin"
        )
        return
    objects = [o for outcome in outcomes for o in outcome.objects]
    if output:
        common.emit(render_objects(objects, output))
    else:
        for outcome in outcomes:
            for line in outcome.actions:
                common.emit(line)
    if mode is not DryRun.NONE:
        return
    common.note(
        f"inferenceservice {isvc}: model served from its hostPath again (undid strategy"
        f" {', '.join(o.strategy for o in outcomes)})"
    )
    rollout = [o for outcome in outcomes for o in outcome.rollout]
    if wait and rollout:
        written = ", ".join(line for outcome in outcomes for line in outcome.actions)
        common.on_interrupt(
            f"{written}: in place; the rollout goes on without being followed: follow it with"
            f" {follow_command(namespace, isvc, rollout)}"
        )
        w.follow_rollouts(client, namespace, rollout, timeout or 300.0, common.note)


def _warn_if_nowhere_to_run(client: Any, isvc: dict[str, Any]) -> None:
    """Before writing: the hostPath model going back into service is Ready on no node."""
    from kubectl_omepvc.core import served_model as sm
    from kubectl_omepvc.strategies import isvc_record
    from kubectl_omepvc.strategies.preflight import resolve_model

    record = isvc_record(isvc)
    original = (record or {}).get("originalModel") or {}
    spec = isvc.get("spec") or {}
    if original.get("name"):  # native: the isvc names the pvc:// copy until unpatched
        spec = {"model": {"name": original["name"], "kind": original.get("kind")}}
    try:
        model = resolve_model(client, {**isvc, "spec": spec})
    except errors.PluginError:
        return  # undo goes on; the rollout says what is wrong
    risk = sm.serving_risk(model, to_claim=False)
    if risk:
        common.note(risk)
