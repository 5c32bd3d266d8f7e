"""`kubectl ome-pvc copy MODEL --claim C`: put a model's files from a node onto a claim.

Every check that can refuse runs before the first write (the model, the source node, the claim,
the sub-path, a copy already running). The Job (built by `core.copy.copy_job`) runs on the
source node; the command follows its pod's log, shows progress on stderr, records the sub-path
on the claim when done, and deletes the Job and its pods however it ends (unless --keep-job).
`--no-wait` leaves the Job running; `copy --status --claim C` shows how far it got.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import agent, naming, sources
from kubectl_omepvc.core import copy as c
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import verify as v
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.errors import InputError
from kubectl_omepvc.options import (
    DURATION,
    ConnectionOptions,
    DryRun,
    Output,
    connection_options,
    dry_run_option,
    output_option,
)

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

Obj = dict[str, Any]
POLL_S = 2.0
NO_WAIT_TTL_S = 24 * 3600  # a --no-wait Job stays a day for `copy --status`, then goes
PLAIN_EVERY_S = 30.0  # off a terminal, a progress line at most this often (and at each file)


@click.command("copy")
@click.argument("model", required=False)
@click.option("--claim", required=True, metavar="CLAIM", help="The claim to copy onto.")
@click.option(
    "--sub-path",
    metavar="PATH",
    help="Directory on the claim (default: the claim's recorded one, else the model's path "
    "below the agent's models root, as `create --from-model` and `patch` use).",
)
@click.option(
    "--from-node", metavar="NODE", help="Copy from this node (one the model is Ready on)."
)
@click.option("--image", default=c.DEFAULT_IMAGE, show_default=True, help="Image with a POSIX sh.")
@click.option(
    "--run-as-user",
    type=click.IntRange(min=0),
    metavar="UID",
    help="User to read and write as (default: the image's, root): the engine's user when the "
    "claim's storage maps users (NFS root-squash).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=c.DEFAULT_PARALLEL,
    show_default=True,
    help="Files copied at once.",
)
@click.option(
    "--timeout",
    type=DURATION,
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How long to follow the copy before giving up (and deleting the Job).",
)
@click.option("--no-wait", is_flag=True, help="Start the Job and return; see `copy --status`.")
@click.option("--keep-job", is_flag=True, help="Leave the Job and its pod when done (to debug).")
@click.option(
    "--status", "show_status", is_flag=True, help="Show the progress of the claim's copy."
)
@dry_run_option
@output_option(Output.JSON, Output.YAML)
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    model: str | None,
    claim: str,
    sub_path: str | None,
    from_node: str | None,
    image: str,
    run_as_user: int | None,
    parallel: int,
    timeout: float | None,
    no_wait: bool,
    keep_job: bool,
    show_status: bool,
    dry_run: str,
    output: str | None,
) -> None:
    """Copy MODEL's files from a node where it is Ready onto CLAIM, checked by sha256.

    MODEL is a ClusterBaseModel, or basemodel/NAME in -n. A Job on that node mounts the model's
    directory read-only and the claim read-write at the sub-path; files already there with the
    same size and sha256 are skipped, so a rerun resumes. Each file is checked by sha256 after
    the copy and a manifest (.ome-pvc-copy.json) is left next to them for `verify`. Then run
    `verify`, then `patch`.
    """
    m.validate_dns_subdomain(claim, "claim name")
    if show_status:
        _status(common.connect(opts), claim, output)
        return
    if model is None:
        raise click.UsageError("name the model to copy (or pass --status)")
    if sub_path is not None:
        sub_path = m.validate_sub_path(sub_path)
    if from_node is not None:
        m.validate_dns_subdomain(from_node, "node")
    if not timeout:
        raise click.UsageError("--timeout must be positive, such as 2h")
    mode = DryRun(dry_run)

    kind, name = sources.parse_model_ref(model, "MODEL")
    client = common.connect(opts)
    namespace = client.namespace
    ref = m.ModelRef(kind, name, namespace if kind is ModelKind.NAMESPACED else None)
    model_obj, path = common.hostpath_model(
        client, ref, "copy needs a model the model-agent downloads to its nodes"
    )
    root = _agent_root(client, path)
    label_key = naming.model_label_key(kind, name, ref.namespace)
    nodes_ready = [str(n) for n in dig(model_obj, "status", "nodesReady") or []]
    node = c.choose_node(name, nodes_ready, _nodes(client, nodes_ready), label_key, from_node)
    pvc = _claim(client, namespace, claim)
    problem = c.size_problem(pvc, _reported_size(client, node, kind, name, ref.namespace))
    if problem:
        raise InputError(
            f"claim {namespace}/{claim} is too small: {problem}",
            "create a larger claim (`kubectl ome-pvc create --size`)",
        )
    recorded = (dig(pvc, "metadata", "annotations") or {}).get(m.SUB_PATH_ANNOTATION)
    sub_path = sub_path or recorded or _default_sub_path(path, root)
    host_path = (root.node_path(path) if root else None) or path
    job_name = c.job_name(claim)
    job = c.copy_job(
        name=job_name,
        namespace=namespace,
        claim=claim,
        sub_path=sub_path,
        model=name,
        node=node,
        host_path=host_path,
        image=image,
        run_as_user=run_as_user,
        parallel=parallel,
        ttl_s=NO_WAIT_TTL_S if no_wait and not keep_job else None,
    )
    if mode is DryRun.CLIENT:
        _emit_document(job, output)
        return
    _check_no_copy_running(client, namespace, claim, job_name)
    if mode is DryRun.SERVER:
        answer = client.create(r.JOBS, job, namespace, dry_run=True)
        _emit_document(answer, output)
        return

    common.note(f"copying {ref.kind.value} {name} from {node}:{host_path} to claim {claim}"
                f" at sub-path {sub_path}")  # fmt: skip
    client.create(r.JOBS, job, namespace)
    common.on_interrupt(
        f"job/{job_name} keeps running on {node}; follow it: kubectl ome-pvc copy --status"
        f" --claim {claim} -n {namespace}"
        if keep_job
        else f"job/{job_name} was deleted; the files copied so far stay on claim {claim}: run"
        " the same command again to resume"
    )
    if no_wait:
        common.note(f"job/{job_name} created; it runs on {node}")
        common.note(f"follow it: kubectl ome-pvc copy --status --claim {claim} -n {namespace}")
        return
    try:
        progress = _follow(client, namespace, job_name, timeout)
    finally:
        if not keep_job:
            _delete_job(client, namespace, job_name)
    _record_sub_path(client, namespace, claim, sub_path, recorded)
    report = {"claim": claim, "namespace": namespace, "subPath": sub_path, "node": node,
              "source": host_path, **c.progress_report(progress)}  # fmt: skip
    if output is not None:
        _emit_document(report, output)
    else:
        common.emit(
            f"copied {progress.files} files ({printers.human_bytes(progress.bytes)}) to claim"
            f" {claim} at {sub_path}: {progress.copied} copied, {progress.replaced} replaced,"
            f" {progress.skipped} already there; manifest {v.MANIFEST}"
        )
    common.note("next:")
    common.note(f"  kubectl ome-pvc verify {claim} -n {namespace}")
    for isvc in _serving(client, namespace, name) or ["ISVC"]:
        common.note(f"  kubectl ome-pvc patch {isvc} -n {namespace} --claim {claim}")


def _serving(client: Client, namespace: str, model: str) -> list[str]:
    """The InferenceServices in the claim's namespace that name the model (for `patch`)."""
    from kubectl_omepvc.core import served_model

    names = []
    try:
        for isvc in client.list(r.INFERENCE_SERVICES, namespace):
            try:
                if served_model.model_reference(isvc)[0] == model:
                    names.append(str(isvc["metadata"]["name"]))
            except InputError:
                continue
    except errors.PluginError:
        return []  # no right to list them, or OME's CRDs absent: the generic hint then
    return sorted(names)


