"""`kubectl ome-pvc patch <isvc> --claim NAME`: serve an InferenceService's model from a claim.

Everything that can be checked is checked before the first write (the preflight, see
`kubectl_omepvc.strategies.preflight`): the isvc and its model, the claim (namespace, binding,
access mode), where the model sits on the volume (the sub-path), and whether any node can run
the pods with that volume. Then the chosen strategy (see `kubectl_omepvc.strategies`) writes,
and `--wait` follows the rollout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core.objects import one_or_list
from kubectl_omepvc.options import (
    DURATION,
    ConnectionOptions,
    DryRun,
    Output,
    connection_options,
    dry_run_option,
    output_option,
)
from kubectl_omepvc.strategies import ORDER as STRATEGIES

if TYPE_CHECKING:
    from kubectl_omepvc.strategies import Applied

Obj = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])


def render_objects(objects: Sequence[Obj], output: str) -> str:
    """One object as itself, several as a `List`, as kubectl prints them."""
    body = one_or_list(objects)
    return printers.to_json(body) if output == Output.JSON.value else printers.to_yaml(body)


def rollout_options(workloads: str) -> Callable[[F], F]:
    """`--wait/--no-wait` and `--timeout`: follow the rollout of the `workloads` workloads."""

    def decorate(func: F) -> F:
        func = click.option(
            "--timeout",
            type=DURATION,
            default="5m",
            show_default=True,
            metavar="DURATION",
            help="How long --wait waits.",
        )(func)
        return click.option(
            "--wait/--no-wait",
            default=True,
            show_default=True,
            help=f"Follow the rollout of the {workloads} workloads.",
        )(func)

    return decorate


def switch_options(func: F) -> F:
    """`--strategy` and `--sub-path`, as `patch` and `diff` both take them."""
    func = click.option(
        "--sub-path",
        default=None,
        help="The model's directory relative to the claim's root (derived from local/NFS volumes).",
    )(func)
    return click.option(
        "--strategy",
        type=click.Choice(STRATEGIES),
        default=None,
        help="How to make the switch (default: the best the cluster offers: native, policy, isvc).",
    )(func)


# --- the command -----------------------------------------------------------------------------


@click.command("patch")
@click.argument("isvc")
@click.option("--claim", required=True, help="The PersistentVolumeClaim to serve the model from.")
@switch_options
@click.option(
    "--model-name",
    default=None,
    help="native: name of the pvc:// model to create (default: <model>-pvc).",
)
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="NODE",
    help="isvc: label these nodes for the copy (default: the nodes that reach the claim).",
)
@click.option(
    "--node-selector",
    default=None,
    metavar="K=V[,K=V]",
    help="isvc: label the nodes with these labels for the copy.",
)
@click.option(
    "--settle",
    type=DURATION,
    default="15s",
    show_default=True,
    metavar="DURATION",
    help="deployment: how long to watch for OME reverting the patch.",
)
@rollout_options("changed")
@dry_run_option
@output_option(Output.YAML, Output.JSON, default="one line per object written")
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    isvc: str,
    claim: str,
    strategy: str | None,
    sub_path: str | None,
    model_name: str | None,
    nodes: tuple[str, ...],
    node_selector: str | None,
    settle: float | None,
    wait: bool,
    timeout: float | None,
    dry_run: str,
    output: str | None,
) -> None:
    """Serve an InferenceService's model from a PersistentVolumeClaim.

    \b
    Strategies:
      native      a pvc:// copy of the model, and the isvc pointed at it (OME that serves
                  pvc:// models; nothing to patch or defend)
      policy      a MutatingAdmissionPolicy that rewrites the isvc's workloads on every write,
                  so OME's own reconcile keeps them on the claim
      isvc        the claim's volume, mount and MODEL_PATH in the isvc's own spec, which
                  names a path-less pvc:// copy of the model; its node label goes on the
                  nodes that reach the claim (released OME on any Kubernetes, no admission
                  object; on an OME that serves pvc://, `patch` turns it native)
      deployment  a one-shot JSON Patch of the workloads; OME's controller reverts it unless
                  it is stopped, so it is only used when named

    Nothing is written unless every check passes. Patching an isvc that is already switched
    is a no-op once its rollout has finished (an unfinished one is reported, and followed
    with --wait); `kubectl ome-pvc unpatch` undoes it. Ctrl-C exits 130 saying what is in
    place.
    """
    from kubectl_omepvc.api import probe
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.strategies import (
        Job,
        NothingToDo,
        Settings,
        current_patch,
        isvc_record,
        select,
    )
    from kubectl_omepvc.strategies import isvc as isvc_strategy
    from kubectl_omepvc.strategies.deployment import Reverted
    from kubectl_omepvc.strategies.native import wait_until_served
    from kubectl_omepvc.strategies.preflight import preflight

    mode = DryRun(dry_run)
    client = common.connect(opts)
    namespace = client.namespace
    caps = probe.probe(client)
    undo = f"`kubectl ome-pvc unpatch {isvc} -n {namespace}`"
    try:
        isvc_obj = w.get_isvc(client, namespace, isvc)
        w.refuse_serverless(client, isvc_obj)
        workloads = w.find_workloads(client, isvc_obj, caps.leader_worker_set)
        chosen = select(caps, strategy)
        applied = current_patch(client, isvc_obj, tuple(workloads), caps)
        if applied is not None and applied.claim == claim and applied.strategy == "isvc":
            record = isvc_record(isvc_obj)
            assert record is not None
            if chosen.name == "native":
                # OME was upgraded: the copy is served natively, the isvc's own mount can go.
                outcome = isvc_strategy.to_native(client, isvc_obj, record, mode, common.note)
                _report(outcome, output)
                return
            if strategy in (None, "isvc"):
                # Again: put back the copy's label on nodes that reach the claim and lack it.
                settings = Settings(dry_run=mode, nodes=nodes, node_selector=node_selector)
                outcome = isvc_strategy.relabel(client, isvc_obj, record, workloads, settings)
                _report(outcome, output)
                return
        check_switched(applied, chosen.name, isvc, namespace, claim)
        target = preflight(client, isvc_obj, workloads, claim, sub_path, caps, common.note)
        settings = Settings(
            dry_run=mode,
            model_name=model_name,
            settle=settle or 0.0,
            nodes=nodes,
            node_selector=node_selector,
        )
        if wait and mode is DryRun.NONE:
            w.require_rollout_access(client, namespace, workloads)
    except KeyboardInterrupt:
        common.interrupted("before any write: nothing was changed")
    except NothingToDo as done:
        _already_switched(client, namespace, done.message, workloads, wait, timeout)
        return
    try:
        outcome = chosen.run(Job(client, target, settings, common.note))
    except KeyboardInterrupt:
        if mode is not DryRun.NONE:
            common.interrupted("a dry run: nothing was changed")
        common.interrupted(
            "while writing: some of the changes may be in place; run the same command again"
            f" to finish, or {undo} to undo what is there"
        )
    except Reverted as reverted:
        for line in reverted.outcome.actions if reverted.outcome else []:
            common.emit(line)
        raise
    except NothingToDo as done:
        _already_switched(client, namespace, done.message, workloads, wait, timeout)
        return
    _report(outcome, output)
    if mode is not DryRun.NONE:
        return
    where = f"{target.claim}/{target.sub_path}" if target.sub_path else target.claim
    common.note(
        f"inferenceservice {isvc}: model {target.model.name} now served from claim {where}"
        f" (strategy {outcome.strategy})"
    )
    if not wait:
        return
    limit = timeout or 300.0
    try:
        if outcome.strategy in ("native", "isvc"):
            wait_until_served(client, target, limit, common.note)
        elif outcome.rollout:
            w.follow_rollouts(client, namespace, outcome.rollout, limit, common.note)
    except KeyboardInterrupt:
        written = ", ".join(outcome.actions) or "the switch"
        common.interrupted(
            f"{written}: in place; the rollout goes on without being followed:"
            f" follow it with {follow_command(namespace, isvc, outcome.rollout)},"
            f" undo it with {undo}"
        )


def check_switched(
    applied: Applied | None, strategy: str, isvc: str, namespace: str, claim: str
) -> None:
    """Refuse an isvc switched to another claim; `NothingToDo` when it is on this one.

    The same strategy runs again and finishes what an interrupted run left; another strategy
    on top of a switched isvc would only fight it.
    """
    from kubectl_omepvc.strategies import NothingToDo

    if applied is None:
        return
    if applied.claim != claim:
        raise errors.InputError(
            f"inferenceservice {isvc} is already switched to claim {applied.claim}"
            f" (strategy {applied.strategy}, recorded on {applied.where})",
            f"run `kubectl ome-pvc unpatch {isvc} -n {namespace}` first to change the claim",
        )
    if applied.strategy != strategy or strategy == "native":
        raise NothingToDo(
            f"inferenceservice.ome.io/{isvc} unchanged: already served from claim {claim}"
            f" (strategy {applied.strategy})"
        )


def follow_command(namespace: str, isvc: str, rollout: Sequence[Obj]) -> str:
    """The kubectl command that follows the rollout `patch --wait` was following."""
    from kubectl_omepvc.core.naming import ISVC_LABEL

    if len(rollout) == 1:
        name = rollout[0]["metadata"]["name"]
        return f"`kubectl rollout status deployment/{name} -n {namespace}`"
    return f"`kubectl get pods -n {namespace} -l {ISVC_LABEL}={isvc} -w`"


def _already_switched(
    client: Any,
    namespace: str,
    message: str,
    workloads: Sequence[Obj],
    wait: bool,
    timeout: float | None,
) -> None:
    """The isvc is switched already: "unchanged" only once its rollout has finished.

    A re-run after a rollout that got stuck (a claim that never binds, pods that crash) must
    not call it done: it names the workloads still rolling out and why their pods do not run,
    and with --wait follows them.
    """
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.core.rollout import rollout_of

    deployments = [wl for wl in workloads if wl.get("kind") == "Deployment"]
    unfinished = [(wl, rollout_of(wl)) for wl in deployments]
    unfinished = [(wl, state) for wl, state in unfinished if not state.done]
    if not unfinished:
        common.emit(message)
        return
    switched = message.replace(" unchanged: ", ": ", 1)  # it is not: the rollout is not done
    states = "; ".join(f"{state.ref}: {state.failed or state.message}" for _, state in unfinished)
    common.emit(f"{switched}, but its rollout has not finished ({states})")
    for workload, _ in unfinished:
        for problem in w.stuck_pods(client, namespace, workload):
            common.note(f"  {problem.text}")
    if wait:
        limit = timeout or 300.0
        try:
            w.follow_rollouts(client, namespace, [wl for wl, _ in unfinished], limit, common.note)
        except KeyboardInterrupt:
            common.interrupted("nothing was changed (the rollout goes on)")


def _report(outcome: Any, output: str | None) -> None:
    if output:
        common.emit(render_objects(outcome.objects, output))
    else:
        for line in outcome.actions:
            common.emit(line)
