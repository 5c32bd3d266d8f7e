"""`kubectl ome-pvc verify CLAIM`: look at the claim the way the engine will, from a short pod.

The pod (built by `core.verify.verify_pod`) mounts the claim read-only with the model's sub-path
at the engine's mount path, on a node the PV allows, as the engine's user, runs a small script,
and is deleted on every way out: success, failure, timeout, Ctrl-C. Its log becomes a table of
checks, each failure with its fix; any failure exits 1.
"""

from __future__ import annotations

import math
import secrets
import sys
from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import selectors
from kubectl_omepvc.core import verify as v
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.errors import InputError
from kubectl_omepvc.options import (
    DURATION,
    ConnectionOptions,
    Output,
    connection_options,
    output_option,
)

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

Obj = dict[str, Any]


# --- the command ----------------------------------------------------------------------------------


@click.command("verify")
@click.argument("claim")
@click.option(
    "--sub-path",
    metavar="PATH",
    help="Directory below the volume root to mount (default: the one `create` recorded).",
)
@click.option(
    "--mount-path",
    metavar="PATH",
    help="Where to mount it (default: the engine's or the model's path, else "
    f"{v.DEFAULT_MOUNT_PATH}).",
)
@click.option("--node", metavar="NODE", help="Run on this node (one the PV allows).")
@click.option(
    "--run-as-user",
    type=click.IntRange(min=0),
    metavar="UID",
    help="User id to read the files as (default: the engine's with --isvc, else the image's).",
)
@click.option(
    "--isvc",
    metavar="NAME",
    help="Take mount path and user from this InferenceService's engine Deployment.",
)
@click.option("--image", default=v.DEFAULT_IMAGE, show_default=True, help="Image with a POSIX sh.")
@click.option(
    "--timeout",
    type=DURATION,
    default="2m",
    show_default=True,
    metavar="DURATION",
    help="How long the pod may take, from scheduling to the last check.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the pod (and its log) after the checks, to read or debug; delete it yourself.",
)
@output_option(Output.JSON, Output.YAML, default="a table of checks")
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    claim: str,
    sub_path: str | None,
    mount_path: str | None,
    node: str | None,
    run_as_user: int | None,
    isvc: str | None,
    image: str,
    timeout: float | None,
    keep: bool,
    output: str | None,
) -> None:
    """Check that a claim holds a loadable model, from a short-lived pod.

    The pod mounts CLAIM read-only with the model's sub-path at the mount path the engine will
    use, as the engine's user, and checks config.json, the tokenizer files and the weights
    (*.safetensors or *.bin) are there and readable. It prints a table of checks with the fix
    for each failure and exits 1 if any failed. The pod is deleted unless --keep.
    """
    if not timeout:
        raise click.UsageError("--timeout must be positive, such as 2m")
    m.validate_dns_subdomain(claim, "claim name")
    if sub_path is not None:
        m.validate_sub_path(sub_path)
    if mount_path is not None:
        m.validate_absolute_path(mount_path, "mount path")

    client = common.connect(opts)
    namespace = client.namespace
    pvc = client.get_or_none(r.PVCS, claim, namespace)
    if pvc is None:
        from kubectl_omepvc.api.lookup import whereabouts

        raise InputError(
            f'claim "{claim}" not found in namespace {namespace}',
            whereabouts(client, r.PVCS, claim, namespace)
            or "create it with `kubectl ome-pvc create`, or pass -n",
        )
    if dig(pvc, "status", "phase") == "Lost":
        raise InputError(
            f"claim {namespace}/{claim} is Lost (its volume is gone)",
            "create the claim and its volume again",
        )
    annotations = dig(pvc, "metadata", "annotations") or {}
    if sub_path is None:
        sub_path = annotations.get(m.SUB_PATH_ANNOTATION) or None
        if sub_path is None:
            common.note(
                "note: the claim records no sub-path: checking the volume root "
                "(pass --sub-path for the model's directory)"
            )
    _check_node(client, pvc, node)

    engine_mount, engine_user = (None, None)
    if isvc is not None:
        engine_mount, engine_user = _engine(client, namespace, isvc)
    if run_as_user is None:
        run_as_user = engine_user
    mount_path = mount_path or engine_mount or _model_path(client, pvc) or v.DEFAULT_MOUNT_PATH

    name = v.verify_pod_name(claim, secrets.token_hex(3))
    pod = v.verify_pod(
        name,
        namespace,
        claim,
        sub_path,
        mount_path,
        node,
        image,
        run_as_user,
        math.ceil(timeout),
    )

    def report(ran_on: str | None, checks: list[v.Check], error: str | None = None) -> None:
        run = v.VerifyRun(claim, namespace, name, ran_on, sub_path, mount_path, image, run_as_user)
        failed = {"passed": False, "error": error} if error else {}
        doc = {**v.verify_report(run, checks), **failed}
        common.emit(printers.to_json(doc) if output == Output.JSON.value else printers.to_yaml(doc))

    try:
        ran_on, log = _run_pod(client, pod, timeout, keep)
    except errors.PluginError as exc:
        if output is not None:  # the chosen format on stdout, the failure as ever on stderr
            report(None, [], exc.message)
        raise
    checks = v.parse_verify_output(log, sub_path=sub_path)
    passed = v.checks_passed(checks)
    where = f"sub-path {sub_path}" if sub_path else "the volume root"
    common.note(
        f"pod {name} ran on {ran_on or '?'}: {where} of claim {claim} at {mount_path}"
        + (f" as uid {run_as_user}" if run_as_user is not None else "")
    )
    if output is None:
        common.emit(render_checks(checks, printers.palette_for(sys.stdout)))
    else:
        report(ran_on, checks)
    if not passed:
        failed = sum(1 for c in checks if not c.ok)
        raise errors.PluginError(
            f"{failed} of {len(checks)} checks failed for claim {namespace}/{claim}"
        )


