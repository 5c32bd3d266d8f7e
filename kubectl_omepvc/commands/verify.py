"""`kubectl ome-pvc verify CLAIM`: look at the claim the way the engine will, from a short pod.

The pod (built by `core.verify.verify_pod`) mounts the claim read-only with the model's sub-path
at the engine's mount path, on a node the PV allows, as the engine's user, runs a small script,
and is deleted on every way out: success, failure, timeout, Ctrl-C. Its log becomes a table of
checks, each failure with its fix; any failure exits 1.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import verify as v
from kubectl_omepvc.core.naming import ModelKind
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

DEFAULT_MOUNT_PATH = "/mnt/models"
NATIVE_MOUNT_PATH = "/opt/ml/model"  # where OME from main mounts a pvc:// model
ENGINE_CONTAINER = "ome-container"
MODEL_ANNOTATION = "ome.io/base-model-name"
# Container states that do not get better by waiting: stop at once and say why.
HOPELESS_WAITING = frozenset(
    {
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


# --- pure helpers (unit-tested) -------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)
    return obj


def pv_nodes(pv: Mapping[str, Any] | None) -> set[str] | None:
    """Host names a PV's required node affinity allows; None when it does not pin by host."""
    terms = _get(pv, "spec", "nodeAffinity", "required", "nodeSelectorTerms") or []
    allowed: set[str] = set()
    for term in terms:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == m.HOSTNAME_LABEL and expression.get("operator") == "In":
                allowed.update(expression.get("values") or [])
    return allowed or None


def model_mount_path(model: Mapping[str, Any] | None) -> str | None:
    """Where OME mounts this model in the engine: storage.path, or OME's default for pvc://."""
    storage = _get(model, "spec", "storage") or {}
    if storage.get("path"):
        return str(storage["path"])
    if str(storage.get("storageUri") or "").startswith("pvc://"):
        return NATIVE_MOUNT_PATH
    return None