def _emit_document(obj: Any, output: str | None) -> None:
    """`-o json`, else YAML (what `--dry-run` prints by default, as kubectl does)."""
    common.emit(printers.to_json(obj) if output == Output.JSON.value else printers.to_yaml(obj))


# --- the checks ----------------------------------------------------------------------------------


def _agent_root(client: Client, path: str) -> agent.AgentRoot | None:
    """The agent's models root and host directory, or None (then the model's path is used)."""
    from kubectl_omepvc.api import storage as api_storage

    try:
        daemonsets = api_storage.agent_daemonsets(client, naming.AGENT_NAMESPACE)
        return agent.pick_agent_root(daemonsets, path).root
    except errors.Forbidden:
        common.note(
            f"note: cannot list DaemonSets in {naming.AGENT_NAMESPACE}: copying from {path} on "
            "the node (the model's storage.path)"
        )
    except InputError as e:
        common.note(f"note: {e.message}: copying from {path} on the node")
    return None


def _default_sub_path(path: str, root: agent.AgentRoot | None) -> str:
    """The model's path below the agent's models root, as `create --from-model` records it."""
    models_root = root.models_root if root else agent.AGENT_DEFAULT_ROOT
    if agent.within(path, models_root) and path.rstrip("/") != models_root.rstrip("/"):
        return m.model_sub_path(path, models_root)
    raise InputError(
        f"the model's path {path} is not below the model-agent's models root {models_root},"
        " and the claim records no sub-path",
        "pass --sub-path DIR (where the model goes on the claim)",
    )


