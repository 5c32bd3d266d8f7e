"""`create`'s plan: the objects in order, conflicts with what exists, a Released volume."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import storage_plan as sp
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.sources import FlagError
from tests.expect import raises_exactly

Obj = dict[str, Any]


def request(source: m.StorageSource | None = None, sub_path: str | None = "meta/llama") -> Any:
    return m.ClaimRequest(
        "llama",
        "serving",
        "1Gi",
        source or m.LocalSource("/raid/models", ("gpu-node-1",)),
        storage_class=m.DEFAULT_LOCAL_STORAGE_CLASS,
        sub_path=sub_path,
    )


def plan(source: m.StorageSource | None = None, register: Any = None) -> sp.Plan:
    req = request(source)
    return sp.Plan(req, None, sp.build_steps(req, None, register, None), register)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (r.PVS, "persistentvolume"),
        (r.STORAGE_CLASSES, "storageclass.storage.k8s.io"),
        (r.CLUSTER_BASE_MODELS, "clusterbasemodel.ome.io"),
    ],
    ids=["core", "storage", "ome"],
)
def test_kind_name(ref: r.ResourceRef, expected: str) -> None:
    assert sp.kind_name(ref) == expected


@pytest.mark.parametrize(
    ("source", "register", "labels"),
    [
        (None, None, ["storageclass.storage.k8s.io/local-storage",
                      "persistentvolume/ome-pvc-serving-llama", "persistentvolumeclaim/llama"]),
        (m.NfsSource("10.0.0.5", "/export"), (ModelKind.NAMESPACED, "llama-pvc"),
         ["persistentvolume/ome-pvc-serving-llama", "persistentvolumeclaim/llama",
          "basemodel.ome.io/llama-pvc"]),
        (m.ClassSource("rwx"), (ModelKind.CLUSTER, "llama-pvc"),
         ["persistentvolumeclaim/llama", "clusterbasemodel.ome.io/llama-pvc"]),
    ],
    ids=["local", "nfs-and-basemodel", "class-and-clusterbasemodel"],
)  # fmt: skip
def test_build_steps_order(source: Any, register: Any, labels: list[str]) -> None:
    built = plan(source, register)
    assert [s.label for s in built.steps] == labels
    model = built.step(built.model_ref)
    if register is not None:
        assert model is not None and model.namespace == (
            "serving" if register[0] is ModelKind.NAMESPACED else None
        )


def test_registering_needs_a_sub_path() -> None:
    req = request(sub_path=None)
    with raises_exactly(FlagError, match="--register-model needs --sub-path"):
        sp.build_steps(req, None, (ModelKind.CLUSTER, "x"), None)


def existing(built: sp.Plan) -> sp.Plan:
    """Every object exists exactly as planned."""
    for step in built.steps:
        step.before = copy.deepcopy(step.obj)
    return built


def test_an_existing_class_is_used_as_it_is() -> None:
    built = existing(plan())
    built.step(r.STORAGE_CLASSES).before["volumeBindingMode"] = "Immediate"  # type: ignore[index,union-attr]
    sp.keep_existing_class(built)
    assert built.step(r.STORAGE_CLASSES) is None
    assert len(built.notes) == 1 and "using the existing storageclass" in built.notes[0]


def test_nothing_differs_when_everything_is_as_planned() -> None:
    built = existing(plan())
    sp.refuse_unforceable(built)
    assert sp.differing_steps(built) == []


def test_a_different_claim_is_recreated_with_its_volume() -> None:
    built = existing(plan())
    claim = built.step(r.PVCS)
    assert claim is not None and claim.before is not None
    claim.before["spec"]["resources"]["requests"]["storage"] = "2Gi"
    differing = sp.differing_steps(built)
    assert [s.label for s, _ in differing] == ["persistentvolumeclaim/llama"]
    assert [s.label for s in sp.recreate_pair(built, differing)] == [
        "persistentvolume/ome-pvc-serving-llama",
        "persistentvolumeclaim/llama",
    ]
    error = sp.conflict_error(differing)
    assert isinstance(error, errors.Conflict)
    assert "persistentvolumeclaim/llama already exists with a different spec" in error.message


def test_a_claim_from_a_class_changes_in_place() -> None:
    built = existing(plan(m.ClassSource("rwx")))
    claim = built.step(r.PVCS)
    assert claim is not None and claim.before is not None
    claim.before["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert sp.recreate_pair(built, sp.differing_steps(built)) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.step(r.PVS).before["spec"]["claimRef"].update(name="other"),
         "is bound to claim serving/other"),
        (lambda p: p.step(r.PVCS).before["spec"].update(volumeName="elsewhere"),
         "is bound to volume elsewhere"),
        (lambda p: p.step(r.CLUSTER_BASE_MODELS).before["spec"]["storage"].update(path="/raid/x"),
         "exists and downloads to /raid/x"),
    ],
    ids=["pv-of-another-claim", "claim-on-another-volume", "model-with-a-path"],
)  # fmt: skip
def test_refuse_unforceable(change: Any, message: str) -> None:
    built = existing(plan(register=(ModelKind.CLUSTER, "llama-pvc")))
    change(built)
    with raises_exactly(errors.InputError, match=message):
        sp.refuse_unforceable(built)


def test_a_released_volume_is_bound_again_by_clearing_its_uid() -> None:
    built = existing(plan())
    pv = built.step(r.PVS)
    assert pv is not None and pv.before is not None
    pv.before["spec"]["claimRef"].update(uid="old-uid", resourceVersion="7")
    built.step(r.PVCS).before = None  # type: ignore[union-attr]
    assert sp.released_volume(built) is pv
    assert sp.rebind_ops(pv) == [
        {"op": "test", "path": "/spec/claimRef/uid", "value": "old-uid"},
        {"op": "remove", "path": "/spec/claimRef/uid"},
        {"op": "remove", "path": "/spec/claimRef/resourceVersion"},
    ]
    built.step(r.PVCS).before = {"metadata": {"uid": "old-uid"}}  # type: ignore[union-attr]
    assert sp.released_volume(built) is None  # the claim it names is the live one
