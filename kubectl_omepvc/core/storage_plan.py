"""What `create` applies: the objects in order, what exists of each, and the conflicts (pure).

A `Plan` holds one `Step` per object (StorageClass, PV, PVC, model). The shell fills each step's
`before` from the cluster; the functions here then say what may be replaced, what must be
refused, and how a Released volume is bound again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kubectl_omepvc import errors
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.core.resources import ResourceRef
from kubectl_omepvc.core.sources import FlagError
from kubectl_omepvc.errors import InputError

Obj = dict[str, Any]


def kind_name(ref: ResourceRef) -> str:
    """`persistentvolume`, `storageclass.storage.k8s.io`: how kubectl prints a kind."""
    return f"{ref.kind.lower()}.{ref.group}" if ref.group else ref.kind.lower()


@dataclasses.dataclass
class Step:
    """One object to apply, and what the cluster had before."""

    ref: ResourceRef
    obj: Obj
    before: Obj | None = None

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        return self.obj["metadata"].get("namespace") if self.ref.namespaced else None

    @property
    def label(self) -> str:
        return f"{kind_name(self.ref)}/{self.name}"


@dataclasses.dataclass
class Plan:
    request: m.ClaimRequest
    pv_name: str | None
    steps: list[Step]
    register: tuple[ModelKind, str] | None
    origin: Obj | None = None  # the --from-model model, as read
    notes: list[str] = dataclasses.field(default_factory=list)

    def step(self, ref: ResourceRef) -> Step | None:
        return next((s for s in self.steps if s.ref == ref), None)

    @property
    def model_ref(self) -> ResourceRef:
        return r.model_resource(self.register[0] if self.register else ModelKind.CLUSTER)


def build_steps(
    req: m.ClaimRequest,
    pv_name: str | None,
    register: tuple[ModelKind, str] | None,
    origin: Obj | None,
) -> list[Step]:
    """The objects in apply order: StorageClass, PV, PVC, model."""
    steps: list[Step] = []
    if isinstance(req.source, m.LocalSource) and req.storage_class is not None:
        steps.append(Step(r.STORAGE_CLASSES, m.local_storage_class(req.storage_class)))
    if not isinstance(req.source, m.ClassSource):
        pv = m.persistent_volume(req)
        if pv_name:
            pv["metadata"]["name"] = pv_name
        steps.append(Step(r.PVS, pv))
    steps.append(Step(r.PVCS, m.persistent_volume_claim(req, pv_name)))
    if register is not None:
        kind, name = register
        if req.sub_path is None:
            raise FlagError("--register-model needs --sub-path (or --from-model)")
        model = m.pvc_model(
            kind,
            name,
            req.namespace if kind is ModelKind.NAMESPACED else None,
            req.namespace,
            req.claim,
            req.sub_path,
            copy_from=origin,
        )
        steps.append(Step(r.model_resource(kind), model))
    return steps


def keep_existing_class(plan: Plan) -> None:
    """An existing StorageClass is used as it is, not applied: drop its step, note differences."""
    step = plan.step(r.STORAGE_CLASSES)
    if step is None or step.before is None:
        return
    plan.steps.remove(step)
    differences = m.spec_difference(step.before, step.obj)
    if differences:
        plan.notes.append(
            f"note: using the existing {step.label} as it is ({'; '.join(differences)}); "
            "a pre-bound volume does not need its provisioner"
        )


def refuse_unforceable(plan: Plan) -> None:
    """InputError for what --force-conflicts must not replace: another claim's PV, a claim
    bound to another volume, a model that downloads to a node path."""
    req = plan.request
    pv, pvc = plan.step(r.PVS), plan.step(r.PVCS)
    if pv is not None and pv.before is not None:
        ref = dig(pv.before, "spec", "claimRef") or {}
        if ref and (ref.get("namespace"), ref.get("name")) != (req.namespace, req.claim):
            raise InputError(
                f"PV {pv.name} is bound to claim {ref.get('namespace')}/{ref.get('name')}",
                "choose another claim name or --pv-name",
            )
    if pvc is not None and pvc.before is not None:
        bound_to = dig(pvc.before, "spec", "volumeName")
        wanted = pvc.obj["spec"].get("volumeName")
        if bound_to and wanted and bound_to != wanted:
            raise InputError(
                f"claim {req.namespace}/{req.claim} is bound to volume {bound_to}",
                "choose another claim name, or delete that claim first",
            )
    model = next((s for s in plan.steps if s.ref.group == r.OME_GROUP), None)
    if model is not None and model.before is not None:
        storage = dig(model.before, "spec", "storage") or {}
        if storage.get("path"):
            raise InputError(
                f"{model.label} exists and downloads to {storage['path']}",
                "register the pvc:// model under another name",
            )


def differing_steps(plan: Plan) -> list[tuple[Step, list[str]]]:
    """The steps whose object exists with another spec, each with its differences."""
    found = [(s, m.spec_difference(s.before, s.obj)) for s in plan.steps if s.before]
    return [(s, lines) for s, lines in found if lines]


def conflict_error(differing: list[tuple[Step, list[str]]]) -> errors.Conflict:
    labels = " and ".join(s.label for s, _ in differing)
    return errors.Conflict(
        f"{labels} already exist{'s' if len(differing) == 1 else ''} with a different "
        "spec; nothing was changed",
        "rerun with --force-conflicts to replace them (an unused claim and its PV are "
        "deleted and created again; the files on the volume stay)",
    )


def recreate_pair(plan: Plan, differing: list[tuple[Step, list[str]]]) -> list[Step]:
    """The PV and claim to delete and create again (a bound pair is immutable where it
    matters); none when only a claim from a class or a model differs (changed in place)."""
    pv, pvc = plan.step(r.PVS), plan.step(r.PVCS)
    pair = [s for s in (pv, pvc) if s is not None and s.before is not None]
    if pv is None or not any(s in pair for s, _ in differing):
        return []
    return pair


def released_volume(plan: Plan) -> Step | None:
    """Our PV, left Released by a deleted claim of the same name: it needs its old uid cleared."""
    pv, pvc = plan.step(r.PVS), plan.step(r.PVCS)
    if pv is None or pv.before is None or pvc is None:
        return None
    uid = (dig(pv.before, "spec", "claimRef") or {}).get("uid")
    live_uid = dig(pvc.before, "metadata", "uid")
    return pv if uid and uid != live_uid else None


def rebind_ops(step: Step) -> list[dict[str, Any]]:
    """The JSON Patch that frees a Released PV for the new claim (guarded by the old uid)."""
    live = dig(step.before, "spec", "claimRef") or {}
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/spec/claimRef/uid", "value": live.get("uid")},
        {"op": "remove", "path": "/spec/claimRef/uid"},
    ]
    if "resourceVersion" in live:
        ops.append({"op": "remove", "path": "/spec/claimRef/resourceVersion"})
    return ops
