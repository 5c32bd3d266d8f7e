"""Which model an isvc or a workload serves, and where OME looks for it."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import served_model
from kubectl_omepvc.core import served_model as sm
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


# -- an isvc already on a pvc:// model (patch and diff) -----------------------------------------


def _pvc_model(kind: ModelKind, uri: str, namespace: str | None = None) -> sm.ModelInfo:
    storage = {"storageUri": uri}
    obj = {"metadata": {"name": "m-pvc", "namespace": namespace}, "spec": {"storage": storage}}
    return sm.model_info(kind, "m-pvc", namespace, obj, "model")


def _deployment(claim: str | None) -> dict[str, Any]:
    volumes = [{"name": "m-pvc", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
    return {"kind": "Deployment", "metadata": {"name": "llama-engine"},
            "spec": {"template": {"spec": {"volumes": volumes, "containers": []}}}}  # fmt: skip


CBM_ON_A = _pvc_model(ModelKind.CLUSTER, "pvc://team-a:models/meta/llama")
BM_IN_A = _pvc_model(ModelKind.NAMESPACED, "pvc://models/meta/llama", "team-a")


@pytest.mark.parametrize("model", [CBM_ON_A, BM_IN_A], ids=["cluster", "namespaced"])
def test_unchanged_only_when_ome_mounts_the_claim(model: sm.ModelInfo) -> None:
    said = sm.pvc_model_served(model, "team-a", "llama", "models", [_deployment("models")], True)
    assert (
        said.startswith("inferenceservice.ome.io/llama unchanged") and "mounts claim models" in said
    )
    with pytest.raises(InputError, match=r"OME has not mounted claim models .* llama-engine"):
        sm.pvc_model_served(model, "team-a", "llama", "models", [_deployment(None)], True)


@pytest.mark.parametrize("native", [False, None], ids=["released", "unknown"])
def test_released_ome_refuses_with_the_way_out(native: bool | None) -> None:
    with pytest.raises(InputError) as info:
        sm.pvc_model_served(CBM_ON_A, "team-a", "llama", "models", [_deployment(None)], native)
    assert "pods mount no claim and wait for node label" in info.value.message
    assert "\n" not in info.value.message
    assert "a hostPath model" in str(info.value.hint)
    assert "kubectl ome-pvc patch llama -n team-a --claim models" in str(info.value.hint)


def test_native_refuses_an_isvc_outside_the_claims_namespace() -> None:
    # OME main mounts the claim by name in the isvc's namespace (components/base.go, e67a86ac)
    on_b = _pvc_model(ModelKind.CLUSTER, "pvc://team-b:models/meta/llama")
    with pytest.raises(InputError) as info:
        sm.pvc_model_served(on_b, "team-a", "llama", "models", [_deployment("models")], True)
    message = info.value.message
    assert message.startswith("inferenceservice team-a/llama is outside the namespace of its "
                              "model's claim team-b/models")  # fmt: skip
    assert "\n" not in message and "run the isvc in namespace team-b" in str(info.value.hint)


def test_a_uri_ome_refuses_for_its_kind_is_refused() -> None:
    wrong = _pvc_model(ModelKind.NAMESPACED, "pvc://team-a:models/x", "team-a")
    with pytest.raises(InputError, match="must not name a namespace"):
        sm.pvc_model_served(wrong, "team-a", "llama", "models", [], True)


def test_another_claim_than_the_models_is_refused() -> None:
    with pytest.raises(InputError, match="already served natively from claim models"):
        sm.pvc_model_served(CBM_ON_A, "team-a", "llama", "other", [_deployment("models")], True)
