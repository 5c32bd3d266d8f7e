"""`--strategy isvc`: the isvc carries the claim itself and names a path-less `pvc://` copy.

Durable on released OME without any admission object: OME renders the claim's volume, mount
and `MODEL_PATH` from the isvc's own spec on every reconcile (see `core.isvc_route`). Writes,
each first as a server dry-run: the copy model (unless one already serves this claim and
sub-path), the copy's node label on the nodes that reach the claim, then the isvc (one PUT
guarded by its resourceVersion). A failed write undoes the earlier ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kubectl_omepvc import errors
from kubectl_omepvc.core import claims, manifests
from kubectl_omepvc.core import isvc_route as core
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.capabilities import Capabilities
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.rbac import MODELS, Rule
from kubectl_omepvc.options import DryRun
from kubectl_omepvc.strategies import (
    NATIVE_RECORD_FORMAT,
    Job,
    Log,
    Obj,
    Outcome,
    Settings,
    Target,
    dry_run_suffix,
    reworded,
    strip_server_fields,
)
from kubectl_omepvc.strategies.native import find_pvc_model, model_line, other_users

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

NAME = core.NAME
CLUSTER_SERVING_RUNTIMES = r.ResourceRef(
    r.OME_GROUP, r.OME_VERSION, "clusterservingruntimes", "ClusterServingRuntime", False
)
SERVING_RUNTIMES = r.ResourceRef(r.OME_GROUP, r.OME_VERSION, "servingruntimes", "ServingRuntime")


def isvc_line(name: str) -> str:
    return f"inferenceservice.ome.io/{name}"


class IsvcStrategy:
    name = NAME
    summary = "the claim in the isvc's own spec, beside a path-less pvc:// copy of the model"
    # What `patch` writes and `unpatch` undoes: the copy (found among the models, created,
    # deleted with its last user), the copy's node label, the isvc (one PUT), its runtime when
    # a multi-node isvc leaves OME's leader or worker to it.
    rules: tuple[Rule, ...] = (
        Rule(r.OME_GROUP, MODELS, ("get", "list", "create", "delete")),
        Rule(r.OME_GROUP, ("inferenceservices",), ("update",)),
        Rule(r.OME_GROUP, ("clusterservingruntimes", "servingruntimes"), ("get",)),
        Rule("", ("nodes",), ("list", "patch")),
    )

    def unavailable(self, caps: Capabilities) -> str | None:
        if caps.ome_resources and not caps.ome_served:
            return "the server does not serve OME's InferenceService and model kinds"
        return None

    def run(self, job: Job) -> Outcome:
        target, settings, client = job.target, job.settings, job.client
        planned = plan(client, target, settings, job.log)
        model, copy, copy_name = target.model, planned.copy, planned.copy_name
        model_ns, labels, key = planned.model_ns, planned.labels, planned.key
        after = planned.isvc
        suffix = dry_run_suffix(settings.dry_run)
        outcome = Outcome(NAME)
        lines = [f"{model_line(model.kind, copy_name)} created{suffix}"] if copy else []
        lines += [f"node/{n} labeled{suffix}" for n in labels]
        lines.append(f"{isvc_line(target.isvc_name)} configured{suffix}")
        outcome.actions = lines
        if settings.dry_run is DryRun.CLIENT:
            outcome.objects = [core.for_gitops(o) for o in ([copy] if copy else []) + [after]]
            return outcome

        model_ref = r.model_resource(model.kind)
        try:
            answers = [client.create(model_ref, copy, model_ns, dry_run=True)] if copy else []
            for node in labels:
                client.patch(
                    r.NODES, node, core.label_patch(key, core.READY), content_type=MERGE,
                    dry_run=True,
                )  # fmt: skip
            answers.append(_dry_run_isvc(client, target, after, copy_name if copy else None))
        except errors.Forbidden as exc:
            raise reworded(exc, "; nothing was changed") from None
        if settings.dry_run is DryRun.SERVER:
            outcome.objects = [strip_server_fields(a) for a in answers]
            return outcome

        done: list[Callable[[], Any]] = []
        try:
            if copy is not None:
                outcome.objects.append(
                    strip_server_fields(client.create(model_ref, copy, model_ns))
                )
                done.append(lambda: client.delete(model_ref, copy_name, model_ns))
            for node, before in labels.items():
                client.patch(r.NODES, node, core.label_patch(key, core.READY), content_type=MERGE)
                done.append(_relabel(client, node, key, before))
            answer = put_isvc(client, target.namespace, after, target.isvc)
            outcome.objects.append(strip_server_fields(answer))
        except errors.PluginError:
            for undo in reversed(done):
                undo()
            raise
        outcome.rollout = list(target.workloads)
        return outcome


def _dry_run_isvc(client: Client, target: Target, after: Obj, new_copy: str | None) -> Obj:
    """The isvc's update as a server dry run; the planned isvc when only a new copy stops it.

    OME's isvc webhook refuses an isvc that names a model it cannot find, and a dry-run create
    stores no copy: that one refusal is expected here, and the real write (after the copy
    exists) is checked by the server, with everything undone if it is refused.
    """
    try:
        return put_isvc(client, target.namespace, after, target.isvc, dry_run=True)
    except errors.PluginError as exc:
        if new_copy is None or f'"{new_copy}" not found' not in exc.message:
            raise
        return core.for_gitops(after)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `patch --strategy isvc` writes: the copy (None when one is reused), the node labels
    (node → value before), and the isvc as it should be committed."""

    copy: Obj | None
    copy_name: str
    model_ns: str | None
    key: str
    labels: dict[str, str | None]
    isvc: Obj


