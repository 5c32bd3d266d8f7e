"""`kubectl ome-pvc diff <isvc> --claim NAME`: what `patch` changes in each pod template.

kubectl's contract: exit 0 when nothing would change, 1 when something would, 2 or more on an
error. `KUBECTL_EXTERNAL_DIFF` names another program, run on two directories holding each
workload before and after, as `kubectl diff` does. `--local -f FILE` works on workload
manifests without a cluster.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.commands.patch import switch_options
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core.diff import (
    Extra,
    Planned,
    load_workloads,
    local_plans,
    object_file_name,
    unified,
)
from kubectl_omepvc.core.objects import strip_server_fields
from kubectl_omepvc.options import ConnectionOptions, Output, connection_options, output_option

EXTERNAL_DIFF = "KUBECTL_EXTERNAL_DIFF"
ERROR_EXIT = 2  # diff's own errors must not look like "differences found" (1)


def patches_json(plans: Sequence[Planned], extras: Sequence[Extra] = ()) -> str:
    """`-o json`: each object patch creates or replaces (`object`), then each workload's JSON
    Patch (`patch`), as patch sends them."""

    def head(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        return {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
        }

    items = [
        {**head(e.after), "action": "create" if e.before is None else "patch", "object": e.after}
        for e in extras
    ]
    items += [{**head(p.workload), "action": "patch", "patch": p.ops} for p in plans if p.ops]
    return printers.to_json(items)


def run_external(program: str, plans: Sequence[Planned], extras: Sequence[Extra] = ()) -> int:
    """Write each object before/after into LIVE-*/MERGED-* directories and run `program`
    (an object patch creates is only in MERGED, as `kubectl diff` shows a new object)."""
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
            (live / name).write_text(printers.to_yaml(strip_server_fields(plan.workload)) + "\n")
            (merged / name).write_text(printers.to_yaml(strip_server_fields(plan.after)) + "\n")
        for extra in extras:
            name = object_file_name(extra.after)
            if extra.before is not None:
                (live / name).write_text(printers.to_yaml(strip_server_fields(extra.before)) + "\n")
            (merged / name).write_text(printers.to_yaml(extra.after) + "\n")
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
@switch_options
@click.option(
    "--model-name",
    default=None,
    help="native: name of the pvc:// model patch would create (default: <model>-pvc).",
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
@output_option(Output.JSON, default="a unified diff of each pod template")
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    isvc: str | None,
    claim: str,
    strategy: str | None,
    sub_path: str | None,
    model_name: str | None,
    local: bool,
    filename: Any,
    pv_root: str | None,
    model_path: str | None,
    model: str | None,
    output: str | None,
) -> None:
    """Show what `patch` would do: the objects it creates, each pod template it changes.

    The strategy is the one patch would pick (or --strategy), and so are its writes: the
    MutatingAdmissionPolicy and binding of `policy`, the pvc:// model and isvc change of
    `native`, the workloads' JSON Patches with their records.

    With the isvc route (--strategy isvc, or where `patch` would pick it) the isvc itself
    before and after, the copy model it would create and each node label it would set.

    Exit status: 0 no differences, 1 differences, 2 or more an error (as `kubectl diff`).
    -o json prints the objects and JSON Patches instead. KUBECTL_EXTERNAL_DIFF selects another
    diff program, run on two directories holding each object before and after.
    """
    extras: list[Extra] = []
    try:
        if local:
            if strategy == "isvc":
                raise click.UsageError("--strategy isvc needs the cluster (not --local)")
            plans = _local(
                isvc, claim, sub_path, filename, pv_root, model_path, model, opts, strategy
            )
        else:
            if isvc is None:
                raise click.UsageError("name the InferenceService (or use --local -f FILE)")
            if filename is not None or pv_root is not None or model_path is not None:
                raise click.UsageError("-f, --pv-root and --model-path go with --local")
            plans, extras = _cluster(opts, isvc, claim, sub_path, strategy, model_name)
        changed = any(p.ops for p in plans) or bool(extras)
        if output == Output.JSON.value:
            common.emit(patches_json(plans, extras))
        elif os.environ.get(EXTERNAL_DIFF) and changed:
            # The program's verdict is the command's: 0 same, 1 different, more an error.
            code = run_external(os.environ[EXTERNAL_DIFF], plans, extras)
            if code not in (0, 1):
                failed = errors.PluginError(f"{os.environ[EXTERNAL_DIFF]} failed (exit {code})")
                # click declares exit_code on the class; diff passes the program's own code on.
                failed.exit_code = code if code > 1 else ERROR_EXIT  # type: ignore[misc]
                raise failed
            changed = code == 1
        elif changed:
            common.emit(unified(plans, printers.palette_for(sys.stdout), extras))
    except errors.PluginError as exc:
        exc.exit_code = max(exc.exit_code, ERROR_EXIT)  # type: ignore[misc]
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
    strategy: str | None,
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
    if strategy == "native":
        raise click.UsageError("--local shows workload patches: native changes the isvc instead")
    if strategy is None:
        common.note(
            "the records say strategy policy, what patch picks on released OME (no cluster is"
            " asked here); pass --strategy deployment for the other"
        )
    plans = local_plans(
        workloads, claim, sub_path, pv_root, model_path, model, namespace, strategy or "policy"
    )
    for plan in plans:
        if not plan.ops:
            common.note(f"{jp.workload_ref(plan.workload)} already serves its model from a claim")
    return plans


def _cluster(
    opts: ConnectionOptions,
    isvc: str,
    claim: str,
    sub_path: str | None,
    strategy: str | None,
    model_name: str | None,
) -> tuple[list[Planned], list[Extra]]:
    """What `patch` would write: its own checks and strategy, run as a client dry run."""
    from kubectl_omepvc.api import probe
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.commands.patch import check_switched
    from kubectl_omepvc.options import DryRun
    from kubectl_omepvc.strategies import (
        Job,
        NothingToDo,
        Settings,
        current_patch,
        select,
        workload_ops,
    )
    from kubectl_omepvc.strategies.preflight import preflight

    client = common.connect(opts)
    caps = probe.probe(client)
    isvc_obj = w.get_isvc(client, client.namespace, isvc)
    w.refuse_serverless(client, isvc_obj)
    workloads = w.find_workloads(client, isvc_obj, caps.leader_worker_set)
    if not workloads:
        common.note(f"inferenceservice {isvc} has no Deployment or LeaderWorkerSet yet")
        return [], []
    chosen = select(caps, strategy)
    try:
        applied = current_patch(client, isvc_obj, tuple(workloads), caps)
        check_switched(applied, chosen.name, isvc, client.namespace, claim)
        target = preflight(client, isvc_obj, workloads, claim, sub_path, caps, common.note)
        if chosen.name == "isvc":
            common.note(f"strategy {chosen.name}: {chosen.summary}")
            return [], _isvc_extras(client, target)
        settings = Settings(dry_run=DryRun.CLIENT, model_name=model_name)
        outcome = chosen.run(Job(client, target, settings, common.note))
    except NothingToDo as done:
        common.note(done.message)
        return [], []
    common.note(f"strategy {chosen.name}: {chosen.summary}")
    plans, extras = [], []
    by_ref = {(wl["kind"], wl["metadata"]["name"]): wl for wl in target.workloads}
    for obj in outcome.objects:
        workload = by_ref.get((obj.get("kind"), (obj.get("metadata") or {}).get("name")))
        if workload is not None:
            plans.append(Planned(workload, workload_ops(target, workload, chosen.name)))
        elif obj.get("kind") == "InferenceService":
            extras.append(Extra(strip_server_fields(isvc_obj), obj))
        else:
            extras.append(Extra(None, obj))
    for workload in target.workloads:
        if chosen.name != "native" and all(p.workload is not workload for p in plans):
            common.note(f"{w.display(workload)} already serves its model from a claim")
    return plans, extras


def _isvc_extras(client: Any, target: Any) -> list[Extra]:
    """The isvc before and after, the copy model, and each node's label (what `patch
    --strategy isvc` writes)."""
    from kubectl_omepvc.core import isvc_route
    from kubectl_omepvc.strategies import Settings
    from kubectl_omepvc.strategies import isvc as route

    planned = route.plan(client, target, Settings(), common.note)
    clean = isvc_route.for_gitops
    extras = [Extra(clean(target.isvc), clean(planned.isvc))]
    if planned.copy is not None:
        extras.append(Extra(None, planned.copy))
    for node, value in planned.labels.items():
        labels = {} if value is None else {planned.key: value}
        before = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels}}
        after = json.loads(json.dumps(before))
        after["metadata"]["labels"][planned.key] = isvc_route.READY
        extras.append(Extra(before, after))
    return extras
