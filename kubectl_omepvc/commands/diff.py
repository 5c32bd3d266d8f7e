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
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core.diff import (
    Planned,
    load_workloads,
    local_plans,
    object_diff,
    object_file_name,
    patches_json,
    plan_workload,
    unified,
)
from kubectl_omepvc.core.objects import strip_server_fields
from kubectl_omepvc.options import ConnectionOptions, Output, connection_options, output_option
from kubectl_omepvc.strategies import ORDER as STRATEGIES

EXTERNAL_DIFF = "KUBECTL_EXTERNAL_DIFF"
ERROR_EXIT = 2  # diff's own errors must not look like "differences found" (1)


Pair = tuple[str, Any, Any]  # (kubectl diff's file name, object before or None, after or None)


def plan_pairs(plans: Sequence[Planned]) -> list[Pair]:
    return [
        (
            object_file_name(p.workload),
            strip_server_fields(p.workload),
            strip_server_fields(p.after),
        )
        for p in plans
        if p.ops
    ]


def run_external(program: str, pairs: Sequence[Pair]) -> int:
    """Write each object before/after into LIVE-*/MERGED-* directories and run `program`."""
    argv = shlex.split(program)
    if not argv or shutil.which(argv[0]) is None:
        raise errors.InputError(
            f"{EXTERNAL_DIFF}={program!r}: program not found",
            f"unset {EXTERNAL_DIFF} or name a program on PATH",
        )
    live = Path(tempfile.mkdtemp(prefix="LIVE-"))
    merged = Path(tempfile.mkdtemp(prefix="MERGED-"))
    try:
        for name, before, after in pairs:
            for where, obj in ((live, before), (merged, after)):
                if obj is not None:
                    (where / name).write_text(printers.to_yaml(obj) + "\n")
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
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=None,
    help="isvc: the isvc and the objects beside it; others: each workload (default: as patch).",
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
    strategy: str | None,
    local: bool,
    filename: Any,
    pv_root: str | None,
    model_path: str | None,
    model: str | None,
    output: str | None,
) -> None:
    """Show what `patch` would change in each workload's pod template.

    With the isvc route (--strategy isvc, or where `patch` would pick it) the isvc itself
    before and after, the copy model it would create and each node label it would set.

    Exit status: 0 no differences, 1 differences, 2 or more an error (as `kubectl diff`).
    -o json prints the JSON Patches instead. KUBECTL_EXTERNAL_DIFF selects another diff
    program, run on two directories holding each workload before and after.
    """
    try:
        if local:
            if strategy == "isvc":
                raise click.UsageError("--strategy isvc needs the cluster (not --local)")
            plans = _local(isvc, claim, sub_path, filename, pv_root, model_path, model, opts)
            pairs = plan_pairs(plans)
        else:
            if isvc is None:
                raise click.UsageError("name the InferenceService (or use --local -f FILE)")
            if filename is not None or pv_root is not None or model_path is not None:
                raise click.UsageError("-f, --pv-root and --model-path go with --local")
            plans, pairs = _cluster(opts, isvc, claim, sub_path, strategy)
        changed = bool(pairs)
        if output == Output.JSON.value:
            common.emit(patches_json(plans) if plans or not pairs else pairs_json(pairs))
        elif os.environ.get(EXTERNAL_DIFF) and changed:
            # The program's verdict is the command's: 0 same, 1 different, more an error.
            code = run_external(os.environ[EXTERNAL_DIFF], pairs)
            if code not in (0, 1):
                failed = errors.PluginError(f"{os.environ[EXTERNAL_DIFF]} failed (exit {code})")
                # click declares exit_code on the class; diff passes the program's own code on.
                failed.exit_code = code if code > 1 else ERROR_EXIT  # type: ignore[misc]
                raise failed
            changed = code == 1
        elif changed:
            palette = printers.palette_for(sys.stdout)
            common.emit(unified(plans, palette) if plans else pairs_diff(pairs, palette))
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


def pairs_json(pairs: Sequence[Pair]) -> str:
    return printers.to_json([{"file": n, "before": b, "after": a} for n, b, a in pairs])


def pairs_diff(pairs: Sequence[Pair], palette: printers.Palette) -> str:
    return "\n".join(object_diff(name, b, a, palette) for name, b, a in pairs)


def _cluster(
    opts: ConnectionOptions, isvc: str, claim: str, sub_path: str | None, strategy: str | None
) -> tuple[list[Planned], list[Pair]]:
    from kubectl_omepvc.api import probe
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.strategies import NothingToDo
    from kubectl_omepvc.strategies.preflight import preflight

    client = common.connect(opts)
    caps = probe.probe(client)
    isvc_obj = w.get_isvc(client, client.namespace, isvc)
    w.refuse_serverless(client, isvc_obj)
    workloads = w.find_workloads(client, isvc_obj, caps.leader_worker_set)
    if not workloads:
        common.note(f"inferenceservice {isvc} has no Deployment or LeaderWorkerSet yet")
        return [], []
    route = strategy or _default(caps)
    try:
        target = preflight(client, isvc_obj, workloads, claim, sub_path, caps, common.note)
    except NothingToDo as done:
        common.note(done.message)
        return [], []
    if route == "isvc":
        return [], _isvc_pairs(client, target)
    plans = [
        plan_workload(wl, target.model.name, target.claim, target.sub_path, target.model.label_key)
        for wl in target.workloads
    ]
    for plan in plans:
        if not plan.ops:
            common.note(f"{w.display(plan.workload)} already serves its model from a claim")
    return plans, plan_pairs(plans)


def _default(caps: Any) -> str | None:
    """The strategy `patch` would pick, or None when it would refuse."""
    from kubectl_omepvc.strategies import Declined, select

    try:
        return select(caps).name
    except Declined:
        return None


def _isvc_pairs(client: Any, target: Any) -> list[Pair]:
    """The isvc before and after, the copy model, and each node's label (what `patch
    --strategy isvc` writes)."""
    from kubectl_omepvc.core import isvc_route
    from kubectl_omepvc.strategies import Settings
    from kubectl_omepvc.strategies import isvc as route

    planned = route.plan(client, target, Settings(), common.note)
    clean = isvc_route.for_gitops
    pairs: list[Pair] = [(object_file_name(target.isvc), clean(target.isvc), clean(planned.isvc))]
    if planned.copy is not None:
        pairs.append((object_file_name(planned.copy), None, planned.copy))
    for node, value in planned.labels.items():
        labels = {} if value is None else {planned.key: value}
        before = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": labels}}
        after = json.loads(json.dumps(before))
        after["metadata"]["labels"][planned.key] = isvc_route.READY
        pairs.append((object_file_name(before), before, after))
    return pairs