def plan(client: Client, target: Target, settings: Settings, log: Log) -> Plan:
    """Every read and check of the isvc route; no write."""
    model = target.model
    if (target.isvc.get("spec") or {}).get("model", {}).get("fineTunedWeights"):
        raise errors.InputError(
            f"inferenceservice {target.isvc_name} serves fine-tuned weights, which OME"
            " mounts apart from the base model",
            "use --strategy policy",
        )
    if not target.sub_path:
        raise errors.InputError(
            f"model {model.name} is at the root of claim {target.claim}, and a pvc:// URI"
            " needs a sub-path",
            "use --strategy policy, or keep the model in a directory on the volume",
        )
    model_ns = target.namespace if model.kind is ModelKind.NAMESPACED else None
    wanted = settings.model_name or f"{model.name}-pvc"
    manifests.validate_dns_subdomain(wanted, "model name")
    reuse = find_pvc_model(client, model.kind, model_ns, target, wanted)
    if reuse is None and client.get_or_none(r.model_resource(model.kind), wanted, model_ns):
        raise errors.InputError(
            f"{model.kind.value} {wanted} already exists and serves another storage",
            "pass --model-name with another name",
        )
    copy_name = str(reuse["metadata"]["name"]) if reuse else wanted
    if reuse:
        log(f"reusing {model_line(model.kind, copy_name)}: it already serves the claim")
    copy = (
        None
        if reuse
        else core.copy_model(model, wanted, target.namespace, target.claim, target.sub_path)
    )
    sites = core.plan_sites(
        target.isvc, target.workloads, model.name, str(model.path), read_runtime(client, target)
    )
    if not sites:
        raise errors.InputError(
            f"no workload of inferenceservice {target.isvc_name} mounts model {model.name}",
            "wait until OME has rendered them, or use --strategy policy",
        )
    nodes, reach = reach_of(client, target, settings.nodes, settings.node_selector)
    key = core.copy_label_key(model, copy_name)
    labels = core.labels_to_set(nodes, reach.nodes, key)
    if reach.unknown:
        log(
            f"warning: no node labelled {key}=Ready: {reach.unknown}; the pods stay Pending"
            " until the nodes that reach the claim carry it (pass --node or --node-selector,"
            f" or later `kubectl label node NODE {key}=Ready`)"
        )
    elif reach.nodes:
        log(f"labelling {key}=Ready on {', '.join(reach.nodes)}: {reach.how}")
    after = core.switched(
        target.isvc,
        model,
        sites,
        copy_name,
        copy is not None,
        target.claim,
        target.sub_path,
        labels,
    )
    return Plan(copy, copy_name, model_ns, key, labels, after)


MERGE = "application/merge-patch+json"


def _relabel(client: Client, node: str, key: str, value: str | None) -> Callable[[], Any]:
    return lambda: client.patch(r.NODES, node, core.label_patch(key, value), content_type=MERGE)


def put_isvc(
    client: Client, namespace: str, isvc: Mapping[str, Any], read: Obj, dry_run: bool = False
) -> Obj:
    """PUT `isvc` (planned on `read`) with `read`'s resourceVersion. OME bumps it with status
    and finalizer writes: when only those changed, send it once more on the fresh version;
    a change of what the plan was made from (spec, labels, annotations) fails instead."""
    try:
        return client.replace(r.INFERENCE_SERVICES, isvc, namespace, dry_run=dry_run)
    except errors.Conflict:
        name = str(isvc["metadata"]["name"])
        fresh = client.get(r.INFERENCE_SERVICES, name, namespace)
        if core.user_fields(fresh) == core.user_fields(read):
            meta = {**isvc["metadata"], "resourceVersion": fresh["metadata"]["resourceVersion"]}
            meta.pop("finalizers", None)
            if fresh["metadata"].get("finalizers"):
                meta["finalizers"] = fresh["metadata"]["finalizers"]
            try:
                return client.replace(
                    r.INFERENCE_SERVICES, {**isvc, "metadata": meta}, namespace, dry_run=dry_run
                )
            except errors.Conflict:
                pass
        raise errors.Conflict(
            f"inferenceservice {name} changed while it was being written; nothing of it was"
            " changed",
            "run the command again",
        ) from None


