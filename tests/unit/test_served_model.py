"""Which model an isvc or a workload serves, and where OME looks for it."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import served_model
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.errors import InputError
from tests.expect import raises_exactly

Obj = dict[str, Any]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"model": {"name": "m", "kind": "BaseModel"}}, ("m", "BaseModel", "model")),
        ({"model": {"name": "m"}}, ("m", None, "model")),
        ({"baseModel": "m"}, ("m", None, "baseModel")),
    ],
    ids=["kind", "no-kind", "legacy"],
)
def test_model_reference(spec: Obj, expected: tuple[str, str | None, str]) -> None:
    assert served_model.model_reference({"metadata": {"name": "i"}, "spec": spec}) == expected


def test_model_reference_needs_a_model() -> None:
    with raises_exactly(InputError, match="names no model"):
        served_model.model_reference({"metadata": {"name": "i"}, "spec": {}})


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (None, [(ModelKind.NAMESPACED, "ns"), (ModelKind.CLUSTER, None)]),
        ("BaseModel", [(ModelKind.NAMESPACED, "ns")]),
        ("ClusterBaseModel", [(ModelKind.CLUSTER, None)]),
    ],
    ids=["ome-order", "namespaced", "cluster"],
)
def test_model_candidates(kind: str | None, expected: list[tuple[ModelKind, str | None]]) -> None:
    assert served_model.model_candidates(kind, "ns") == expected


def test_model_candidates_refuse_other_kinds() -> None:
    with raises_exactly(InputError, match="FineTunedWeight"):
        served_model.model_candidates("FineTunedWeight", "ns")


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"annotations": {"ome.io/base-model-name": "a"}, "labels": {"base-model-name": "b"}}, "a"),
        ({"labels": {"base-model-name": "b"}}, "b"),
        ({}, None),
    ],
    ids=["annotation-first", "label", "none"],
)
def test_workload_model_name(meta: Obj, expected: str | None) -> None:
    assert served_model.workload_model_name({"metadata": meta}) == expected


def test_model_info_reads_storage_and_the_label_key() -> None:
    obj = {"spec": {"storage": {"storageUri": "hf://m", "path": "/raid/models/m"}}}
    info = served_model.model_info(ModelKind.NAMESPACED, "m", "team-a", obj, "baseModel")
    assert (info.path, info.uri, info.field) == ("/raid/models/m", "hf://m", "baseModel")
    assert info.label_key == "models.ome.io/team-a.basemodel.m"
    bare = served_model.model_info(ModelKind.CLUSTER, "m", None, {}, "model")
    assert (bare.path, bare.uri) == (None, "")
