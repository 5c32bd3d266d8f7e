"""Which OME model an InferenceService (or its workload) serves, and where OME finds it (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kubectl_omepvc.core import naming
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