def _nodes(client: Client, names: list[str]) -> dict[str, Obj]:
    found = {}
    for name in names:
        node = client.get_or_none(r.NODES, name)
        if node is not None:
            found[name] = node
    return found


def _claim(client: Client, namespace: str, claim: str) -> Obj:
    pvc = client.get_or_none(r.PVCS, claim, namespace)
    if pvc is None:
        raise InputError(
            f'claim "{claim}" not found in namespace {namespace}',
            "create it with `kubectl ome-pvc create` (--nfs-server/--nfs-path or "
            "--storage-class, --access-mode ReadWriteMany), or pass -n",
        )
    problem = c.claim_problem(pvc)
    if problem:
        raise InputError(
            f"cannot copy onto claim {namespace}/{claim}: {problem}",
            "use a Bound claim a pod can write to (`create --access-mode ReadWriteMany`; "
            "`patch` mounts it read-only anyway)",
        )
    return pvc


def _reported_size(
    client: Client, node: str, kind: ModelKind, name: str, namespace: str | None
) -> int | None:
    """The model's size in bytes as the agent reported it on `node`, if it did (while it
    downloads; OME may clear it once the model is Ready)."""
    from kubectl_omepvc.core.status import parse_agent_entry

    try:
        configmap = client.get_or_none(r.CONFIG_MAPS, node, naming.AGENT_NAMESPACE)
    except errors.PluginError:
        return None
    key = naming.model_configmap_key(kind, name, namespace)
    raw = ((configmap or {}).get("data") or {}).get(key)
    if raw is None:
        return None
    progress = parse_agent_entry(raw).progress
    return progress.total_bytes if progress else None


def _check_no_copy_running(client: Client, namespace: str, claim: str, job_name: str) -> None:
    existing = client.get_or_none(r.JOBS, job_name, namespace)
    if existing is None:
        return
    state = c.job_finished(existing)
    if state is None:
        raise InputError(
            f"a copy to claim {claim} is already running (job/{job_name})",
            f"follow it with `kubectl ome-pvc copy --status --claim {claim} -n {namespace}`",
        )
    raise InputError(
        f"job/{job_name} from an earlier copy to claim {claim} is still there ({state})",
        f"delete it: `kubectl delete job {job_name} -n {namespace}`",
    )


# --- following the Job ---------------------------------------------------------------------------


def _job_pod(client: Client, namespace: str, job_name: str) -> Obj | None:
    pods = list(client.list(r.PODS, namespace, label_selector=f"job-name={job_name}"))
    pods.sort(key=lambda p: str(dig(p, "metadata", "creationTimestamp") or ""))
    return pods[-1] if pods else None


def _read_progress(client: Client, namespace: str, pod: Obj | None) -> c.CopyProgress | None:
    """The progress the pod's log shows; None while there is no log to read."""
    from kubectl_omepvc.api import storage as api_storage

    if pod is None or dig(pod, "status", "phase") not in ("Running", "Succeeded", "Failed"):
        return None
    try:
        log = api_storage.read_pod_log(
            client, namespace, str(pod["metadata"]["name"]), c.CONTAINER_NAME
        )
    except errors.PluginError:
        return None
    return c.parse_copy_log(log)