def _check_node(client: Client, pvc: Obj, node: str | None) -> None:
    """--node must exist and be one the claim's PV allows."""
    if node is None:
        return
    m.validate_dns_subdomain(node, "node")
    try:
        found, readable = client.get_or_none(r.NODES, node), True
    except errors.Forbidden:
        found, readable = None, False  # the scheduler will say so
    volume = dig(pvc, "spec", "volumeName")
    if volume:
        try:
            terms = selectors.volume_terms(client.get_or_none(r.PVS, volume))
        except errors.Forbidden:
            terms = []
        # A node that cannot be read is judged by its name (the hostname label) alone.
        if terms and not selectors.node_matches(found or selectors.stand_in_node(node), terms):
            hosts = selectors.pinned_hostnames(terms)
            raise InputError(
                f"node {node} cannot mount volume {volume}",
                f"its node affinity allows {', '.join(hosts)}: pick one of them"
                if hosts
                else f"its node affinity needs {selectors.describe_terms(terms)}: pick such a node",
            )
    if readable and found is None:
        raise InputError(f'node "{node}" does not exist', "list nodes: `kubectl get nodes`")


def _engine(client: Client, namespace: str, isvc: str) -> tuple[str | None, int | None]:
    deployment = client.get_or_none(r.DEPLOYMENTS, f"{isvc}-engine", namespace)
    if deployment is None:
        raise InputError(
            f"InferenceService {isvc} has no engine Deployment {isvc}-engine in {namespace}",
            "pass --mount-path and --run-as-user instead of --isvc",
        )
    mount_path, user = v.engine_identity(deployment)
    if user is None:
        common.note(
            f"note: the {isvc} engine sets no runAsUser: it runs as its image's user; "
            "pass --run-as-user if that is not the verify image's (root)"
        )
    return mount_path, user


def _model_path(client: Client, pvc: Obj) -> str | None:
    """The mount path of the model `create` recorded on the claim, if it can be read."""
    model = m.recorded_model(pvc)
    if model is None:
        return None
    try:
        found = client.get_or_none(r.model_resource(model.kind), model.name, model.namespace)
    except errors.PluginError:
        return None  # a hashed label, no rights on models: fall back to the default
    return v.model_mount_path(found)


def _run_pod(client: Client, pod: Obj, timeout: float, keep: bool) -> tuple[str | None, str]:
    """Runs the verify pod to its end; (node it ran on, its log). Deleted however this ends,
    unless `keep`."""
    from kubectl_omepvc.api import access
    from kubectl_omepvc.api import storage as api_storage

    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    said: list[str] = []

    def progress(current: Obj | None) -> None:
        now = v.progress(current)
        if not said or said[-1] != now:
            said.append(now)
            common.note(f"pod {name}: {now}")

    # What follows the pod's creation must be allowed before it exists: following it, reading
    # its log, and deleting it (else a refused run would leave the pod behind).
    access.require(
        client,
        [(r.PODS, verb, namespace) for verb in ("get", "watch", "delete")]
        + [(r.POD_LOGS, "get", namespace)],
    )
    created = False
    try:
        with api_storage.throwaway_pod(client, pod, keep):
            created = True
            common.note(f"pod {name} created; waiting up to {timeout:g}s for it to finish ...")
            done, last = api_storage.watch_until(
                client, r.PODS, name, namespace, v.finished, timeout, on_change=progress
            )
            if last is None:
                raise errors.PluginError(f"pod {name} was deleted before it finished")
            stuck = v.hopeless(last)
            if not done or stuck:
                events = _pod_events(client, namespace, name)
                raise errors.PluginError(
                    f"pod {name} cannot start ({stuck})"
                    if stuck
                    else f"pod {name} did not finish within {timeout:g}s ({v.pod_state(last)})",
                    events or "raise --timeout, or check --image and the node",
                )
            node = dig(last, "spec", "nodeName")
            try:
                log = api_storage.read_pod_log(client, namespace, name, v.CONTAINER_NAME)
            except errors.PluginError as exc:
                # The server answers for the node's kubelet: "not found" here means the log,
                # not the pod, which finished a moment ago.
                raise errors.PluginError(
                    f"pod {name} finished on {node or 'its node'}, but its log could not be"
                    f" read ({exc.message})",
                    "check that `kubectl logs` works for pods on that node, then run verify again",
                ) from None
    finally:
        if created and keep:
            common.note(
                f"pod {name} kept: read it with `kubectl logs {name} -n {namespace}`,"
                f" delete it with `kubectl delete pod {name} -n {namespace}`"
            )
        elif created:
            common.note(f"pod {name} deleted")
    return node, log


def _pod_events(client: Client, namespace: str, name: str) -> str:
    """The pod's last warning, which says what the status does not (FailedMount, ...)."""
    from kubectl_omepvc.api import storage as api_storage

    try:
        events = api_storage.object_events(client, namespace, name, "Pod")
    except errors.PluginError:
        return ""
    warnings = [e for e in events if e.get("type") == "Warning"]
    if not warnings:
        return ""
    last = warnings[-1]
    return f"last event: {last.get('reason')}: {last.get('message')}"


def render_checks(checks: list[v.Check], palette: printers.Palette) -> str:
    """The checks as a table, then the fix for each failure."""
    rows = [
        [c.name, palette.good("ok") if c.ok else palette.bad("FAILED"), c.detail] for c in checks
    ]
    text = printers.table(["check", "result", "detail"], rows)
    fixes = [f"  {c.name}: {c.fix}" for c in checks if not c.ok and c.fix]
    return text + ("\n\nFixes:\n" + "\n".join(fixes) if fixes else "")
