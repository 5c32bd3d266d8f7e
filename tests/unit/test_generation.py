"""Telling OME's generations apart: the schema when it can, else the models and workloads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kubectl_omepvc.core import generation, naming
from kubectl_omepvc.core.generation import Verdict
from kubectl_omepvc.core.naming import ModelKind
from tests import factories as f

Obj = dict[str, Any]
CBM = "llama-3-2-1b-instruct"


def openapi(status: Obj | None) -> Obj:
    props = {} if status is None else {"status": status}
    return {"components": {"schemas": {"io.ome.v1beta1.ClusterBaseModel": {
        "x-kubernetes-group-version-kind": [{"group": "ome.io", "kind": "ClusterBaseModel"}],
        "properties": props}}}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "native", "words"),
    [
        ({"properties": {"conditions": {"type": "array"}}}, True, "has status.conditions"),
        ({"properties": {"state": {"type": "string"}}}, False, "has no conditions"),
        ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, None,
         "schemaless (OME's minimal CRDs?), so the schema cannot tell"),
        (None, None, "schemaless"),
    ],
    ids=["main", "released-full", "released-minimal", "no-status"],
)  # fmt: skip
def test_from_schema(status: Obj | None, native: bool | None, words: str) -> None:
    verdict = generation.from_schema(openapi(status))
    assert verdict.native_pvc is native and words in verdict.basis
    assert generation.from_schema({}).basis == "no ClusterBaseModel schema is published"


def _aged(model: Obj, minutes: float) -> Obj:
    stamp = f.NOW - timedelta(minutes=minutes)
    model["metadata"]["creationTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return model


def test_from_models() -> None:
    pvc = f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/x")
    assert generation.from_models([f.cluster_base_model("hostpath")], f.NOW) is None
    young = _aged(pvc, 1)
    assert generation.from_models([young], f.NOW) is None  # main may not have reconciled yet
    old = _aged(f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/x"), 10)
    verdict = generation.from_models([old], f.NOW)
    assert verdict == Verdict(
        False,
        f"pvc:// ClusterBaseModel {CBM} is In_Transit without conditions, which OME from main "
        "would have written",
    )
    conds = [f.condition("Ready", "False", "PVCNotBound")]
    with_conditions = f.base_model("team-a", "qwen", uri="pvc://models/q", conditions=conds)
    found = generation.from_models([old, with_conditions], f.NOW)
    assert found == Verdict(True, "BaseModel team-a/qwen has status.conditions")


def test_from_workloads() -> None:
    model = f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/x")
    # released OME renders the pvc:// model's isvc with the node label and no model volume
    released = f.engine_deployment("llama", CBM, "/raid/x", namespace="team-a")
    spec = released["spec"]["template"]["spec"]
    spec["volumes"] = [v for v in spec["volumes"] if "hostPath" not in v]
    spec["containers"][0]["volumeMounts"] = []
    verdict = generation.from_workloads([model], [released])
    assert verdict is not None and verdict.native_pvc is False
    assert "selects the model's node label" in verdict.basis
    # OME main mounts the claim at /opt/ml/model and drops the model nodeSelector
    native = f.engine_deployment("llama", CBM, "/raid/x", namespace="team-a")
    spec = native["spec"]["template"]["spec"]
    spec["nodeSelector"] = {}
    spec["volumes"] = [{"name": CBM, "persistentVolumeClaim": {"claimName": "models"}}]
    spec["containers"][0]["volumeMounts"] = [{"name": CBM, "mountPath": "/opt/ml/model"}]
    verdict = generation.from_workloads([model], [native])
    assert verdict is not None and verdict.native_pvc is True
    # a workload the plugin patched is not OME's rendering
    native["metadata"].setdefault("annotations", {})[naming.ORIGINAL_ANNOTATION] = "{}"
    assert generation.from_workloads([model], [native]) is None
    assert generation.from_workloads([f.cluster_base_model(CBM)], [released]) is None


def test_decide_names_its_basis() -> None:
    schema = Verdict(None, "the ClusterBaseModel schema's status is schemaless")
    assert generation.decide(Verdict(True, "x has conditions")).basis == "schema: x has conditions"
    assert generation.decide(schema, None, Verdict(False, "y")) == Verdict(
        False, "the ClusterBaseModel schema's status is schemaless; objects: y"
    )
    unknown = generation.decide(schema, None)
    assert unknown.native_pvc is None and "no model or workload shows" in unknown.basis


def test_label_key_used_for_namespaced_models() -> None:
    model = f.base_model("team-a", "qwen", path=None, uri="pvc://models/q")
    released = f.engine_deployment("llama", "qwen", "/raid/x", namespace="team-a")
    key = naming.model_label_key(ModelKind.NAMESPACED, "qwen", "team-a")
    released["spec"]["template"]["spec"]["nodeSelector"] = {key: "Ready"}
    released["spec"]["template"]["spec"]["volumes"] = []
    verdict = generation.from_workloads([model], [released])
    assert verdict is not None and verdict.native_pvc is False
