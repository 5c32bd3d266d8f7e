"""Warnings before a write the model's own copies cannot back (pure part)."""

from __future__ import annotations

from kubectl_omepvc.core import served_model as sm
from kubectl_omepvc.core.naming import ModelKind


def info(ready: list[str], failed: list[str]) -> sm.ModelInfo:
    obj = {"status": {"nodesReady": ready, "nodesFailed": failed}}
    return sm.model_info(ModelKind.CLUSTER, "llama", None, obj, "model")


def test_onto_a_claim_a_model_failed_everywhere_is_a_warning() -> None:
    said = sm.serving_risk(info([], ["n1", "n2"]), to_claim=True)
    assert said is not None and "Failed on every node that reported (n1, n2)" in said
    assert sm.serving_risk(info(["n3"], ["n1"]), to_claim=True) is None
    assert sm.serving_risk(info([], []), to_claim=True) is None


def test_back_to_a_hostpath_ready_nowhere_is_a_warning() -> None:
    said = sm.serving_risk(info([], ["n1"]), to_claim=False)
    assert said is not None and "Ready on no node" in said
    assert "clusterbasemodel.llama=Ready" in said
    assert sm.serving_risk(info(["n1"], []), to_claim=False) is None
