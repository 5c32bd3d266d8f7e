"""`kubectl ome-pvc diff <isvc> --claim NAME`: what `patch` changes in each pod template.

kubectl's contract: exit 0 when nothing would change, 1 when something would, 2 or more on an
error. `KUBECTL_EXTERNAL_DIFF` names another program, run on two directories holding each
workload before and after, as `kubectl diff` does. `--local -f FILE` works on workload
manifests without a cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import diff as core_diff
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import naming, transform
from kubectl_omepvc.options import ConnectionOptions, Output, connection_options, output_option

Obj = dict[str, Any]
EXTERNAL_DIFF = "KUBECTL_EXTERNAL_DIFF"
WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")
ERROR_EXIT = 2  # diff's own errors must not look like "differences found" (1)


@dataclasses.dataclass(frozen=True)
class Planned:
    """One workload and the JSON Patch that switches it (empty when already switched)."""

    workload: Obj
    ops: list[jp.Operation]

    @property
    def after(self) -> Obj:
        """The workload as the server stores it: an emptied nodeSelector is dropped."""
        result: Obj = jp.apply_patch(self.workload, self.ops)
        for path in jp.pod_template_paths(result):
            spec = jp.resolve(result, path).get("spec") or {}
            if spec.get("nodeSelector") == {}:
                del spec["nodeSelector"]
        return result


# --- local mode (no cluster) -------------------------------------------------------------------


def load_workloads(text: str, source: str) -> list[Obj]:
    """Deployments and LeaderWorkerSets from YAML/JSON documents (a `List` is unpacked)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.InputError(f"{source} is not valid YAML: {exc}") from None
    found: list[Obj] = []
    for doc in documents:
        if not isinstance(doc, dict):
            raise errors.InputError(f"{source} holds a document that is not an object")
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
        found += [i for i in items or [] if isinstance(i, dict) and i.get("kind") in WORKLOAD_KINDS]
    if not found:
        raise errors.InputError(
            f"{source} holds no Deployment or LeaderWorkerSet",
            "pass the manifest of an OME workload (`kubectl get deploy NAME -o yaml`)",
        )
    return found


def model_name_of(workload: Mapping[str, Any], flag: str | None) -> str:
    from kubectl_omepvc.strategies import workload_model_name

    name = flag or workload_model_name(workload)
    if not name:
        raise errors.InputError(
            f"{jp.workload_ref(workload)} does not say which model it serves"
            " (no ome.io/base-model-name annotation)",
            "pass --model NAME",
        )
    return name


def label_key_of(workload: Mapping[str, Any], model: str, namespace: str) -> str:
    """The model's node label key: whichever of OME's two forms the pod templates select on."""
    candidates = [
        naming.cluster_model_label_key(model),
        naming.namespaced_model_label_key(namespace, model),
    ]
    for path in jp.pod_template_paths(workload):
        selector = (jp.resolve(workload, path).get("spec") or {}).get("nodeSelector") or {}
        for key in candidates:
            if key in selector:
                return key
    return candidates[0]


def model_host_path(workload: Mapping[str, Any], model: str) -> str:
    for path in jp.pod_template_paths(workload):
        for volume in (jp.resolve(workload, path).get("spec") or {}).get("volumes") or []:
            if volume.get("name") == model and "hostPath" in volume:
                return str(volume["hostPath"].get("path", ""))
    raise errors.InputError(
        f"{jp.workload_ref(workload)} has no hostPath volume named {model}",
        "pass --sub-path, or --model-path with --pv-root",
    )


def local_plans(
    workloads: Sequence[Obj],
    claim: str,
    sub_path: str | None,
    pv_root: str | None,
    model_path: str | None,
    model: str | None,
    namespace: str,
) -> list[Planned]:
    """The patches for workloads read from a file: flags replace what the cluster would say."""
    if sub_path is None and pv_root is None:
        raise errors.InputError(
            "--local needs to know where the model is on the claim",
            "pass --sub-path DIR, or --pv-root DIR (with --model-path when the workload's"
            " hostPath is not the model's path)",
        )
    plans = []
    for workload in workloads:
        name = model_name_of(workload, model)
        ns = str((workload.get("metadata") or {}).get("namespace") or namespace)
        if sub_path is not None:
            sub = transform.clean_sub_path(sub_path)
        else:
            assert pv_root is not None
            sub = transform.sub_path_for(model_path or model_host_path(workload, name), pv_root)
        key = label_key_of(workload, name, ns)
        plans.append(_plan(workload, name, claim, sub, key))
    return plans


