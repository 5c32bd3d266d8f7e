"""Node selection: Kubernetes' NodeSelector rules, and OME's model-agent's own."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import selectors

Obj = dict[str, Any]


def _pv(nodes: list[str] | None = None, terms: list[Obj] | None = None) -> Obj:
    if nodes is not None:
        terms = [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}
        ]}]  # fmt: skip
    spec: Obj = {"local": {"path": "/raid"}}
    if terms is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": terms}}
    return {"metadata": {"name": "pv"}, "spec": spec}


# -- Kubernetes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "labels", "expected"),
    [
        ({"key": "k", "operator": "In", "values": ["a"]}, {"k": "a"}, True),
        ({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "a"}, False),
        ({"key": "k", "operator": "NotIn", "values": ["a"]}, {}, True),
        ({"key": "k", "operator": "Exists"}, {"k": ""}, True),
        ({"key": "k", "operator": "DoesNotExist"}, {"k": ""}, False),
        ({"key": "k", "operator": "DoesNotExist"}, {}, True),
        ({"key": "k", "operator": "Gt", "values": ["3"]}, {"k": "4"}, True),
        ({"key": "k", "operator": "Lt", "values": ["3"]}, {"k": "4"}, False),
        ({"key": "k", "operator": "Gt", "values": ["3"]}, {"k": "x"}, False),
        ({"key": "k", "operator": "Gt", "values": ["a"]}, {"k": "b"}, False),
        # The bound itself is excluded on both sides: a node with gpus=8 is not `Gt 8`.
        ({"key": "gpus", "operator": "Gt", "values": ["8"]}, {"gpus": "8"}, False),
        ({"key": "gpus", "operator": "Lt", "values": ["8"]}, {"gpus": "8"}, False),
        ({"key": "gpus", "operator": "Lt", "values": ["8"]}, {"gpus": "7"}, True),
    ],
    ids=["in", "not-in-has", "not-in-missing", "exists", "does-not-exist",
         "does-not-exist-missing", "gt", "lt", "gt-nan",
         "gt-strings", "gt-equal", "lt-equal", "lt"],
)  # fmt: skip
def test_node_matches(expr: Obj, labels: dict[str, str], expected: bool) -> None:
    node = {"metadata": {"name": "n", "labels": labels}}
    assert selectors.node_matches(node, [{"matchExpressions": [expr]}]) is expected


def test_node_matches_fields_and_empty_terms() -> None:
    node = {"metadata": {"name": "n1", "labels": {}}}
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert selectors.node_matches(node, [by_name])
    assert not selectors.node_matches(node, [{}])  # an empty term selects nothing
    assert selectors.node_matches(node, [])  # no terms: any node
    other = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    assert selectors.node_matches(node, [other, by_name])  # terms are ORed
    assert selectors.node_matches(node, [{}, by_name])  # an empty term does not end the search


def test_labels_selector_terms() -> None:
    terms = selectors.labels_selector_terms({"pool": "a"})
    assert terms == [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}]
    assert selectors.labels_selector_terms({}) == []
    node = {"metadata": {"name": "n", "labels": {"pool": "a", "zone": "z"}}}
    assert selectors.node_matches(node, terms)


def test_stand_in_node_matches_a_hostname_pin_only() -> None:
    node = selectors.stand_in_node("gpu-node-2")
    assert selectors.node_matches(node, selectors.volume_terms(_pv(["gpu-node-2"])))
    assert not selectors.node_matches(node, selectors.volume_terms(_pv(["gpu-node-1"])))
    assert node["metadata"] == {
        "name": "gpu-node-2",
        "labels": {selectors.HOSTNAME_LABEL: "gpu-node-2"},
    }
    by_name = {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-node-2"]}]
    }
    assert selectors.node_matches(node, [by_name])


@pytest.mark.parametrize(
    ("pv", "single", "hosts"),
    [
        (_pv(["a"]), "a", ["a"]),
        (_pv(["b", "a"]), None, ["a", "b"]),
        (_pv(terms=[{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]},
            {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["b"]}]}]),
         None, ["a", "b"]),
        (_pv(terms=[{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]}]),
         None, []),
        (_pv(), None, []),
        (None, None, []),
    ],
    ids=["one-node", "two-values", "two-terms", "by-zone", "no-affinity", "no-pv"],
)  # fmt: skip
def test_volume_pins(pv: Obj | None, single: str | None, hosts: list[str]) -> None:
    terms = selectors.volume_terms(pv)
    assert selectors.single_node(terms) == single
    assert selectors.pinned_hostnames(terms) == hosts


@pytest.mark.parametrize(
    ("node", "ready", "schedulable"),
    [
        ({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, True, True),
        ({"spec": {"unschedulable": True},
          "status": {"conditions": [{"type": "Ready", "status": "True"}]}}, True, False),
        ({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}, False, False),
        ({}, False, False),
        ({"spec": {"unschedulable": False, "taints": []},
          "status": {"conditions": [{"type": "Ready", "status": "True"}]}}, True, True),
    ],
    ids=["ready", "cordoned", "not-ready", "no-status", "uncordoned-with-spec"],
)  # fmt: skip
def test_node_ready_and_schedulable(node: Obj, ready: bool, schedulable: bool) -> None:
    assert selectors.node_ready(node) is ready
    assert selectors.schedulable(node) is schedulable


@pytest.mark.parametrize(
    ("terms", "empty_term", "text"),
    [
        (None, "(no node)", "-"),
        ([{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}], "(no node)",
         "gpu Exists"),
        ([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                {"key": "gpu", "operator": "Exists"}]}], "(no node)",
         "zone In [a, b] and gpu Exists"),
        ([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
          {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}],
         "(no node)", "(zone In [a, b]) or (metadata.name In [n1])"),
        ([{}], "(any node)", "(any node)"),
        ([{}], "(no node)", "(no node)"),
    ],
    ids=["none", "exists", "anded", "two-terms", "empty-term-agent", "empty-term"],
)  # fmt: skip
def test_describe_terms(terms: Any, empty_term: str, text: str) -> None:
    assert selectors.describe_terms(terms, empty_term) == text


# -- OME's model-agent ---------------------------------------------------------------------------

LABELS = {"gpu": "h100", "count": "8", "zone": "b"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"key": "gpu", "operator": "In", "values": ["a10", "h100"]}, True),
        ({"key": "gpu", "operator": "In", "values": ["a10"]}, False),
        ({"key": "gpu", "operator": "NotIn", "values": ["a10"]}, True),
        ({"key": "gpu", "operator": "NotIn", "values": ["h100"]}, False),
        ({"key": "gpu", "operator": "Exists"}, True),
        ({"key": "tpu", "operator": "Exists"}, False),
        ({"key": "tpu", "operator": "DoesNotExist"}, True),
        ({"key": "gpu", "operator": "DoesNotExist"}, False),
        ({"key": "tpu", "operator": "NotIn", "values": ["x"]}, False),
        ({"key": "count", "operator": "Gt", "values": ["10"]}, False),
        ({"key": "count", "operator": "Lt", "values": ["10"]}, True),
        ({"key": "zone", "operator": "Gt", "values": ["a"]}, True),
        ({"key": "count", "operator": "Gt", "values": []}, False),
        ({"key": "count", "operator": "Gt", "values": ["8"]}, False),
        ({"key": "count", "operator": "Lt", "values": ["8"]}, False),
        ({"key": "count", "operator": "Gt", "values": ["7"]}, True),
        ({"key": "zone", "operator": "Gt", "values": ["b"]}, False),
        ({"key": "zone", "operator": "Lt", "values": ["b"]}, False),
        ({"key": "zone", "operator": "Lt", "values": ["c"]}, True),
        # One side a number, the other not: compared as strings ("8" sorts before "a").
        ({"key": "count", "operator": "Gt", "values": ["a"]}, False),
        ({"key": "zone", "operator": "Gt", "values": ["7"]}, True),
        ({"key": "metadata.name", "operator": "In", "values": ["node-1"]}, True),
        ({"key": "gpu", "operator": "Bogus", "values": ["h100"]}, False),
    ],
    ids=["in", "not-in-list", "notin", "notin-hit", "exists", "exists-missing",
         "doesnotexist", "doesnotexist-present", "notin-missing-key", "gt-numeric",
         "lt-numeric", "gt-string", "gt-no-values", "gt-equal", "lt-equal", "gt-below",
         "gt-string-equal", "lt-string-equal", "lt-string", "gt-number-vs-string",
         "gt-string-vs-number", "metadata-name", "unknown-operator"],
)  # fmt: skip
def test_agent_expression_matches(expr: dict[str, Any], expected: bool) -> None:
    assert selectors.agent_expression_matches(LABELS, "node-1", expr) is expected


@pytest.mark.parametrize(
    ("selector", "terms", "expected"),
    [
        ({}, [], True),
        ({"gpu": "h100"}, [], True),
        ({"gpu": "a10"}, [], False),
        ({}, [{}], True),
        ({}, [{"matchExpressions": [{"key": "tpu", "operator": "Exists"}]},
              {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}], True),
        ({}, [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]},
                                    {"key": "gpu", "operator": "In", "values": ["a10"]}]}], False),
        ({}, [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                "values": ["node-2"]}]}], False),
        ({"zone": "b"}, [{"matchExpressions": [{"key": "tpu", "operator": "Exists"}]}], False),
        ({}, [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                "values": ["node-1"]}]}], True),
    ],
    ids=["nothing", "selector-hit", "selector-miss", "empty-term", "terms-ored",
         "expressions-anded", "match-fields", "selector-and-affinity", "match-fields-hit"],
)  # fmt: skip
def test_agent_node_matches(selector: dict[str, str], terms: list[Any], expected: bool) -> None:
    assert selectors.agent_node_matches(LABELS, "node-1", selector, terms) is expected


def test_required_terms_ignore_preferred_affinity() -> None:
    affinity = {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}],
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]
        },
    }
    assert selectors.required_terms(affinity) == [
        {"matchExpressions": [{"key": "a", "operator": "Exists"}]}
    ]
    assert selectors.required_terms(None) == []
