"""Which OME model an InferenceService (or its workload) serves, and where OME finds it (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from kubectl_omepvc.core import claims, naming, storage_uri
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.errors import InputError

# What OME writes on the workloads it renders for a base model.
MODEL_ANNOTATION = "ome.io/base-model-name"
MODEL_LABEL = "base-model-name"

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The model an isvc serves, as found on the server."""

    kind: ModelKind
    name: str
    namespace: str | None  # a BaseModel's namespace; None for a ClusterBaseModel
    obj: Obj
    path: str | None  # spec.storage.path
    uri: str  # spec.storage.storageUri
    label_key: str  # the node label OME's pods select on
    field: str = "model"  # where the isvc names it: spec.model (name) or spec.baseModel


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
    raise InputError(
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
        raise InputError(
            f"model kind {kind!r} is not BaseModel or ClusterBaseModel",
            "only OME base models have a model volume to switch",
        ) from None
    return [(model_kind, namespace if model_kind is ModelKind.NAMESPACED else None)]


def model_info(
    kind: ModelKind, name: str, namespace: str | None, obj: Obj, field: str
) -> ModelInfo:
    """What the switch needs to know of a model object found for an isvc."""
    storage = dig(obj, "spec", "storage") or {}
    return ModelInfo(
        kind=kind,
        name=name,
        namespace=namespace,
        obj=obj,
        path=str(storage["path"]) if storage.get("path") else None,
        uri=str(storage.get("storageUri") or ""),
        label_key=naming.model_label_key(kind, name, namespace),
        field=field,
    )


def workload_model_name(workload: Mapping[str, Any]) -> str | None:
    """The model name OME wrote on the workload (annotation first, then the label)."""
    meta = workload.get("metadata") or {}
    name = (meta.get("annotations") or {}).get(MODEL_ANNOTATION) or (meta.get("labels") or {}).get(
        MODEL_LABEL
    )
    return str(name) if name else None


def ready_and_failed(model: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The nodes OME reports the model Ready on, and Failed on (its status)."""
    status = model.get("status") or {}
    return [str(n) for n in status.get("nodesReady") or []], [
        str(n) for n in status.get("nodesFailed") or []
    ]


def serving_risk(model: ModelInfo, to_claim: bool) -> str | None:
    """A warning when the model's own hostPath copies cannot back the move (pure).

    Onto a claim (`to_claim`): a model Failed on every node may have left partial files,
    which a volume over that directory would serve. Back to the hostPath: a model Ready on
    no node leaves the pods nowhere to run.
    """
    ready, failed = ready_and_failed(model.obj)
    shown = f"{model.kind.value} {model.name}"
    if to_claim and failed and not ready:
        return (
            f"warning: {shown} is Failed on every node that reported ({', '.join(failed)}):"
            " make sure the claim holds complete files (`kubectl ome-pvc verify CLAIM`)"
        )
    if not to_claim and not ready:
        return (
            f"warning: {shown} is Ready on no node: back on its hostPath, the pods wait for a"
            f" node labelled {model.label_key}=Ready (and --wait until --timeout)"
        )
    return None


def pvc_model_served(
    model: ModelInfo,
    isvc_namespace: str,
    isvc_name: str,
    claim_flag: str,
    workloads: Sequence[Mapping[str, Any]],
    native_pvc: bool | None,
    generation_basis: str | None = None,
) -> str:
    """An isvc already on a `pvc://` model: the "unchanged" line when OME mounts the claim in
    every workload; InputError, with the way out, in every other case (patch and diff must
    never call an isvc served from a claim when its pods do not mount it).

    On released OME nothing mounts the claim: the isvc's pods wait for a node label no node
    gets. OME `main` mounts the claim by name in the isvc's own namespace (it drops the URI's
    namespace), so the isvc must be in the claim's namespace.
    """
    shown = f"{model.kind.value} {model.name}"
    try:
        uri = storage_uri.parse_model_pvc_uri(model.kind, model.uri)
    except storage_uri.PvcUriError as exc:
        raise InputError(
            f"{shown} of inferenceservice {isvc_name} has a pvc:// URI OME refuses: {exc}",
            f"fix it with `kubectl edit {model.kind.resource} {model.name}`",
        ) from None
    claim_ns = model.namespace if model.kind is ModelKind.NAMESPACED else uri.namespace
    patch_cmd = f"kubectl ome-pvc patch {isvc_name} -n {isvc_namespace} --claim {uri.claim}"
    if not native_pvc:
        why = (
            "this OME does not serve pvc:// models"
            if native_pvc is False
            else "this OME may not serve pvc:// models"
            + (f" ({generation_basis})" if generation_basis else "")
        )
        raise InputError(
            f"inferenceservice {isvc_name} serves pvc:// {shown} ({model.uri}) and {why}: its "
            f"pods mount no claim and wait for node label {model.label_key}, which no node gets",
            "point the isvc at a model with a storage.path (a hostPath model, such as the one "
            f"the weights came from) and run `{patch_cmd}` (strategy policy keeps the claim), "
            "or run OME built from main",
        )
    if claim_ns != isvc_namespace:
        raise InputError(
            f"inferenceservice {isvc_namespace}/{isvc_name} is outside the namespace of its "
            f"model's claim {claim_ns}/{uri.claim}, and OME mounts the claim from the isvc's "
            "own namespace",
            f"run the isvc in namespace {claim_ns}, or give it a claim and a pvc:// BaseModel "
            f"in {isvc_namespace}: `kubectl ome-pvc create CLAIM -n {isvc_namespace} ... "
            "--register-model basemodel/NAME`",
        )
    if claim_flag != uri.claim:
        raise InputError(
            f"inferenceservice {isvc_name} is already served natively from claim {uri.claim} "
            f"(model {model.name}), not {claim_flag}",
            f"point it back at a hostPath model first, or pass --claim {uri.claim}",
        )
    waiting = [w for w in workloads if not claims.uses_claim(w, uri.claim)]
    if waiting or not workloads:
        names = ", ".join(str(dig(w, "metadata", "name")) for w in waiting) or "none found"
        raise InputError(
            f"OME has not mounted claim {uri.claim} in the workloads of inferenceservice "
            f"{isvc_name} yet (not mounted: {names})",
            f"see why with `kubectl ome-pvc status {model.name}"
            + (f" -n {model.namespace}`" if model.namespace else "`"),
        )
    return (
        f"inferenceservice.ome.io/{isvc_name} unchanged: its model {model.name} is a pvc:// "
        f"model ({model.uri}) and OME mounts claim {uri.claim} in its workloads"
    )
