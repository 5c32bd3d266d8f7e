"""Reading discovery documents into capabilities."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import capabilities
from kubectl_omepvc.core.capabilities import Capabilities


def crd_openapi(kind: str, status_props: dict[str, Any]) -> dict[str, Any]:
    return {
        "components": {
            "schemas": {
                f"io.ome.v1beta1.{kind}": {
                    "x-kubernetes-group-version-kind": [
                        {"group": "ome.io", "version": "v1beta1", "kind": kind}
                    ],
                    "properties": {"status": {"type": "object", "properties": status_props}},
                }
            }
        }
    }


@pytest.mark.parametrize(
    ("status_props", "expected"),
    [
        ({"state": {}, "nodesReady": {}}, False),
        ({"state": {}, "conditions": {"type": "array"}}, True),
        ({}, None),  # OME v0.1.5's minimal CRDs: a schemaless status tells nothing
    ],
    ids=["released", "native-pvc", "schemaless"],
)
def test_status_conditions_probe(status_props: dict[str, Any], expected: bool | None) -> None:
    doc = crd_openapi("ClusterBaseModel", status_props)
    assert capabilities.status_has_conditions(doc, "ClusterBaseModel") is expected


def test_status_conditions_probe_follows_refs() -> None:
    doc = {
        "components": {
            "schemas": {
                "io.ome.v1beta1.ClusterBaseModel": {
                    "properties": {
                        "status": {"allOf": [{"$ref": "#/components/schemas/io.ome.v1beta1.S"}]}
                    }
                },
                "io.ome.v1beta1.S": {"properties": {"conditions": {}}},
            }
        }
    }
    assert capabilities.status_has_conditions(doc, "ClusterBaseModel") is True


def test_status_conditions_probe_ignores_other_groups() -> None:
    doc = crd_openapi("ClusterBaseModel", {"conditions": {}})
    schema = doc["components"]["schemas"]["io.ome.v1beta1.ClusterBaseModel"]
    schema["x-kubernetes-group-version-kind"][0]["group"] = "example.com"
    assert capabilities.status_has_conditions(doc, "ClusterBaseModel") is None


def test_group_versions_and_resources() -> None:
    apis = {
        "groups": [
            {"name": "ome.io", "versions": [{"version": "v1beta1"}]},
            {"name": "admissionregistration.k8s.io", "versions": [{"version": "v1"}]},
        ]
    }
    assert capabilities.served_group_versions(apis) == {
        "ome.io": ["v1beta1"],
        "admissionregistration.k8s.io": ["v1"],
    }
    names = capabilities.resource_names(
        {"resources": [{"name": "basemodels"}, {"name": "basemodels/status"}]}
    )
    assert names == {"basemodels"}


@pytest.mark.parametrize(
    ("resources", "native", "generation", "served"),
    [
        ({}, None, "absent", False),
        (
            {"clusterbasemodels": True, "basemodels": True, "inferenceservices": True},
            False,
            "released",
            True,
        ),
        (
            {"clusterbasemodels": True, "basemodels": True, "inferenceservices": True},
            True,
            "native-pvc",
            True,
        ),
        (
            {"clusterbasemodels": True, "basemodels": False, "inferenceservices": True},
            False,
            "released",
            False,
        ),
    ],
    ids=["absent", "released", "native", "partial"],
)
def test_generation(
    resources: dict[str, bool], native: bool | None, generation: str, served: bool
) -> None:
    caps = Capabilities(ome_resources=resources, native_pvc=native)
    assert caps.ome_generation == generation
    assert caps.ome_served is served
    assert caps.as_dict()["ome"]["generation"] == generation
