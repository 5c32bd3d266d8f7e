"""OME's label and ConfigMap keys, checked against the reference examples and the boundaries."""

from __future__ import annotations

import hashlib

import pytest

from kubectl_omepvc.core import naming
from kubectl_omepvc.core.naming import ModelKind
from tests.expect import raises_exactly

PREFIX = "models.ome.io/"


def h8(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def test_cluster_example_from_the_reference() -> None:
    key = naming.cluster_model_label_key("llama-4-maverick-17b-128e-instruct-fp8")
    assert key == "models.ome.io/clusterbasemodel.321a5921-k-17b-128e-instruct-fp8"


def test_namespaced_example_from_the_reference() -> None:
    key = naming.namespaced_model_label_key("team-a", "qwen3-8b")
    assert key == "models.ome.io/team-a.basemodel.qwen3-8b"


@pytest.mark.parametrize(
    ("name", "expected_name_part"),
    [
        ("a" * 32, "a" * 32),
        ("b" * 31 + "xy", h8("b" * 31 + "xy") + "-" + ("b" * 31 + "xy")[-23:]),
        ("llama-3-2-1b-instruct", "llama-3-2-1b-instruct"),
    ],
    ids=["32-chars-kept", "33-chars-hashed", "short"],
)
def test_cluster_label_boundary(name: str, expected_name_part: str) -> None:
    key = naming.cluster_model_label_key(name)
    assert key == f"{PREFIX}clusterbasemodel.{expected_name_part}"
    assert naming.label_key_is_hashed(ModelKind.CLUSTER, name) == (len(name) > 32)


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("ns", "m" * 36, "ns.basemodel." + "m" * 36),
        ("ns", "m" * 37, f"ns.basemodel.{h8('m' * 37)}-{'m' * 27}"),
        ("eightchr", "n" * 30, "eightchr.basemodel." + "n" * 30),
        ("eightchr", "n" * 31, f"eightchr.basemodel.{h8('n' * 31)}-{'n' * 21}"),
        ("ninechars", "n" * 29, "ninechars.basemodel." + "n" * 29),
        ("ninechars", "n" * 30, f"{h8('ninechars')}.basemodel.{'n' * 30}"),
        ("ninechars", "n" * 31, f"{h8('ninechars')}.basemodel.{h8('n' * 31)}-{'n' * 21}"),
        ("x" * 40, "tiny", f"{h8('x' * 40)}.basemodel.tiny"),
    ],
    ids=[
        "budget-38-kept",
        "budget-39-name-hashed",
        "ns-8-kept-name-30-fits",
        "ns-8-kept-name-31-hashed",
        "ns-9-total-38-kept",
        "ns-9-total-39-ns-hashed",
        "ns-9-both-hashed",
        "long-ns-short-name",
    ],
)
def test_namespaced_label_budget(namespace: str, name: str, expected: str) -> None:
    assert naming.namespaced_model_label_key(namespace, name) == PREFIX + expected
    hashed = len(namespace) + len(name) > 38
    assert naming.label_key_is_hashed(ModelKind.NAMESPACED, name, namespace) is hashed


@pytest.mark.parametrize("ns_len", [1, 5, 8, 9, 20, 63])
@pytest.mark.parametrize("name_len", [1, 20, 30, 31, 32, 33, 38, 39, 100, 253])
def test_label_name_never_exceeds_49(ns_len: int, name_len: int) -> None:
    namespace, name = "n" * ns_len, "m" * name_len
    for key in (
        naming.cluster_model_label_key(name),
        naming.namespaced_model_label_key(namespace, name),
    ):
        assert key.startswith(PREFIX)
        assert len(key) - len(PREFIX) <= 49


def test_distinct_long_names_get_distinct_keys() -> None:
    # Same 23-character tail, different heads: only the hash tells them apart.
    a = naming.cluster_model_label_key("vendor-one-" + "x" * 30)
    b = naming.cluster_model_label_key("vendor-two-" + "x" * 30)
    assert a != b
    assert a.endswith("x" * 23) and b.endswith("x" * 23)


def test_model_label_key_dispatches_on_kind() -> None:
    assert naming.model_label_key(ModelKind.CLUSTER, "m") == f"{PREFIX}clusterbasemodel.m"
    assert naming.model_label_key(ModelKind.NAMESPACED, "m", "ns") == f"{PREFIX}ns.basemodel.m"
    with raises_exactly(ValueError, match="needs a namespace"):
        naming.model_label_key(ModelKind.NAMESPACED, "m")


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "expected"),
    [
        (ModelKind.CLUSTER, None, "llama-4-maverick-17b-128e-instruct-fp8",
         "clusterbasemodel.llama-4-maverick-17b-128e-instruct-fp8"),
        (ModelKind.NAMESPACED, "team-a", "qwen3-8b", "team-a.basemodel.qwen3-8b"),
        (ModelKind.CLUSTER, None, "a" * 236, "clusterbasemodel." + "a" * 236),
        (ModelKind.CLUSTER, None, "a" * 237, f"clusterbasemodel.{h8('a' * 237)}-{'a' * 227}"),
        (ModelKind.NAMESPACED, "ns", "b" * 240, "ns.basemodel." + "b" * 240),
        (ModelKind.NAMESPACED, "ns", "b" * 241, f"ns.basemodel.{h8('b' * 241)}-{'b' * 231}"),
    ],
    ids=["cluster", "namespaced", "cluster-236", "cluster-237", "ns-242", "ns-243"],
)  # fmt: skip
def test_configmap_keys(kind: ModelKind, namespace: str | None, name: str, expected: str) -> None:
    key = naming.model_configmap_key(kind, name, namespace)
    assert key == expected
    assert len(key) <= 253


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("clusterbasemodel.llama", (ModelKind.CLUSTER, None, "llama")),
        ("team-a.basemodel.qwen3-8b", (ModelKind.NAMESPACED, "team-a", "qwen3-8b")),
        ("a.basemodel.b.basemodel.c", (ModelKind.NAMESPACED, "a", "b.basemodel.c")),
        ("clusterbasemodel.", None),
        (".basemodel.x", None),
        ("artifact.huggingface.meta-llama", None),
        ("random", None),
    ],
    ids=["cluster", "namespaced", "first-split", "empty-name", "empty-ns", "artifact", "junk"],
)
def test_parse_configmap_key(key: str, expected: object) -> None:
    assert naming.parse_configmap_key(key) == expected


def test_shorten_with_hash_without_room_for_a_suffix_is_the_bare_hash() -> None:
    assert naming.shorten_with_hash("namespace-long", 8) == h8("namespace-long")
    assert naming.shorten_with_hash("namespace-long", 5) == h8("namespace-long")[:5]
    assert naming.shorten_with_hash("short", 8) == "short"


def test_model_kind_values_are_the_api_kinds() -> None:
    assert ModelKind("ClusterBaseModel") is ModelKind.CLUSTER
    assert ModelKind.NAMESPACED.resource == "basemodel"
