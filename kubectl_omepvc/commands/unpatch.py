"""`kubectl ome-pvc unpatch <isvc>`: undo `patch`, whichever strategy it used.

Everything needed is in the records `patch` left: the isvc's annotation (native), the policy's
annotation and each workload's (policy, deployment). Running it again finds no record and
changes nothing.
"""

from __future__ import annotations

import click

from kubectl_omepvc.commands import common
from kubectl_omepvc.commands.patch import render_objects, rollout_options
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
@output_option(Output.YAML, Output.JSON)
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
    created it and no other isvc uses it). policy: the policy and binding are deleted and each
    workload restored exactly. deployment: each workload restored exactly.
    """
    from kubectl_omepvc.api import probe
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.core import policy as core_policy
    from kubectl_omepvc.core import resources as r
    from kubectl_omepvc.strategies import Outcome, deployment, isvc_record, native, policy

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

    outcomes: list[Outcome] = []
    if isvc_obj is not None:
        record = isvc_record(isvc_obj)
        if record is not None:
            outcomes.append(native.undo(client, isvc_obj, record, mode, common.note))
    workloads = (
        w.find_workloads(client, isvc_obj, caps.leader_worker_set) if isvc_obj is not None else []
    )
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
        w.follow_rollouts(client, namespace, rollout, timeout or 300.0, common.note)
