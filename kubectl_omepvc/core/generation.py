"""Which OME generation runs here, and on what evidence (pure: documents and objects in).

OME built from `main` writes `status.conditions` on models and serves `pvc://` models itself;
released OME (<= v0.1.5) does neither. The first witness is the model CRD's published schema.
OME v0.1.5's *minimal* CRDs give models a schemaless `status`, so there the schema cannot tell;
then the models and the workloads OME rendered for `pvc://` models decide:

- a model whose status has `conditions`: OME `main` (released OME writes none);
- a `pvc://` model older than `SETTLE_SECONDS` with a state but no conditions: released OME
  (`main` writes conditions on its first reconcile, within seconds);
- a workload OME rendered for a `pvc://` model that mounts a claim: OME `main`; one that still
  selects the model's node label (and mounts nothing): released OME.

Every verdict names its basis, for `version` and the notes of the other commands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubectl_omepvc.core import naming
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.core.status import parse_time
from kubectl_omepvc.core.storage_uri import StorageScheme, scheme_of

Obj = Mapping[str, Any]
SETTLE_SECONDS = 120
NATIVE_MOUNT_PATH = "/opt/ml/model"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """`native_pvc`: True (OME `main`), False (released), None (cannot tell); `basis`: why."""

    native_pvc: bool | None
    basis: str


def from_schema(openapi: Mapping[str, Any], kind: str = "ClusterBaseModel") -> Verdict:
    """What the model CRD's published OpenAPI v3 schema says."""
    schemas = (openapi.get("components") or {}).get("schemas") or {}
    for name, schema in schemas.items():
        if not name.endswith(f".{kind}"):
            continue
        gvk = schema.get("x-kubernetes-group-version-kind") or []
        if gvk and not any(g.get("group") == "ome.io" for g in gvk):
            continue
        status = (schema.get("properties") or {}).get("status")
        if isinstance(status, Mapping) and "allOf" in status:  # OpenAPI v3 may wrap a $ref
            status = status["allOf"][0]
        ref = status.get("$ref") if isinstance(status, Mapping) else None
        if isinstance(ref, str):
            status = schemas.get(ref.rsplit("/", 1)[-1], {})
        properties = (status or {}).get("properties") if isinstance(status, Mapping) else None
        if not properties:
            return Verdict(
                None,
                f"the {kind} schema's status is schemaless (OME's minimal CRDs?), so the schema "
                "cannot tell",
            )
        if "conditions" in properties:
            return Verdict(True, f"the {kind} schema has status.conditions")
        return Verdict(False, f"the {kind} schema's status has no conditions")
    return Verdict(None, f"no {kind} schema is published")


def is_pvc(model: Obj) -> bool:
    return scheme_of(dig(model, "spec", "storage", "storageUri")) is StorageScheme.PVC


def _kind(model: Obj) -> ModelKind:
    if model.get("kind") in (ModelKind.CLUSTER.value, ModelKind.NAMESPACED.value):
        return ModelKind(model["kind"])
    return ModelKind.NAMESPACED if dig(model, "metadata", "namespace") else ModelKind.CLUSTER


def _shown(model: Obj) -> str:
    meta = model.get("metadata") or {}
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{_kind(model).value} {where}{meta.get('name')}"


def from_models(models: Iterable[Obj], now: datetime) -> Verdict | None:
    """Evidence from the models' status; None when they show none."""
    settled = None
    for model in models:
        status = model.get("status") or {}
        if isinstance(status.get("conditions"), list):
            return Verdict(True, f"{_shown(model)} has status.conditions")
        created = parse_time(dig(model, "metadata", "creationTimestamp"))
        if (
            settled is None
            and is_pvc(model)
            and status.get("state")
            and created is not None
            and (now - created).total_seconds() > SETTLE_SECONDS
        ):
            settled = model
    if settled is not None:
        return Verdict(
            False,
            f"pvc:// {_shown(settled)} is {settled['status']['state']} without conditions, "
            "which OME from main would have written",
        )
    return None


def _mounts_claim_at_model_path(template: Obj) -> bool:
    spec = template.get("spec") or {}
    claims = {v.get("name") for v in spec.get("volumes") or () if v.get("persistentVolumeClaim")}
    return any(
        mount.get("name") in claims and mount.get("mountPath") == NATIVE_MOUNT_PATH
        for container in spec.get("containers") or ()
        for mount in container.get("volumeMounts") or ()
    )


def from_workloads(models: Iterable[Obj], workloads: Iterable[Obj]) -> Verdict | None:
    """Evidence from what OME rendered for the isvcs of `pvc://` models; None without any."""
    keys: dict[str, str] = {}
    for model in models:
        if not is_pvc(model):
            continue
        name = str(dig(model, "metadata", "name") or "")
        kind = _kind(model)
        namespace = dig(model, "metadata", "namespace") if kind is ModelKind.NAMESPACED else None
        keys[naming.model_label_key(kind, name, namespace)] = _shown(model)
    if not keys:
        return None
    for workload in workloads:
        annotations = dig(workload, "metadata", "annotations") or {}
        if naming.ORIGINAL_ANNOTATION in annotations:
            continue  # the plugin's own patch, not OME's rendering
        template = dig(workload, "spec", "template") or {}
        shown = f"{workload.get('kind', 'workload')} {dig(workload, 'metadata', 'name')}"
        selector = dig(template, "spec", "nodeSelector") or {}
        stale = next((keys[k] for k in selector if k in keys), None)
        if stale is not None and not _mounts_claim_at_model_path(template):
            return Verdict(
                False, f"{shown} of pvc:// {stale} selects the model's node label, mounts no claim"
            )
        if stale is None and _mounts_claim_at_model_path(template):
            return Verdict(True, f"{shown} mounts a claim at {NATIVE_MOUNT_PATH}, as OME main does")
    return None


def decide(schema: Verdict, *evidence: Verdict | None) -> Verdict:
    """The schema when it can tell, else the first evidence found; the basis says which."""
    if schema.native_pvc is not None:
        return Verdict(schema.native_pvc, f"schema: {schema.basis}")
    for found in evidence:
        if found is not None:
            return Verdict(found.native_pvc, f"{schema.basis}; objects: {found.basis}")
    return Verdict(None, f"{schema.basis}, and no model or workload shows the generation")
