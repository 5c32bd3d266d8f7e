#!/usr/bin/env python3
"""Writes the test CRDs: hack/crds (released OME v0.1.5, full CRDs), hack/crds-minimal (v0.1.5's
minimal CRDs: schemaless model spec and status) and hack/crds-native-pvc (OME built from main).

They are written here from the facts in shared/reference/ome.md, not copied from OME: only the
fields the plugin reads are typed; everything else is preserved as unknown fields. The native
variant follows OME main's Go types where they differ (sgl-project/ome at 5ed809d2,
pkg/controller/v1beta1/basemodel/backends/pvc/pvc.go writes them through
updatePVCConditionedStatus): `status.conditions` is a list of metav1.Condition (type, status,
reason, message and lastTransitionTime required, as controller-gen writes it for that type),
plus `observedGeneration` and `lastReconcileTime` (shared.StampObservedReconcile).
Run it after changing it; tests/unit/test_crds.py fails when the files are stale.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

STRING = {"type": "string"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}


def model_schema(native_pvc: bool) -> dict[str, Any]:
    status: dict[str, Any] = {
        "type": "object",
        "properties": {
            "state": {
                "type": "string",
                "enum": ["Creating", "Importing", "In_Transit", "In_Training", "Ready", "Failed"],
            },
            "nodesReady": {"type": "array", "items": STRING},
            "nodesFailed": {"type": "array", "items": STRING},
            "lifecycle": STRING,
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }
    if native_pvc:
        status["properties"].update(
            {
                "observedGeneration": {"type": "integer", "format": "int64"},
                "lastReconcileTime": {"type": "string", "format": "date-time"},
                "conditions": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                    "items": {  # metav1.Condition
                        "type": "object",
                        "required": ["lastTransitionTime", "message", "reason", "status", "type"],
                        "properties": {
                            "type": {"type": "string", "maxLength": 316},
                            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                            "reason": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 1024,
                                "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                            },
                            "message": {"type": "string", "maxLength": 32768},
                            "observedGeneration": {
                                "type": "integer",
                                "format": "int64",
                                "minimum": 0,
                            },
                            "lastTransitionTime": {"type": "string", "format": "date-time"},
                        },
                    },
                },
            }
        )
    return {
        "type": "object",
        "properties": {
            "apiVersion": STRING,
            "kind": STRING,
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "disabled": {"type": "boolean"},
                    "storage": {
                        "type": "object",
                        "required": ["storageUri"],
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {
                            "storageUri": STRING,
                            "path": STRING,
                            "key": STRING,
                            "parameters": STRING_MAP,
                            "nodeSelector": STRING_MAP,
                            "nodeAffinity": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "downloadPolicy": {
                                "type": "string",
                                "enum": ["AlwaysDownload", "ReuseIfExists"],
                            },
                        },
                    },
                },
            },
            "status": status,
        },
    }


def crd(
    group: str,
    kind: str,
    plural: str,
    scope: str,
    schema: dict[str, Any],
    short_names: list[str] | None = None,
    columns: list[dict[str, Any]] | None = None,
    version: str = "v1beta1",
) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
    }
    if short_names:
        names["shortNames"] = short_names
    ver: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
    }
    if columns:
        ver["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "names": names, "scope": scope, "versions": [ver]},
    }


def open_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }


MODEL_COLUMNS = [
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def minimal_model_schema() -> dict[str, Any]:
    """v0.1.5's config/crd/minimal: spec and status kept, but not typed."""
    return open_schema()


def documents(native_pvc: bool, minimal: bool = False) -> dict[str, dict[str, Any]]:
    schema = minimal_model_schema() if minimal else model_schema(native_pvc)
    return {
        "ome.io_clusterbasemodels.yaml": crd(
            "ome.io",
            "ClusterBaseModel",
            "clusterbasemodels",
            "Cluster",
            schema,
            columns=MODEL_COLUMNS,
        ),
        "ome.io_basemodels.yaml": crd(
            "ome.io",
            "BaseModel",
            "basemodels",
            "Namespaced",
            copy.deepcopy(schema),
            columns=MODEL_COLUMNS,
        ),
        "ome.io_inferenceservices.yaml": crd(
            "ome.io",
            "InferenceService",
            "inferenceservices",
            "Namespaced",
            open_schema(),
            short_names=["isvc"],
        ),
        "leaderworkerset.x-k8s.io_leaderworkersets.yaml": crd(
            "leaderworkerset.x-k8s.io",
            "LeaderWorkerSet",
            "leaderworkersets",
            "Namespaced",
            open_schema(),
            short_names=["lws"],
            version="v1",
        ),
    }


def render(doc: dict[str, Any]) -> str:
    header = "# Generated by hack/gen-crds.py for tests; not OME's own CRD.\n"
    return header + yaml.safe_dump(doc, sort_keys=False)


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    variants = (
        (False, False, HERE / "crds"),
        (True, False, HERE / "crds-native-pvc"),
        (False, True, HERE / "crds-minimal"),
    )
    for native, minimal, folder in variants:
        folder.mkdir(exist_ok=True)
        for name, doc in documents(native, minimal).items():
            variant = native or minimal
            if variant and (not name.startswith("ome.io_") or "inferenceservices" in name):
                continue  # the variants only replace the two model CRDs
            path = folder / name
            text = render(doc)
            if check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.write_text(text)
    if stale:
        print("stale CRDs (run hack/gen-crds.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
