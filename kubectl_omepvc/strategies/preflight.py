"""Every check `patch` (and `diff`) makes before the first write, and the `Target` it yields.

The isvc and its model, the claim (namespace, binding, access mode), where the model sits on
the volume (the sub-path), and whether any node can run the pods with that volume. The rules
themselves are pure (`core.claims`, `core.served_model`); this module reads what they need.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kubectl_omepvc import errors
from kubectl_omepvc.api.lookup import whereabouts
from kubectl_omepvc.core import claims, selectors
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import served_model as sm
from kubectl_omepvc.core.rollout import replicas_of
from kubectl_omepvc.core.storage_uri import StorageScheme, scheme_of
from kubectl_omepvc.strategies import Log, ModelInfo, NothingToDo, Obj, Target

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client
    from kubectl_omepvc.core.capabilities import Capabilities


def resolve_model(client: Client, isvc: Mapping[str, Any]) -> ModelInfo:
    """The model the isvc names, looked up where OME looks for it."""
    namespace = str(isvc["metadata"]["namespace"])
    name, kind, field = sm.model_reference(isvc)
    looked = []
    for model_kind, model_ns in sm.model_candidates(kind, namespace):
        obj = client.get_or_none(r.model_resource(model_kind), name, model_ns)
        looked.append(model_kind.value + (f" in namespace {model_ns}" if model_ns else ""))
        if obj is not None:
            return sm.model_info(model_kind, name, model_ns, obj, field)
    raise errors.InputError(
        f"model {name} of inferenceservice {isvc['metadata']['name']} not found"
        f" (looked for {' and '.join(looked)})",
        "create the model first, or fix the isvc's spec.model",
    )


def check_claim(client: Client, namespace: str, name: str, log: Log) -> Obj:
    """The claim, in the isvc's namespace, Bound (or waiting for its first consumer)."""
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
        close = None if elsewhere else whereabouts(client, r.PVCS, name, namespace)
        raise errors.InputError(
            f'persistentvolumeclaim "{name}" not found in namespace {namespace}{extra}',
            close
            or f"create it in {namespace} (`kubectl ome-pvc create`), or pass the right --claim",
        )
    phase = (claim.get("status") or {}).get("phase")
    if phase == "Bound":
        return claim
    if phase == "Pending":
        class_name = (claim.get("spec") or {}).get("storageClassName")
        storage_class = client.get_or_none(r.STORAGE_CLASSES, class_name) if class_name else None
        if (storage_class or {}).get("volumeBindingMode") == claims.WAIT_FOR_FIRST_CONSUMER:
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

    namespace = str(isvc["metadata"]["namespace"])
    isvc_name = str(isvc["metadata"]["name"])
    model = resolve_model(client, isvc)
    shown = f"{model.kind.value} {model.name}"
    if scheme_of(model.uri) is StorageScheme.PVC:
        if caps.generation_basis is None:  # not probed (diff): the generation decides here
            from kubectl_omepvc.api import probe

            caps = probe.probe(client)
        raise NothingToDo(
            sm.pvc_model_served(
                model, namespace, isvc_name, claim_name, workloads, caps.native_pvc,
                caps.generation_basis,
            )
        )  # fmt: skip
    if not model.path:
        raise errors.InputError(
            f"{shown} has no storage.path (storageUri {model.uri or 'unset'}): its pods mount"
            " no hostPath, so there is nothing to switch",
            "only models the agent downloads to a node path are served from a hostPath",
        )
    for workload in workloads:
        named = sm.workload_model_name(workload)
        if named and named != model.name:
            raise errors.InputError(
                f"{w.display(workload)} serves model {named}, but the isvc names {model.name}"
                " (OME has not caught up with a model change)",
                "wait until OME has rolled the isvc to its new model, then try again",
            )
    claim = check_claim(client, namespace, claim_name, log)
    risk = sm.serving_risk(model, to_claim=True)
    if risk:
        log(risk.replace("CLAIM", f"{claim_name} -n {namespace}"))
    pv = None
    volume_name = (claim.get("spec") or {}).get("volumeName")
    if volume_name and (claim.get("status") or {}).get("phase") == "Bound":
        try:
            pv = client.get_or_none(r.PVS, str(volume_name))
        except errors.Forbidden:
            log(f"cannot read persistentvolume {volume_name}: its root and node affinity are"
                " not checked")  # fmt: skip
    sub_path = claims.choose_sub_path(model.path, pv, claim, sub_path_flag)
    pods = sum(replicas_of(wl) for wl in workloads)
    pinned = selectors.single_node(selectors.volume_terms(pv))
    problem = claims.access_problem(claims.access_modes(claim), pods, pinned)
    if problem:
        raise errors.InputError(
            f"claim {claim_name} cannot serve every replica: {problem}",
            "use a ReadOnlyMany claim (a model is only read), or scale the workloads to one pod",
        )
    if pv is not None:
        node_selectors = claims.remaining_selectors(workloads, model.label_key)
        try:
            nodes = list(client.list(r.NODES))
        except errors.Forbidden:
            nodes = []
            log("cannot list nodes: whether one can hold the pods with this volume is not checked")
        problem = claims.placement_problem(nodes, pv, node_selectors) if nodes else None
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
