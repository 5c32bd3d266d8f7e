"""Which nodes a node selector allows, with Kubernetes' rules and with OME's model-agent's (pure).

Two evaluators, because the two really differ:
- `node_matches`: the scheduler's (and the volume binder's) NodeSelector semantics, used for a
  PersistentVolume's node affinity and a pod's nodeSelector. Terms are ORed, each term's
  matchExpressions (labels) and matchFields (`metadata.name`) ANDed; an empty term matches
  nothing; `Gt`/`Lt` compare integers only; a missing label satisfies `NotIn`.
- `agent_node_matches`: how OME's model-agent decides whether to download a model on its node
  (`spec.storage.nodeSelector` and required `nodeAffinity`). An empty term (or no terms) selects
  every node; `Gt`/`Lt` compare as integers when both sides parse, else as strings; a key is
  looked up in the labels, then `metadata.name` means the node name; a missing label satisfies
  only `DoesNotExist`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubectl_omepvc.core.objects import MAPPING, dig

HOSTNAME_LABEL = "kubernetes.io/hostname"
NODE_NAME_FIELD = "metadata.name"

Obj = Mapping[str, Any]
Compare = Callable[[str, str, bool], bool]

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _compare_integers(have: str, bound: str, greater: bool) -> bool:
    """Kubernetes: both sides must be integers, else the requirement does not hold."""
    if not (_INTEGER.fullmatch(have) and _INTEGER.fullmatch(bound)):
        return False
    return int(have) > int(bound) if greater else int(have) < int(bound)


def _compare_agent(have: str, bound: str, greater: bool) -> bool:
    """OME's agent: as integers when both parse, else as strings."""
    if _INTEGER.fullmatch(have) and _INTEGER.fullmatch(bound):
        return int(have) > int(bound) if greater else int(have) < int(bound)
    return have > bound if greater else have < bound


def _holds(value: str, operator: Any, values: Sequence[str], compare: Compare) -> bool:
    """One requirement on a key that is present with `value`."""
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator == "Exists":
        return True
    if operator in ("Gt", "Lt") and values:
        return compare(value, values[0], operator == "Gt")
    return False


# -- Kubernetes ------------------------------------------------------------------------------


def requirement_matches(present: Mapping[str, str], expr: Obj) -> bool:
    """One NodeSelectorRequirement against a node's labels (or fields), Kubernetes' way."""
    key, operator = str(expr.get("key", "")), expr.get("operator")
    if key not in present:
        return operator in ("NotIn", "DoesNotExist")
    return _holds(present[key], operator, _strings(expr.get("values")), _compare_integers)


def node_matches(node: Obj, terms: Sequence[Obj]) -> bool:
    """Whether a Node satisfies nodeSelectorTerms (ORed; each term ANDed); no terms: any node."""
    if not terms:
        return True
    labels = {str(k): str(v) for k, v in (dig(node, "metadata", "labels") or {}).items()}
    fields = {NODE_NAME_FIELD: str(dig(node, "metadata", "name") or "")}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue  # an empty term matches no objects
        if all(requirement_matches(labels, e) for e in exprs) and all(
            requirement_matches(fields, e) for e in field_exprs
        ):
            return True
    return False


def labels_selector_terms(selector: Mapping[str, str]) -> list[Obj]:
    """A pod's nodeSelector as the one equivalent term (none for an empty selector)."""
    if not selector:
        return []
    return [{"matchExpressions": [
        {"key": k, "operator": "In", "values": [v]} for k, v in selector.items()
    ]}]  # fmt: skip


def stand_in_node(name: str) -> Obj:
    """What is known of a node that cannot be read: its name, and the hostname label the
    kubelet sets to it."""
    return {"metadata": {"name": name, "labels": {HOSTNAME_LABEL: name}}}


def volume_terms(pv: Obj | None) -> list[Obj]:
    """A PersistentVolume's required node affinity (`spec.nodeAffinity.required`)."""
    terms = dig(pv, "spec", "nodeAffinity", "required", "nodeSelectorTerms")
    return [t for t in terms if isinstance(t, MAPPING)] if isinstance(terms, list) else []


def required_terms(node_affinity: Any) -> list[Obj]:
    """A NodeAffinity's required terms (`requiredDuringSchedulingIgnoredDuringExecution`)."""
    terms = dig(
        node_affinity, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"
    )
    return [t for t in terms if isinstance(t, MAPPING)] if isinstance(terms, list) else []


def _hostname_pins(term: Obj) -> list[Obj]:
    return [
        e
        for e in term.get("matchExpressions") or []
        if e.get("key") == HOSTNAME_LABEL and e.get("operator") == "In"
    ]


def single_node(terms: Sequence[Obj]) -> str | None:
    """The one node the terms pin to (one term, hostname In [node]), else None."""
    if len(terms) != 1:
        return None
    pins = _hostname_pins(terms[0])
    if len(pins) == 1 and len(pins[0].get("values") or []) == 1:
        return str(pins[0]["values"][0])
    return None


def pinned_hostnames(terms: Sequence[Obj]) -> list[str]:
    """Every host name the terms name with `kubernetes.io/hostname In`, sorted (for hints)."""
    return sorted({str(v) for t in terms for e in _hostname_pins(t) for v in e.get("values") or []})


def node_ready(node: Obj) -> bool:
    conditions = dig(node, "status", "conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def schedulable(node: Obj) -> bool:
    """Ready, and not cordoned."""
    return not dig(node, "spec", "unschedulable") and node_ready(node)


def describe_terms(terms: Any, empty_term: str = "(no node)") -> str:
    """nodeSelectorTerms as one line: requirements joined by ` and `, terms (in parentheses when
    there are several) by ` or `; `empty_term` stands for a term without requirements, `-` for
    no terms at all."""
    parts = []
    for term in terms if isinstance(terms, list | tuple) else ():
        if not isinstance(term, MAPPING):
            continue
        exprs = [*(term.get("matchExpressions") or []), *(term.get("matchFields") or [])]
        text = " and ".join(
            f"{e.get('key')} {e.get('operator')}"
            + (f" [{', '.join(map(str, e['values']))}]" if e.get("values") else "")
            for e in exprs
            if isinstance(e, MAPPING)
        )
        parts.append(text or empty_term)
    return " or ".join(f"({p})" if len(parts) > 1 else p for p in parts) or "-"


# -- OME's model-agent -----------------------------------------------------------------------


def agent_expression_matches(labels: Mapping[str, str], node_name: str, expr: Obj) -> bool:
    """One NodeSelectorRequirement on one node, with OME's agent semantics."""
    key = expr.get("key")
    value: str | None = labels.get(key) if isinstance(key, str) else None
    if value is None and key == NODE_NAME_FIELD:
        value = node_name
    if value is None:
        return expr.get("operator") == "DoesNotExist"
    return _holds(value, expr.get("operator"), _strings(expr.get("values")), _compare_agent)


def agent_node_matches(
    labels: Mapping[str, str],
    node_name: str,
    node_selector: Mapping[str, str],
    terms: Sequence[Obj],
) -> bool:
    """Whether the agent on this node downloads a model with this selection.

    nodeSelector: every pair must match. Required affinity terms are ORed, their expressions
    and fields ANDed; an empty term list (or an empty term) selects every node, as in OME.
    """
    if any(labels.get(k) != v for k, v in node_selector.items()):
        return False
    if not terms:
        return True
    for term in terms:
        exprs = [*(term.get("matchExpressions") or []), *(term.get("matchFields") or [])]
        if all(
            isinstance(e, MAPPING) and agent_expression_matches(labels, node_name, e) for e in exprs
        ):
            return True
    return False