def engine_identity(deployment: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """(mount path of the model, user id) of an OME engine Deployment's serving container."""
    template = _get(deployment, "spec", "template") or {}
    spec = template.get("spec") or {}
    model = _get(deployment, "metadata", "annotations", MODEL_ANNOTATION) or _get(
        template, "metadata", "annotations", MODEL_ANNOTATION
    )
    containers = spec.get("containers") or []
    container = next((c for c in containers if c.get("name") == ENGINE_CONTAINER), None)
    if container is None and containers:
        container = containers[0]
    container = container or {}
    mount_path = next(
        (
            str(mount.get("mountPath"))
            for mount in container.get("volumeMounts") or []
            if model and mount.get("name") == model
        ),
        None,
    )
    user = _get(container, "securityContext", "runAsUser")
    if user is None:
        user = _get(spec, "securityContext", "runAsUser")
    return mount_path, int(user) if isinstance(user, int) else None


def pod_state(pod: Mapping[str, Any] | None) -> str:
    """Why a pod has not finished, in one phrase."""
    if pod is None:
        return "the pod was deleted"
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"not scheduled: {condition.get('message') or condition.get('reason')}"
    for container in status.get("containerStatuses") or []:
        waiting = _get(container, "state", "waiting")
        if waiting:
            detail = waiting.get("message") or ""
            return f"{waiting.get('reason') or 'waiting'}{': ' + detail if detail else ''}"
    phase = status.get("phase") or "Pending"
    node = _get(pod, "spec", "nodeName")
    if phase == "Running":
        return f"still running on {node}"
    return f"{phase}{' on ' + node if node else ''}"


def hopeless(pod: Mapping[str, Any] | None) -> str | None:
    """A container state that waiting will not fix, as `reason: message`."""
    for container in _get(pod, "status", "containerStatuses") or []:
        waiting = _get(container, "state", "waiting") or {}
        if waiting.get("reason") in HOPELESS_WAITING:
            return f"{waiting['reason']}: {waiting.get('message') or ''}".rstrip(": ")
    return None


def finished(pod: Mapping[str, Any] | None) -> bool:
    return (
        pod is None
        or _get(pod, "status", "phase") in ("Succeeded", "Failed")
        or bool(hopeless(pod))
    )


def render_checks(checks: list[v.Check], palette: printers.Palette) -> str:
    rows = [
        [c.name, palette.good("ok") if c.ok else palette.bad("FAILED"), c.detail] for c in checks
    ]
    text = printers.table(["check", "result", "detail"], rows)
    fixes = [f"  {c.name}: {c.fix}" for c in checks if not c.ok and c.fix]
    return text + ("\n\nFixes:\n" + "\n".join(fixes) if fixes else "")


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
    f"{DEFAULT_MOUNT_PATH}).",
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
@output_option(Output.JSON, Output.YAML)
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
    output: str | None,
) -> None:
    """Check that a claim holds a loadable model, from a short-lived pod.

    The pod mounts CLAIM read-only with the model's sub-path at the mount path the engine will
    use, as the engine's user, and checks config.json, the tokenizer files and the weights
    (*.safetensors or *.bin) are there and readable. It prints a table of checks with the fix
    for each failure and exits 1 if any failed. The pod is always deleted.
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
        raise InputError(
            f'claim "{claim}" not found in namespace {namespace}',
            "create it with `kubectl ome-pvc create`, or pass -n",
        )
    if _get(pvc, "status", "phase") == "Lost":
        raise InputError(
            f"claim {namespace}/{claim} is Lost (its volume is gone)",
            "create the claim and its volume again",
        )
    annotations = _get(pvc, "metadata", "annotations") or {}
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
    mount_path = mount_path or engine_mount or _model_path(client, pvc) or DEFAULT_MOUNT_PATH

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
    ran_on, log = _run_pod(client, pod, timeout)
    checks = v.parse_verify_output(log, sub_path=sub_path)
    passed = v.checks_passed(checks)
    where = f"sub-path {sub_path}" if sub_path else "the volume root"
    common.note(
        f"pod {name} ran on {ran_on or '?'}: {where} of claim {claim} at {mount_path}"
        + (f" as uid {run_as_user}" if run_as_user is not None else "")
    )
    if output is None:
        palette = printers.palette_for(click.get_text_stream("stdout"))
        common.emit(render_checks(checks, palette))
    else:
        report = {
            "claim": claim,
            "namespace": namespace,
            "pod": name,
            "node": ran_on,
            "subPath": sub_path,
            "mountPath": mount_path,
            "image": image,
            "runAsUser": run_as_user,
            "passed": passed,
            "checks": [
                {"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks
            ],
        }
        text = printers.to_json(report) if output == Output.JSON.value else printers.to_yaml(report)
        common.emit(text)
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
    volume = _get(pvc, "spec", "volumeName")
    if volume:
        try:
            allowed = pv_nodes(client.get_or_none(r.PVS, volume))
        except errors.Forbidden:
            allowed = None
        if allowed is not None and node not in allowed:
            raise InputError(
                f"node {node} cannot mount volume {volume}",
                f"its node affinity allows {', '.join(sorted(allowed))}: pick one of them",
            )
    try:
        if client.get_or_none(r.NODES, node) is None:
            raise InputError(f'node "{node}" does not exist', "list nodes: `kubectl get nodes`")
    except errors.Forbidden:
        pass  # the scheduler will say so


def _engine(client: Client, namespace: str, isvc: str) -> tuple[str | None, int | None]:
    deployment = client.get_or_none(r.DEPLOYMENTS, f"{isvc}-engine", namespace)
    if deployment is None:
        raise InputError(
            f"InferenceService {isvc} has no engine Deployment {isvc}-engine in {namespace}",
            "pass --mount-path and --run-as-user instead of --isvc",
        )
    mount_path, user = engine_identity(deployment)
    if user is None:
        common.note(
            f"note: the {isvc} engine sets no runAsUser: it runs as its image's user; "
            "pass --run-as-user if that is not the verify image's (root)"
        )
    return mount_path, user


def _model_path(client: Client, pvc: Obj) -> str | None:
    """The mount path of the model `create` recorded on the claim, if it can be read."""
    labels = _get(pvc, "metadata", "labels") or {}
    name = labels.get(m.MODEL_LABEL)
    if not name:
        return None
    kind = labels.get(m.MODEL_KIND_LABEL)
    if kind == ModelKind.NAMESPACED.value:
        ref, namespace = r.BASE_MODELS, labels.get(m.MODEL_NAMESPACE_LABEL)
    else:
        ref, namespace = r.CLUSTER_BASE_MODELS, None
    try:
        return model_mount_path(client.get_or_none(ref, name, namespace))
    except errors.PluginError:
        return None  # a hashed label, no rights on models: fall back to the default


def _run_pod(client: Client, pod: Obj, timeout: float) -> tuple[str | None, str]:
    """Runs the verify pod to its end; (node it ran on, its log). Deleted however this ends."""
    from kubectl_omepvc.api import storage as api_storage

    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    seen: dict[str, str] = {}

    def progress(current: Obj | None) -> None:
        node = _get(current, "spec", "nodeName")
        if node and "node" not in seen:
            seen["node"] = node
            common.note(f"pod {name} scheduled on {node}")

    created = False
    try:
        with api_storage.throwaway_pod(client, pod):
            created = True
            common.note(f"pod {name} created; waiting up to {timeout:g}s for it to finish ...")
            done, last = api_storage.watch_until(
                client, r.PODS, name, namespace, finished, timeout, on_change=progress
            )
            if last is None:
                raise errors.PluginError(f"pod {name} was deleted before it finished")
            stuck = hopeless(last)
            if not done or stuck:
                events = _pod_events(client, namespace, name)
                raise errors.PluginError(
                    f"pod {name} cannot start ({stuck})"
                    if stuck
                    else f"pod {name} did not finish within {timeout:g}s ({pod_state(last)})",
                    events or "raise --timeout, or check --image and the node",
                )
            node = _get(last, "spec", "nodeName")
            log = api_storage.read_pod_log(client, namespace, name, v.CONTAINER_NAME)
    finally:
        if created:
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