def _plan(workload: Obj, model: str, claim: str, sub_path: str, label_key: str) -> Planned:
    try:
        ops = jp.workload_patch(
            workload, jp.pod_template_paths(workload), model, claim, sub_path, label_key
        )
    except transform.AlreadyPatched:
        ops = []
    return Planned(workload, ops)


# --- rendering -----------------------------------------------------------------------------------


def template_name(workload: Mapping[str, Any], path: str) -> str:
    if path == jp.LWS_LEADER_TEMPLATE:
        return f"{jp.workload_ref(workload)} leaderTemplate"
    if path == jp.LWS_WORKER_TEMPLATE:
        return f"{jp.workload_ref(workload)} workerTemplate"
    return jp.workload_ref(workload)


def unified(plans: Sequence[Planned], palette: printers.Palette) -> str:
    """Each changed pod template as a unified YAML diff, in workload order."""
    parts = []
    for plan in plans:
        if not plan.ops:
            continue
        after = plan.after
        for path in jp.pod_template_paths(plan.workload):
            text = core_diff.template_diff(
                template_name(plan.workload, path),
                jp.resolve(plan.workload, path),
                jp.resolve(after, path),
                color=palette,
            )
            if text:
                parts.append(text)
    return "\n".join(parts)


def patches_json(plans: Sequence[Planned]) -> str:
    return printers.to_json(
        [
            {
                "apiVersion": p.workload.get("apiVersion"),
                "kind": p.workload.get("kind"),
                "namespace": (p.workload.get("metadata") or {}).get("namespace"),
                "name": (p.workload.get("metadata") or {}).get("name"),
                "patch": p.ops,
            }
            for p in plans
            if p.ops
        ]
    )


def object_file_name(obj: Mapping[str, Any]) -> str:
    """kubectl diff's name for an object's file: `apps.v1.Deployment.<ns>.<name>`."""
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    meta = obj.get("metadata") or {}
    parts = [group, version] if group else [version]
    parts += [str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name"))]
    return ".".join(p for p in parts if p)


def _clean(obj: Mapping[str, Any]) -> Obj:
    out: Obj = json.loads(json.dumps(obj))
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


def run_external(program: str, plans: Sequence[Planned]) -> int:
    """Write each workload before/after into LIVE-*/MERGED-* directories and run `program`."""
    argv = shlex.split(program)
    if not argv or shutil.which(argv[0]) is None:
        raise errors.InputError(
            f"{EXTERNAL_DIFF}={program!r}: program not found",
            f"unset {EXTERNAL_DIFF} or name a program on PATH",
        )
    live = Path(tempfile.mkdtemp(prefix="LIVE-"))
    merged = Path(tempfile.mkdtemp(prefix="MERGED-"))
    try:
        for plan in plans:
            if not plan.ops:
                continue
            name = object_file_name(plan.workload)
            (live / name).write_text(printers.to_yaml(_clean(plan.workload)) + "\n")
            (merged / name).write_text(printers.to_yaml(_clean(plan.after)) + "\n")
        done = subprocess.run([*argv, str(live), str(merged)], capture_output=True, check=False)
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(merged, ignore_errors=True)
    if done.stdout:
        click.echo(done.stdout.decode(errors="replace"), nl=False)
    if done.stderr:
        click.echo(done.stderr.decode(errors="replace"), nl=False, err=True)
    return done.returncode


# --- the command ---------------------------------------------------------------------------------


@click.command("diff")
@click.argument("isvc", required=False)
@click.option("--claim", required=True, help="The PersistentVolumeClaim to serve the model from.")
@click.option(
    "--sub-path",
    default=None,
    help="The model's directory relative to the claim's root (derived from local/NFS volumes).",
)
@click.option("--local", is_flag=True, help="Diff the workloads in -f FILE; no cluster needed.")
@click.option(
    "-f", "--filename", type=click.File("r"), default=None, help="Workload manifest (- for stdin)."
)
@click.option("--pv-root", default=None, help="--local: the volume's root directory on the node.")
@click.option(
    "--model-path",
    default=None,
    help="--local: the model's directory on the node (default: the workload's hostPath).",
)
@click.option(
    "--model", "model", default=None, help="--local: the model name (default: from the workload)."
)
@output_option(Output.JSON)
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    isvc: str | None,
    claim: str,
    sub_path: str | None,
    local: bool,
    filename: Any,
    pv_root: str | None,
    model_path: str | None,
    model: str | None,
    output: str | None,
) -> None:
    """Show what `patch` would change in each workload's pod template.

    Exit status: 0 no differences, 1 differences, 2 or more an error (as `kubectl diff`).
    -o json prints the JSON Patches instead. KUBECTL_EXTERNAL_DIFF selects another diff
    program, run on two directories holding each workload before and after.
    """
    try:
        if local:
            plans = _local(isvc, claim, sub_path, filename, pv_root, model_path, model, opts)
        else:
            if isvc is None:
                raise click.UsageError("name the InferenceService (or use --local -f FILE)")
            if filename is not None or pv_root is not None or model_path is not None:
                raise click.UsageError("-f, --pv-root and --model-path go with --local")
            plans = _cluster(opts, isvc, claim, sub_path)
        changed = any(p.ops for p in plans)
        if output == Output.JSON.value:
            common.emit(patches_json(plans))
        elif os.environ.get(EXTERNAL_DIFF) and changed:
            # The program's verdict is the command's: 0 same, 1 different, more an error.
            code = run_external(os.environ[EXTERNAL_DIFF], plans)
            if code not in (0, 1):
                failed = errors.PluginError(f"{os.environ[EXTERNAL_DIFF]} failed (exit {code})")
                failed.exit_code = code if code > 1 else ERROR_EXIT
                raise failed
            changed = code == 1
        elif changed:
            common.emit(unified(plans, printers.palette_for(sys.stdout)))
    except errors.PluginError as exc:
        exc.exit_code = max(exc.exit_code, ERROR_EXIT)
        raise
    if changed:
        raise errors.DiffFound()


