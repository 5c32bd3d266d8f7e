"""What this plugin has switched, from the records it left (pure): `status --patched`.

One row per InferenceService it switched (a `native` record on the isvc, a policy, or records
on its workloads), and one per policy left behind by an isvc that is gone. Nothing here is
inferred from volumes: only records say what `unpatch` can undo.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubectl_omepvc.core import naming
from kubectl_omepvc.core import policy as core_policy
from kubectl_omepvc.core.jsonpatch import ANNOTATION

Obj = Mapping[str, Any]
HEADERS = ("NAMESPACE", "INFERENCESERVICE", "STRATEGY", "CLAIM", "WORKLOADS", "POLICY", "NOTE")


@dataclasses.dataclass
class Patched:
    namespace: str
    isvc: str
    strategy: str
    claim: str
    workloads: list[str] = dataclasses.field(default_factory=list)
    policy: str | None = None
    note: str = ""

    def row(self) -> list[str]:
        return [
            self.namespace,
            self.isvc,
            self.strategy,
            self.claim or "?",
            ",".join(self.workloads) or "-",
            self.policy or "-",
            self.note or "-",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "inferenceService": self.isvc,
            "strategy": self.strategy,
            "claim": self.claim or None,
            "workloads": self.workloads,
            "policy": self.policy,
            "note": self.note or None,
        }


def _annotation(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    try:
        record = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _workload_claim(record: Mapping[str, Any]) -> tuple[str, str]:
    """(strategy, claim) of a workload record: one entry per pod template, written together."""
    for template in (record.get("templates") or {}).values():
        if isinstance(template, Mapping):
            return str(template.get("strategy") or "unknown"), str(template.get("claim") or "")
    return str(record.get("strategy") or "unknown"), str(record.get("claim") or "")


def patched(
    isvcs: Iterable[Obj], workloads: Iterable[Obj], policies: Iterable[Obj] | None
) -> list[Patched]:
    """Rows sorted by namespace and isvc; policies of isvcs that are gone are leftovers."""
    rows: dict[tuple[str, str], Patched] = {}
    present = set()
    for isvc in isvcs:
        meta = isvc.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        present.add(key)
        record = _annotation(isvc)
        if record and record.get("strategy") == "native":
            rows[key] = Patched(*key, "native", str(record.get("claim") or ""))
    for policy in policies or ():
        meta = policy.get("metadata") or {}
        labels = meta.get("labels") or {}
        ns, name = labels.get(core_policy.LABEL_NAMESPACE), labels.get(core_policy.LABEL_ISVC)
        if not ns or not name:
            continue
        claim = (core_policy.read_policy_record(policy) or {}).get("claim")
        key = (str(ns), str(name))
        row = rows.setdefault(key, Patched(*key, "policy", str(claim or "")))
        row.policy = str(meta.get("name", ""))
        if key not in present:
            row.note = (
                "leftover: the inferenceservice is gone;"
                f" `kubectl ome-pvc unpatch {name} -n {ns}` removes the policy"
            )
    for workload in workloads:
        meta = workload.get("metadata") or {}
        own = _annotation(workload)
        owner = (meta.get("labels") or {}).get(naming.ISVC_LABEL)
        if not own or not owner:
            continue
        strategy, claim = _workload_claim(own)
        key = (str(meta.get("namespace", "")), str(owner))
        row = rows.setdefault(key, Patched(*key, strategy, claim))
        kind = str(workload.get("kind") or "Deployment").lower()
        row.workloads.append(f"{kind}/{meta.get('name', '')}")
    return [rows[k] for k in sorted(rows)]