def read_runtime(client: Client, target: Target) -> Mapping[str, Any] | None:
    """The spec of the runtime the isvc names, when a LeaderWorkerSet needs it; else None."""
    if not any(w.get("kind") == "LeaderWorkerSet" for w in target.workloads):
        return None
    ref = (target.isvc.get("spec") or {}).get("runtime") or {}
    name = ref.get("name")
    if not name:
        return None
    namespaced = ref.get("kind") == "ServingRuntime"
    kind = SERVING_RUNTIMES if namespaced else CLUSTER_SERVING_RUNTIMES
    try:
        found = client.get_or_none(kind, str(name), target.namespace if namespaced else None)
    except errors.Forbidden:
        return None
    return (found or {}).get("spec") or None


def reach_of(
    client: Client, target: Target, named: tuple[str, ...], selector: str | None
) -> tuple[list[Obj], core.Reach]:
    """The nodes (as listed) and which of them reach the claim."""
    return _reach(
        client, target.claim_obj, list(target.workloads), target.model.label_key, named, selector
    )


def _reach(
    client: Client,
    claim: Obj,
    workloads: list[Obj],
    label_key: str,
    named: tuple[str, ...],
    selector: str | None,
) -> tuple[list[Obj], core.Reach]:
    pv = None
    volume = (claim.get("spec") or {}).get("volumeName")
    if volume and (claim.get("status") or {}).get("phase") == "Bound":
        try:
            pv = client.get_or_none(r.PVS, str(volume))
        except errors.Forbidden:
            pv = None
    try:
        nodes = list(client.list(r.NODES))
    except errors.Forbidden:
        nodes = []
    pod_selectors = claims.remaining_selectors(workloads, label_key)
    reach = core.reaching_nodes(
        nodes,
        pv,
        claim,
        pod_selectors,
        named,
        core.parse_node_selector(selector) if selector else None,
    )
    return nodes, reach


def relabel(
    client: Client,
    isvc: Obj,
    record: Mapping[str, Any],
    workloads: list[Obj],
    settings: Settings,
) -> Outcome:
    """`patch` again on the isvc route: the copy's label on each node that reaches the claim and
    lacks it (lost to the agents' pass over a deleted copy of the same name, a node added since,
    or a first run that could not tell which nodes reach the claim)."""
    meta = isvc["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    key = str((record.get("labels") or {}).get("key") or "")
    claim = client.get(r.PVCS, str(record["claim"]), namespace)
    nodes, reach = _reach(client, claim, workloads, key, settings.nodes, settings.node_selector)
    labels = core.labels_to_set(nodes, reach.nodes, key)
    outcome = Outcome(NAME)
    suffix = dry_run_suffix(settings.dry_run)
    if not labels:
        served = f"served from claim {record['claim']} (strategy isvc)"
        nodes_said = f"no node labelled: {reach.unknown}" if reach.unknown else "its nodes labelled"
        outcome.actions = [f"{isvc_line(name)} unchanged: {served}, {nodes_said}"]
        return outcome
    outcome.actions = [f"node/{n} labeled{suffix}" for n in labels]
    outcome.objects = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {key: core.READY}}}
        for n in labels
    ]
    if settings.dry_run is DryRun.CLIENT:
        return outcome
    dry = [True] if settings.dry_run is DryRun.SERVER else [True, False]
    for dry_run in dry:
        for node in labels:
            client.patch(r.NODES, node, core.label_patch(key, core.READY), content_type=MERGE,
                         dry_run=dry_run)  # fmt: skip
    return outcome


ISVC = IsvcStrategy()


# --- unpatch, and the step to the native route -----------------------------------------------