def _local(
    isvc: str | None,
    claim: str,
    sub_path: str | None,
    filename: Any,
    pv_root: str | None,
    model_path: str | None,
    model: str | None,
    opts: ConnectionOptions,
) -> list[Planned]:
    if filename is None:
        raise click.UsageError("--local needs -f FILE (or -f - for stdin)")
    source = getattr(filename, "name", "the file")
    workloads = load_workloads(filename.read(), source)
    if isvc is not None:
        from kubectl_omepvc.api.workloads import ISVC_LABEL

        workloads = [
            wl
            for wl in workloads
            if ((wl.get("metadata") or {}).get("labels") or {}).get(ISVC_LABEL) == isvc
        ]
        if not workloads:
            raise errors.InputError(f"{source} holds no workload of inferenceservice {isvc}")
    namespace = opts.namespace or "default"
    plans = local_plans(workloads, claim, sub_path, pv_root, model_path, model, namespace)
    for plan in plans:
        if not plan.ops:
            common.note(f"{jp.workload_ref(plan.workload)} already serves its model from a claim")
    return plans


def _cluster(opts: ConnectionOptions, isvc: str, claim: str, sub_path: str | None) -> list[Planned]:
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.commands.patch import preflight
    from kubectl_omepvc.core.capabilities import Capabilities
    from kubectl_omepvc.strategies import NothingToDo

    client = common.connect(opts)
    isvc_obj = w.get_isvc(client, client.namespace, isvc)
    w.refuse_serverless(client, isvc_obj)
    workloads = w.find_workloads(client, isvc_obj)
    if not workloads:
        common.note(f"inferenceservice {isvc} has no Deployment or LeaderWorkerSet yet")
        return []
    try:
        target = preflight(
            client, isvc_obj, workloads, claim, sub_path, Capabilities(), common.note
        )
    except NothingToDo as done:
        common.note(done.message)
        return []
    plans = [
        _plan(wl, target.model.name, target.claim, target.sub_path, target.model.label_key)
        for wl in target.workloads
    ]
    for plan in plans:
        if not plan.ops:
            common.note(f"{w.display(plan.workload)} already serves its model from a claim")
    return plans
