"""`status --patched`: what the plugin switched, from its records (pure part)."""

from __future__ import annotations

import json
from typing import Any

from kubectl_omepvc.core import patched, policy
from kubectl_omepvc.core.jsonpatch import ANNOTATION, RECORD_FORMAT

Obj = dict[str, Any]


def isvc(ns: str, name: str, record: Obj | None = None) -> Obj:
    meta: Obj = {"namespace": ns, "name": name}
    if record:
        meta["annotations"] = {ANNOTATION: json.dumps(record)}
    return {"metadata": meta}


def a_policy(ns: str, name: str, claim: str) -> Obj:
    record = {"format": RECORD_FORMAT, "claim": claim}
    return {"metadata": {"name": f"ome-pvc-{ns}.{name}",
                         "labels": {policy.LABEL_NAMESPACE: ns, policy.LABEL_ISVC: name},
                         "annotations": {ANNOTATION: json.dumps(record)}}}  # fmt: skip


def workload(ns: str, isvc_name: str, strategy: str, claim: str) -> Obj:
    record = {"format": 1, "templates": {"t": {"strategy": strategy, "claim": claim}}}
    return {"kind": "Deployment",
            "metadata": {"namespace": ns, "name": f"{isvc_name}-engine",
                         "labels": {"ome.io/inferenceservice": isvc_name},
                         "annotations": {ANNOTATION: json.dumps(record)}}}  # fmt: skip


def test_every_strategy_and_a_leftover_policy() -> None:
    rows = patched.patched(
        [isvc("a", "llama"), isvc("a", "qwen", {"strategy": "native", "claim": "w"}),
         isvc("b", "mistral"), isvc("b", "plain")],
        [workload("a", "llama", "policy", "models"), workload("b", "mistral", "deployment", "m")],
        [a_policy("a", "llama", "models"), a_policy("c", "gone", "old")],
    )  # fmt: skip
    assert [r.row() for r in rows] == [
        ["a", "llama", "policy", "models", "deployment/llama-engine", "ome-pvc-a.llama", "-"],
        ["a", "qwen", "native", "w", "-", "-", "-"],
        ["b", "mistral", "deployment", "m", "deployment/mistral-engine", "-", "-"],
        ["c", "gone", "policy", "old", "-", "ome-pvc-c.gone",
         "leftover: the inferenceservice is gone; `kubectl ome-pvc unpatch gone -n c` removes"
         " the policy"],
    ]  # fmt: skip
    assert rows[0].as_dict()["inferenceService"] == "llama"