class _Display:
    """Progress on stderr: one live line on a terminal, plain lines (not too often) otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last_text = ""
        self.last_files = -1
        self.last_at = 0.0

    def show(self, progress: c.CopyProgress) -> None:
        text = c.progress_line(progress, time.monotonic() - self.started)
        now = time.monotonic()
        if self.tty:
            if text != self.last_text:
                click.echo(f"\r\033[K{text}", err=True, nl=False)
        elif progress.files != self.last_files or now - self.last_at >= PLAIN_EVERY_S:
            click.echo(text, err=True)
            self.last_files, self.last_at = progress.files, now
        self.last_text = text

    def end(self) -> None:
        if self.tty and self.last_text:
            click.echo("", err=True)


def _follow(client: Client, namespace: str, job_name: str, timeout: float) -> c.CopyProgress:
    """Polls the Job and its pod's log until the Job ends; the final progress, or an error."""
    deadline = time.monotonic() + timeout
    display = _Display()
    scheduled = ""
    progress: c.CopyProgress | None = None
    try:
        while True:
            job = client.get_or_none(r.JOBS, job_name, namespace)
            if job is None:
                raise errors.PluginError(f"job/{job_name} was deleted before it finished")
            pod = _job_pod(client, namespace, job_name)
            node = str(dig(pod, "spec", "nodeName") or "")
            if node and not scheduled:
                scheduled = node
                common.note(f"pod {pod['metadata']['name'] if pod else '?'} runs on {node}")
            progress = _read_progress(client, namespace, pod) or progress
            if progress is not None:
                display.show(progress)
            stuck = v.hopeless(pod)
            if stuck:
                raise errors.PluginError(
                    f"the copy's pod cannot start ({stuck})", "check --image and the node"
                )
            state = c.job_finished(job)
            if state is not None:
                break
            if time.monotonic() >= deadline:
                raise errors.PluginError(
                    f"job/{job_name} did not finish within {timeout:g}s ({v.pod_state(pod)})",
                    "raise --timeout; a rerun resumes where this one stopped",
                )
            time.sleep(POLL_S)
    finally:
        display.end()
    final = _read_progress(client, namespace, pod) or progress or c.CopyProgress()
    if state == "Complete" and final.done:
        return final
    reason = final.error or (
        "the pod ended without finishing" if state == "Complete" else v.pod_state(pod)
    )
    raise errors.PluginError(
        f"the copy failed: {reason}",
        "fix that and run the same command again: it resumes, skipping what is already there",
    )


def _delete_job(client: Client, namespace: str, job_name: str) -> None:
    """The Job and its pods, now (a second Ctrl-C during this says what to delete by hand)."""
    for attempt in range(2):
        try:
            client.delete(r.JOBS, job_name, namespace, propagation="Background")
            for pod in client.list(r.PODS, namespace, label_selector=f"job-name={job_name}"):
                client.delete(r.PODS, str(pod["metadata"]["name"]), namespace)
            common.note(f"job/{job_name} and its pod deleted")
            return
        except KeyboardInterrupt:
            if attempt:
                raise errors.PluginError(
                    f"interrupted while deleting job {job_name} -n {namespace}",
                    f"delete it: `kubectl delete job {job_name} -n {namespace}`",
                ) from None


def _record_sub_path(
    client: Client, namespace: str, claim: str, sub_path: str, recorded: str | None
) -> None:
    """The sub-path on the claim, so `patch` and `verify` find the files without a flag."""
    if recorded == sub_path:
        return
    annotations = {
        m.SUB_PATH_ANNOTATION: sub_path,
        m.URI_ANNOTATION: m.pvc_uri(ModelKind.CLUSTER, namespace, claim, sub_path),
    }
    try:
        client.patch(
            r.PVCS,
            claim,
            {"metadata": {"annotations": annotations}},
            namespace=namespace,
            content_type="application/merge-patch+json",
        )
    except errors.PluginError as e:
        common.note(f"note: could not record sub-path {sub_path} on claim {claim} ({e.message})")
        return
    if recorded:
        common.note(f"note: claim {claim} recorded sub-path {recorded}; it now records {sub_path}")


# --- copy --status -------------------------------------------------------------------------------


def _status(client: Client, claim: str, output: str | None) -> None:
    namespace = client.namespace
    job_name = c.job_name(claim)
    job = client.get_or_none(r.JOBS, job_name, namespace)
    if job is None:
        raise InputError(
            f"no copy to claim {claim} in namespace {namespace} (no job/{job_name})",
            "start one with `kubectl ome-pvc copy MODEL --claim CLAIM --no-wait`",
        )
    pod = _job_pod(client, namespace, job_name)
    progress = _read_progress(client, namespace, pod)
    state = c.job_finished(job) or ("Running" if pod is not None else "Pending")
    started = dig(job, "status", "startTime")
    elapsed = _seconds_since(started)
    if output is not None:
        report = {
            "claim": claim,
            "namespace": namespace,
            "job": job_name,
            "state": state,
            "node": dig(pod, "spec", "nodeName"),
            "source": dig(job, "metadata", "annotations", c.SOURCE_PATH_ANNOTATION),
            "progress": c.progress_report(progress) if progress else None,
        }
        _emit_document(report, output)
        return
    line = c.progress_line(progress, elapsed) if progress else v.pod_state(pod)
    common.emit(f"job/{job_name} {state}: {line}")
    if progress and progress.error:
        raise errors.PluginError(f"the copy failed: {progress.error}")


def _seconds_since(stamp: Any) -> float:
    from datetime import datetime, timezone

    if not isinstance(stamp, str):
        return 0.0
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())