def undo(client: Client, isvc: Obj, record: Mapping[str, Any], mode: DryRun, log: Log) -> Outcome:
    """The isvc as before (byte for byte where `patch` changed it); the copy model and its node
    labels removed when no other isvc uses the copy."""
    meta = isvc["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    field = str(record.get("field") or "model")
    copy_name = str(record["model"]["name"])
    if core.named_model(isvc, field) != copy_name:
        raise errors.InputError(
            f"inferenceservice {name} now names model {core.named_model(isvc, field)}, not"
            f" {copy_name} that `patch` set",
            "point it at the model you want by hand and remove its ome-pvc.io/original annotation",
        )
    before = core.restored(isvc, record)
    kind = ModelKind(str(record["model"]["kind"]))
    model_ns = namespace if kind is ModelKind.NAMESPACED else None
    users = other_users(client, kind, copy_name, namespace, name)
    if users is None:
        log(f"cannot list inferenceservices to see who else uses model {copy_name}; keeping it")
    elif users:
        log(
            f"keeping {model_line(kind, copy_name)} and its node labels: also used by"
            f" {', '.join(users)}"
        )
    last = users == []
    # The last user takes the copy along when this plugin made it, whichever isvc that was for.
    delete_copy = last and (
        bool(record.get("createdModel")) or ours(client, kind, copy_name, model_ns)
    )
    key = str((record.get("labels") or {}).get("key") or "")
    labelled = labelled_nodes(client, key) if last and key else []
    suffix = dry_run_suffix(mode)
    outcome = Outcome(NAME)
    outcome.actions = [f"{isvc_line(name)} configured{suffix}"]
    outcome.actions += [f"node/{n} unlabeled{suffix}" for n in labelled]
    if delete_copy:
        outcome.actions.append(f"{model_line(kind, copy_name)} deleted{suffix}")
    ref = r.model_resource(kind)

    def delete(dry_run: bool) -> None:
        if delete_copy:
            client.delete(ref, copy_name, model_ns, dry_run=dry_run)

    return rewrite(client, before, isvc, key, labelled, mode, outcome, delete)


def rewrite(
    client: Client,
    isvc: Obj,
    read: Obj,
    key: str,
    labelled: list[str],
    mode: DryRun,
    outcome: Outcome,
    then: Callable[[bool], None] | None = None,
) -> Outcome:
    """PUT `isvc`, remove label `key` from `labelled`, then run `then`; all of it as a server
    dry-run first, so a refusal changes nothing."""
    namespace = str(isvc["metadata"]["namespace"])
    if mode is DryRun.CLIENT:
        outcome.objects = [core.for_gitops(isvc)]
        return outcome
    steps: list[Callable[[bool], Any]] = [
        lambda dry: outcome.objects.append(
            strip_server_fields(put_isvc(client, namespace, isvc, read, dry_run=dry))
        )
    ]
    steps += [_unlabel(client, node, key) for node in labelled]
    steps += [then] if then else []
    try:
        for step in steps:
            step(True)
    except errors.Forbidden as exc:
        raise reworded(exc, "; nothing was changed") from None
    if mode is DryRun.SERVER:
        return outcome
    outcome.objects = []
    for step in steps:
        step(False)
    return outcome


def _unlabel(client: Client, node: str, key: str) -> Callable[[bool], Any]:
    return lambda dry: client.patch(
        r.NODES, node, core.label_patch(key, None), content_type=MERGE, dry_run=dry
    )


def ours(client: Client, kind: ModelKind, name: str, namespace: str | None) -> bool:
    """Whether the model exists and this plugin created it (its managed-by label)."""
    try:
        found = client.get_or_none(r.model_resource(kind), name, namespace)
    except errors.Forbidden:
        return False
    labels = ((found or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(manifests.MANAGED_BY_LABEL) == manifests.MANAGED_BY


def labelled_nodes(client: Client, key: str) -> list[str]:
    """Nodes carrying `key` (any value), sorted. Not being allowed to list them is an error:
    the labels would stay behind unseen."""
    return sorted(str(n["metadata"]["name"]) for n in client.list(r.NODES, label_selector=key))


def to_native(
    client: Client, isvc: Obj, record: Mapping[str, Any], mode: DryRun, log: Log
) -> Outcome:
    """After an OME upgrade: drop the isvc's volume, mount and env (OME mounts the claim of the
    pvc:// copy itself now) and the copy's node labels (OME no longer selects on them)."""
    meta = isvc["metadata"]
    name = str(meta["name"])
    after = core.as_native(isvc, record, NATIVE_RECORD_FORMAT)
    key = str((record.get("labels") or {}).get("key") or "")
    labelled = labelled_nodes(client, key) if key else []
    suffix = dry_run_suffix(mode)
    outcome = Outcome("native")
    outcome.actions = [f"{isvc_line(name)} configured{suffix}"]
    outcome.actions += [f"node/{n} unlabeled{suffix}" for n in labelled]
    rewrite(client, after, isvc, key, labelled, mode, outcome)
    if mode is DryRun.NONE:
        log(f"inferenceservice {name}: on the native route now (OME mounts the claim itself)")
    return outcome
