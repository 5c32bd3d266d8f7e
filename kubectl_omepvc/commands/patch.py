"""`kubectl ome-pvc patch <isvc> --claim NAME`: serve an InferenceService's model from a claim.

Everything that can be checked is checked before the first write (the preflight): the isvc
and its model, the claim (namespace, binding, access mode), where the model sits on the
volume (the sub-path), and whether any node can run the pods with that volume. Then the
chosen strategy (see `kubectl_omepvc.strategies`) writes, and `--wait` follows the rollout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc import errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import manifests, naming, transform
from kubectl_omepvc.core.naming import ModelKind
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
    from kubectl_omepvc.core.capabilities import Capabilities
    from kubectl_omepvc.strategies import ModelInfo, Target

Obj = dict[str, Any]
Log = Callable[[str], None]

STRATEGIES = ("native", "policy", "deployment")
HOSTNAME_LABEL = "kubernetes.io/hostname"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
SHARED_MODES = ("ReadOnlyMany", "ReadWriteMany")


# --- the model -----------------------------------------------------------------------------


def model_reference(isvc: Mapping[str, Any]) -> tuple[str, str | None, str]:
    """(model name, kind or None, field) named by the isvc: `spec.model` or legacy `baseModel`."""
    spec = isvc.get("spec") or {}
    ref = spec.get("model")
    if isinstance(ref, Mapping) and ref.get("name"):
        kind = ref.get("kind")
        return str(ref["name"]), str(kind) if kind else None, "model"
    if spec.get("baseModel"):
        return str(spec["baseModel"]), None, "baseModel"
    name = (isvc.get("metadata") or {}).get("name", "")
    raise errors.InputError(
        f"inferenceservice {name} names no model (spec.model.name)",
        "only an isvc serving an OME base model has a model volume to switch",
    )


def model_candidates(kind: str | None, namespace: str) -> list[tuple[ModelKind, str | None]]:
    """Where OME looks the model up: the kind named, else a BaseModel first, then a cluster one."""
    if kind is None:
        return [(ModelKind.NAMESPACED, namespace), (ModelKind.CLUSTER, None)]
    try:
        model_kind = ModelKind(kind)
    except ValueError:
        raise errors.InputError(
            f"model kind {kind!r} is not BaseModel or ClusterBaseModel",
            "only OME base models have a model volume to switch",
        ) from None
    return [(model_kind, namespace if model_kind is ModelKind.NAMESPACED else None)]


def resolve_model(client: Client, isvc: Mapping[str, Any]) -> ModelInfo:
    from kubectl_omepvc.strategies import ModelInfo
    from kubectl_omepvc.strategies.native import model_ref

    namespace = str(isvc["metadata"]["namespace"])
    name, kind, field = model_reference(isvc)
    looked = []
    for model_kind, model_ns in model_candidates(kind, namespace):
        obj = client.get_or_none(model_ref(model_kind), name, model_ns)
        looked.append(model_kind.value + (f" in namespace {model_ns}" if model_ns else ""))
        if obj is None:
            continue
        storage = (obj.get("spec") or {}).get("storage") or {}
        return ModelInfo(
            kind=model_kind,
            name=name,
            namespace=model_ns,
            obj=obj,
            path=str(storage["path"]) if storage.get("path") else None,
            uri=str(storage.get("storageUri") or ""),
            label_key=naming.model_label_key(model_kind, name, model_ns),
            field=field,
        )
    raise errors.InputError(
        f"model {name} of inferenceservice {isvc['metadata']['name']} not found"
        f" (looked for {' and '.join(looked)})",
        "create the model first, or fix the isvc's spec.model",
    )


# --- the claim and its volume ----------------------------------------------------------------


def volume_root(pv: Mapping[str, Any] | None) -> str | None:
    """The directory a PV exposes (`local.path` or `nfs.path`); None for provisioned volumes."""
    spec = (pv or {}).get("spec") or {}
    for source in ("local", "nfs"):
        path = (spec.get(source) or {}).get("path")
        if path:
            return str(path)
    return None


def choose_sub_path(
    model_path: str,
    pv: Mapping[str, Any] | None,
    claim: Mapping[str, Any],
    flag: str | None,
) -> str:
    """The model's directory relative to the claim's root.

    From the PV's root when it has one (and then `--sub-path` must agree: a wrong sub-path is
    what leaves the server unable to read config.json); else `--sub-path`; else the claim's
    `ome-pvc.io/sub-path` annotation (written by `create`).
    """
    name = (claim.get("metadata") or {}).get("name", "")
    root = volume_root(pv)
    if root is not None:
        derived = transform.sub_path_for(model_path, root)
        if flag is not None and transform.clean_sub_path(flag) != derived:
            raise errors.InputError(
                f"--sub-path {flag} does not match the volume: the model is at {model_path} on"
                f" the node and the volume of claim {name} is rooted at {root}, so the model is"
                f" at {derived or 'its root'} on the claim",
                "leave --sub-path out (it is derived from the volume)",
            )
        return derived
    if flag is not None:
        return transform.clean_sub_path(flag)
    annotated = ((claim.get("metadata") or {}).get("annotations") or {}).get(
        manifests.SUB_PATH_ANNOTATION
    )
    if annotated:
        return transform.clean_sub_path(str(annotated))
    raise errors.InputError(
        f"cannot tell where model directory {model_path} is on claim {name}: its volume has"
        " no local or NFS path (provisioned) and the claim has no"
        f" {manifests.SUB_PATH_ANNOTATION} annotation",
        "pass --sub-path DIR, the model's directory relative to the claim's root",
    )


def access_modes(claim: Mapping[str, Any]) -> list[str]:
    status = (claim.get("status") or {}).get("accessModes")
    return [str(m) for m in (status or (claim.get("spec") or {}).get("accessModes") or [])]


def affinity_terms(pv: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    node_affinity = ((pv or {}).get("spec") or {}).get("nodeAffinity") or {}
    return list((node_affinity.get("required") or {}).get("nodeSelectorTerms") or [])


def single_node(pv: Mapping[str, Any] | None) -> str | None:
    """The one node a PV is pinned to (one term, hostname In [node]), else None."""
    terms = affinity_terms(pv)
    if len(terms) != 1:
        return None
    exprs = list(terms[0].get("matchExpressions") or [])
    hosts = [e for e in exprs if e.get("key") == HOSTNAME_LABEL and e.get("operator") == "In"]
    if len(hosts) == 1 and len(hosts[0].get("values") or []) == 1:
        return str(hosts[0]["values"][0])
    return None


def access_problem(modes: Sequence[str], pods: int, pinned_node: str | None) -> str | None:
    """Why the claim's access modes cannot serve `pods` pods, or None."""
    if not modes or any(m in SHARED_MODES for m in modes):
        return None
    if "ReadWriteOnce" in modes:
        if pods > 1 and pinned_node is None:
            return (
                f"it is ReadWriteOnce (usable from one node only) and the workloads run {pods}"
                " pods, which may land on different nodes"
            )
        return None
    if "ReadWriteOncePod" in modes and pods > 1:
        return f"it is ReadWriteOncePod (one pod only) and the workloads run {pods} pods"
    return None


