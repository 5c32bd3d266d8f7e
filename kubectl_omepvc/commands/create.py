"""`kubectl ome-pvc create CLAIM`: model-weight storage as a PV/PVC pair, checked before use.

Everything is checked before the first write: flags, names, sizes and paths here; then against
the cluster the namespace, the nodes, the model and its agent, the StorageClass, what already
exists, and finally a server-side dry run of every object (admission, quota, RBAC). Only then
are the objects applied, in order, and if one fails the objects this run created are deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc import errors
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import agent, naming, selectors, sources
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import storage_plan as sp
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import render_stream, strip_server_fields
from kubectl_omepvc.core.sources import Source
from kubectl_omepvc.core.storage_plan import Plan, Step, kind_name
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
    from kubectl_omepvc.api.storage import Applied

Obj = dict[str, Any]

DELETE_TIMEOUT = 60.0  # seconds to wait for a replaced claim and volume to go


# --- the command ----------------------------------------------------------------------------------


@click.command("create")
@click.argument("claim")
@click.option(
    "--local-path", metavar="PATH", help="Node directory that holds the models (local PV)."
)
@click.option(
    "--node", "nodes", multiple=True, metavar="NODE", help="A node that has --local-path (repeat)."
)
@click.option(
    "--from-model",
    metavar="[KIND/]NAME",
    help="Derive root, nodes and sub-path from this model: NAME (ClusterBaseModel) or "
    "basemodel/NAME (a BaseModel in -n).",
)
@click.option("--nfs-server", metavar="HOST", help="NFS server for an nfs PV.")
@click.option("--nfs-path", metavar="PATH", help="Exported directory on --nfs-server.")
@click.option(
    "--storage-class", metavar="NAME", help="Provision the claim from this StorageClass (no PV)."
)
@click.option(
    "--size",
    metavar="QUANTITY",
    help="Size, as a Kubernetes quantity (100Gi). Required: OME records no byte size for a model.",
)
@click.option(
    "--access-mode",
    type=click.Choice([mode.value for mode in m.AccessMode]),
    default=m.AccessMode.READ_ONLY_MANY.value,
    show_default=True,
)
@click.option(
    "--sub-path",
    metavar="PATH",
    help="The model's directory below the volume root (for the pvc:// URI and `patch`).",
)
@click.option(
    "--pv-name", metavar="NAME", help="Name for the PV (default: from namespace and claim)."
)
@click.option(
    "--no-storage-class",
    is_flag=True,
    help=f"Leave a local PV classless (default: class {m.DEFAULT_LOCAL_STORAGE_CLASS}, "
    "created if absent).",
)
@click.option(
    "--register-model",
    metavar="[KIND/]NAME",
    help="Also create a pvc:// model for the claim (OME built from main): NAME, a "
    "ClusterBaseModel with pvc://<ns>:<claim>/<sub-path>, or basemodel/NAME, a BaseModel in the "
    "claim's namespace with pvc://<claim>/<sub-path>.",
)
@click.option(
    "--force-conflicts",
    is_flag=True,
    help="Replace objects that exist with another spec (an unused claim and its PV are "
    "deleted and created again; the files stay).",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait for the claim to be Bound."
)
@click.option(
    "--timeout",
    type=DURATION,
    default="2m",
    show_default=True,
    metavar="DURATION",
    help='How long to wait for Bound ("0": do not wait).',
)
@dry_run_option
@output_option(Output.YAML, Output.JSON, Output.NAME)
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    claim: str,
    local_path: str | None,
    nodes: tuple[str, ...],
    from_model: str | None,
    nfs_server: str | None,
    nfs_path: str | None,
    storage_class: str | None,
    size: str | None,
    access_mode: str,
    sub_path: str | None,
    pv_name: str | None,
    no_storage_class: bool,
    register_model: str | None,
    force_conflicts: bool,
    wait: bool,
    timeout: float | None,
    dry_run: str,
    output: str | None,
) -> None:
    """Create a PV and a PVC for model weights (or a claim from a StorageClass).

    \b
    Storage sources, exactly one:
      --local-path PATH --node NODE...   a local PV pinned to those nodes
      --from-model [basemodel/]NAME      a local PV from an OME model: its nodesReady, the
                                         model-agent's host directory as root (or
                                         --local-path), storage.path as the sub-path
      --nfs-server HOST --nfs-path PATH  an NFS PV
      --storage-class NAME               a claim provisioned from an existing class

    The PV is pre-bound to the claim, ReadOnlyMany and Retain by default. Re-running the same
    command changes nothing; an object that exists with another spec is shown and left alone
    unless --force-conflicts. --register-model also creates a pvc:// model (no storage.path):
    a ClusterBaseModel's URI names the claim's namespace (pvc://serving:llama-weights/meta/...),
    a BaseModel's does not (pvc://llama-weights/meta/...); only OME built from main serves them.

    \b
    Examples:
      kubectl ome-pvc create llama-weights -n serving --local-path /raid/models \\
          --node gpu-node-1 --size 100Gi --sub-path meta/llama-3-2-1b-instruct
      kubectl ome-pvc create llama-weights -n serving --from-model llama-3-2-1b-instruct \\
          --size 100Gi --register-model llama-3-2-1b-instruct-pvc
      kubectl ome-pvc create qwen-weights -n team-a --storage-class nfs --size 40Gi \\
          --sub-path qwen/qwen3-8b --register-model basemodel/qwen3-8b-pvc
    """
    try:
        source = sources.choose_source(
            local_path=local_path,
            nodes=nodes,
            from_model=from_model,
            nfs_server=nfs_server,
            nfs_path=nfs_path,
            storage_class=storage_class,
            no_storage_class=no_storage_class,
            sub_path=sub_path,
        )
        register = (
            sources.parse_model_ref(register_model, "--register-model") if register_model else None
        )
        origin_ref = sources.parse_model_ref(from_model, "--from-model") if from_model else None
    except sources.FlagError as exc:
        raise click.UsageError(str(exc)) from None
    if size is None:
        if source == Source.FROM_MODEL:
            raise click.UsageError(
                "--from-model needs --size: OME records no size in bytes for a model "
                "(spec.modelParameterSize counts parameters); give the size of the model "
                "directory, rounded up (e.g. from `du -sh` on the node), such as 20Gi"
            )
        raise click.UsageError("--size is required (a Kubernetes quantity such as 100Gi)")
    if register is not None and sub_path is None and origin_ref is None:
        raise click.UsageError("--register-model needs --sub-path (or --from-model)")
    mode = DryRun(dry_run)
    access = m.AccessMode(access_mode)
    if pv_name is not None:
        m.validate_dns_subdomain(pv_name, "PV name")

    client: Client | None = None
    if mode is DryRun.CLIENT and origin_ref is None:
        namespace = _offline_namespace(opts)
    else:
        client = common.connect(opts)
        namespace = client.namespace

    local_source: m.StorageSource
    origin: Obj | None = None
    model_ref: m.ModelRef | None = None
    if source == Source.FROM_MODEL:
        assert client is not None and origin_ref is not None
        kind, name = origin_ref
        model_ref = m.ModelRef(kind, name, namespace if kind is ModelKind.NAMESPACED else None)
        m.validate_dns_subdomain(name, "model name")
        local_source, sub_path, origin = _from_model(client, model_ref, local_path, nodes)
    elif source == Source.LOCAL:
        assert local_path is not None
        local_source = m.LocalSource(local_path, tuple(nodes))
    elif source == Source.NFS:
        assert nfs_server is not None and nfs_path is not None
        local_source = m.NfsSource(nfs_server, nfs_path)
    else:
        assert storage_class is not None
        local_source = m.ClassSource(storage_class)

    req = m.ClaimRequest(
        claim=claim,
        namespace=namespace,
        size=size,
        source=local_source,
        access_mode=access,
        storage_class=None if no_storage_class else m.DEFAULT_LOCAL_STORAGE_CLASS,
        model=model_ref,
        sub_path=sub_path,
    )
    m.validate_claim_request(req)
    if register is not None:
        m.validate_dns_subdomain(register[1], "model name")
    try:
        steps = sp.build_steps(req, pv_name, register, origin)
    except sources.FlagError as exc:
        raise click.UsageError(str(exc)) from None
    plan = Plan(req, pv_name, steps, register, origin)

    if mode is DryRun.CLIENT:
        _print_client_dry_run(plan, output)
        return
    assert client is not None
    _run(client, plan, mode, output, force_conflicts, wait and bool(timeout), timeout or 0.0)


def _offline_namespace(opts: ConnectionOptions) -> str:
    """-n, else the kubeconfig context's namespace, else `default`: no server is contacted."""
    if opts.namespace:
        return opts.namespace
    from kubectl_omepvc.api import kubeconfig

    try:
        return kubeconfig.resolve(opts).namespace
    except errors.ConfigError:
        return "default"


def _from_model(
    client: Client, ref: m.ModelRef, local_path: str | None, nodes: Sequence[str]
) -> tuple[m.LocalSource, str, Obj]:
    """Root, nodes and sub-path of a local PV for the files an OME model was downloaded to."""
    resource = r.model_resource(ref.kind)
    model = client.get_or_none(resource, ref.name, ref.namespace)
    where = f" in namespace {ref.namespace}" if ref.namespace else ""
    if model is None:
        hint = f"list them with `kubectl get {resource.plural}`"
        if ref.kind is ModelKind.CLUSTER:
            hint += "; a BaseModel is basemodel/NAME"
        raise InputError(f"{ref.kind.value} {ref.name!r} not found{where}", hint)
    storage = (model.get("spec") or {}).get("storage") or {}
    path = storage.get("path")
    if not path:
        raise InputError(
            f"{ref.kind.value} {ref.name} has no storage.path (storageUri "
            f"{storage.get('storageUri') or '-'})",
            "--from-model needs a model the agent downloads to a node directory; "
            "use --local-path/--node or --nfs-server for other models",
        )
    m.validate_absolute_path(path, f"{ref.kind.value} {ref.name} storage.path")
    chosen = tuple(nodes) or tuple((model.get("status") or {}).get("nodesReady") or ())
    if not chosen:
        raise InputError(
            f"{ref.kind.value} {ref.name} is Ready on no node (status.nodesReady is empty)",
            "wait until the model-agent reports it Ready, or name the nodes with --node",
        )
    if local_path is not None:
        m.validate_absolute_path(local_path, "local path")
        return m.LocalSource(local_path, chosen), m.model_sub_path(path, local_path), model
    from kubectl_omepvc.api import storage as api_storage

    try:
        daemonsets = api_storage.agent_daemonsets(client, naming.AGENT_NAMESPACE)
    except errors.Forbidden:
        raise InputError(
            f"cannot list DaemonSets in namespace {naming.AGENT_NAMESPACE} (forbidden), so the "
            "model-agent's host directory is unknown",
            "pass --local-path with the node directory that holds the models",
        ) from None
    chosen_agent = agent.pick_agent_root(daemonsets, path)
    root = chosen_agent.root
    sub_path = m.model_sub_path(path, root.models_root)
    if not root.reaches_node(path):
        common.note(
            f"note: the model-agent mounts host directory {root.host_path} at "
            f"{root.mount_path}, so the files are at {root.host_root}/{sub_path} on the "
            f"node, not at {path}: the volume uses {root.host_root}"
        )
    return m.LocalSource(root.host_root, chosen), sub_path, model


def _print_client_dry_run(plan: Plan, output: str | None) -> None:
    objects = [s.obj for s in plan.steps]
    if output == Output.NAME.value:
        common.emit("\n".join(s.label for s in plan.steps))
    else:
        common.emit(render_stream(objects, output or Output.YAML.value))
    if plan.step(r.STORAGE_CLASSES) is not None:
        common.note(
            f"note: storageclass/{plan.request.storage_class} is created only if it does not exist"
        )
    _print_uri(plan, to_stderr=True)


def _print_uri(plan: Plan, to_stderr: bool) -> None:
    req = plan.request
    say = common.note if to_stderr else common.emit
    if req.sub_path is None:
        say(
            f"Claim: {req.namespace}/{req.claim} (no sub-path recorded: pass --sub-path to "
            "get a pvc:// URI and let `patch` find the model's directory)"
        )
        return
    if plan.register is not None:
        kind = plan.register[0]
        say(f"URI: {m.pvc_uri(kind, req.namespace, req.claim, req.sub_path)} ({kind.value})")
    else:
        for kind in (ModelKind.NAMESPACED, ModelKind.CLUSTER):
            where = f" in namespace {req.namespace}" if kind is ModelKind.NAMESPACED else ""
            say(
                f"URI: {m.pvc_uri(kind, req.namespace, req.claim, req.sub_path)}"
                f" (for a {kind.value}{where})"
            )
    say(f"Sub-path: {req.sub_path} (the subPath `kubectl ome-pvc patch` mounts)")


# --- against the cluster --------------------------------------------------------------------------


def _run(
    client: Client,
    plan: Plan,
    mode: DryRun,
    output: str | None,
    force: bool,
    wait: bool,
    timeout: float,
) -> None:
    from kubectl_omepvc.api import storage as api_storage

    req = plan.request
    server_dry_run = mode is DryRun.SERVER
    _check_namespace(client, req.namespace)
    storage_class = None
    if isinstance(req.source, m.LocalSource):
        _check_nodes(client, req.source.nodes)
    elif isinstance(req.source, m.ClassSource):
        storage_class = _check_storage_class(client, req.source.storage_class, req.access_mode)
    native_pvc = _check_model_api(client, plan) if plan.register else None

    _read_existing(client, plan)
    recreate = _check_conflicts(client, plan, force)

    if recreate and not server_dry_run:
        _delete_for_recreate(client, plan, recreate)
    elif recreate:
        common.note(
            f"note: {' and '.join(s.label for s in recreate)} would be deleted and created "
            "again, which a dry run cannot check"
        )
    rebind = sp.released_volume(plan)

    # Every object through admission, quota and RBAC before anything is written.
    preview = [
        api_storage.apply(client, s.ref, s.obj, before=s.before, dry_run=True, force=force)
        for s in plan.steps
        if not (server_dry_run and s in recreate)
    ]
    results = preview if server_dry_run else _apply_all(client, plan, force, rebind)

    suffix = " (server dry run)" if server_dry_run else ""
    bound: Obj | None = None
    if output is None:
        replaced = {s.label for s in recreate}
        for result in results:
            label = f"{kind_name(result.ref)}/{result.name}"
            action = "replaced" if label in replaced else result.action
            common.emit(f"{label} {action}{suffix}")
        if server_dry_run:
            for step in recreate:
                common.emit(f"{step.label} replaced{suffix}")
    for note in plan.notes:
        common.note(note)
    _print_uri(plan, to_stderr=output is not None)
    if native_pvc is False:
        common.note(
            "note: this cluster runs released OME (no native pvc:// support): a pvc:// model "
            "stays In_Transit; serve it with `kubectl ome-pvc patch`"
        )

    try:
        if not server_dry_run:
            applied_claim = next(x.after for x in results if x.ref == r.PVCS)
            bound = _wait_for_claim(
                client, plan, applied_claim, storage_class, wait, timeout, output is None
            )
    finally:  # the objects exist even when the claim did not bind in time: print them
        if output == Output.NAME.value:
            common.emit("\n".join(f"{kind_name(x.ref)}/{x.name}" for x in results))
        elif output is not None:
            objects = [bound if bound and x.ref == r.PVCS else x.after for x in results]
            common.emit(render_stream([strip_server_fields(o) for o in objects], output))


def _check_namespace(client: Client, namespace: str) -> None:
    try:
        found = client.get_or_none(r.NAMESPACES, namespace)
    except errors.Forbidden:
        common.note(f"warning: cannot read namespace {namespace} (forbidden): not checking it")
        return
    if found is None:
        raise InputError(
            f'namespace "{namespace}" does not exist',
            f"create it with `kubectl create namespace {namespace}`, or pass -n",
        )


def _check_nodes(client: Client, nodes: Sequence[str]) -> None:
    for name in sorted(set(nodes)):
        try:
            node = client.get_or_none(r.NODES, name)
        except errors.Forbidden:
            common.note("warning: cannot read nodes (forbidden): not checking that they exist")
            return
        if node is None:
            raise InputError(
                f'node "{name}" does not exist',
                "list nodes with `kubectl get nodes`; a volume pinned to a missing node "
                "never reaches a pod",
            )
        if not selectors.node_ready(node):
            raise InputError(
                f'node "{name}" is not Ready',
                "pick Ready nodes (`kubectl get nodes`), or wait until it is back",
            )


def _check_storage_class(client: Client, name: str, mode: m.AccessMode) -> Obj | None:
    try:
        found = client.get_or_none(r.STORAGE_CLASSES, name)
    except errors.Forbidden:
        common.note(f"warning: cannot read StorageClass {name} (forbidden): not checking it")
        return None
    if found is None:
        raise InputError(
            f'StorageClass "{name}" does not exist',
            "list classes with `kubectl get storageclass`",
        )
    warning = sources.class_access_warning(found, mode)
    if warning:
        common.note(f"warning: {warning}")
    return found


def _check_model_api(client: Client, plan: Plan) -> bool | None:
    """Whether OME serves pvc:// models natively; InputError when OME's CRDs are not served."""
    from kubectl_omepvc.api import probe

    caps = probe.probe(client)
    if not caps.ome_resources.get(plan.model_ref.plural):
        raise InputError(
            f"{plan.model_ref.display} is not served by this cluster",
            "install OME, or drop --register-model",
        )
    return caps.native_pvc


def _read_existing(client: Client, plan: Plan) -> None:
    """Fills each step's `before`; an existing StorageClass is used as it is, not applied."""
    for step in plan.steps:
        step.before = client.get_or_none(step.ref, step.name, step.namespace)
    sp.keep_existing_class(plan)


def _check_conflicts(client: Client, plan: Plan, force: bool) -> list[Step]:
    """Refuses what cannot be forced; shows differences; returns the steps to recreate."""
    req = plan.request
    sp.refuse_unforceable(plan)
    differing = sp.differing_steps(plan)
    if not differing:
        return []
    for step, lines in differing:
        common.note(f"{step.label} exists with a different spec:")
        for line in lines:
            common.note(f"  {line}")
    if not force:
        raise sp.conflict_error(differing)
    pair = sp.recreate_pair(plan, differing)
    if not pair:
        return []
    pvc = plan.step(r.PVCS)
    users = _claim_users(client, req.namespace, req.claim) if pvc and pvc.before else []
    if users:
        raise InputError(
            f"claim {req.namespace}/{req.claim} is used by pod {', '.join(users)}, so it "
            "cannot be replaced",
            "stop the workloads that use it, or create a claim under another name",
        )
    return pair


def _claim_users(client: Client, namespace: str, claim: str) -> list[str]:
    from kubectl_omepvc.api import storage as api_storage

    return api_storage.pods_using_claim(client, namespace, claim)


def _delete_for_recreate(client: Client, plan: Plan, steps: list[Step]) -> None:
    from kubectl_omepvc.api import storage as api_storage

    for step in sorted(steps, key=lambda s: s.ref != r.PVCS):  # the claim first
        api_storage.delete(client, step.ref, step.obj)
    for step in steps:
        if not api_storage.wait_until_gone(
            client, step.ref, step.name, step.namespace, DELETE_TIMEOUT
        ):
            raise errors.PluginError(
                f"{step.label} is still being deleted after {DELETE_TIMEOUT:g}s",
                f"look at its finalizers (`kubectl get {step.label} -o yaml`) and run again",
            )
        step.before = None
    common.note(
        f"deleted {' and '.join(s.label for s in steps)} to create them again "
        "(the files on the volume stay)"
    )


def _rebind(client: Client, step: Step) -> None:
    ref = step.obj["spec"]["claimRef"]
    client.patch(r.PVS, step.name, sp.rebind_ops(step))
    common.note(
        f"note: {step.label} was released by an earlier claim {ref['namespace']}/{ref['name']}: "
        "it is bound to the new claim"
    )


def _apply_all(client: Client, plan: Plan, force: bool, rebind: Step | None) -> list[Applied]:
    """Applies the steps in order; on any failure deletes what this run created, then re-raises."""
    from kubectl_omepvc.api import storage as api_storage

    results: list[Applied] = []
    created: list[Applied] = []
    try:
        for step in plan.steps:
            if step is rebind:
                _rebind(client, step)
            result = api_storage.apply(client, step.ref, step.obj, before=step.before, force=force)
            results.append(result)
            if step.before is None:
                created.append(result)
    except BaseException:
        _roll_back(client, created)
        raise
    return results


def _roll_back(client: Client, created: list[Applied]) -> None:
    from kubectl_omepvc.api import storage as api_storage

    for result in reversed(created):
        label = f"{kind_name(result.ref)}/{result.name}"
        try:
            api_storage.delete(client, result.ref, result.after)
            common.note(f"rolled back: deleted {label} (created by this run)")
        except errors.PluginError as exc:
            common.note(f"could not roll back {label}: {exc.message}")


def _wait_for_claim(
    client: Client,
    plan: Plan,
    applied: Obj,
    storage_class: Obj | None,
    wait: bool,
    timeout: float,
    text: bool,
) -> Obj | None:
    from kubectl_omepvc.api import storage as api_storage

    req = plan.request
    label = f"persistentvolumeclaim/{req.claim}"
    if storage_class and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
        name = (storage_class.get("metadata") or {}).get("name")
        common.note(
            f"{label} binds when the first pod uses it (StorageClass {name}: "
            "WaitForFirstConsumer); not waiting"
        )
        return None
    if not wait:
        return None
    claim: Obj | None = applied
    met = api_storage.claim_phase(applied) == "Bound"
    if not met:
        common.note(f"waiting up to {timeout:g}s for {label} to be Bound ...")
        met, claim = api_storage.wait_for_claim_bound(client, req.namespace, req.claim, timeout)
    if not met:
        phase = api_storage.claim_phase(claim) or "gone"
        reason = _last_event(client, req.namespace, req.claim)
        raise errors.PluginError(
            f"{label} is not Bound after {timeout:g}s ({phase}{': ' + reason if reason else ''})",
            f"the objects are in place; look at `kubectl describe pvc {req.claim} -n "
            f"{req.namespace}`, or pass --no-wait",
        )
    volume = ((claim or {}).get("spec") or {}).get("volumeName")
    message = f"{label} is Bound to persistentvolume/{volume}"
    if text:
        common.emit(message)
    else:
        common.note(message)
    return claim


def _last_event(client: Client, namespace: str, claim: str) -> str:
    from kubectl_omepvc.api import storage as api_storage

    try:
        events = api_storage.object_events(client, namespace, claim, "PersistentVolumeClaim")
    except errors.PluginError:
        return ""
    return str(events[-1].get("message") or "") if events else ""