def _requirement(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key, op = str(expr.get("key", "")), expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_matches(node: Mapping[str, Any], terms: Sequence[Mapping[str, Any]]) -> bool:
    """A node selector's terms (ORed; each term's requirements ANDed); no terms: any node."""
    if not terms:
        return True
    meta = node.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    fields = {"metadata.name": str(meta.get("name", ""))}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue  # an empty term matches no objects
        if all(_requirement(labels, e) for e in exprs) and all(
            _requirement(fields, e) for e in field_exprs
        ):
            return True
    return False


def schedulable(node: Mapping[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def describe_terms(terms: Sequence[Mapping[str, Any]]) -> str:
    """`kubernetes.io/hostname In [gpu-node-2]`, terms joined by ` or `."""
    out = []
    for term in terms:
        parts = [
            f"{e.get('key')} {e.get('operator')}"
            + (f" [{', '.join(map(str, e.get('values') or []))}]" if e.get("values") else "")
            for e in [*(term.get("matchExpressions") or []), *(term.get("matchFields") or [])]
        ]
        out.append(", ".join(parts) or "(empty term)")
    return " or ".join(out)


def placement_problem(
    nodes: Iterable[Mapping[str, Any]],
    pv: Mapping[str, Any] | None,
    selectors: Mapping[str, Mapping[str, str]],
) -> str | None:
    """Why no Ready node can run some workload's pods with this volume, or None.

    `selectors`: each workload's nodeSelector once the model key is gone.
    """
    terms = affinity_terms(pv)
    ready = [n for n in nodes if schedulable(n)]
    volume_ok = [n for n in ready if node_matches(n, terms)]
    pv_name = ((pv or {}).get("metadata") or {}).get("name", "")
    if terms and not volume_ok:
        return (
            f"volume {pv_name} can only be used on nodes matching {describe_terms(terms)},"
            f" and none of the {len(ready)} Ready nodes does"
        )
    for workload, selector in selectors.items():
        wanted = [{"matchExpressions": [
            {"key": k, "operator": "In", "values": [v]} for k, v in selector.items()
        ]}] if selector else []  # fmt: skip
        if not any(node_matches(n, wanted) for n in volume_ok):
            where = f" on nodes matching {describe_terms(terms)}" if terms else ""
            shown = ", ".join(f"{k}={v}" for k, v in selector.items())
            return f"no Ready node{where} has the labels {workload} selects ({shown})"
    return None


def check_claim(client: Client, namespace: str, name: str, log: Log) -> Obj:
    """The claim, in the isvc's namespace, Bound (or waiting for its first consumer)."""
    from kubectl_omepvc.core import resources as r

    claim = client.get_or_none(r.PVCS, name, namespace)
    if claim is None:
        elsewhere: list[str] = []
        with contextlib.suppress(errors.PluginError):
            elsewhere = sorted(
                str(c["metadata"]["namespace"])
                for c in client.list(r.PVCS, field_selector=f"metadata.name={name}")
            )
        extra = (
            f" (it exists in namespace {', '.join(elsewhere)}; a pod can only mount a claim"
            " of its own namespace)"
            if elsewhere
            else ""
        )
        raise errors.InputError(
            f'persistentvolumeclaim "{name}" not found in namespace {namespace}{extra}',
            f"create it in {namespace} (`kubectl ome-pvc create`), or pass the right --claim",
        )
    phase = (claim.get("status") or {}).get("phase")
    if phase == "Bound":
        return claim
    if phase == "Pending":
        class_name = (claim.get("spec") or {}).get("storageClassName")
        storage_class = client.get_or_none(r.STORAGE_CLASSES, class_name) if class_name else None
        if (storage_class or {}).get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
            log(f"claim {name} is Pending until its first pod (class {class_name} binds then)")
            return claim
        raise errors.InputError(
            f"claim {name} is Pending, not Bound",
            f"see why with `kubectl describe pvc {name} -n {namespace}`; patch once it is Bound",
        )
    raise errors.InputError(
        f"claim {name} is {phase or 'in no phase'}, not Bound",
        f"see `kubectl describe pvc {name} -n {namespace}`",
    )


def preflight(
    client: Client,
    isvc: Obj,
    workloads: Sequence[Obj],
    claim_name: str,
    sub_path_flag: str | None,
    caps: Capabilities,
    log: Log,
) -> Target:
    """Every check that needs no write; the `Target` the strategies work on."""
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.core import resources as r
    from kubectl_omepvc.core.storage_uri import StorageScheme, scheme_of
    from kubectl_omepvc.strategies import NothingToDo, Target, workload_model_name

    namespace = str(isvc["metadata"]["namespace"])
    isvc_name = str(isvc["metadata"]["name"])
    model = resolve_model(client, isvc)
    shown = f"{model.kind.value} {model.name}"
    if not model.path:
        if scheme_of(model.uri) is StorageScheme.PVC:
            raise NothingToDo(
                f"inferenceservice.ome.io/{isvc_name} unchanged: its model {model.name} is a"
                f" pvc:// model ({model.uri}); OME already serves it from a claim"
            )
        raise errors.InputError(
            f"{shown} has no storage.path (storageUri {model.uri or 'unset'}): its pods mount"
            " no hostPath, so there is nothing to switch",
            "only models the agent downloads to a node path are served from a hostPath",
        )
    for workload in workloads:
        named = workload_model_name(workload)
        if named and named != model.name:
            raise errors.InputError(
                f"{w.display(workload)} serves model {named}, but the isvc names {model.name}"
                " (OME has not caught up with a model change)",
                "wait until OME has rolled the isvc to its new model, then try again",
            )
    claim = check_claim(client, namespace, claim_name, log)
    pv = None
    volume_name = (claim.get("spec") or {}).get("volumeName")
    if volume_name and (claim.get("status") or {}).get("phase") == "Bound":
        try:
            pv = client.get_or_none(r.PVS, str(volume_name))
        except errors.Forbidden:
            log(f"cannot read persistentvolume {volume_name}: its root and node affinity are"
                " not checked")  # fmt: skip
    sub_path = choose_sub_path(model.path, pv, claim, sub_path_flag)
    pods = sum(w.replicas_of(wl) for wl in workloads)
    problem = access_problem(access_modes(claim), pods, single_node(pv))
    if problem:
        raise errors.InputError(
            f"claim {claim_name} cannot serve every replica: {problem}",
            "use a ReadOnlyMany claim (a model is only read), or scale the workloads to one pod",
        )
    if pv is not None:
        selectors = remaining_selectors(workloads, model.label_key)
        try:
            nodes = list(client.list(r.NODES))
        except errors.Forbidden:
            nodes = []
            log("cannot list nodes: whether one can hold the pods with this volume is not checked")
        problem = placement_problem(nodes, pv, selectors) if nodes else None
        if problem:
            raise errors.InputError(
                f"the pods could not be scheduled with claim {claim_name}: {problem}",
                "use a volume on nodes that can run the pods, or fix the nodes' labels",
            )
    return Target(
        namespace=namespace,
        isvc=isvc,
        model=model,
        claim=claim_name,
        claim_obj=claim,
        sub_path=sub_path,
        workloads=tuple(workloads),
        caps=caps,
    )


def remaining_selectors(workloads: Sequence[Obj], label_key: str) -> dict[str, dict[str, str]]:
    """Each pod template's nodeSelector without the model key: what still places the pods."""
    from kubectl_omepvc.core import jsonpatch as jp

    out: dict[str, dict[str, str]] = {}
    for workload in workloads:
        for path in jp.pod_template_paths(workload):
            try:
                spec = jp.resolve(workload, path).get("spec") or {}
            except jp.PatchFailed:
                continue
            selector = spec.get("nodeSelector") or {}
            out[f"{jp.workload_ref(workload)}{path}"] = {
                str(k): str(v) for k, v in selector.items() if k != label_key
            }
    return out


# --- output ------------------------------------------------------------------------------------


def render_objects(objects: Sequence[Obj], output: str) -> str:
    """One object as itself, several as a `List`, as kubectl prints them."""
    body: Any = (
        objects[0]
        if len(objects) == 1
        else {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    )
    return printers.to_json(body) if output == Output.JSON.value else printers.to_yaml(body)


def follow(
    client: Client, namespace: str, workloads: Sequence[Obj], timeout: float, log: Log
) -> None:
    from kubectl_omepvc.api import workloads as w

    deployments = [wl for wl in workloads if wl.get("kind") == "Deployment"]
    others = [wl for wl in workloads if wl.get("kind") != "Deployment"]
    for other in others:
        log(f"not following {w.display(other)}: see `kubectl get lws -n {namespace}`")
    if deployments:
        w.wait_for_rollouts(client, namespace, deployments, timeout, log)


def wait_for_native(client: Client, target: Target, timeout: float, log: Log) -> None:
    """Newer OME re-renders the workloads for the pvc:// model: wait for that, then the rollout."""
    from kubectl_omepvc.api import workloads as w

    deadline = time.monotonic() + timeout
    log(f"waiting for OME to mount claim {target.claim} in the workloads")
    while True:
        current = w.find_workloads(client, target.isvc, target.caps.leader_worker_set)
        if current and all(uses_claim(wl, target.claim) for wl in current):
            break
        if time.monotonic() >= deadline:
            raise w.RolloutFailed(
                f"OME has not switched the workloads of inferenceservice {target.isvc_name} to"
                f" claim {target.claim} after {timeout:g}s",
                f"see the pvc:// model's conditions (`kubectl get {target.model.kind.resource}"
                " -o yaml`) and OME's controller logs",
            )
        time.sleep(1)
    follow(client, target.namespace, current, max(1.0, deadline - time.monotonic()), log)


def uses_claim(workload: Mapping[str, Any], claim: str) -> bool:
    """Whether every pod template of the workload mounts `claim`."""
    from kubectl_omepvc.core import jsonpatch as jp

    for path in jp.pod_template_paths(workload):
        spec = jp.resolve(workload, path).get("spec") or {}
        claims = {
            (v.get("persistentVolumeClaim") or {}).get("claimName")
            for v in spec.get("volumes") or []
        }
        if claim not in claims:
            return False
    return True


# --- the command -----------------------------------------------------------------------------


@click.command("patch")
@click.argument("isvc")
@click.option("--claim", required=True, help="The PersistentVolumeClaim to serve the model from.")
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=None,
    help="How to make the switch (default: the best this cluster offers, native then policy).",
)
@click.option(
    "--sub-path",
    default=None,
    help="The model's directory relative to the claim's root (derived from local/NFS volumes).",
)
@click.option(
    "--model-name",
    default=None,
    help="native: name of the pvc:// model to create (default: <model>-pvc).",
)
@click.option(
    "--settle",
    type=DURATION,
    default="15s",
    show_default=True,
    metavar="DURATION",
    help="deployment: how long to watch for OME reverting the patch.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the rollout of the changed workloads.",
)
@click.option(
    "--timeout",
    type=DURATION,
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="How long --wait waits.",
)
@dry_run_option
@output_option(Output.YAML, Output.JSON)
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    isvc: str,
    claim: str,
    strategy: str | None,
    sub_path: str | None,
    model_name: str | None,
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
      deployment  a one-shot JSON Patch of the workloads; OME's controller reverts it unless
                  it is stopped, so it is only used when named

    Nothing is written unless every check passes. Patching an isvc that is already switched
    is a no-op; `kubectl ome-pvc unpatch` undoes it.
    """
    from kubectl_omepvc.api import probe
    from kubectl_omepvc.api import workloads as w
    from kubectl_omepvc.strategies import Job, NothingToDo, Settings, current_patch, select
    from kubectl_omepvc.strategies.deployment import Reverted

    mode = DryRun(dry_run)
    client = common.connect(opts)
    namespace = client.namespace
    caps = probe.probe(client)
    try:
        isvc_obj = w.get_isvc(client, namespace, isvc)
        w.refuse_serverless(client, isvc_obj)
        workloads = w.find_workloads(client, isvc_obj, caps.leader_worker_set)
        chosen = select(caps, strategy)
        applied = current_patch(client, isvc_obj, tuple(workloads), caps)
        if applied is not None and applied.claim != claim:
            raise errors.InputError(
                f"inferenceservice {isvc} is already switched to claim {applied.claim}"
                f" (strategy {applied.strategy}, recorded on {applied.where})",
                "run `kubectl ome-pvc unpatch` first to change the claim",
            )
        # The same strategy runs again and finishes what an interrupted run left; another
        # strategy on top of a switched isvc would only fight it.
        if applied is not None and (applied.strategy != chosen.name or chosen.name == "native"):
            raise NothingToDo(
                f"inferenceservice.ome.io/{isvc} unchanged: already served from claim {claim}"
                f" (strategy {applied.strategy})"
            )
        target = preflight(client, isvc_obj, workloads, claim, sub_path, caps, common.note)
        settings = Settings(dry_run=mode, model_name=model_name, settle=settle or 0.0)
        outcome = chosen.run(Job(client, target, settings, common.note))
    except Reverted as reverted:
        for line in reverted.outcome.actions if reverted.outcome else []:
            common.emit(line)
        raise
    except NothingToDo as done:
        common.emit(done.message)
        return
    if output:
        common.emit(render_objects(outcome.objects, output))
    else:
        for line in outcome.actions:
            common.emit(line)
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
    if outcome.strategy == "native":
        wait_for_native(client, target, limit, common.note)
    elif outcome.rollout:
        follow(client, namespace, outcome.rollout, limit, common.note)
